"""``adaptive``: adaptive softmax (Grave et al., ICML 2017), optionally tied to an adaptive input.

The frequency-sorted vocabulary is cut into a head ``[0, c_1)`` and tail clusters
``[c_1, c_2), ..., [c_{n-1}, V)`` (the same bands as the adaptive input). The head scores its
``c_1`` words plus one logit per tail cluster; tail ``i`` first projects the hidden state down
to ``d_{i+1} = H // factor^{i+1}`` and then scores its own words::

    log p(w) = log softmax(head(h))[w]                                  w in the head
    log p(w) = log softmax(head(h))[c_1 + i] + log softmax(tail_i(h))[w - start]   w in tail i

Training only evaluates a tail on the rows whose target falls in it, which is where the speed
comes from: rare words are rare targets. Because the scores are not one logit per word, this
layer cannot score arbitrary word subsets (no NCE / importance sampling); it provides
:meth:`AdaptiveSoftmaxOutput.loss` instead (criterion ``compact_adaptive_loss``), and exact
:meth:`~AdaptiveSoftmaxOutput.log_probs` for ``cross_entropy`` / ``fairseq-eval-lm``.

Tying (``--tie-input-output`` with ``--input-embedding adaptive``, the paper's ADP-T) follows
Baevski & Auli (2019, Sec. 3) and fairseq (``tie_adaptive_weights`` + ``tie_adaptive_proj``):
tail ``i`` reuses band ``i+1``'s table as output words and its projection (transposed) as the
down-projection, so a tail word's output vector is exactly its input vector
``band_weights[i+1][j] @ band_projections[i+1].T``. The head words reuse band 0's table
directly (``h @ band_weights[0].T``, no projection: "the model output is directly multiplied
with the output word embeddings for the head band"); band 0's ``d x d`` projection and the
cluster logits stay untied.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .adaptive_bands import band_dims, band_starts, check_factor, parse_cutoffs
from .adaptive_input import AdaptiveInput
from .compact_output import CompactOutputLayer, check_target_shape
from .errors import CompactConfigError
from .factory import register_output_layer
from .options import get_option


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """fp16/bf16 scores are normalised in float32; float64 stays float64 (gradcheck)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _no_subset_scores() -> CompactConfigError:
    return CompactConfigError(
        "--criterion",
        "--output-layer adaptive (adaptive softmax) cannot score a subset of words, it has no "
        "single logit per word; sampled criterions (nce, importance_sampling) need --output-layer "
        "softmax, slim or hashnet",
        "use --criterion compact_adaptive_loss (or cross_entropy) with --output-layer adaptive, "
        "or change --output-layer",
    )


