"""``hashnet``: the HashNet baseline output layer (Chen et al. 2015).

The virtual ``V x H`` output matrix is hashed into ``B`` shared weights exactly like the input
table (:mod:`~fairseq_compactemb.modules.hashnet_embedding`). HashNet has no fast scoring
algorithm: :meth:`HashNetOutput.logits` builds the matrix a chunk of words at a time
(``--output-layer softmax`` speed, a chunk of memory) and its backward rebuilds the chunks
instead of keeping them, so training memory stays ``O(N x V)``, not ``O(V x H)``.
:meth:`~HashNetOutput.score` and :meth:`~HashNetOutput.score_targets` build only the rows
they score.
"""
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .compact_output import CompactOutputLayer
from .errors import CompactConfigError
from .factory import register_output_layer
from .hashnet_embedding import (
    HashKeyMixin,
    HashNetEmbedding,
    hashed_index_and_sign,
    hashed_rows,
    validate_hashnet,
)
from .options import get_option, get_output_option
from .size_options import resolve_size

_CHUNK_ELEMS = 1 << 20  # rows of the virtual matrix built at once: about 1M weights


class _HashedLinear(torch.autograd.Function):
    """``hidden [N, H] @ W.T -> [N, V]`` for the hashed ``W``, built ``chunk`` rows at a time in
    forward and again in backward (nothing of size ``V x H`` is kept for backward)."""

    @staticmethod
    def forward(ctx, hidden, weight, vocab_size: int, key: int, chunk: int):
        ctx.save_for_backward(hidden, weight)
        ctx.vocab_size, ctx.key, ctx.chunk = vocab_size, key, chunk
        out = hidden.new_empty(hidden.size(0), vocab_size)
        for s in range(0, vocab_size, chunk):
            rows = torch.arange(s, min(s + chunk, vocab_size), device=hidden.device)
            out[:, s:s + chunk] = hidden @ hashed_rows(weight, rows, hidden.size(1), key).t()
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        hidden, weight = ctx.saved_tensors
        want_hidden, want_weight = ctx.needs_input_grad[:2]
        grad_hidden = torch.zeros_like(hidden) if want_hidden else None
        grad_weight = torch.zeros_like(weight) if want_weight else None
        for s in range(0, ctx.vocab_size, ctx.chunk):
            rows = torch.arange(s, min(s + ctx.chunk, ctx.vocab_size), device=hidden.device)
            index, sign = hashed_index_and_sign(rows, hidden.size(1), weight.numel(), ctx.key)
            sign = sign.to(weight.dtype)
            g = grad_out[:, s:s + ctx.chunk]  # [N, c]
            if want_hidden:
                grad_hidden += g @ (weight[index] * sign)
            if want_weight:  # dL/dW[i, j] = (g.T @ hidden)[i, j]; bucket h(i, j) collects sign * it
                grad_weight.index_add_(0, index.view(-1), ((g.t() @ hidden) * sign).view(-1))
        return grad_hidden, grad_weight, None, None, None


@register_output_layer("hashnet")
class HashNetOutput(HashKeyMixin, CompactOutputLayer):
    """HashNet output layer: logits ``= hidden @ W.T (+ bias)`` with the hashed ``W [V, H]``.

    Args:
        vocab_size: V.  input_dim: H.  buckets: B (``1 <= B < V * H``).  seed: hash seed.
        bias: learn a per-word bias.
        tied_input: a :class:`HashNetEmbedding` with the same ``V``, ``B`` and ``d == H``; its
            ``weight`` and ``hash_key`` are shared, so both sides are the same virtual table.
    """

    def __init__(self, vocab_size: int, input_dim: int, buckets: int = 65536, seed: int = 1,
                 bias: bool = False, tied_input=None, buckets_flag: str = "--hashnet-buckets"):
        super().__init__(vocab_size, input_dim, bias)
        self.buckets_flag = buckets_flag
        if tied_input is not None:
            self._check_tie(tied_input, buckets)
        validate_hashnet(vocab_size, input_dim, buckets, buckets_flag, "--output-layer softmax")
        if tied_input is not None:
            self.weight = tied_input.weight
            self.register_buffer("hash_key", tied_input.hash_key, persistent=True)
            self.key = tied_input.key
        else:
            self.weight = nn.Parameter(torch.empty(buckets))
            nn.init.normal_(self.weight, mean=0.0, std=input_dim ** -0.5)
            self._init_hash_key(seed)
        self.chunk = max(1, _CHUNK_ELEMS // input_dim)

    def _check_tie(self, emb, buckets: int) -> None:
        def fail(problem, fix):
            raise CompactConfigError("--tie-input-output", problem, fix)

        self.check_tie_type(emb, HashNetEmbedding, "use --input-embedding hashnet or drop --tie-input-output")
        if emb.weight.numel() != buckets:
            fail(f"input B={emb.weight.numel()} but output B={buckets}",
                 "drop --output-hashnet-buckets (or make it equal --hashnet-buckets)")
        self.check_tie_shape(emb)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        x = hidden.reshape(-1, self.input_dim)
        scores = _HashedLinear.apply(x, self.weight, self.vocab_size, self.key, self.chunk)
        return self.add_bias(scores).view(*hidden.shape[:-1], self.vocab_size)

    def score(self, hidden: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
        rows = hashed_rows(self.weight, word_ids, self.input_dim, self.key)  # [S, H] only
        return self.add_bias(hidden @ rows.t(), word_ids)

    def score_targets(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        rows = hashed_rows(self.weight, targets, self.input_dim, self.key)  # [N, H]
        return self.add_bias((hidden * rows).sum(-1), targets)

    def materialize(self) -> torch.Tensor:
        """The virtual ``[V, H]`` matrix (inspection and tests only)."""
        return hashed_rows(self.weight, torch.arange(self.vocab_size, device=self.weight.device),
                           self.input_dim, self.key)

    def extra_repr(self) -> str:
        return (f"{self.vocab_size}, {self.input_dim}, buckets={self.weight.numel()}, "
                f"bias={self.bias is not None}")

    @classmethod
    def from_config(cls, cfg, vocab_size, input_dim, tied_input=None):
        flag = ("--output-hashnet-buckets" if getattr(cfg, "output_hashnet_buckets", None) is not None
                else "--hashnet-buckets")
        buckets = resolve_size(get_output_option(cfg, "hashnet_buckets"), flag, vocab_size * input_dim,
                               what=f"shared weights of the {vocab_size:,} x {input_dim} output matrix")
        return cls(vocab_size, input_dim, buckets=buckets,
                   seed=get_option(cfg, "slim_seed"), bias=get_option(cfg, "output_bias"),
                   tied_input=tied_input, buckets_flag=flag)
