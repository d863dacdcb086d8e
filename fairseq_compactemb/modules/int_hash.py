"""A fixed integer hash on tensors, identical in every process, run and device.

Slim's ``hash`` assignment and HashNet need indices that are a pure function of
``(word id, position, seed)``: nothing to store, nothing random. ``torch`` has no hash op, so this
is the 32-bit "lowbias" mixer (two xor-shift-multiply rounds) written with int64 tensor ops.
Every intermediate stays below ``2**59`` (a 32-bit value times a 27-bit constant), so the int64
arithmetic never overflows and the result is the same on CPU and GPU.
"""
import torch

_MASK = 0xFFFFFFFF
_MUL = 0x45D9F3B  # < 2**27: x * _MUL fits in int64 for any 32-bit x
_GOLDEN = 0x9E3779B9  # decorrelates small consecutive keys (0, 1, 2, ...) before mixing


def mix32(x: torch.Tensor) -> torch.Tensor:
    """Bijective mix of the low 32 bits of an int64 tensor; returns values in ``[0, 2**32)``."""
    x = x & _MASK
    x = ((x >> 16) ^ x) * _MUL & _MASK
    x = ((x >> 16) ^ x) * _MUL & _MASK
    return (x >> 16) ^ x


def seed_key(seed: int, salt: int) -> int:
    """A 32-bit key from a user seed and a per-use salt (so different uses do not collide)."""
    return int(mix32(torch.tensor((seed ^ (salt * _GOLDEN)) & _MASK, dtype=torch.long, device="cpu")))


def hash_pair(rows: torch.Tensor, cols: torch.Tensor, key: int) -> torch.Tensor:
    """``h(row, col)`` in ``[0, 2**32)``, broadcasting ``rows`` against ``cols`` (int64 tensors).

    Computed as ``mix(mix(key ^ row) ^ mix(col + golden))``: the row and column parts are mixed
    separately, so callers can pass ``rows[..., None]`` and ``cols[d]`` and only pay one mix over
    the broadcast result.
    """
    row_part = mix32(rows ^ key)
    col_part = mix32(cols + _GOLDEN)
    return mix32(row_part ^ col_part)
