"""One clear line for a checkpoint file that is not a whole PyTorch checkpoint.

A partial copy or download of a ``.pt`` file makes ``torch.load`` fail deep inside fairseq
with ``OSError: [Errno 22] Invalid argument`` or ``PytorchStreamReader failed reading zip
archive``; a text file given as ``--path`` ends in ``KeyError: 101`` or an
``UnpicklingError``. :func:`install` wraps fairseq's ``checkpoint_utils.load_checkpoint_to_cpu``
(which ``fairseq-eval-lm``, ``fairseq-generate``, ``fairseq-interactive``, ``fairseq-train
--restore-file / --finetune-from-model`` and the hub loaders all call): when loading fails it
looks at the file and, if the file explains the failure, raises a
:class:`~fairseq_compactemb.modules.CompactCheckpointError` naming the file and the problem
(printed by the CLIs as one line, exit status 1); any other failure is re-raised unchanged.
"""
import os
import zipfile
from typing import Optional

from .modules.errors import CompactCheckpointError

_PICKLE_PROTOCOLS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")  # torch's legacy format


def diagnose(path: str) -> Optional[str]:
    """What is wrong with the checkpoint file ``path``, or ``None`` if it looks whole."""
    if not os.path.isfile(path):
        return None  # fairseq's own "file not found" is clear
    size = os.path.getsize(path)
    if size == 0:
        return "is empty (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError):
            return f"is truncated ({size:,} bytes; the end of the zip archive is missing)"
        if bad is not None:
            return f"is corrupt ({size:,} bytes; entry {bad} fails its CRC check)"
        return None
    if head.startswith(_PICKLE_PROTOCOLS):
        return None  # a legacy-format checkpoint: let torch's own error stand
    shown = head[:16].decode("utf-8", "replace").encode("unicode_escape").decode("ascii")
    return f"is not a PyTorch checkpoint (it starts with '{shown}', not a zip archive)"


def install() -> None:
    """Wrap ``fairseq.checkpoint_utils.load_checkpoint_to_cpu`` (idempotent)."""
    from fairseq import checkpoint_utils

    stock = checkpoint_utils.load_checkpoint_to_cpu
    if getattr(stock, "_compactemb", False):
        return

    def load_checkpoint_to_cpu(path, *args, **kwargs):
        try:
            return stock(path, *args, **kwargs)
        except CompactCheckpointError:
            raise
        except Exception as e:
            problem = diagnose(str(path))
            if problem is None:
                raise
            raise CompactCheckpointError(
                str(path), problem, "copy or download the file again, or point --path at the "
                "checkpoint_*.pt that fairseq-train wrote") from e

    load_checkpoint_to_cpu._compactemb = True
    load_checkpoint_to_cpu.__doc__ = stock.__doc__
    checkpoint_utils.load_checkpoint_to_cpu = load_checkpoint_to_cpu
