"""fairseq's TransformerDecoder with a factory-built input embedding and output layer.

The attention/FFN stack, positions, incremental decoding and layer options are fairseq's own;
only the two ends are ours. fairseq's own embedding switches (``--adaptive-input``,
``--adaptive-softmax-cutoff``, ``--share-decoder-input-output-embed``, ...) are refused with
the flag to use instead, so the two systems never half-apply.
"""
from fairseq.models.transformer import TransformerDecoder

from ..modules import CompactConfigError
from .compact_embeddings import match_model_scale
from .compact_output_decoder import CompactOutputDecoderMixin

# fairseq flag -> what to use instead
_FAIRSEQ_EMBEDDING_FLAGS = {
    "adaptive_input": "--input-embedding adaptive --adaptive-cutoffs ...",
    "adaptive_softmax_cutoff": "--output-layer adaptive --adaptive-cutoffs ...",
    "tie_adaptive_weights": "--tie-input-output",
    "tie_adaptive_proj": "--tie-input-output",
    "share_decoder_input_output_embed": "--tie-input-output",
    "share_all_embeddings": "--share-all-embeddings of compact_transformer (same name, our version)",
    "character_embeddings": "fairseq's transformer_lm --character-embeddings (not combinable with compact embeddings)",
}


def switched_on(cfg, names):
    """The options among ``names`` that ``cfg`` sets (not None, False, 0 or empty)."""
    return [name for name in names if getattr(cfg, name, None) not in (None, False, 0, "")]


def refuse_fairseq_embedding_flags(cfg, allowed=()) -> None:
    """Raise a CompactConfigError if a fairseq-native embedding option is switched on."""
    for name in switched_on(cfg, _FAIRSEQ_EMBEDDING_FLAGS):
        if name not in allowed:
            instead = _FAIRSEQ_EMBEDDING_FLAGS[name]
            flag = "--" + name.replace("_", "-")
            raise CompactConfigError(flag, "is fairseq's own embedding option and is ignored by compact models",
                                     f"use {instead}")


class CompactTransformerDecoder(CompactOutputDecoderMixin, TransformerDecoder):
    """TransformerDecoder returning hidden states ``[B, T, decoder_output_dim]``.

    Args:
        args: fairseq transformer args / config (``decoder_output_dim`` already derived).
        dictionary: target dictionary.
        embed_tokens: a CompactInputEmbedding (``[B, T] -> [B, T, decoder_input_dim]``).
        compact_output: a CompactOutputLayer over ``decoder_output_dim``.
    """

    def __init__(self, args, dictionary, embed_tokens, compact_output, no_encoder_attn=False):
        # passing output_projection keeps fairseq from building its own V x d matrix
        super().__init__(args, dictionary, embed_tokens, no_encoder_attn=no_encoder_attn,
                         output_projection=compact_output)
        match_model_scale(embed_tokens, self.embed_scale)

    @property
    def compact_output(self):
        return self.output_projection

    def forward(self, *args, **kwargs):
        return self.keep_unscaled_last(*super().forward(*args, **kwargs))
