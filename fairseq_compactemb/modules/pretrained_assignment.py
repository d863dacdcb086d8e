"""Slim assignments chosen from a pretrained model, for training from scratch (the slim
paper's proposed next step: cluster a pretrained table's sub-vectors to pick the assignment).

    --slim-assignment kmeans:CHECKPOINT.pt          input: one shared pool, clustered from the
                                                    checkpoint's V x d input table
    --output-slim-assignment kmeans:CHECKPOINT.pt   output: disjoint pools S_k, clustered from
                                                    its softmax matrix (the input table if tied)
    --slim-assignment file:ASSIGNMENT.pt            a saved [V, K] long tensor (or a dict with
                                                    key "assignment"), e.g. from an earlier run

Only the assignment is taken; the pool starts from its usual random initialisation. The
clustering is unweighted (a checkpoint carries no word counts; ``compress`` weights by
frequency) and runs once per (checkpoint, V, K, M, side): the result is cached under
``$COMPACTEMB_CACHE`` (default ``~/.cache/fairseq_compactemb``). The model saves its assignment
as usual, so a trained checkpoint never needs the pretrained file again: when it is gone at
load time the layer warns and builds a placeholder that the checkpoint's buffer replaces.
"""
import hashlib
import os
import warnings
from pathlib import Path
from typing import Optional

import torch

from .errors import CompactConfigError
from .table_fits import product_quantize

INPUT_KEYS = ("decoder.embed_tokens.weight",)
OUTPUT_KEYS = ("decoder.compact_output.weight", "decoder.output_projection.weight", "decoder.embed_tokens.weight")


def is_pretrained_spec(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(("kmeans:", "file:"))


def _load(path: str):
    import argparse

    if hasattr(torch.serialization, "add_safe_globals"):
        torch.serialization.add_safe_globals([argparse.Namespace])  # fairseq checkpoints' configs
    return torch.load(path, map_location="cpu", weights_only=True)


def _cache_file(path: str, *key) -> Path:
    stat = os.stat(path)
    digest = hashlib.sha1(repr((os.path.abspath(path), stat.st_size, stat.st_mtime_ns) + key).encode()).hexdigest()
    root = Path(os.environ.get("COMPACTEMB_CACHE", Path.home() / ".cache" / "fairseq_compactemb"))
    return root / "assignments" / f"{digest[:20]}.pt"


def pretrained_assignment(spec: str, num_words: int, subvectors: int, pool_size: int, shared: bool,
                          flag: str, seed: int = 1) -> Optional[torch.Tensor]:
    """The ``[V, K]`` assignment named by ``spec`` (``kmeans:PATH`` or ``file:PATH``), or ``None``
    (with a warning) when PATH no longer exists. Raises :class:`CompactConfigError` naming
    ``flag`` for a file that does not fit."""
    how, _, path = spec.partition(":")
    if not os.path.exists(path):
        warnings.warn(f"{flag} {spec}: {path} not found; using a random assignment (a checkpoint being "
                      "loaded replaces it with the one it was trained with)")
        return None
    if how == "file":
        table = _load(path)
        table = table.get("assignment") if isinstance(table, dict) else table
        if not isinstance(table, torch.Tensor) or tuple(table.shape) != (num_words, subvectors):
            raise CompactConfigError(flag, f"{path} does not hold a [{num_words}, {subvectors}] assignment tensor",
                                     "save one with torch.save(layer.assignment, PATH)")
        return table.long()
    cache = _cache_file(path, num_words, subvectors, pool_size, shared, seed)
    if cache.exists():
        return torch.load(cache, weights_only=True)
    state = _load(path)
    model = state.get("model", state) if isinstance(state, dict) else {}
    keys = INPUT_KEYS if shared else OUTPUT_KEYS
    table = next((model[k] for k in keys if k in model and model[k].dim() == 2), None)
    if table is None or table.size(0) != num_words or table.size(1) % subvectors:
        got = "no standard table" if table is None else f"a {list(table.shape)} table"
        raise CompactConfigError(flag, f"{path} has {got} ({' / '.join(keys)}) for {num_words} words whose "
                                 f"dimension K={subvectors} divides",
                                 "give a checkpoint trained with --input-embedding standard --output-layer softmax "
                                 "on the same dictionary and dimension")
    _, assignment = product_quantize(table.float(), subvectors, pool_size, shared=shared, seed=seed)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(assignment, cache)
    return assignment
