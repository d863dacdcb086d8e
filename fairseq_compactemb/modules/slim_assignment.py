"""The fixed word -> sub-vector assignment of slim embeddings (Li et al., AAAI 2018).

A slim word vector is the concatenation of ``K`` sub-vectors of size ``d / K`` taken from a pool
of ``M`` shared sub-vectors. Which pool rows word ``v`` uses is a ``[V, K]`` table of row indices,
drawn once before training and never trained:

* ``balanced`` (the paper's): a list holding every pool row ``K * V / M`` times (when ``M`` does not
  divide ``K * V`` some rows appear once more, so each row is used ``floor`` or ``ceil`` of
  ``K * V / M`` times), shuffled, cut into ``V`` rows of ``K``. Every pool vector gets about the
  same number of users, so none is wasted and none is overloaded.
* ``disjoint``: position ``k`` only draws from its own pool ``S_k`` of ``M / K`` rows (global rows
  ``k * M / K ... (k + 1) * M / K - 1``), balanced within each pool. This is what makes the fast
  slim output layer possible: hidden part ``k`` only ever meets pool ``S_k``.
* ``hash``: ``h(word, position, seed) mod M`` with a fixed integer hash -- nothing random, the
  same table in every process; not balanced.

The table is a pure function of ``(kind, V, K, M, seed)`` (a dedicated :class:`torch.Generator`,
never the global RNG), and modules also save it as a buffer so a checkpoint keeps its own table
whatever the seed of the process that loads it; :func:`load_assignment` checks it on load.
"""
from typing import Dict, Optional

import torch

from .errors import CompactCheckpointError, CompactConfigError
from .int_hash import hash_pair, seed_key

ASSIGNMENTS = ("balanced", "disjoint", "hash")


def _divisors_near(dim: int, k: int, count: int = 6) -> str:
    divisors = [q for q in range(1, dim + 1) if dim % q == 0]
    return ", ".join(map(str, sorted(sorted(divisors, key=lambda q: (abs(q - k), q))[:count])))


def validate_slim(
    num_words: int,
    dim: int,
    subvectors: int,
    pool_size: int,
    kind: str = "balanced",
    *,
    subvectors_flag: str = "--slim-subvectors",
    pool_flag: str = "--slim-pool",
    standard_choice: str = "--input-embedding standard",
) -> None:
    """Raise :class:`CompactConfigError` (naming the flag and the fix) for an unusable ``(K, M)``.

    Args:
        num_words: V.  dim: d, the word-vector size.  subvectors: K.  pool_size: M.
        kind: one of :data:`ASSIGNMENTS`.
        subvectors_flag / pool_flag: the flags to name (the output layer has its own).
        standard_choice: the uncompressed alternative to suggest when slim would not share.
    """
    if kind not in ASSIGNMENTS:
        raise CompactConfigError("--slim-assignment", f"unknown assignment {kind!r}",
                                 f"choose one of {', '.join(ASSIGNMENTS)}")
    K, M = subvectors, pool_size
    if K < 1:
        raise CompactConfigError(subvectors_flag, f"K={K} sub-vectors per word",
                                 f"use a positive divisor of {dim}, e.g. {_divisors_near(dim, 8)}")
    if dim % K != 0:
        raise CompactConfigError(subvectors_flag, f"K={K} does not divide the dimension {dim}",
                                 f"choose a divisor of {dim}, e.g. {_divisors_near(dim, K)}")
    if M < 1:
        raise CompactConfigError(pool_flag, f"M={M} shared sub-vectors", f"use {pool_flag} >= {K}")
    if M < K:
        raise CompactConfigError(pool_flag, f"M={M} is smaller than K={K} sub-vectors per word",
                                 f"use {pool_flag} >= {K} (or fewer {subvectors_flag})")
    if M > num_words * K:
        raise CompactConfigError(
            pool_flag,
            f"M={M} exceeds V*K={num_words * K}, so no sub-vector would be shared (more "
            f"parameters than a standard {num_words} x {dim} table)",
            f"use {standard_choice} or {pool_flag} <= {num_words * K}",
        )
    if kind == "disjoint" and M % K != 0:
        lower, upper = (M // K) * K, (M // K + 1) * K
        hint = f"{lower} or {upper}" if lower >= K else f"{upper}"
        raise CompactConfigError(
            pool_flag, f"the disjoint assignment splits the M={M} sub-vectors into K={K} equal "
                       f"pools, but {K} does not divide {M}",
            f"use a multiple of {K}, e.g. {pool_flag} {hint}",
        )


def _balanced_list(num_items: int, num_values: int, gen: torch.Generator) -> torch.Tensor:
    """``num_items`` values of ``0..num_values-1``, each used ``floor`` or ``ceil`` of
    ``num_items / num_values`` times (which ones get the extra use is random), shuffled."""
    base, extra = divmod(num_items, num_values)
    counts = torch.full((num_values,), base, dtype=torch.long)
    counts[torch.randperm(num_values, generator=gen)[:extra]] += 1
    values = torch.repeat_interleave(torch.arange(num_values), counts)
    # randperm on a CPU generator is a Fisher-Yates shuffle: uniform over all orders
    return values[torch.randperm(num_items, generator=gen)]


def _generator(seed: int) -> torch.Generator:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed & 0xFFFFFFFFFFFFFFFF)
    return gen


