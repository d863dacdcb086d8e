"""Base class of every input embedding (token ids -> model-dimension vectors)."""
from typing import Optional

import torch
from torch import nn


def count_unique_parameters(module: nn.Module) -> int:
    """Number of scalar parameters, each shared tensor counted once."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


class CompactInputEmbedding(nn.Module):
    """Maps token ids ``[*]`` to vectors ``[*, embedding_dim]``.

    Subclasses implement :meth:`embed` and the classmethod :meth:`from_config`; this base class
    zeroes the padding positions (like ``nn.Embedding(padding_idx=...)``, whatever the method's
    parameter sharing) and reports parameter counts relative to a standard ``V x d`` table.

    Args:
        num_embeddings: vocabulary size V.
        embedding_dim: output dimension d.
        padding_idx: id whose vector is all zeros (``None``: no padding id).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[*]`` long -> ``[*, embedding_dim]``; padding need not be handled."""
        raise NotImplementedError

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out = self.embed(tokens)
        if self.padding_idx is not None:
            out = out.masked_fill(tokens.eq(self.padding_idx).unsqueeze(-1), 0.0)
        return out

    def num_parameters(self) -> int:
        """Trainable scalars of this embedding (shared tensors counted once)."""
        return count_unique_parameters(self)

    def standard_parameters(self) -> int:
        """Size of the ``V x d`` table this embedding replaces."""
        return self.num_embeddings * self.embedding_dim

    @classmethod
    def from_config(cls, cfg, vocab_size: int, embed_dim: int, padding_idx: Optional[int]):
        """Build from the flags of :class:`~fairseq_compactemb.modules.options.EmbeddingOptions`."""
        raise NotImplementedError
