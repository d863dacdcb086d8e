"""``projected``: factorised embedding, a ``V x e`` table followed by an ``e -> d`` linear map.

The ALBERT-style baseline (Lan et al. 2020): ``vector(w) = weight[w] @ projection.weight.T``.
Every word gets the same small width ``e``, so the table shrinks from ``V*d`` to ``V*e + e*d``
parameters (e.g. V=267,735, d=1024, e=128: 34.4M instead of 274.2M). It is the uniform
counterpart of the adaptive input, which spends more dimensions on frequent words.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .compact_input import CompactInputEmbedding
from .errors import CompactConfigError
from .factory import register_input_embedding
from .options import get_option


@register_input_embedding("projected")
class ProjectedEmbedding(CompactInputEmbedding):
    """ids ``[*]`` -> ``weight[ids]`` ``[*, e]`` -> ``projection`` -> ``[*, d]``.

    Args:
        num_embeddings: V.  embedding_dim: d.
        projected_dim: e, the width of the table (``--projected-dim``).
        padding_idx: id whose vector is all zeros.

    Attributes:
        weight: ``[V, e]`` table, N(0, e^-1/2) like fairseq's embeddings.
        projection: ``nn.Linear(e, d, bias=False)`` (weight ``[d, e]``), Xavier-uniform.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, projected_dim: int,
                 padding_idx: Optional[int] = None):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        if not isinstance(projected_dim, int) or projected_dim < 1:
            raise CompactConfigError(
                "--projected-dim", f"e={projected_dim} is not a positive integer",
                f"use --projected-dim >= 1 (typically 64..256, smaller than d={embedding_dim})",
            )
        self.projected_dim = projected_dim
        self.weight = nn.Parameter(torch.empty(num_embeddings, projected_dim))
        nn.init.normal_(self.weight, mean=0.0, std=projected_dim ** -0.5)
        if padding_idx is not None:
            with torch.no_grad():
                self.weight[padding_idx].zero_()
        self.projection = nn.Linear(projected_dim, embedding_dim, bias=False)
        nn.init.xavier_uniform_(self.projection.weight)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.projection(F.embedding(tokens, self.weight))

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.projected_dim} -> {self.embedding_dim}"

    @classmethod
    def from_config(cls, cfg, vocab_size, embed_dim, padding_idx):
        return cls(vocab_size, embed_dim, get_option(cfg, "projected_dim"), padding_idx)