def balanced_assignment(num_words: int, subvectors: int, pool_size: int, seed: int) -> torch.Tensor:
    """``[V, K]`` long: the paper's balanced random assignment into one shared pool of ``M``."""
    gen = _generator(seed)
    return _balanced_list(num_words * subvectors, pool_size, gen).view(num_words, subvectors)


def disjoint_assignment(num_words: int, subvectors: int, pool_size: int, seed: int) -> torch.Tensor:
    """``[V, K]`` long: column ``k`` holds global rows of pool ``S_k`` (``k * M/K + local``),
    each of the ``M/K`` rows of ``S_k`` used by ``floor`` or ``ceil`` of ``V / (M/K)`` words."""
    gen = _generator(seed)
    per_pool = pool_size // subvectors
    columns = [_balanced_list(num_words, per_pool, gen) + k * per_pool for k in range(subvectors)]
    return torch.stack(columns, dim=1)


def hash_assignment(num_words: int, subvectors: int, pool_size: int, seed: int) -> torch.Tensor:
    """``[V, K]`` long: ``h(word, position, seed) mod M`` (deterministic, not balanced)."""
    h = hash_pair(torch.arange(num_words)[:, None], torch.arange(subvectors), seed_key(seed, 1))
    return h % pool_size


_BUILDERS = {"balanced": balanced_assignment, "disjoint": disjoint_assignment, "hash": hash_assignment}


def make_assignment(kind: str, num_words: int, subvectors: int, pool_size: int, seed: int) -> torch.Tensor:
    """The ``[V, K]`` long table of ``kind`` (see the module docstring); call
    :func:`validate_slim` first. Always computed on the CPU (also under a ``meta`` or CUDA
    default device), so the table depends on nothing but its arguments."""
    with torch.device("cpu"):
        return _BUILDERS[kind](num_words, subvectors, pool_size, seed)


