"""Print configuration errors as one line instead of a deep traceback.

fairseq's CLIs let exceptions from ``build_model`` / ``build_criterion`` escape to the
interpreter. For our :class:`CompactConfigError` (a bad flag) the traceback hides the one line
the user needs, so the plugin wraps ``sys.excepthook``: that error type is printed as
``fairseq-compactemb: error: --flag: problem; fix`` and the process exits with status 2 (like
argparse); every other exception keeps the normal traceback.
"""
import os
import sys

from .modules.errors import CompactConfigError


def _find_config_error(exc):
    """The CompactConfigError itself, or one it was chained from (e.g. re-raised by fairseq)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, CompactConfigError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def install_config_error_hook() -> None:
    previous = sys.excepthook
    if getattr(previous, "_compactemb_hook", False):
        return

    def hook(exc_type, exc, tb):
        err = _find_config_error(exc)
        if err is None:
            return previous(exc_type, exc, tb)
        sys.stderr.write(f"fairseq-compactemb: error: {err}\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)

    hook._compactemb_hook = True
    sys.excepthook = hook
