"""``slim``: the slim output layer (Li et al., AAAI 2018), scored without the ``V x H`` matrix.

Output word vectors are built like slim input vectors -- ``K`` sub-vectors of size ``H / K`` --
but position ``k`` always takes its sub-vector from its own pool ``S_k`` of ``M / K`` rows (the
``disjoint`` assignment). Then the logit of word ``w`` splits into ``K`` partial dot products::

    logit(w) = sum_k  hidden[k-th part] . pool[assignment[w, k]]        (pool row in S_k)

and there are only ``M`` distinct partial products per hidden state. The paper's algorithm:

1. split ``hidden [N, H]`` into ``K`` parts ``[N, K, H/K]``; part ``k`` times the ``M/K`` rows of
   ``S_k`` gives every partial product: a ``[M, N]`` table for ``N * M * H/K`` multiply-adds
   (``M * H/K`` is the parameter count, so this is the dense cost times the compression rate);
2. gather-sum: ``logit[:, w] = sum_k table[assignment[w, k]]``, ``V * K`` adds per row.

The table is laid out ``[M, N]`` so that step 2 is one
:func:`~torch.nn.functional.embedding_bag` (``mode="sum"``, one bag of ``K`` rows per word):
each lookup reads ``N`` contiguous floats. :meth:`log_probs` fuses step 2 with the softmax in
cache-sized chunks of the vocabulary: on CPU in float32 without autograd with the C++ kernel
of :mod:`.slim_kernel` (one pass, no intermediate copies), else in PyTorch. Nothing of size
``V x H`` is ever built.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .compact_output import CompactOutputLayer, check_target_shape
from .errors import CompactConfigError
from .factory import register_output_layer
from . import slim_kernel
from .options import get_option, get_output_option
from .pretrained_assignment import is_pretrained_spec, pretrained_assignment
from .size_options import resolve_size, resolve_subvectors
from .slim_assignment import SlimAssignmentMixin, make_assignment, validate_slim, word_vectors
from .slim_embedding import SlimEmbedding

# Fast no-grad paths: rows per block. The gather reads the [M, rows] partial table at random, so
# it should stay small, while the K GEMMs that build it need enough rows to run at speed: rows =
# h = d/K (the GEMMs' inner size), at least 32, the table at most 2**24 elements (64 MB).
# Measured with 1 thread (V = M = 33,280, K=8): d=128 (h=16), 4,096 rows took 2.6 s in blocks of
# 2,016 rows, 1.6 s in blocks of 32 and 2.1 s in blocks of 64; d=512 (h=64), 256 rows took 0.10 s
# in blocks of 32 and 0.07 s in blocks of 64. Vocabulary chunks keep each [chunk, rows] score
# block (1 MB) in the L2 cache (2**18 measured 8-12% faster than 2**20 and 2**16 at the Table 7
# shape, scripts/benchmark.py). Each table row holds `rows` floats, so a block is rounded down to
# whole 64-byte cache lines: at V = 267,735, K = 8 the bound gave 62 rows (248-byte rows straddling
# lines) and the partial table + log Z took 5.2 ms per position, 48 rows 2.4-3.0 ms (1 thread).
# One table buffer serves every block of a call: a fresh 64 MB tensor per block is a new mmap,
# whose page faults made fairseq-eval-lm times bimodal (15 s vs 64 s for the same run).
_TABLE_ELEMS = 1 << 24
_MIN_ROWS = 32
_LINE_FLOATS = 16
_CHUNK_ELEMS = 1 << 18
_MIN_CHUNK = 1024


def _output_flag(cfg, name: str) -> str:
    """``--output-<name>`` when the output-side override is set, else ``--<name>``."""
    flag = name.replace("_", "-")
    return f"--output-{flag}" if getattr(cfg, "output_" + name, None) is not None else f"--{flag}"


@register_output_layer("slim")
class SlimOutput(SlimAssignmentMixin, CompactOutputLayer):
    """Slim output layer: ``[*, H]`` -> ``[*, V]`` through ``K`` disjoint sub-vector pools.

    Args:
        vocab_size: V.  input_dim: H (``K`` must divide it).
        subvectors: K.  pool_size: M (a multiple of ``K``, ``K <= M <= V * K``).
        seed: seed of the disjoint assignment.  bias: learn a per-word bias.
        tied_input: a :class:`SlimEmbedding` with the ``disjoint`` assignment, the same ``V``,
            ``K``, ``M`` and ``d == H``, whose ``pool`` and ``assignment`` are shared.
        subvectors_flag / pool_flag: the flags named in configuration errors.

    Attributes:
        pool: ``[M, H/K]``; rows ``k*M/K .. (k+1)*M/K - 1`` form pool ``S_k``.
        assignment: persistent ``[V, K]`` buffer of global pool rows, column ``k`` inside ``S_k``.
    """

    def __init__(self, vocab_size: int, input_dim: int, subvectors: int = 8, pool_size: int = 1024,
                 seed: int = 1, bias: bool = False, tied_input=None,
                 subvectors_flag: str = "--slim-subvectors", pool_flag: str = "--slim-pool"):
        super().__init__(vocab_size, input_dim, bias)
        self.slim_flags = {"subvectors": subvectors_flag, "pool": pool_flag}
        self.assignment_kind = "disjoint"
        if tied_input is not None:
            self._check_tie(tied_input, subvectors, pool_size)
        validate_slim(vocab_size, input_dim, subvectors, pool_size, "disjoint",
                      subvectors_flag=subvectors_flag, pool_flag=pool_flag,
                      standard_choice="--output-layer softmax")
        self.subvectors, self.pool_size = subvectors, pool_size
        self.sub_dim, self.per_pool = input_dim // subvectors, pool_size // subvectors
        if tied_input is not None:
            self.pool = tied_input.pool
            self.register_buffer("assignment", tied_input.assignment, persistent=True)
        else:
            self.pool = nn.Parameter(torch.empty(pool_size, self.sub_dim))
            nn.init.normal_(self.pool, mean=0.0, std=input_dim ** -0.5)
            self.register_buffer(
                "assignment", make_assignment("disjoint", vocab_size, subvectors, pool_size, seed),
                persistent=True,
            )

    def _check_tie(self, emb, subvectors: int, pool_size: int) -> None:
        def fail(problem, fix):
            raise CompactConfigError("--tie-input-output", problem, fix)

        self.check_tie_type(emb, SlimEmbedding,
                            "use --input-embedding slim --slim-assignment disjoint or drop --tie-input-output")
        if emb.assignment_kind != "disjoint":
            fail(f"the slim input uses the {emb.assignment_kind} assignment, but the slim output "
                 "needs each position k to draw from its own pool S_k",
                 "add --slim-assignment disjoint or drop --tie-input-output")
        if (emb.subvectors, emb.pool_size) != (subvectors, pool_size):
            fail(f"input K={emb.subvectors}, M={emb.pool_size} but output K={subvectors}, M={pool_size}",
                 "drop --output-slim-subvectors / --output-slim-pool (or make them equal the input's)")
        self.check_tie_shape(emb)

    # -- the two steps of the paper's algorithm ---------------------------------------------
    def partial_table(self, hidden: torch.Tensor, buffer: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``[N, H] -> [M, N]``: row ``r`` of pool ``S_k`` dotted with the ``k``-th part of every
        hidden state (step 1; ``N * M * H/K`` multiply-adds). Without autograd the table is
        written into ``buffer`` (at least ``M * N`` elements, see ``_table_buffer``) if given."""
        n = hidden.size(0)
        K, P, h = self.subvectors, self.per_pool, self.sub_dim
        pools = self.pool.view(K, P, h)
        parts = hidden.reshape(n, K, h).permute(1, 2, 0)  # [K, h, N], a view
        if torch.is_grad_enabled() and (hidden.requires_grad or self.pool.requires_grad):
            return torch.bmm(pools, parts).view(K * P, n)
        # no autograd: K plain GEMMs written straight into their rows of the table (measured
        # faster than one bmm on CPU, and no [K, P, N] temporary)
        if buffer is None:
            table = hidden.new_empty(K * P, n)
        else:
            table = buffer.view(-1)[:K * P * n].view(K * P, n)
        for k in range(K):
            torch.mm(pools[k], parts[k], out=table[k * P:(k + 1) * P])
        return table

    def gather_sum(self, table: torch.Tensor, assignment: torch.Tensor) -> torch.Tensor:
        """``[M, N], [W, K] -> [W, N]``: ``sum_k table[assignment[w, k]]`` (step 2, ``W * K`` row
        reads of ``N`` contiguous floats)."""
        return F.embedding_bag(assignment, table, mode="sum")

    # -- CompactOutputLayer -------------------------------------------------------------------
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        x = hidden.reshape(-1, self.input_dim)
        scores = self.gather_sum(self.partial_table(x), self.assignment).t()  # [N, V] view
        return self.add_bias(scores).contiguous().view(*hidden.shape[:-1], self.vocab_size)

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and (hidden.requires_grad or self.pool.requires_grad):
            return F.log_softmax(self.logits(hidden).float(), dim=-1)
        x = hidden.reshape(-1, self.input_dim)
        out = torch.empty(x.size(0), self.vocab_size, dtype=torch.float32, device=x.device)
        rows = self._rows_per_block()
        buffer = self._table_buffer(x, rows)
        for start in range(0, x.size(0), rows):
            table = self.partial_table(x[start:start + rows], buffer)
            if table.device.type == "cpu" and table.dtype != torch.float32:
                # bf16/fp16 weights: the GEMM ran in low precision (half the bytes to stream); the
                # gather-sum and softmax run in float32 (CPU has no fast half-precision gather)
                table = table.float()
            if slim_kernel.usable(table):
                slim_kernel.fused_log_softmax(table, self._assignment_int32(), self.bias, out[start:start + rows])
            else:
                self._fused_log_softmax(table, out[start:start + rows])
        return out.view(*hidden.shape[:-1], self.vocab_size)

    def _rows_per_block(self) -> int:
        """Hidden states per partial table in the no-grad paths (see ``_TABLE_ELEMS``): whole
        cache lines of floats once a block holds at least one."""
        rows = min(max(_MIN_ROWS, self.sub_dim), max(_MIN_ROWS, _TABLE_ELEMS // self.pool_size))
        if rows >= _LINE_FLOATS:
            rows -= rows % _LINE_FLOATS
        return max(1, rows)

    def _table_buffer(self, x: torch.Tensor, rows: int) -> torch.Tensor:
        """``[M * min(rows, N)]`` storage reused by every block's partial table of one call."""
        return x.new_empty(self.pool_size * max(1, min(rows, x.size(0))))

    def _assignment_int32(self) -> torch.Tensor:
        """int32 copy of the assignment for the C++ kernel (half the index bytes to stream),
        rebuilt whenever the buffer is replaced or changed in place (load_state_dict)."""
        key = (self.assignment.data_ptr(), self.assignment._version, self.assignment.device)
        if getattr(self, "_i32_key", None) != key:
            self._i32 = self.assignment.to(torch.int32).contiguous()
            self._i32_key = key
        return self._i32

    def _fused_log_softmax(self, table: torch.Tensor, out: Optional[torch.Tensor]) -> torch.Tensor:
        """Return ``log Z [N]`` and, unless ``out`` is None, fill ``out [N, V]`` with the
        log-softmax scores, one vocabulary chunk at a time: each ``[chunk, N]`` block is
        gathered, (written out,) and reduced to its max and sum of exps while it is still in
        cache; one last in-place pass subtracts the log-partition."""
        n = table.size(1)
        chunk = max(_MIN_CHUNK, _CHUNK_ELEMS // n)
        maxes: List[torch.Tensor] = []
        sums: List[torch.Tensor] = []
        for s in range(0, self.vocab_size, chunk):
            block = self.gather_sum(table, self.assignment[s:s + chunk])  # [c, N]
            if self.bias is not None:
                block += self.bias[s:s + chunk, None]
            block = block.float()
            if out is not None:
                written = out[:, s:s + chunk]
                written.copy_(block.t())
                top = written.amax(1)  # max along contiguous rows: much faster than block.amax(0)
            else:
                top = block.amax(0)
            maxes.append(top)
            sums.append(block.sub_(top).exp_().sum(0))
        maxes_t, sums_t = torch.stack(maxes), torch.stack(sums)  # [chunks, N]
        top = maxes_t.amax(0)
        log_z = top + (sums_t * (maxes_t - top).exp()).sum(0).log()
        if out is not None:
            out.sub_(log_z[:, None])
        return log_z

    def target_log_probs(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[*, H], [*] -> [*]`` exact ``log_probs(hidden)`` at ``target``. Without autograd:
        per block of rows the partial table (step 1), the target's score as the sum of its
        ``K`` table entries, and ``log Z`` streamed over the vocabulary (the C++ kernel's
        ``slim_log_partition`` on CPU float32, else chunked PyTorch): the ``[N, V]``
        log-probabilities are never written. With autograd: the base class's ``log_softmax``
        gathered at the targets."""
        check_target_shape(hidden, target)
        if torch.is_grad_enabled() and (hidden.requires_grad or self.pool.requires_grad):
            return super().target_log_probs(hidden, target)
        x, t = hidden.reshape(-1, self.input_dim), target.reshape(-1)
        out = torch.empty(x.size(0), dtype=torch.float32, device=x.device)
        rows = self._rows_per_block()
        buffer = self._table_buffer(x, rows)
        for start in range(0, x.size(0), rows):
            table = self.partial_table(x[start:start + rows], buffer)
            if table.device.type == "cpu" and table.dtype != torch.float32:
                table = table.float()  # as in log_probs: gather and softmax in float32
            tt = t[start:start + rows]
            cols = torch.arange(tt.numel(), device=x.device).unsqueeze(1)
            picked = table[self.assignment[tt], cols].float().sum(1)  # [n, K] -> [n]
            if self.bias is not None:
                picked = picked + self.bias[tt].float()
            if slim_kernel.usable(table):
                log_z = slim_kernel.log_partition(table, self._assignment_int32(), self.bias)
            else:
                log_z = self._fused_log_softmax(table, None)
            out[start:start + tt.numel()] = picked - log_z
        return out.view(target.shape)

    def score(self, hidden: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
        n, s, H, K = hidden.size(0), word_ids.numel(), self.input_dim, self.subvectors
        rows = self.assignment[word_ids]  # [S, K]
        # (a) partial table then gather only the S words, or (b) build the S word vectors and
        # do one [N, H] x [H, S] product: pick the one with fewer multiply-adds
        if n * self.pool_size * (H // K) + s * K * n < s * H * (n + 1):
            scores = self.gather_sum(self.partial_table(hidden), rows).t()
        else:
            scores = hidden @ word_vectors(rows, self.pool).t()
        return self.add_bias(scores, word_ids)

    def score_targets(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        vectors = word_vectors(self.assignment[targets], self.pool)  # [N, H]
        return self.add_bias((hidden * vectors).sum(-1), targets)

    def materialize(self) -> torch.Tensor:
        """The ``[V, H]`` output matrix this layer stands for (inspection and tests only)."""
        return word_vectors(self.assignment, self.pool)

    def extra_repr(self) -> str:
        return (f"{self.vocab_size}, {self.input_dim}, K={self.subvectors}, M={self.pool_size}, "
                f"bias={self.bias is not None}")

    @classmethod
    def from_config(cls, cfg, vocab_size, input_dim, tied_input=None):
        if tied_input is not None and isinstance(tied_input, SlimEmbedding):
            # tied: the input's K and M unless the output side names its own (then checked equal)
            k = get_output_option(cfg, "slim_subvectors") or tied_input.subvectors
            m = tied_input.pool_size if getattr(cfg, "output_slim_pool", None) is None else None
        else:
            k, m = get_output_option(cfg, "slim_subvectors"), None
        k_flag, m_flag = _output_flag(cfg, "slim_subvectors"), _output_flag(cfg, "slim_pool")
        k = resolve_subvectors(k, input_dim, k_flag)
        if m is None:
            m = resolve_size(get_output_option(cfg, "slim_pool"), m_flag, vocab_size * k, multiple=k, minimum=k,
                             what=f"shared sub-vectors of the output (K={k}, a {vocab_size:,} x {input_dim} matrix)")
        spec = get_option(cfg, "output_slim_assignment")
        if spec is not None and not is_pretrained_spec(spec) and spec != "disjoint":
            raise CompactConfigError("--output-slim-assignment", f"unknown assignment {spec!r} (the slim output "
                                     "always uses disjoint pools)", "give kmeans:CHECKPOINT or file:ASSIGNMENT.pt")
        if spec is not None and tied_input is not None and is_pretrained_spec(spec):
            raise CompactConfigError("--output-slim-assignment", "a tied slim output shares the input's assignment",
                                     "drop --output-slim-assignment or --tie-input-output")
        layer = cls(vocab_size, input_dim, subvectors=k, pool_size=m, seed=get_option(cfg, "slim_seed"),
                    bias=get_option(cfg, "output_bias"), tied_input=tied_input, subvectors_flag=k_flag,
                    pool_flag=m_flag)
        if is_pretrained_spec(spec):
            table = pretrained_assignment(spec, vocab_size, k, m, False, "--output-slim-assignment")
            if table is not None:
                layer.assignment.copy_(table)
        return layer