@register_output_layer("adaptive")
class AdaptiveSoftmaxOutput(CompactOutputLayer):
    """Adaptive softmax over ``vocab_size`` words from hidden states of size ``input_dim`` (H).

    Args:
        vocab_size: V (ids sorted by frequency).  input_dim: H.
        cutoffs: band ends, the last one equal to V (``cutoffs[0]`` head words, then one
            tail per further band).
        factor: tail ``i`` has dimension ``max(1, H // factor^(i+1))``.
        dropout: dropout between a tail's down-projection and its word scores.
        bias: learn a per-word bias (added to the word logits of the head and of each tail).
        tied_input: an :class:`AdaptiveInput` with the same cutoffs and ``embedding_dim == H``
            to share weights with (see the module docstring).

    Attributes:
        cutoffs, band_dims: as the adaptive input (band 0 = head, width H).
        head_word_weight: ``[cutoffs[0], H]`` (band 0's table when tied).
        head_cluster_weight: ``[n_tails, H]``, one logit per tail cluster.
        tail_projections: ``ParameterList``, tail ``i``: ``[H, d_{i+1}]``; applied as ``h @ P``
            (the layout of the input's ``band_projections[i+1]``, shared when tied).
        tail_weights: ``ParameterList``, tail ``i``: ``[size_{i+1}, d_{i+1}]`` (the input's
            ``band_weights[i+1]`` when tied).
    """

    supports_sampling = False

    def __init__(self, vocab_size: int, input_dim: int, cutoffs: List[int], factor: float = 4.0,
                 dropout: float = 0.0, bias: bool = False, tied_input: Optional[AdaptiveInput] = None):
        super().__init__(vocab_size, input_dim, bias)
        if list(cutoffs)[-1] != vocab_size or len(cutoffs) < 2:
            raise ValueError(f"cutoffs must have >= 2 bands and end at {vocab_size}, got {cutoffs}")
        self.cutoffs = list(cutoffs)
        self.factor = check_factor(factor)
        self.band_dims = band_dims(input_dim, self.factor, len(self.cutoffs))
        self.num_tails = len(self.cutoffs) - 1
        self.tied = tied_input is not None
        self.dropout = nn.Dropout(dropout)
        starts = band_starts(self.cutoffs)
        self.head_cluster_weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.num_tails, input_dim)))
        if self.tied:
            self._check_tie(tied_input)
            self.head_word_weight = tied_input.band_weights[0]
            self.tail_projections = nn.ParameterList(list(tied_input.band_projections)[1:])
            self.tail_weights = nn.ParameterList(list(tied_input.band_weights)[1:])
        else:
            self.head_word_weight = nn.Parameter(
                nn.init.xavier_uniform_(torch.empty(self.cutoffs[0], input_dim)))
            self.tail_projections = nn.ParameterList()
            self.tail_weights = nn.ParameterList()
            for start, end, dim in zip(starts[1:], self.cutoffs[1:], self.band_dims[1:]):
                proj = nn.init.xavier_uniform_(torch.empty(input_dim, dim))  # applied as h @ proj
                self.tail_projections.append(nn.Parameter(proj))
                self.tail_weights.append(nn.Parameter(nn.init.xavier_uniform_(torch.empty(end - start, dim))))

    def _check_tie(self, tied_input) -> None:
        fix = ("use --input-embedding adaptive and --output-layer adaptive with the same "
               "--adaptive-cutoffs / --adaptive-factor and embedding dim == decoder output dim, "
               "or drop --tie-input-output")
        self.check_tie_type(tied_input, AdaptiveInput, fix)
        if tied_input.embedding_dim != self.input_dim:
            raise CompactConfigError(
                "--tie-input-output",
                f"adaptive input dim {tied_input.embedding_dim} != output layer input dim {self.input_dim}",
                fix)
        if tied_input.cutoffs != self.cutoffs or tied_input.band_dims != self.band_dims:
            raise CompactConfigError(
                "--tie-input-output",
                f"adaptive input bands (cutoffs {tied_input.cutoffs}, dims {tied_input.band_dims}) "
                f"differ from the adaptive softmax bands (cutoffs {self.cutoffs}, dims {self.band_dims})",
                fix)

    # -- scores ------------------------------------------------------------------------------
    def _head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[N, H] -> [N, cutoffs[0] + n_tails]`` (>= float32): head words, then one per cluster."""
        words = F.linear(hidden, self.head_word_weight)
        if self.bias is not None:
            words = words + self.bias[: self.cutoffs[0]]
        return _at_least_float32(torch.cat([words, F.linear(hidden, self.head_cluster_weight)], dim=-1))

    def _tail_logits(self, i: int, hidden: torch.Tensor) -> torch.Tensor:
        """``[M, H] -> [M, size_{i+1}]`` (>= float32) word logits of tail ``i``."""
        z = self.dropout(hidden @ self.tail_projections[i])
        out = F.linear(z, self.tail_weights[i])
        if self.bias is not None:
            out = out + self.bias[self.cutoffs[i]: self.cutoffs[i + 1]]
        return _at_least_float32(out)

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[*, H] -> [*, V]`` exact log-probabilities, float32 (float64 for float64 input),
        every tail on every row."""
        flat = hidden.reshape(-1, self.input_dim)
        head = F.log_softmax(self._head_logits(flat), dim=-1)
        c0 = self.cutoffs[0]
        parts = [head[:, :c0]]
        for i in range(self.num_tails):
            parts.append(F.log_softmax(self._tail_logits(i, flat), dim=-1) + head[:, c0 + i: c0 + i + 1])
        return torch.cat(parts, dim=-1).view(*hidden.shape[:-1], self.vocab_size)

    def target_log_probs(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[*, H], [*] -> [*]`` exact ``log_probs(hidden)`` at ``target``: the head on every
        row, tail ``i`` only on the rows whose target is in it (:meth:`loss`), so scoring costs
        what training costs. Unlike fairseq's ``AdaptiveSoftmax.get_log_prob(input, target)``,
        nothing is returned for the other words, so no caller can read wrong values there."""
        check_target_shape(hidden, target)
        return -self.loss(hidden, target, reduction="none").view(target.shape)

    def loss(self, hidden: torch.Tensor, target: torch.Tensor, ignore_index: Optional[int] = None,
             reduction: str = "sum") -> torch.Tensor:
        """Negative log-likelihood of ``target`` ``[N]`` given ``hidden`` ``[N, H]``.

        Equals ``-log_probs(hidden)[n, target[n]]`` summed over the rows whose target is not
        ``ignore_index`` (``reduction="sum"``, a scalar) or per row, 0 on ignored rows
        (``reduction="none"``, ``[N]``), but the head runs on all rows and tail ``i`` only on the
        rows whose target is in it. A tail without such rows still runs on zero rows, so
        every parameter is in the autograd graph (zero gradient) on every call: DDP needs no
        ``find_unused_parameters`` and fairseq's ``pytorch_ddp`` backend works.
        """
        if reduction not in ("sum", "none"):
            raise ValueError(f"reduction must be 'sum' or 'none', got {reduction!r}")
        hidden = hidden.reshape(-1, self.input_dim)
        target = target.reshape(-1)
        keep = target.ne(ignore_index) if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
        target = target.masked_fill(~keep, 0)  # any head id: ignored rows are zeroed below
        c0 = self.cutoffs[0]
        starts = band_starts(self.cutoffs)
        head_target = target.clone()
        tail_rows = []
        for i in range(self.num_tails):
            in_tail = target >= starts[i + 1]
            if i + 1 < self.num_tails:  # the last tail is open above: ids >= V raise in gather
                in_tail &= target < self.cutoffs[i + 1]
            head_target = head_target.masked_fill(in_tail, c0 + i)
            tail_rows.append(in_tail.nonzero().squeeze(1))
        head = F.log_softmax(self._head_logits(hidden), dim=-1)
        nll = -head.gather(1, head_target.unsqueeze(1)).squeeze(1)
        for i, rows in enumerate(tail_rows):
            lp = F.log_softmax(self._tail_logits(i, hidden.index_select(0, rows)), dim=-1)
            word = (target.index_select(0, rows) - starts[i + 1]).unsqueeze(1)
            nll = nll.index_add(0, rows, -lp.gather(1, word).squeeze(1))
        nll = nll.masked_fill(~keep, 0.0)
        return nll.sum() if reduction == "sum" else nll

    def logits(self, hidden):
        raise _no_subset_scores()

    def score(self, hidden, word_ids):
        raise _no_subset_scores()

    def score_targets(self, hidden, targets):
        raise _no_subset_scores()

    def extra_repr(self) -> str:
        return (f"{self.input_dim} -> {self.vocab_size}, cutoffs={self.cutoffs}, "
                f"band_dims={self.band_dims}, tied={self.tied}")

    @classmethod
    def from_config(cls, cfg, vocab_size, input_dim, tied_input=None):
        cutoffs = parse_cutoffs(get_option(cfg, "adaptive_cutoffs"), vocab_size)
        dropout = get_option(cfg, "adaptive_softmax_dropout")
        if not 0.0 <= dropout < 1.0:  # nn.Dropout would raise a bare ValueError (or accept 1)
            raise CompactConfigError("--adaptive-softmax-dropout", f"{dropout} is not a dropout "
                                     "probability in [0, 1)", "use e.g. 0.2 (0 disables it)")
        return cls(vocab_size, input_dim, cutoffs, factor=check_factor(get_option(cfg, "adaptive_factor")),
                   dropout=dropout,
                   bias=get_option(cfg, "output_bias"), tied_input=tied_input)
