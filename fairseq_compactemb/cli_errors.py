"""Print configuration errors as one line instead of a deep traceback.

fairseq's CLIs let exceptions from ``build_model`` / ``build_criterion`` / checkpoint loading
escape to the interpreter. For our :class:`CompactConfigError` (a bad flag) and
:class:`CompactCheckpointError` (a checkpoint that cannot be this model's: tampered, incomplete,
another dictionary) the traceback hides the one line the user needs, so the plugin wraps
``sys.excepthook``: those are printed as ``fairseq-compactemb: error: --flag: problem; fix``
(exit status 2, like argparse) or ``fairseq-compactemb: error: tensor.name: problem; fix``
(exit status 1); every other exception keeps the normal traceback. fairseq's trainer re-raises
load failures as ``Exception("Cannot load model parameters ...")``; the chain is followed.
"""
import os
import sys

from .modules.errors import CompactCheckpointError, CompactConfigError


def _find_config_error(exc):
    """Our error itself, or one it was chained from (e.g. re-raised by fairseq)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (CompactConfigError, CompactCheckpointError)):
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
        os._exit(2 if isinstance(err, CompactConfigError) else 1)

    hook._compactemb_hook = True
    sys.excepthook = hook
