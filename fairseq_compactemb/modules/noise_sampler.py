"""Noise (proposal) distributions for the sampled losses: NCE and importance sampling.

Both losses score the target word and a handful of *noise words* drawn from a fixed
distribution ``q`` instead of all ``V`` words, and correct every score by how likely the word
was to be drawn. :class:`NoiseSampler` owns ``q``, draws the words and gives those corrections.

Support. ``q`` covers every id except ``exclude`` (the caller's list; the criterions exclude
``<pad>`` and ``<s>``, which are never targets). ``</s>`` and ``<unk>`` *are* targets of a
language model, so they must stay sampleable: a target with ``q = 0`` would need an infinite
correction.

Distributions over the sampleable ids:

* ``unigram``: ``q(w) ∝ count(w) ** alpha`` (``alpha = 0.75`` flattens the Zipfian counts, as
  in word2vec; ``alpha = 1`` is the unigram itself, ``0`` is uniform). A sampleable word with
  count 0 gets the smallest positive count, so that every possible target keeps ``q > 0``.
* ``loguniform``: the Zipfian ``q(r) = log((r + 2) / (r + 1)) / log(R + 1)`` over the rank ``r``
  of an id among the ``R`` sampleable ids in id order (TensorFlow's
  ``log_uniform_candidate_sampler``). It needs no counts but *assumes ids are sorted by
  decreasing frequency*, which fairseq dictionaries are after their special symbols.
* ``uniform``: ``q(w) = 1 / R``.

Two sampling modes:

* with replacement (default): ``S`` independent draws. The expected number of times word ``w``
  appears is ``Q(w) = S q(w)``.
* ``unique=True``: ``S`` *distinct* ids, by rejection (draw with replacement, drop repeats) until
  ``S`` distinct ids are found after ``T`` tries. The probability that ``w`` is among them is then
  estimated as ``Q(w) = 1 - (1 - q(w)) ** T`` (the convention of TensorFlow's ``unique=True``
  candidate samplers). When ``S`` equals the number of sampleable ids every id is returned
  (``T = inf``, ``Q = 1``: the sampled losses become exact).

The losses subtract ``log Q`` (:meth:`log_expected_count`) from the noise words' scores (NCE
also from the target's).

Randomness. Draws use the sampler's own CPU :class:`torch.Generator` (or one passed in), so they
are the same on every device and do not disturb the global RNG. :meth:`get_state` /
:meth:`set_state` (and :meth:`state_dict` / :meth:`load_state_dict`) save and restore it, so a
resumed run draws exactly the same words.
"""
import math
from typing import Iterable, NamedTuple, Optional, Union

import torch

from .errors import CompactConfigError

DISTRIBUTIONS = ("unigram", "loguniform", "uniform")


class NoiseSample(NamedTuple):
    """ids ``[S]`` (long, CPU) and the number of draws ``num_tries`` it took (``S`` when
    sampling with replacement, ``inf`` when every sampleable id was returned)."""

    ids: torch.Tensor
    num_tries: Union[int, float]


