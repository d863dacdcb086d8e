"""``compact_transformer_xl``: Transformer-XL (Dai et al. 2019) with any compact input embedding /
output layer, the WikiText-103 context model of DeFINE (Mehta et al. 2020).

The layers (relative-position attention with the global biases ``u``, ``v``, segment memory) are
plain PyTorch in :mod:`fairseq_compactemb.modules.relative_attention`; this file is the fairseq
glue: config, factory-built ends (``--input-embedding`` / ``--output-layer``), the memory kept
between forward calls, and the presets.

Dimensions: ``--decoder-embed-dim`` is ``d_model``; the embedding size ``--decoder-input-dim``
defaults to it (projected to ``d_model`` when different); the output-layer input size
``--decoder-output-dim`` defaults to the input dim with ``--tie-input-output`` and to
``d_model`` otherwise (as ``compact_transformer_lm``). Embeddings are scaled by
``sqrt(input dim)`` as in the original (``--no-scale-embedding`` to disable).

Memory across batches (segment-level recurrence) needs batches that continue each other: train
and evaluate with ``--task compact_truncated_bptt_lm``, which passes
``net_input["stream_position"] = (split, k)``. The decoder keeps one detached memory per split
and uses it only for the segment that follows (``k`` = previous ``k`` + 1, same batch size);
segment 0, any gap, or a batch-size change starts from an empty memory. Without the key (e.g.
``--task language_modeling``, whose batches are shuffled blocks) every batch is read without
memory, and ``fairseq-generate`` recomputes the whole prefix at each step (no incremental state).
"""
import logging
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from fairseq.models import FairseqDecoder, FairseqLanguageModel, register_model
from fairseq.models import register_model_architecture
from torch import nn

from ..modules import CompactConfigError
from ..modules.relative_attention import TransformerXLStack
from ..tasks import truncated_bptt_lm  # noqa: F401  (registers the task this model is meant for)
from .compact_embedding_config import CompactEmbeddingConfig, apply_preset
from .compact_embeddings import build_decoder_embeddings, match_model_scale
from .compact_output_decoder import CompactOutputDecoderMixin
from .compact_transformer_lm import derive_lm_dims

logger = logging.getLogger(__name__)


@dataclass
class CompactTransformerXLConfig(CompactEmbeddingConfig):
    decoder_layers: int = field(default=16, metadata={"help": "number of layers (n_layer)"})
    decoder_embed_dim: int = field(default=410, metadata={"help": "model dimension d_model (even)"})
    decoder_attention_heads: int = field(default=10, metadata={"help": "attention heads (n_head)"})
    decoder_head_dim: Optional[int] = field(
        default=None, metadata={"help": "dimension of each head d_head (default: d_model / heads)"})
    decoder_ffn_embed_dim: int = field(default=2100, metadata={"help": "feed-forward inner size (d_inner)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout (embeddings, positions, blocks, output)"})
    attention_dropout: float = field(default=0.0, metadata={"help": "dropout on attention probabilities (dropatt)"})
    mem_len: int = field(default=150, metadata={"help": "positions of memory carried to the next segment "
                                                        "(0: none; can be raised at evaluation)"})
    clamp_len: int = field(default=-1, metadata={"help": "distances above this share one position "
                                                         "encoding (-1: no clamping)"})
    same_length: bool = field(default=False, metadata={"help": "every query attends to exactly mem_len "
                                                               "keys (the original's evaluation option)"})
    decoder_normalize_before: bool = field(
        default=False, metadata={"help": "pre-LayerNorm blocks (+ final LayerNorm) instead of post-LN"})
    untie_relative_biases: bool = field(
        default=False, metadata={"help": "one u, v per layer instead of shared by all layers (untie_r)"})
    decoder_input_dim: Optional[int] = field(
        default=None, metadata={"help": "embedding output size (default: --decoder-embed-dim)"})
    decoder_output_dim: Optional[int] = field(
        default=None, metadata={"help": "output-layer input size (default: input dim if "
                                         "--tie-input-output, else --decoder-embed-dim)"})
    no_scale_embedding: bool = field(default=False, metadata={"help": "do not scale embeddings by sqrt(dim)"})


