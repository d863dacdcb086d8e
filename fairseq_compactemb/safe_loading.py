"""Make fairseq's checkpoint loaders work under torch>=2.6's ``weights_only=True`` default.

torch 2.6 switched ``torch.load`` to ``weights_only=True``: only tensors, containers and
primitive types unpickle, everything else must be allowlisted. fairseq checkpoints written by
argparse-configured models store their config as an ``argparse.Namespace`` (``cfg.model`` of
e.g. the stock ``transformer``), so stock ``fairseq-generate`` fails with
``Weights only load failed ... argparse.Namespace``.

We keep ``weights_only=True`` (never ``weights_only=False`` or TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD)
and allowlist exactly the globals fairseq's own checkpoints contain; anything else - e.g. an
arbitrary class smuggled into a checkpoint - is still refused by torch's unpickler.
``tests/test_safe_loading.py`` checks that a real fairseq checkpoint needs nothing beyond this
list and that an unexpected class is refused.
"""
import argparse

import torch

# Every global found (torch.serialization.get_unsafe_globals_in_checkpoint) in checkpoints that
# fairseq-train 0.12 writes for LMs and translation models, argparse- or dataclass-configured.
FAIRSEQ_CHECKPOINT_GLOBALS = [argparse.Namespace]


def allowlist_fairseq_checkpoint_globals() -> None:
    """Register :data:`FAIRSEQ_CHECKPOINT_GLOBALS` with torch's weights-only unpickler."""
    if hasattr(torch.serialization, "add_safe_globals"):  # torch >= 2.4
        torch.serialization.add_safe_globals(FAIRSEQ_CHECKPOINT_GLOBALS)
