"""``compact_lstm_lm``: multi-layer LSTM language model of the slim-embeddings paper.

Zaremba et al. (2014) style regularisation: dropout on the non-recurrent connections only
(embedding output, between layers, before the output layer). Input embedding and output layer
come from the factory (``--input-embedding`` / ``--output-layer``), so every compact method
plugs in. The embedding dimension defaults to the hidden size; with ``--tie-input-output`` and
a different embedding size, the top hidden state is projected to the embedding size first.
"""
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq.models import FairseqIncrementalDecoder, FairseqLanguageModel, register_model
from fairseq.models import register_model_architecture
from omegaconf import II
from torch import nn

from .compact_embedding_config import CompactEmbeddingConfig, apply_preset
from .compact_embeddings import build_decoder_embeddings, tied_output_dim
from .compact_output_decoder import CompactOutputDecoderMixin
from .config_checks import check_dropouts


@dataclass
class CompactLSTMLMConfig(CompactEmbeddingConfig):
    decoder_embed_dim: Optional[int] = field(
        default=None, metadata={"help": "embedding dimension (default: --decoder-hidden-size)"}
    )
    decoder_hidden_size: int = field(default=650, metadata={"help": "LSTM hidden size"})
    decoder_layers: int = field(default=2, metadata={"help": "number of LSTM layers"})
    dropout: float = field(default=0.5, metadata={"help": "dropout on non-recurrent connections"})
    decoder_dropout_in: Optional[float] = field(
        default=None, metadata={"help": "dropout on the embedding output, between the input embedding "
                                       "and the first LSTM layer (the slim paper's 'Dropout' column; "
                                       "default: --dropout)"})
    max_target_positions: Optional[int] = II("task.tokens_per_sample")


class CompactLSTMDecoder(CompactOutputDecoderMixin, FairseqIncrementalDecoder):
    """tokens ``[B, T]`` -> hidden states ``[B, T, H_out]`` (see CompactOutputDecoderMixin)."""

    def __init__(self, cfg: CompactLSTMLMConfig, dictionary):
        super().__init__(dictionary)
        check_dropouts(cfg, ["dropout", "decoder_dropout_in"])
        hidden = cfg.decoder_hidden_size
        embed_dim = cfg.decoder_embed_dim or hidden
        out_dim = tied_output_dim(cfg, embed_dim, hidden)
        self.embed_tokens, self.compact_output = build_decoder_embeddings(
            cfg, dictionary, embed_dim, out_dim
        )
        self.dropout = nn.Dropout(cfg.dropout)
        dropout_in = cfg.dropout if cfg.decoder_dropout_in is None else cfg.decoder_dropout_in
        self.dropout_in = nn.Dropout(dropout_in)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=cfg.decoder_layers,
                            dropout=cfg.dropout if cfg.decoder_layers > 1 else 0.0, batch_first=True)
        for name, p in self.lstm.named_parameters():  # Zaremba et al.: U(-0.1, 0.1)
            nn.init.uniform_(p, -0.1, 0.1)
        self.project_out = nn.Linear(hidden, out_dim, bias=False) if out_dim != hidden else None
        self.max_target_positions = cfg.max_target_positions

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None,
                features_only: bool = False, **kwargs):
        state = None
        if incremental_state is not None:
            state = self.get_incremental_state(incremental_state, "lstm_state")
            if state is not None:  # only the newest token is fed, the rest is in the state
                prev_output_tokens = prev_output_tokens[:, -1:]
                state = (state["h"], state["c"])
        x = self.dropout_in(self.embed_tokens(prev_output_tokens))
        x, (h, c) = self.lstm(x, state)
        if incremental_state is not None:
            self.set_incremental_state(incremental_state, "lstm_state", {"h": h, "c": c})
        x = self.dropout(x)
        if self.project_out is not None:
            x = self.project_out(x)
        return self.keep_unscaled_last(x, {"attn": None})

    def reorder_incremental_state(self, incremental_state, new_order):
        state = self.get_incremental_state(incremental_state, "lstm_state")
        if state is not None:
            state = {k: v.index_select(1, new_order) for k, v in state.items()}
            self.set_incremental_state(incremental_state, "lstm_state", state)

    def max_positions(self):
        return self.max_target_positions or int(1e6)


@register_model("compact_lstm_lm", dataclass=CompactLSTMLMConfig)
class CompactLSTMLanguageModel(FairseqLanguageModel):
    @classmethod
    def build_model(cls, cfg, task):
        return cls(CompactLSTMDecoder(cfg, task.target_dictionary))


@register_model_architecture("compact_lstm_lm", "compact_lstm_lm_ptb_300")
def compact_lstm_lm_ptb_300(cfg):
    """Slim-embeddings PTB table, small model: 2 x 300 LSTM, slim input K=10 (M=10,000 = 10% of
    a 10k x 300 table; the paper sweeps M = 20K/10K/6.25K/5K/1K with --slim-pool)."""
    apply_preset(cfg, decoder_hidden_size=300, decoder_layers=2, dropout=0.5,
              input_embedding="slim", slim_subvectors=10, slim_pool=10000)


@register_model_architecture("compact_lstm_lm", "compact_lstm_lm_ptb_650")
def compact_lstm_lm_ptb_650(cfg):
    """Slim-embeddings PTB table, medium model (Zaremba et al. 2014 medium: 2 x 650, dropout 0.5,
    20M parameters with standard embeddings), slim input K=10, M=10,000."""
    apply_preset(cfg, decoder_hidden_size=650, decoder_layers=2, dropout=0.5,
              input_embedding="slim", slim_subvectors=10, slim_pool=10000)


@register_model_architecture("compact_lstm_lm", "compact_lstm_lm_gbw_2048")
def compact_lstm_lm_gbw_2048(cfg):
    """Slim-embeddings One Billion Word model: 2 x 2048 LSTM, slim input and slim output with
    K=8 sub-vectors (set the pools with --slim-pool / --output-slim-pool, e.g. V*K/32 and
    V*K/8 for the paper's 1/32 input and 1/8 output compression), NCE or importance sampling."""
    apply_preset(cfg, decoder_hidden_size=2048, decoder_layers=2, dropout=0.1,
              input_embedding="slim", slim_subvectors=8, output_layer="slim", output_slim_subvectors=8)
