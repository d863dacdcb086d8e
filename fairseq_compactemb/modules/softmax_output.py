"""``softmax``: the dense ``V x H`` output matrix, optionally tied with a ``standard`` input
table, or with the ``V x n`` map table of a ``define`` input (the DeFINE paper's low-dimensional
output layer: the model's last layer produces ``n``-dim states, scored against the map table)."""
import torch
import torch.nn.functional as F
from torch import nn

from .compact_output import CompactOutputLayer
from .errors import CompactConfigError
from .factory import register_output_layer
from .options import get_option
from .define_embedding import DeFINEEmbedding
from .standard_embedding import StandardEmbedding


@register_output_layer("softmax")
class SoftmaxOutput(CompactOutputLayer):
    """logits ``= hidden @ weight.T (+ bias)`` with ``weight[V, H]``.

    Args:
        vocab_size: V.  input_dim: H.  bias: learn a per-word bias.
        tied_input: a ``standard`` input embedding whose ``[V, H]`` table is shared, or a
            ``define`` input whose ``[V, n]`` map table is shared (then ``H`` must be ``n``).
    """

    def __init__(self, vocab_size: int, input_dim: int, bias: bool = False, tied_input=None):
        super().__init__(vocab_size, input_dim, bias)
        if isinstance(tied_input, DeFINEEmbedding):
            # the map table is stored N(0, 1/n), an ordinary output matrix; DeFINE scales it by
            # sqrt(n) on the input side only (see DeFINEEmbedding)
            self.weight = self._define_table(tied_input)
        elif tied_input is not None:
            self.check_tie_type(tied_input, StandardEmbedding,
                                "use matching types (standard or define/softmax, adaptive/adaptive, slim/slim, "
                                "hashnet/hashnet) or drop the flag")
            self.check_tie_shape(tied_input)
            self.weight = tied_input.weight
        else:
            self.weight = nn.Parameter(torch.empty(vocab_size, input_dim))
            nn.init.normal_(self.weight, mean=0.0, std=input_dim ** -0.5)

    def _define_table(self, emb: DeFINEEmbedding) -> nn.Parameter:
        table = emb.map_layer.weight  # [V, n]
        if table.size(1) != self.input_dim:
            raise CompactConfigError(
                "--tie-input-output",
                f"a softmax tied to --input-embedding define shares its V x {table.size(1)} map table "
                f"(--define-map-dim), but the output layer's input dim is {self.input_dim}",
                f"set --decoder-output-dim {table.size(1)} (awd_lstm_lm, compact_lstm_lm and "
                "compact_transformer set it themselves when tied to define) or drop --tie-input-output")
        self.check_tie_vocab(table.size(0))
        return table

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
