"""``hashnet``: the HashNet baseline (Chen et al., "Compressing Neural Networks with the Hashing
Trick", ICML 2015), input side, plus the hashing shared with the output layer.

Every entry of the virtual ``V x d`` table is one of ``B`` learned weights, picked by a fixed
hash of its coordinates, with a hashed sign so that collisions do not all add up the same way::

    W[i, j] = sign(i, j) * weight[h(i, j)]        h(i, j) in [0, B),  sign(i, j) in {-1, +1}

Parameters: ``B`` (``--hashnet-buckets``) instead of ``V * d``. ``h`` and ``sign`` are the fixed
integer hash of :mod:`~fairseq_compactemb.modules.int_hash` keyed by ``--slim-seed``; the key is
saved as the buffer ``hash_key`` so a reloaded model hashes the way it was trained. Nothing of
size ``V x d`` is stored: the indices of the rows a batch needs are recomputed on the fly.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .compact_input import CompactInputEmbedding
from .errors import CompactConfigError
from .factory import register_input_embedding
from .int_hash import hash_pair, seed_key
from .options import get_option
from .size_options import resolve_size

_HASHNET_SALT = 2  # keeps HashNet's hash independent of slim's hash assignment (salt 1)


def validate_hashnet(num_rows: int, num_cols: int, buckets: int, flag: str = "--hashnet-buckets",
                     standard_choice: str = "--input-embedding standard") -> None:
    """Raise :class:`CompactConfigError` unless ``1 <= B < V * d``."""
    if buckets < 1:
        raise CompactConfigError(flag, f"B={buckets} shared weights", "use a positive number of buckets")
    if buckets >= num_rows * num_cols:
        raise CompactConfigError(
            flag, f"B={buckets} >= V*d={num_rows * num_cols}, so hashing gives no compression",
            f"use {standard_choice} or {flag} < {num_rows * num_cols}",
        )


def hashed_index_and_sign(rows: torch.Tensor, num_cols: int, buckets: int, key: int
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``rows [*]`` -> bucket ``h(i, j)`` ``[*, num_cols]`` long and ``sign(i, j)`` ``[*, num_cols]``
    in ``{-1, +1}`` (long). The sign is the top bit of the 32-bit hash, the bucket its value mod
    ``B``, so the two are independent for power-of-two ``B`` and nearly so otherwise."""
    h = hash_pair(rows.unsqueeze(-1), torch.arange(num_cols, device=rows.device), key)
    return h % buckets, 1 - 2 * (h >> 31)


def hashed_rows(weight: torch.Tensor, rows: torch.Tensor, num_cols: int, key: int) -> torch.Tensor:
    """Rows ``rows [*]`` of the virtual hashed matrix: ``[*, num_cols]`` (differentiable in ``weight``)."""
    index, sign = hashed_index_and_sign(rows, num_cols, weight.numel(), key)
    return F.embedding(index, weight.unsqueeze(1)).squeeze(-1) * sign.to(weight.dtype)


class HashKeyMixin:
    """Saves the hash key with the module (buffer ``hash_key``) and checks the bucket count on
    load, so a checkpoint is always read with the hashing and ``B`` it was trained with.
    The module sets ``weight [B]``, ``hash_key`` and ``buckets_flag``."""

    def _init_hash_key(self, seed: int) -> None:
        self.register_buffer("hash_key", torch.tensor(seed_key(seed, _HASHNET_SALT), device="cpu"), persistent=True)
        self.key = int(self.hash_key)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "weight")
        if saved is not None and saved.dim() == 1 and saved.numel() != self.weight.numel():
            raise CompactConfigError(self.buckets_flag, f"the checkpoint has B={saved.numel()} "
                                     f"buckets, this model {self.weight.numel()}",
                                     f"use {self.buckets_flag} {saved.numel()}")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.key = int(self.hash_key)  # the checkpoint's key, not this process's --slim-seed


@register_input_embedding("hashnet")
class HashNetEmbedding(HashKeyMixin, CompactInputEmbedding):
    """HashNet input embedding: ids ``[*]`` -> ``[*, d]`` rows of the hashed virtual table.

    Args:
        num_embeddings: V.  embedding_dim: d.  padding_idx: id whose vector is zeroed.
        buckets: B, the number of learned weights (``1 <= B < V * d``).
        seed: hash seed (``--slim-seed``).

    Attributes (the hashnet output layer ties to these):
        weight: the ``[B]`` shared weights, initialised N(0, d^-1/2) like a standard table.
        hash_key: 0-dim long buffer, the key of ``h`` and ``sign`` (saved in checkpoints).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 buckets: int = 65536, seed: int = 1, buckets_flag: str = "--hashnet-buckets"):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        validate_hashnet(num_embeddings, embedding_dim, buckets, buckets_flag)
        self.buckets_flag = buckets_flag
        self.weight = nn.Parameter(torch.empty(buckets))
        nn.init.normal_(self.weight, mean=0.0, std=embedding_dim ** -0.5)
        self._init_hash_key(seed)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return hashed_rows(self.weight, tokens, self.embedding_dim, self.key)

    def materialize(self) -> torch.Tensor:
        """The virtual ``[V, d]`` table (inspection and tests only)."""
        return hashed_rows(self.weight, torch.arange(self.num_embeddings, device=self.weight.device),
                           self.embedding_dim, self.key)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, buckets={self.weight.numel()}"

    @classmethod
    def from_config(cls, cfg, vocab_size, embed_dim, padding_idx):
        buckets = resolve_size(get_option(cfg, "hashnet_buckets"), "--hashnet-buckets", vocab_size * embed_dim,
                               what=f"shared weights of the {vocab_size:,} x {embed_dim} input table")
        return cls(vocab_size, embed_dim, padding_idx, buckets=buckets, seed=get_option(cfg, "slim_seed"))
