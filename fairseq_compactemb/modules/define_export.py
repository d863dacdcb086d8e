"""Exporting a trained DeFINE unit as an ordinary ``V x d`` table.

A DeFINE vector does not depend on its context, so after training the whole unit (map, expand,
reduce) is one lookup table: :func:`define_to_standard` computes it as a :class:`StandardEmbedding`
(an exact inference-time replacement), :func:`replace_define_with_standard` swaps it into a model
in place. The evaluation-time table (:mod:`.table_cache`) is the same computation
(:meth:`DeFINEEmbedding.compute_table`), kept inside the unit.
"""
import torch
from torch import nn

from .define_embedding import DeFINEEmbedding
from .standard_embedding import StandardEmbedding


@torch.no_grad()
def define_to_standard(embedding: DeFINEEmbedding, chunk_size: int = 8192) -> StandardEmbedding:
    """A :class:`StandardEmbedding` whose ``V x d`` table holds ``embedding``'s output vectors
    (same device/dtype; padding row zero), i.e. an exact inference-time replacement."""
    table = embedding.compute_table(chunk_size)
    standard = StandardEmbedding(embedding.num_embeddings, embedding.embedding_dim, embedding.padding_idx)
    standard.weight = nn.Parameter(table, requires_grad=standard.weight.requires_grad)
    return standard


def replace_define_with_standard(model: nn.Module, chunk_size: int = 8192) -> int:
    """Replace, in place, every :class:`DeFINEEmbedding` submodule of ``model`` by its
    :func:`define_to_standard` table (for export / inference). Returns how many were replaced.
    A ``model`` that is itself a DeFINEEmbedding cannot be replaced in place: use
    :func:`define_to_standard`. Submodules reachable under several names (shared embeddings)
    get one shared replacement."""
    if isinstance(model, DeFINEEmbedding):
        raise TypeError("model is itself a DeFINEEmbedding; use define_to_standard(model)")
    replaced = {}
    for parent in list(model.modules()):
        # _modules, not named_children(): the latter skips a second name of a shared child
        for name, child in list(parent._modules.items()):
            if isinstance(child, DeFINEEmbedding):
                if id(child) not in replaced:
                    replaced[id(child)] = define_to_standard(child, chunk_size)
                setattr(parent, name, replaced[id(child)])
    return len(replaced)
