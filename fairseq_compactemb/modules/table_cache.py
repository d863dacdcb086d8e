"""An evaluation-time lookup table for an input embedding whose vectors cost a network each.

A DeFINE vector depends on its token id alone, so in evaluation the whole ``V x d`` table can
be computed once and every later call becomes one ``F.embedding`` lookup. Decoding is where this
matters: ``fairseq-generate`` embeds one token per hypothesis per step, and running the unit's
levels for those few ids costs far more than the lookup (measured in README.md, "DeFINE decodes
from a table").

Two ways in:

* :meth:`EvalTableCache.cache_table` builds the table on request (eval mode only) and uses it
  whenever the module is in eval mode.
* ``eval_cache="auto"`` (``--define-eval-cache``, the default) builds it by itself, under
  ``torch.no_grad()`` in eval mode (what ``fairseq-generate``, ``fairseq-interactive`` and
  ``fairseq-eval-lm`` do), once the work spent on the unit since the last ``.train()`` reaches
  what the table costs, ``V`` vectors. Not while the unit's parameters hold gradients, i.e. in
  the validation of a training run: there the table would be rebuilt after every epoch, its
  ``V x d`` numbers would sit beside the optimizer's state, and validation would no longer be
  computed as the runs before this rule computed it. A call for ``U`` distinct ids counts ``U + CALL_COST`` vectors: the
  unit's dozen small operations cost about as much per call as 32 more vectors (one thread, AMD
  EPYC, n = 64, k = 512, d = 256: 0.88 ms for 1 id, 1.76 ms for 100, 47 us a vector in the whole
  table), which is what a decoding step of a few ids pays. This "rent until you have paid the
  price of buying" rule spends at most about twice what knowing the number of calls in advance
  would, and a short run (a small validation set) never builds the table. The table takes
  ``V x d`` numbers of memory, as a standard embedding would; ``"never"`` keeps it off.

The table is never used while training, is dropped by ``.train()``, and is rebuilt (explicit
tables with a warning) if any parameter changed since it was built, so a stale table is never
used. It is a non-persistent buffer: it follows ``.to()`` / ``.half()`` and is not saved.
"""
import logging
import warnings
from typing import Optional

import torch
import torch.nn.functional as F

EVAL_CACHE_MODES = ("auto", "never")  # --define-eval-cache
CALL_COST = 32  # a call's fixed overhead, in vectors (module docstring)

logger = logging.getLogger(__name__)


class EvalTableCache:
    """Mixin for an ``nn.Module`` input embedding that has ``num_embeddings`` and
    ``compute_table() -> [V, d]`` (the vectors as in eval mode, padding row zero). Call
    :meth:`init_table_cache` in ``__init__``; in ``embed``, return :meth:`cached_lookup` when it
    is not ``None``, and report every computation of vectors with :meth:`note_eval_vectors`."""

    def init_table_cache(self, mode: str = "auto") -> None:
        self.eval_cache = mode
        self.register_buffer("cached_table", None, persistent=False)
        self._cache_key = None
        self._cache_auto = False   # built by the auto rule (used under no_grad only, dropped silently)
        self._eval_vectors = 0     # vectors computed in eval mode since the last train() / drop
        self._eval_calls = 0       # ... in this many calls
        self._table_announced = False

    def _parameter_key(self):
        # identity + in-place version counter of every parameter: changes on optimizer steps,
        # load_state_dict and parameter replacement, not on .to()/.half() (those also convert
        # the cache buffer, which stays consistent)
        return tuple((id(p), p._version) for p in self.parameters())

    def cached_lookup(self, tokens: torch.Tensor) -> Optional[torch.Tensor]:
        """``[*]`` ids -> ``[*, d]`` rows of the table, or ``None`` when it cannot be used (training,
        no table, an auto-built table while autograd records, or parameters changed since)."""
        if self.training or self.cached_table is None:
            return None
        if self._cache_key != self._parameter_key():
            if not self._cache_auto:
                warnings.warn(f"{type(self).__name__}: the parameters changed since cache_table(); the cached "
                              "table is dropped (call cache_table() again to re-enable the lookup)")
            self.clear_cache()
            return None
        if self._cache_auto and torch.is_grad_enabled():  # built without autograd: gradients need the unit
            return None
        return F.embedding(tokens, self.cached_table)

    def note_eval_vectors(self, count: int) -> None:
        """One call just computed ``count`` vectors without the table: under the auto rule, build
        the table once the calls in eval mode (without autograd) add up to ``V`` vectors' work."""
        if self.training or self.eval_cache != "auto" or torch.is_grad_enabled():
            return
        if any(p.grad is not None for p in self.parameters()):  # a training run's validation (docstring)
            return
        self._eval_calls += 1
        self._eval_vectors += count
        if self._eval_vectors + CALL_COST * self._eval_calls >= self.num_embeddings:
            table = self.cache_table()
            self._cache_auto = True
            # said once per module (a hub user may go back and forth between train() and eval())
            log = logger.debug if self._table_announced else logger.info
            self._table_announced = True
            log(f"{type(self).__name__}: evaluation computed {self._eval_vectors:,} vectors in {self._eval_calls:,} "
                f"calls since training; looking them up in the {table.size(0):,} x {table.size(1)} table from now on")

    def cache_table(self, chunk_size: int = 8192) -> torch.Tensor:
        """Compute the table and use it as a lookup table while in eval mode. Refused in
        training mode (the table would go stale at the next optimizer step). Returns the table."""
        if self.training:
            raise RuntimeError(f"{type(self).__name__}.cache_table() needs eval mode (call .eval() first); "
                               "the cache is never used while training")
        table = self.compute_table(chunk_size)
        self.cached_table = table
        self._cache_key = self._parameter_key()
        self._cache_auto = False
        return table

    def clear_cache(self) -> None:
        self.cached_table = None
        self._cache_key = None
        self._cache_auto = False
        self._eval_vectors = self._eval_calls = 0

    @property
    def is_cached(self) -> bool:
        return self.cached_table is not None

    def train(self, mode: bool = True):
        if mode:
            self.clear_cache()
        return super().train(mode)
