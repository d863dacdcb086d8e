"""``compact_transformer_lm``: decoder-only transformer LM (Baevski & Auli 2019) with any
compact input embedding / output layer.

Built on fairseq's ``transformer_lm`` config and decoder; the embedding ends come from the
factory. Dimensions default from the embedding choice: ``--decoder-input-dim`` defaults to
``--decoder-embed-dim``, ``--decoder-output-dim`` to the input dim when ``--tie-input-output``
(so tied weights always fit) and to ``--decoder-embed-dim`` otherwise.
"""
from dataclasses import dataclass, field
from typing import Optional

from fairseq.models import FairseqLanguageModel, register_model, register_model_architecture
from fairseq.models.transformer_lm import DEFAULT_MAX_TARGET_POSITIONS, TransformerLanguageModelConfig

from .compact_embedding_config import CompactEmbeddingConfig, apply_preset
from .compact_embeddings import build_decoder_embeddings, tied_output_dim
from .compact_transformer_decoder import CompactTransformerDecoder, refuse_fairseq_embedding_flags
from .config_checks import check_dropouts, check_heads


@dataclass
class CompactTransformerLMConfig(TransformerLanguageModelConfig, CompactEmbeddingConfig):
    decoder_input_dim: Optional[int] = field(
        default=None, metadata={"help": "embedding output size (default: --decoder-embed-dim)"}
    )
    decoder_output_dim: Optional[int] = field(
        default=None, metadata={"help": "output-layer input size (default: input dim if "
                                         "--tie-input-output, else --decoder-embed-dim)"}
    )
    keep_decoder_normalize_before: bool = field(
        default=False, metadata={"help": "take --decoder-normalize-before as given (stock fairseq builds an "
                                         "--arch transformer_lm checkpoint post-norm from its config; compress "
                                         "sets this when it reads one); default: pre-norm always, as fairseq's "
                                         "transformer_lm presets"}
    )


def derive_lm_dims(cfg) -> None:
    """Fill the dimensions the user left unset (see module docstring)."""
    cfg.decoder_input_dim = cfg.decoder_input_dim or cfg.decoder_embed_dim
    if not cfg.decoder_output_dim:  # tied: the input dim, or DeFINE's map size n (tied to its map table)
        cfg.decoder_output_dim = tied_output_dim(cfg, cfg.decoder_input_dim, cfg.decoder_embed_dim)


@register_model("compact_transformer_lm", dataclass=CompactTransformerLMConfig)
class CompactTransformerLanguageModel(FairseqLanguageModel):
    @classmethod
    def build_model(cls, cfg, task):
        refuse_fairseq_embedding_flags(cfg)
        check_dropouts(cfg, ["dropout", "attention_dropout", "activation_dropout"])
        check_heads(cfg, "decoder_embed_dim", "decoder_attention_heads")
        if cfg.decoder_layers_to_keep:
            cfg.decoder_layers = len(cfg.decoder_layers_to_keep.split(","))
        if getattr(cfg, "max_target_positions", None) is None:
            cfg.max_target_positions = getattr(cfg, "tokens_per_sample", DEFAULT_MAX_TARGET_POSITIONS)
        if not getattr(cfg, "keep_decoder_normalize_before", False):  # as fairseq's transformer_lm presets: unstable without
            cfg.decoder_normalize_before = True
        derive_lm_dims(cfg)
        embed, output = build_decoder_embeddings(
            cfg, task.target_dictionary, cfg.decoder_input_dim, cfg.decoder_output_dim
        )
        return cls(CompactTransformerDecoder(cfg, task.target_dictionary, embed, output, no_encoder_attn=True))


@register_model_architecture("compact_transformer_lm", "compact_transformer_lm_wiki103")
def compact_transformer_lm_wiki103(cfg):
    """Baevski & Auli (2019) WikiText-103 ADP-T: 16 layers, d=1024, ffn 4096, 8 heads, adaptive
    input + tied adaptive softmax, cutoffs 20000,60000, factor 4 (paper: 246.9M parameters)."""
    apply_preset(
        cfg,
        decoder_layers=16, decoder_embed_dim=1024, decoder_ffn_embed_dim=4096, decoder_attention_heads=8,
        dropout=0.3, attention_dropout=0.1, activation_dropout=0.1, no_decoder_final_norm=True,
        input_embedding="adaptive", output_layer="adaptive", tie_input_output=True,
        adaptive_cutoffs="20000,60000", adaptive_factor=4.0, adaptive_softmax_dropout=0.2,
    )


@register_model_architecture("compact_transformer_lm", "compact_transformer_lm_gbw")
def compact_transformer_lm_gbw(cfg):
    """Baevski & Auli (2019) One Billion Word large ADP: 12 layers (fairseq's transformer_lm_gbw
    preset), d=1024... see examples/one_billion_word for the exact reported configurations."""
    apply_preset(
        cfg,
        decoder_layers=12, decoder_embed_dim=1024, decoder_ffn_embed_dim=4096, decoder_attention_heads=16,
        dropout=0.1, attention_dropout=0.1, no_decoder_final_norm=True,
        input_embedding="adaptive", output_layer="adaptive", tie_input_output=True,
        adaptive_cutoffs="60000,160000", adaptive_factor=4.0,
    )