def check_config(cfg) -> int:
    """Raise CompactConfigError for inconsistent flags; return the head dimension."""
    d, heads = cfg.decoder_embed_dim, cfg.decoder_attention_heads
    if d % 2:
        raise CompactConfigError("--decoder-embed-dim", f"{d} is odd; the sinusoid position "
                                 "encodings need an even d_model", f"use {d + 1} or {d - 1}")
    if heads < 1:
        raise CompactConfigError("--decoder-attention-heads", f"{heads} < 1", "use at least one head")
    head_dim = cfg.decoder_head_dim
    if not head_dim:
        if d % heads:
            raise CompactConfigError("--decoder-attention-heads", f"{heads} heads do not divide "
                                     f"d_model {d}", "pass --decoder-head-dim explicitly or use a divisor")
        head_dim = d // heads
    if cfg.mem_len < 0:
        raise CompactConfigError("--mem-len", f"{cfg.mem_len} < 0", "use 0 (no memory) or a positive length")
    if cfg.clamp_len == 0 or cfg.clamp_len < -1:
        raise CompactConfigError("--clamp-len", f"{cfg.clamp_len} is not a distance",
                                 "use -1 (no clamping) or a positive distance")
    if cfg.same_length and cfg.mem_len == 0:
        raise CompactConfigError("--same-length", "every query would see mem_len = 0 keys",
                                 "drop --same-length or set --mem-len > 0")
    for name in ("dropout", "attention_dropout"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise CompactConfigError("--" + name.replace("_", "-"), f"{getattr(cfg, name)} is not in [0, 1)",
                                     "use a probability below 1")
    return head_dim


class _StreamMemory:
    """The memory of one stream key: after which segment, for which batch size."""

    def __init__(self, segment: int, batch_size: int, memory: List[torch.Tensor]):
        self.segment, self.batch_size, self.memory = segment, batch_size, memory


class CompactTransformerXLDecoder(CompactOutputDecoderMixin, FairseqDecoder):
    """tokens ``[B, T]`` -> hidden states ``[B, T, decoder_output_dim]`` with segment memory.

    Args:
        cfg: a :class:`CompactTransformerXLConfig` with derived dims.
        dictionary: target dictionary.
        embed_tokens: CompactInputEmbedding (``[B, T] -> [B, T, decoder_input_dim]``).
        compact_output: CompactOutputLayer over ``decoder_output_dim``.

    The memory (see the module docstring) lives in ``self.stream_memory`` (a dict: stream key ->
    memory), never in the state dict: checkpoints carry no memory and a resumed or evaluated
    model starts with an empty one. :meth:`reset_memory` clears it.
    """

    uses_stream_memory = True

    def __init__(self, cfg, dictionary, embed_tokens, compact_output):
        super().__init__(dictionary)
        head_dim = check_config(cfg)
        d_model, in_dim, out_dim = cfg.decoder_embed_dim, cfg.decoder_input_dim, cfg.decoder_output_dim
        self.embed_tokens, self.compact_output = embed_tokens, compact_output
        self.embed_scale = 1.0 if cfg.no_scale_embedding else math.sqrt(in_dim)
        match_model_scale(embed_tokens, self.embed_scale)
        # bias-free projections as bare [out, in] matrices (a Linear's None bias would be logged
        # by fairseq's trainer as a "shared parameter")
        self.project_in = nn.Parameter(torch.empty(d_model, in_dim)) if in_dim != d_model else None
        self.project_out = nn.Parameter(torch.empty(out_dim, d_model)) if out_dim != d_model else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = TransformerXLStack(
            cfg.decoder_layers, d_model, cfg.decoder_attention_heads, head_dim, cfg.decoder_ffn_embed_dim,
            dropout=cfg.dropout, attention_dropout=cfg.attention_dropout, mem_len=cfg.mem_len,
            clamp_len=cfg.clamp_len, same_length=cfg.same_length, pre_norm=cfg.decoder_normalize_before,
            untie_biases=cfg.untie_relative_biases)
        for proj in (self.project_in, self.project_out):
            if proj is not None:
                nn.init.normal_(proj, 0.0, 0.02)
        self.mem_len = cfg.mem_len
        self.stream_memory: Dict[str, _StreamMemory] = {}

    # -- memory bookkeeping -------------------------------------------------------------------
    def reset_memory(self, key: Optional[str] = None) -> None:
        """Forget the memory of stream ``key`` (all streams when None)."""
        if key is None:
            self.stream_memory.clear()
        else:
            self.stream_memory.pop(key, None)

    def _recall(self, stream_position, batch_size: int) -> Optional[List[torch.Tensor]]:
        """The memory to read segment ``stream_position = (key, k)`` with, or None."""
        if stream_position is None or self.mem_len == 0:
            return None
        key, k = stream_position
        entry = self.stream_memory.get(key)
        if entry is None or k == 0 or entry.segment + 1 != k or entry.batch_size != batch_size:
            self.reset_memory(key)  # new pass, a gap (resumed mid-epoch) or other streams
            return None
        return entry.memory

    def _remember(self, stream_position, batch_size: int, memory: Optional[List[torch.Tensor]]) -> None:
        if stream_position is not None and memory is not None:
            key, k = stream_position
            self.stream_memory[key] = _StreamMemory(k, batch_size, memory)

    # -- forward ------------------------------------------------------------------------------
    def forward(self, prev_output_tokens, src_lengths=None, stream_position: Optional[Tuple[str, int]] = None,
                features_only: bool = False, **kwargs):
        """
        Args:
            prev_output_tokens: ``[B, T]`` segment (padding only at row ends).
            stream_position: ``(key, k)``: this is segment ``k`` of the streams ``key``
                (given by ``compact_truncated_bptt_lm``); None: no memory in or out.
        Returns:
            ``([B, T, decoder_output_dim], {"attn": None})``.
        """
        bsz = prev_output_tokens.size(0)
        x = self.embed_tokens(prev_output_tokens) * self.embed_scale
        if self.project_in is not None:
            x = F.linear(x, self.project_in)
        x = self.dropout(x)
        memory = self._recall(stream_position, bsz)
        x, new_memory = self.layers(x, memory)
        self._remember(stream_position, bsz, new_memory)
        x = self.dropout(x)
        if self.project_out is not None:
            x = F.linear(x, self.project_out)
        return self.keep_unscaled_last(x, {"attn": None})

    def max_positions(self):
        return int(1e6)  # relative positions: no length limit


@register_model("compact_transformer_xl", dataclass=CompactTransformerXLConfig)
class CompactTransformerXLModel(FairseqLanguageModel):
    """See the module docstring. ``uses_stream_memory`` tells ``compact_truncated_bptt_lm`` to
    pass ``stream_position``."""

    uses_stream_memory = True

    @classmethod
    def build_model(cls, cfg, task):
        check_config(cfg)  # before building (large) embeddings
        derive_lm_dims(cfg)
        embed, output = build_decoder_embeddings(
            cfg, task.target_dictionary, cfg.decoder_input_dim, cfg.decoder_output_dim)
        model = cls(CompactTransformerXLDecoder(cfg, task.target_dictionary, embed, output))
        if cfg.mem_len > 0 and not isinstance(task, truncated_bptt_lm.CompactTruncatedBPTTLMTask):
            logger.warning(f"compact_transformer_xl: task {type(task).__name__} does not "
                           "give consecutive segments, so no memory is carried between batches; use "
                           "--task compact_truncated_bptt_lm for segment-level recurrence")
        return model

    def reset_memory(self) -> None:
        self.decoder.reset_memory()


@register_model_architecture("compact_transformer_xl", "compact_transformer_xl_wt103")
def compact_transformer_xl_wt103(cfg):
    """Transformer-XL base on WikiText-103 (Dai et al. 2019, ``run_wt103_base.sh``): 16 layers,
    d_model 410, 10 heads of 41, d_inner 2100, dropout 0.1, dropatt 0.0, mem_len 150, adaptive
    input and tied adaptive softmax with cutoffs 20000,40000,200000 and div_val 1 (factor 1), a
    per-word output bias, u/v shared by the layers. Train with ``--task compact_truncated_bptt_lm
    --tokens-per-sample 150 --batch-size 60`` (tgt_len 150, 60 streams); the paper evaluates with
    ``--tokens-per-sample 64 --model-overrides "{'mem_len': 640, 'clamp_len': 400, 'same_length': True}"``.

    151.78M parameters at V=267,735 (paper: 151M): our adaptive input has a d x d projection
    per band even at factor 1, where the original has none (+0.67M).
    """
    apply_preset(
        cfg,
        decoder_layers=16, decoder_embed_dim=410, decoder_attention_heads=10, decoder_head_dim=41,
        decoder_ffn_embed_dim=2100, dropout=0.1, attention_dropout=0.0, mem_len=150, clamp_len=-1,
        input_embedding="adaptive", output_layer="adaptive", tie_input_output=True, output_bias=True,
        adaptive_cutoffs="20000,40000,200000", adaptive_factor=1.0,
    )


@register_model_architecture("compact_transformer_xl", "compact_transformer_xl_wt103_define")
def compact_transformer_xl_wt103_define(cfg):
    """Transformer-XL base + DeFINE on WikiText-103 (Mehta et al. 2020: 73M against 139M): the
    base's body, a DeFINE input (n=112, k=1024, N=3, the authors' unit layout) and input and
    output learned in the low n-dimensional space: a softmax tied to the V x n map table, with a
    per-word bias (the model projects d_model -> n before it). 72,416,399 parameters at
    V=267,735 (-0.8%). Our copy of the paper gives the count, not n for this model: at n=128
    (the n of our PTB and WMT presets) this layout has 76.73M (+5.1%), almost all of it the V x n table
    (34.27M), so n is our choice to meet the reported size, as k is for the AWD-LSTM preset."""
    apply_preset(cfg, input_embedding="define", define_map_dim=112, define_expand_dim=1024, define_levels=3,
                 define_max_groups=4, define_widths="authors", define_reduce="authors", define_level_norm="shared",
                 define_init="xavier", define_dropout=0.1, define_map_dropout=0.1, output_layer="softmax",
                 tie_input_output=True)
    compact_transformer_xl_wt103(cfg)
