"""``standard``: the ordinary ``V x d`` lookup table (the baseline every method is compared to)."""
from typing import Optional

import torch
from torch import nn

from .compact_input import CompactInputEmbedding
from .factory import register_input_embedding


@register_input_embedding("standard")
class StandardEmbedding(CompactInputEmbedding):
    """``weight[V, d]``; ids ``[*]`` -> ``[*, d]``. Initialised N(0, d^-1/2) like fairseq's
    transformer embeddings, padding row zero."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        self.weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim))
        nn.init.normal_(self.weight, mean=0.0, std=embedding_dim ** -0.5)
        if padding_idx is not None:
            with torch.no_grad():
                self.weight[padding_idx].zero_()

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(tokens, self.weight)

    @classmethod
    def from_config(cls, cfg, vocab_size, embed_dim, padding_idx):
        return cls(vocab_size, embed_dim, padding_idx)
