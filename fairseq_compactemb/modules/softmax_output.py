"""``softmax``: the dense ``V x H`` output matrix (optionally tied with a ``standard`` input)."""
import torch
import torch.nn.functional as F
from torch import nn

from .compact_output import CompactOutputLayer
from .errors import CompactConfigError
from .factory import register_output_layer
from .options import get_option
from .standard_embedding import StandardEmbedding


@register_output_layer("softmax")
class SoftmaxOutput(CompactOutputLayer):
    """logits ``= hidden @ weight.T (+ bias)`` with ``weight[V, H]``.

    Args:
        vocab_size: V.  input_dim: H.  bias: learn a per-word bias.
        tied_input: a ``standard`` input embedding whose ``[V, H]`` table is shared.
    """

    def __init__(self, vocab_size: int, input_dim: int, bias: bool = False, tied_input=None):
        super().__init__(vocab_size, input_dim, bias)
        if tied_input is not None:
            self.check_tie_type(tied_input, StandardEmbedding,
                                "use matching types (adaptive/adaptive, slim/slim, hashnet/hashnet) or drop the flag")
            self.check_tie_shape(tied_input)
            self.weight = tied_input.weight
        else:
            self.weight = nn.Parameter(torch.empty(vocab_size, input_dim))
            nn.init.normal_(self.weight, mean=0.0, std=input_dim ** -0.5)

    def logits(self, hidden):
        return self.add_bias(F.linear(hidden, self.weight))

    def score(self, hidden, word_ids):
        return self.add_bias(hidden @ self.weight[word_ids].t(), word_ids)

    def score_targets(self, hidden, targets):
        return self.add_bias((hidden * self.weight[targets]).sum(-1), targets)

    def score_sample(self, hidden, targets, word_ids):
        # One gather of the N + S rows: backward scatters into a single dense [V, H] gradient.
        # Two gathers (score_targets + score) would build two and add them, two extra passes
        # over V x H (measured 140 ms of a 2048-token NCE step at V=267,735, H=512).
        n = targets.numel()
        rows = F.embedding(torch.cat([targets, word_ids]), self.weight)  # [N + S, H]
        target_logits = (hidden * rows[:n]).sum(-1)
        return self.add_bias(target_logits, targets), self.add_bias(hidden @ rows[n:].t(), word_ids)

    @classmethod
    def from_config(cls, cfg, vocab_size, input_dim, tied_input=None):
        return cls(vocab_size, input_dim, bias=get_option(cfg, "output_bias"), tied_input=tied_input)
