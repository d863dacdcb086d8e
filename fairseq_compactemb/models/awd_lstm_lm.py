"""``awd_lstm_lm``: AWD-LSTM (Merity et al. 2018), the context model DeFINE used on PTB.

Three LSTM layers with DropConnect on the hidden-to-hidden matrices, locked (variational)
dropout on the input / between layers / on the output, embedding (word-type) dropout and
AR/TAR regularisation (see :mod:`fairseq_compactemb.modules.awd_regularization`). Works with
any ``--input-embedding`` / ``--output-layer`` / ``--criterion``. The last layer's size is the
output-layer input size: the embedding size with ``--tie-input-output`` (as AWD-LSTM ties),
else ``--decoder-output-dim`` or the hidden size.

Not reproduced: NT-ASGD (use fairseq's ``--optimizer sgd --lr 30 --clip-norm 0.25``), variable
BPTT lengths and hidden state carried across batches (fairseq batches are independent blocks).
"""
from dataclasses import dataclass, field
from typing import Optional

from fairseq.models import FairseqIncrementalDecoder, FairseqLanguageModel, register_model
from fairseq.models import register_model_architecture
from omegaconf import II
from torch import nn

from ..modules import CompactConfigError
from ..modules.awd_regularization import LockedDropout, WeightDropLSTM, add_penalty_gradient, word_dropout_mask
from .compact_embedding_config import CompactEmbeddingConfig, apply_preset
from .compact_embeddings import build_decoder_embeddings, tied_output_dim
from .compact_output_decoder import CompactOutputDecoderMixin


@dataclass
class AWDLSTMLMConfig(CompactEmbeddingConfig):
    decoder_embed_dim: int = field(default=400, metadata={"help": "embedding dimension"})
    decoder_hidden_size: int = field(default=1150, metadata={"help": "hidden size of the inner LSTM layers"})
    decoder_output_dim: Optional[int] = field(
        default=None, metadata={"help": "size of the last LSTM layer (default: embed dim if "
                                         "--tie-input-output, else --decoder-hidden-size)"})
    decoder_layers: int = field(default=3, metadata={"help": "number of LSTM layers"})
    dropout: float = field(default=0.4, metadata={"help": "locked dropout on the last layer output"})
    dropouth: float = field(default=0.3, metadata={"help": "locked dropout between LSTM layers"})
    dropouti: float = field(default=0.65, metadata={"help": "locked dropout on the embeddings"})
    dropoute: float = field(default=0.1, metadata={"help": "embedding dropout (whole word types)"})
    wdrop: float = field(default=0.5, metadata={"help": "DropConnect on hidden-to-hidden weights"})
    ar_alpha: float = field(default=2.0, metadata={"help": "activation regularisation (AR) weight"})
    tar_beta: float = field(default=1.0, metadata={"help": "temporal activation regularisation (TAR) weight"})
    max_target_positions: Optional[int] = II("task.tokens_per_sample")


class AWDLSTMDecoder(CompactOutputDecoderMixin, FairseqIncrementalDecoder):
    """tokens ``[B, T]`` -> hidden states ``[B, T, output_dim]`` (see CompactOutputDecoderMixin)."""

    def __init__(self, cfg: AWDLSTMLMConfig, dictionary):
        super().__init__(dictionary)
        for name in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop"):
            if not 0.0 <= getattr(cfg, name) < 1.0:
                raise CompactConfigError("--" + name, f"{getattr(cfg, name)} is not in [0, 1)", "use a probability below 1")
        out_dim = cfg.decoder_output_dim or tied_output_dim(cfg, cfg.decoder_embed_dim, cfg.decoder_hidden_size)
        self.embed_tokens, self.compact_output = build_decoder_embeddings(
            cfg, dictionary, cfg.decoder_embed_dim, out_dim)
        sizes = [cfg.decoder_embed_dim] + [cfg.decoder_hidden_size] * (cfg.decoder_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(WeightDropLSTM(sizes[i], sizes[i + 1], cfg.wdrop) for i in range(cfg.decoder_layers))
        self.drop_input, self.drop_hidden, self.drop_output = (
            LockedDropout(cfg.dropouti), LockedDropout(cfg.dropouth), LockedDropout(cfg.dropout))
        self.dropoute, self.ar_alpha, self.tar_beta = cfg.dropoute, cfg.ar_alpha, cfg.tar_beta
        self.max_target_positions = cfg.max_target_positions

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None,
                features_only: bool = False, **kwargs):
        states = None
        if incremental_state is not None:
            states = self.get_incremental_state(incremental_state, "lstm_states")
            if states is not None:
                prev_output_tokens = prev_output_tokens[:, -1:]
        x = self.embed_tokens(prev_output_tokens)
        if self.training and self.dropoute > 0:
            x = x * word_dropout_mask(prev_output_tokens, self.embed_tokens.num_embeddings, self.dropoute, x.dtype)
        x = self.drop_input(x)
        new_states = []
        for i, layer in enumerate(self.layers):
            x, state = layer(x, None if states is None else states[i])
            new_states.append(state)
            if i < len(self.layers) - 1:
                x = self.drop_hidden(x)
        raw = x
        x = self.drop_output(x)
        if incremental_state is not None:
            self.set_incremental_state(incremental_state, "lstm_states", new_states)
        if self.training and (self.ar_alpha or self.tar_beta):
            penalty = self.ar_alpha * x.pow(2).mean()
            if raw.size(1) > 1:
                penalty = penalty + self.tar_beta * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
            ntokens = prev_output_tokens.ne(self.dictionary.pad()).sum().item()
            x = add_penalty_gradient(x, penalty, float(ntokens))
        return self.keep_unscaled_last(x, {"attn": None})

    def reorder_incremental_state(self, incremental_state, new_order):
        states = self.get_incremental_state(incremental_state, "lstm_states")
        if states is not None:
            states = [(h.index_select(1, new_order), c.index_select(1, new_order)) for h, c in states]
            self.set_incremental_state(incremental_state, "lstm_states", states)

    def max_positions(self):
        return self.max_target_positions or int(1e6)


