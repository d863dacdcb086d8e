"""Glue between fairseq models and the embedding/output factory.

Models call :func:`build_decoder_embeddings` (or :func:`build_encoder_embedding`) and never
name an embedding class, so a new method needs no model edit.
"""
import logging
from typing import Optional, Tuple


from ..modules.options import get_option
from ..modules import (
    CompactInputEmbedding,
    CompactOutputLayer,
    build_input_embedding,
    build_output_layer,
    describe_parameters,
)

logger = logging.getLogger(__name__)


def build_encoder_embedding(cfg, dictionary, embed_dim: int, side: str = "encoder") -> CompactInputEmbedding:
    """Input embedding for a source dictionary (logs its parameter count)."""
    emb = build_input_embedding(cfg, len(dictionary), embed_dim, dictionary.pad())
    logger.info(f"[{side}] {describe_parameters(emb)}")
    return emb


def build_decoder_embeddings(
    cfg, dictionary, embed_dim: int, output_dim: int,
    input_embedding: Optional[CompactInputEmbedding] = None, side: str = "",
) -> Tuple[CompactInputEmbedding, CompactOutputLayer]:
    """The decoder's input embedding (``[*] -> [*, embed_dim]``) and output layer
    (``[*, output_dim] -> V`` scores), tied when ``--tie-input-output``.

    ``input_embedding`` lets a translation model pass an already-built (shared) embedding.
    """
    if input_embedding is None:
        input_embedding = build_input_embedding(cfg, len(dictionary), embed_dim, dictionary.pad())
    output = build_output_layer(cfg, len(dictionary), output_dim, input_embedding)
    prefix = f"[{side}] " if side else ""
    logger.info(prefix + describe_parameters(input_embedding))
    logger.info(prefix + describe_parameters(output, "output layer"))
    return input_embedding, output


def tied_output_dim(cfg, embed_dim: int, hidden_dim: int) -> int:
    """Output-layer input size: the hidden size, except when ``--tie-input-output`` needs the
    embedding size (the decoder then projects hidden -> embed_dim before the output layer), or
    the DeFINE map size ``n`` for a softmax tied to a ``define`` input (the DeFINE paper's
    low-dimensional output layer, scored against the ``V x n`` map table)."""
    if not getattr(cfg, "tie_input_output", False):
        return hidden_dim
    if get_option(cfg, "input_embedding") == "define" and get_option(cfg, "output_layer") == "softmax":
        return get_option(cfg, "define_map_dim")
    return embed_dim


def match_model_scale(embed, model_scale: float) -> None:
    """Tell a compact input embedding that the model multiplies its output by ``model_scale``
    (``CompactInputEmbedding.match_model_scale``; fairseq's own embeddings need nothing)."""
    if hasattr(embed, "match_model_scale"):
        embed.match_model_scale(model_scale)