def check_assignment(
    table: Optional[torch.Tensor],
    num_words: int,
    subvectors: int,
    pool_size: int,
    kind: str,
    flags: Dict[str, str],
    origin: str = "the checkpoint's",
    key: str = "assignment",
) -> None:
    """Raise if ``table`` cannot be the ``[V, K]`` assignment of this module.

    A wrong ``K`` or ``M`` is a flag mismatch (:class:`CompactConfigError` naming the flag and
    the value the checkpoint was trained with); anything else (missing, wrong dtype, wrong ``V``,
    out-of-range or, for ``disjoint``, a column leaving its pool) means the file is not what this
    model saved (:class:`CompactCheckpointError`, a ``ValueError``, naming ``key``).
    """
    name = f"{origin} slim assignment"
    intact = "use the checkpoint file fairseq-train wrote (this one is incomplete or was tampered with)"
    if table is None:
        raise CompactCheckpointError(key, f"{name} is missing (the [V, K] buffer 'assignment' saved "
                                     "with every slim layer)", intact)
    if table.is_floating_point() or table.is_complex() or table.dtype == torch.bool:
        raise CompactCheckpointError(key, f"{name} has dtype {table.dtype}, expected integer row "
                                     "indices", intact)
    if table.dim() != 2:
        raise CompactCheckpointError(key, f"{name} has shape {tuple(table.shape)}, expected "
                                     f"[V={num_words}, K={subvectors}]", intact)
    if table.size(1) != subvectors:
        raise CompactConfigError(flags["subvectors"],
                                 f"{name} has K={table.size(1)} sub-vectors per word, this model "
                                 f"{subvectors}",
                                 f"use {flags['subvectors']} {table.size(1)}")
    if table.size(0) != num_words:
        raise CompactCheckpointError(key, f"{name} covers {table.size(0)} words but the dictionary "
                                     f"has {num_words}",
                                     "load it with the data directory (dict.txt) it was trained with")
    if table.numel() and (int(table.min()) < 0 or int(table.max()) >= pool_size):
        raise CompactCheckpointError(key, f"{name} has entries outside [0, M={pool_size}) "
                                     f"(min {int(table.min())}, max {int(table.max())})",
                                     f"the checkpoint was tampered with, or trained with another "
                                     f"{flags['pool']}")
    if kind == "disjoint":
        per_pool = pool_size // subvectors
        pool_of = torch.div(table, per_pool, rounding_mode="floor")
        if not torch.equal(pool_of, torch.arange(subvectors, device=table.device).expand_as(pool_of)):
            raise CompactCheckpointError(key, f"{name} is not disjoint (some position k uses a "
                                         "sub-vector outside its pool S_k)",
                                         "the checkpoint was tampered with, or trained with another "
                                         "--slim-assignment")


def load_assignment(
    module: torch.nn.Module,
    state_dict: dict,
    prefix: str,
    pool_key: str,
    kind: str,
) -> None:
    """The shared ``_load_from_state_dict`` check of every slim module.

    Runs before :meth:`torch.nn.Module._load_from_state_dict` copies the checkpoint's
    ``assignment`` over the freshly drawn one, so a resumed or reloaded model always gets the
    table it was trained with, never one re-drawn from the loading process's seed or flags.
    ``module`` must have ``assignment [V, K]``, the pool parameter ``pool_key [M, d/K]`` and
    ``slim_flags`` (``{"subvectors": flag, "pool": flag}``).
    """
    num_words, subvectors = module.assignment.shape
    pool = getattr(module, pool_key)
    flags = module.slim_flags
    saved_pool = state_dict.get(prefix + pool_key)
    if saved_pool is not None and saved_pool.dim() == 2 and saved_pool.size(0) != pool.size(0):
        raise CompactConfigError(flags["pool"], f"the checkpoint's pool has M={saved_pool.size(0)} "
                                 f"sub-vectors, this model {pool.size(0)}",
                                 f"use {flags['pool']} {saved_pool.size(0)}")
    check_assignment(state_dict.get(prefix + "assignment"), num_words, subvectors, pool.size(0),
                     kind, flags, key=prefix + "assignment")


def word_vectors(table: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """``table [*, K]`` pool rows -> ``[*, K * d/K]`` word vectors (concatenated sub-vectors).

    One :func:`~torch.nn.functional.embedding` call and a free reshape; with the full
    ``[V, K]`` table it materialises all ``V x d`` vectors (inspection, tests), with a few rows it
    builds just those words.
    """
    return torch.nn.functional.embedding(table, pool).flatten(-2)


class SlimAssignmentMixin:
    """Gives a slim module the checked loading of :func:`load_assignment` (mix in before the
    ``nn.Module`` base). The module sets ``assignment`` (a persistent ``[V, K]`` buffer),
    ``pool`` (``[M, d/K]`` parameter), ``assignment_kind`` and ``slim_flags``."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        load_assignment(self, state_dict, prefix, "pool", self.assignment_kind)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