@register_model("awd_lstm_lm", dataclass=AWDLSTMLMConfig)
class AWDLSTMLanguageModel(FairseqLanguageModel):
    @classmethod
    def build_model(cls, cfg, task):
        return cls(AWDLSTMDecoder(cfg, task.target_dictionary))


@register_model_architecture("awd_lstm_lm", "awd_lstm_lm_ptb")
def awd_lstm_lm_ptb(cfg):
    """Merity et al. (2018) PTB: 400 embed, 1150 hidden, 3 layers, tied (24M parameters), the
    dropouts of their PTB command (dropouti 0.4, dropouth 0.25), output bias, last layer of the
    embedding size (--decoder-embed-dim, 400) whatever the output layer. Input and output
    are tied when both are the standard table (AWD-LSTM's setting); with a compact input or
    output the tie is left to --tie-input-output."""
    standard_ends = getattr(cfg, "input_embedding", None) in (None, "standard") and \
        getattr(cfg, "output_layer", None) in (None, "softmax")
    apply_preset(cfg, decoder_embed_dim=400, decoder_hidden_size=1150, decoder_layers=3,
                 dropout=0.4, dropouth=0.25, dropouti=0.4, dropoute=0.1, wdrop=0.5,
                 ar_alpha=2.0, tar_beta=1.0, output_bias=True)
    if standard_ends:
        apply_preset(cfg, tie_input_output=True)
    if getattr(cfg, "decoder_output_dim", None) is None:  # the embedding size (the map size n
        # for a softmax tied to a define input: the DeFINE paper's setting)
        cfg.decoder_output_dim = tied_output_dim(cfg, cfg.decoder_embed_dim, cfg.decoder_embed_dim)


@register_model_architecture("awd_lstm_lm", "awd_lstm_lm_ptb_define")
def awd_lstm_lm_ptb_define(cfg):
    """AWD-LSTM + DeFINE on PTB (Mehta et al. 2020, AWD-LSTM + DeFINE 20M): the DeFINE unit as the
    authors' code builds it (``--define-widths authors --define-reduce authors --define-level-norm
    shared --define-init xavier``, dropout 0.1 in the unit and on the map output), n=128, N=7
    levels, up to 4 groups, k=256, and the softmax tied to the V x n map table (the last LSTM
    layer outputs n). 20,241,408 parameters at V=10,000 (+1.2%); the paper does not state k for
    PTB here: with k=1024 this layout has 21.8M; k=256 is the authors' code's default width multiplier
    (k = 2n), and meets the reported size. No input projection (``--define-input-proj 200``, as their
    DeLighT unit: 20,431,796, +2.2%)."""
    apply_preset(cfg, input_embedding="define", define_map_dim=128, define_expand_dim=256, define_levels=7,
                 define_max_groups=4, define_widths="authors", define_reduce="authors", define_level_norm="shared",
                 define_init="xavier", define_dropout=0.1, define_map_dropout=0.1, output_layer="softmax",
                 tie_input_output=True)
    awd_lstm_lm_ptb(cfg)
