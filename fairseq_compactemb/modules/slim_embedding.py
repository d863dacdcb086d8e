"""``slim``: slim embeddings (Li et al., "Slim Embedding Layers for Recurrent Neural Language
Models", AAAI 2018), input side.

Each word vector is cut into ``K`` sub-vectors of size ``d / K``, and the sub-vectors are not
owned by the word: they are rows of a pool ``[M, d/K]`` shared by the whole vocabulary, chosen by
a fixed random ``[V, K]`` assignment (:mod:`~fairseq_compactemb.modules.slim_assignment`)::

    vector(w) = concat(pool[assignment[w, 0]], ..., pool[assignment[w, K-1]])

Parameters drop from ``V * d`` to ``M * d / K`` (``--slim-pool M``, ``--slim-subvectors K``); e.g.
V=10,000, d=512, K=8, M=10,000 keeps 640,000 of 5,120,000 (12.5%). Words stay distinguishable
because two words almost never share all ``K`` rows.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .compact_input import CompactInputEmbedding
from .factory import register_input_embedding
from .options import get_option
from .pretrained_assignment import is_pretrained_spec, pretrained_assignment
from .size_options import resolve_size, resolve_subvectors
from .slim_assignment import SlimAssignmentMixin, make_assignment, validate_slim, word_vectors


@register_input_embedding("slim")
class SlimEmbedding(SlimAssignmentMixin, CompactInputEmbedding):
    """Slim input embedding: ids ``[*]`` -> ``[*, d]`` from ``K`` shared sub-vectors per word.

    Args:
        num_embeddings: vocabulary size V.
        embedding_dim: d (``K`` must divide it).
        padding_idx: id whose vector is all zeros (the base class zeroes it; the pool rows it
            points to are shared with other words, so they are not zeroed).
        subvectors: K.  pool_size: M (``K <= M <= V * K``; a multiple of K for ``disjoint``).
        assignment: ``balanced``, ``disjoint`` or ``hash``.
        seed: seed of the assignment (its own generator; the global RNG is untouched).

    Attributes (the slim output layer ties to these):
        pool: parameter ``[M, d/K]``, initialised N(0, d^-1/2) like a standard table.
        assignment: persistent buffer ``[V, K]`` long, saved in checkpoints; loading a
            checkpoint replaces it (after checking it) whatever this process's seed.
        assignment_kind: the ``assignment`` argument.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 subvectors: int = 8, pool_size: int = 1024, assignment: str = "balanced",
                 seed: int = 1):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        self.slim_flags = {"subvectors": "--slim-subvectors", "pool": "--slim-pool"}
        validate_slim(num_embeddings, embedding_dim, subvectors, pool_size, assignment)
        self.subvectors, self.pool_size, self.assignment_kind = subvectors, pool_size, assignment
        self.pool = nn.Parameter(torch.empty(pool_size, embedding_dim // subvectors))
        nn.init.normal_(self.pool, mean=0.0, std=embedding_dim ** -0.5)
        self.register_buffer(
            "assignment", make_assignment(assignment, num_embeddings, subvectors, pool_size, seed),
            persistent=True,
        )

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        # [*] -> pool rows [*, K] -> sub-vectors [*, K, d/K] -> (free reshape) [*, d]
        return F.embedding(self.assignment[tokens], self.pool).flatten(-2)

    def materialize(self) -> torch.Tensor:
        """The ``[V, d]`` table this embedding stands for (inspection only: ``V x d`` memory)."""
        return word_vectors(self.assignment, self.pool)

    def extra_repr(self) -> str:
        return (f"{self.num_embeddings}, {self.embedding_dim}, K={self.subvectors}, "
                f"M={self.pool_size}, assignment={self.assignment_kind}")

    @classmethod
    def from_config(cls, cfg, vocab_size, embed_dim, padding_idx):
        k = resolve_subvectors(get_option(cfg, "slim_subvectors"), embed_dim, "--slim-subvectors")
        spec = get_option(cfg, "slim_assignment")
        kind = "balanced" if is_pretrained_spec(spec) else spec  # a pretrained one uses the shared pool
        m = resolve_size(get_option(cfg, "slim_pool"), "--slim-pool", vocab_size * k,
                         multiple=k if kind == "disjoint" else 1, minimum=k,
                         what=f"shared sub-vectors of the input (K={k}, a {vocab_size:,} x {embed_dim} table)")
        layer = cls(vocab_size, embed_dim, padding_idx, subvectors=k, pool_size=m,
                    assignment=kind, seed=get_option(cfg, "slim_seed"))
        if is_pretrained_spec(spec):
            table = pretrained_assignment(spec, vocab_size, k, m, True, "--slim-assignment")
            if table is not None:
                layer.assignment.copy_(table)
        return layer