class NoiseSampler:
    """Draws noise word ids from ``q`` and gives ``log q`` and the ``log Q`` corrections.

    Args:
        vocab_size: V; ids are ``0 .. V-1``.
        distribution: ``unigram``, ``loguniform`` or ``uniform`` (see module docstring).
        counts: ``[V]`` word counts, required for ``unigram`` (entries of excluded ids ignored).
        alpha: exponent of the unigram counts (>= 0).
        exclude: ids that are never drawn and have ``q = 0`` (e.g. pad and bos).
        unique: draw distinct ids (expected counts ``1 - (1 - q) ** T``) instead of independent ones.
        seed: seed of the sampler's generator.

    Raises :class:`CompactConfigError` (naming ``--noise-distribution`` / ``--noise-alpha``) for an
    unknown distribution, a negative alpha, missing or all-zero counts, or an empty support.
    """

    def __init__(
        self,
        vocab_size: int,
        distribution: str = "unigram",
        counts: Optional[torch.Tensor] = None,
        alpha: float = 0.75,
        exclude: Iterable[int] = (),
        unique: bool = False,
        seed: int = 1,
    ):
        distribution = str(distribution)
        if distribution not in DISTRIBUTIONS:
            raise CompactConfigError("--noise-distribution", f"unknown choice {distribution!r}",
                                     f"choose one of {', '.join(DISTRIBUTIONS)}")
        if not alpha >= 0:  # also rejects NaN
            raise CompactConfigError("--noise-alpha", f"alpha={alpha} is negative",
                                     "use alpha >= 0 (0.75 is the usual choice, 0 is uniform)")
        self.vocab_size, self.distribution, self.alpha, self.unique = vocab_size, distribution, alpha, unique
        sampleable = torch.ones(vocab_size, dtype=torch.bool)
        sampleable[torch.as_tensor(list(exclude), dtype=torch.long)] = False
        self.support = sampleable.nonzero().squeeze(1)  # [R] sampleable ids, ascending
        if self.support.numel() == 0:
            raise CompactConfigError("--noise-distribution", "every id is excluded from sampling",
                                     "use a vocabulary with words besides the special symbols")

        weights = self._support_weights(counts)  # [R] float64, > 0
        probs = weights / weights.sum()
        self.log_q = torch.full((vocab_size,), -math.inf, dtype=torch.float64)  # [V]
        self.log_q[self.support] = probs.log()
        # Inverse-CDF sampling: draw u ~ U[0, 1) and find its bucket; O(S log R) per batch.
        cdf = probs.cumsum(0)
        self._cdf = cdf / cdf[-1]  # [R], last entry exactly 1 so every u < 1 falls inside
        self.generator = torch.Generator().manual_seed(seed)
        self._on_device = {}  # device -> log_q copy, for log_prob of ids living there

    def _support_weights(self, counts) -> torch.Tensor:
        R = self.support.numel()
        if self.distribution == "uniform":
            return torch.ones(R, dtype=torch.float64)
        if self.distribution == "loguniform":
            r = torch.arange(R, dtype=torch.float64)
            return torch.log1p(1.0 / (r + 1.0))  # log((r+2)/(r+1)); the sum telescopes to log(R+1)
        if counts is None:
            raise CompactConfigError("--noise-distribution", "unigram needs word counts and none were given",
                                     "use a dictionary with counts or --noise-distribution loguniform")
        counts = torch.as_tensor(counts, dtype=torch.float64)
        if counts.shape != (self.vocab_size,):
            raise ValueError(f"counts must have shape [{self.vocab_size}], got {list(counts.shape)}")
        c = counts[self.support]
        if not torch.isfinite(c).all() or (c < 0).any():
            raise CompactConfigError("--noise-distribution", "unigram counts must be finite and >= 0",
                                     "fix the dictionary counts or use --noise-distribution loguniform")
        if not (c > 0).any():
            raise CompactConfigError("--noise-distribution", "all word counts of the dictionary are zero",
                                     "use a dictionary with counts or --noise-distribution loguniform")
        c = torch.where(c > 0, c, c[c > 0].min())  # every possible target keeps q > 0
        return c.pow(self.alpha)

    # -- probabilities ---------------------------------------------------------------------------
    @property
    def num_sampleable(self) -> int:
        """R, the number of ids that can be drawn."""
        return self.support.numel()

    def probs(self) -> torch.Tensor:
        """``[V]`` float64 ``q`` (0 on excluded ids)."""
        return self.log_q.exp()

    def log_prob(self, ids: torch.Tensor) -> torch.Tensor:
        """``[*]`` ids (any device) -> ``[*]`` float64 ``log q(ids)`` (``-inf`` for excluded ids)."""
        table = self._on_device.get(ids.device)
        if table is None:
            table = self._on_device[ids.device] = self.log_q.to(ids.device)
        return table[ids]

    def log_expected_count(self, ids: torch.Tensor, num_tries: Union[int, float]) -> torch.Tensor:
        """``[*]`` ids -> ``[*]`` float64 ``log Q(ids)``, the log expected count of each id in a
        sample that took ``num_tries`` draws (``NoiseSample.num_tries``).

        With replacement ``Q = S q`` (``num_tries == S``); with ``unique=True``
        ``Q = 1 - (1 - q) ** T``, computed as ``log(-expm1(T log1p(-q)))`` for accuracy at small q.
        """
        log_q = self.log_prob(ids)
        if not self.unique:
            return log_q + math.log(num_tries)
        log_not_drawn = num_tries * torch.log1p(-log_q.exp())  # log (1-q)^T; -inf when T = inf
        log_not_drawn = torch.where(log_q > -math.inf, log_not_drawn, torch.zeros_like(log_q))
        return torch.log(-torch.expm1(log_not_drawn))  # excluded ids: log(0) = -inf

    # -- sampling --------------------------------------------------------------------------------
    def check_num_samples(self, num_samples: int) -> None:
        """Raise :class:`CompactConfigError` (``--noise-samples``) if ``num_samples`` cannot be
        drawn: fewer than 1, or more distinct ids than there are sampleable ids."""
        if num_samples < 1:
            raise CompactConfigError("--noise-samples", f"{num_samples} noise samples", "use at least 1")
        if self.unique and num_samples > self.num_sampleable:
            raise CompactConfigError(
                "--noise-samples",
                f"{num_samples} distinct noise samples is more than the {self.num_sampleable} words "
                f"that can be sampled",
                f"use at most {self.num_sampleable} (or the full softmax, --criterion cross_entropy)",
            )

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(n, dtype=torch.float64, generator=generator)
        return self.support[torch.searchsorted(self._cdf, u, right=True)]

    def sample(self, num_samples: int, generator: Optional[torch.Generator] = None) -> NoiseSample:
        """Draw ``num_samples`` ids (CPU long ``[S]``) and the number of tries it took."""
        self.check_num_samples(num_samples)
        generator = self.generator if generator is None else generator
        if not self.unique:
            return NoiseSample(self._draw(num_samples, generator), num_samples)
        if num_samples == self.num_sampleable:  # everything: Q = 1 exactly
            return NoiseSample(self.support[torch.randperm(num_samples, generator=generator)], math.inf)
        return self._sample_unique(num_samples, generator)

    def _sample_unique(self, num_samples: int, generator: torch.Generator) -> NoiseSample:
        # Rejection sampling, vectorised by chunks: keep the first occurrence of each new id in
        # draw order; T is the position of the draw that produced the S-th distinct id.
        seen = torch.zeros(self.vocab_size, dtype=torch.bool)
        found, num_found, tries = [], 0, 0
        while num_found < num_samples:
            need = num_samples - num_found
            m = max(2 * need, 64)
            draws = self._draw(m, generator)  # [m]
            uniq, inverse = torch.unique(draws, return_inverse=True)
            first = torch.full((uniq.numel(),), m, dtype=torch.long).scatter_reduce_(
                0, inverse, torch.arange(m), reduce="amin")  # first position of each distinct id
            fresh = ~seen[uniq]
            uniq, first = uniq[fresh], first[fresh]
            order = first.argsort()[:need]
            uniq, first = uniq[order], first[order]
            tries += int(first[-1]) + 1 if uniq.numel() == need else m
            seen[uniq] = True
            found.append(uniq)
            num_found += uniq.numel()
        return NoiseSample(torch.cat(found), tries)

    # -- generator state -------------------------------------------------------------------------
    def manual_seed(self, seed: int) -> "NoiseSampler":
        self.generator.manual_seed(seed)
        return self

    def get_state(self) -> torch.Tensor:
        """The generator state (a uint8 tensor; restoring it reproduces the following draws)."""
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def state_dict(self) -> dict:
        return {"generator_state": self.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.set_state(state["generator_state"])

    def __repr__(self) -> str:
        return (f"NoiseSampler(vocab_size={self.vocab_size}, distribution={self.distribution!r}, "
                f"alpha={self.alpha}, sampleable={self.num_sampleable}, unique={self.unique})")
