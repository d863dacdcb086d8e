"""``compact_transformer``: encoder-decoder transformer for translation with compact
embeddings on the encoder input, the decoder input and the decoder output.

fairseq's transformer (argparse-configured, so every ``transformer`` flag works) with the three
embedding ends built by the factory. ``--share-all-embeddings`` means what it means in fairseq:
one input embedding shared by encoder and decoder (needs a joined dictionary,
``fairseq-preprocess --joined-dictionary``) *and* the decoder output tied to it
(``--tie-input-output`` is implied). ``--share-all-embeddings --no-tie-input-output`` shares
only the input embeddings, e.g. for an output layer that cannot be tied to the input (a slim
output with a DeFINE input). Checkpoints written before the tie was implied saved
``tie_input_output=False`` and load untied, as they were trained.

A shared DeFINE input is one whole unit by default (``--define-share unit``); the authors'
translation model shares only its ``V x n`` map table and gives encoder and decoder an expand
and reduce unit each (``--define-share map``, :meth:`DeFINEEmbedding.twin_sharing_map`; the
decoder output stays tied to the shared map table).
"""
import logging

from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import TransformerEncoder, TransformerModel
from fairseq.models.transformer.transformer_legacy import base_architecture, transformer_vaswani_wmt_en_de_big
from torch import nn

from ..modules import CompactConfigError
from ..modules.options import get_option
from .compact_embedding_config import add_embedding_args, apply_preset, fill_embedding_defaults
from .compact_embeddings import tied_output_dim
from .compact_embeddings import build_decoder_embeddings, build_encoder_embedding, match_model_scale
from .compact_transformer_decoder import CompactTransformerDecoder, refuse_fairseq_embedding_flags
from .config_checks import check_dropouts, check_heads

DEFAULT_MAX_POSITIONS = 1024
DEFINE_SHARE = ("unit", "map")  # --define-share: what --share-all-embeddings shares of a DeFINE input
logger = logging.getLogger(__name__)


@register_model("compact_transformer")
class CompactTransformerModel(TransformerModel):
    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        add_embedding_args(parser)
        parser.add_argument(
            "--define-share", choices=DEFINE_SHARE, default=None,
            help="with --share-all-embeddings and --input-embedding define: what encoder and decoder share: "
                 "'unit' (the whole DeFINE embedding; the default) or 'map' (only its V x n map table, each "
                 "side with its own expand and reduce layers, as the authors' translation model)")

    @classmethod
    def build_model(cls, args, task):
        compact_transformer(args)  # fill defaults for checkpoints of older versions too
        refuse_fairseq_embedding_flags(args, allowed=("share_all_embeddings",))
        check_dropouts(args, ["dropout", "attention_dropout", "activation_dropout"])
        check_heads(args, "encoder_embed_dim", "encoder_attention_heads")
        check_heads(args, "decoder_embed_dim", "decoder_attention_heads")
        for layers in ("encoder_layers", "decoder_layers"):
            keep = getattr(args, layers + "_to_keep", None)
            if keep:
                setattr(args, layers, len(keep.split(",")))
        args.max_source_positions = getattr(args, "max_source_positions", None) or DEFAULT_MAX_POSITIONS
        args.max_target_positions = getattr(args, "max_target_positions", None) or DEFAULT_MAX_POSITIONS

        src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
        encoder_embed = build_encoder_embedding(args, src_dict, args.encoder_embed_dim)
        decoder_embed = None
        if args.share_all_embeddings:
            if src_dict != tgt_dict:
                raise CompactConfigError("--share-all-embeddings", "source and target dictionaries differ",
                                         "binarise with fairseq-preprocess --joined-dictionary")
            if args.encoder_embed_dim != args.decoder_input_dim:
                raise CompactConfigError(
                    "--share-all-embeddings",
                    f"--encoder-embed-dim {args.encoder_embed_dim} != decoder input dim {args.decoder_input_dim}",
                    "set --decoder-embed-dim (and --decoder-input-dim) equal to --encoder-embed-dim")
            decoder_embed = encoder_embed
        if define_share(args) == "map":
            decoder_embed = encoder_embed.twin_sharing_map()
            logger.info("--define-share map: encoder and decoder share the DeFINE map table, each side has "
                        "its own expand and reduce layers")
        try:
            embed, output = build_decoder_embeddings(args, tgt_dict, args.decoder_input_dim,
                                                     args.decoder_output_dim, input_embedding=decoder_embed,
                                                     side="decoder")
        except CompactConfigError as e:
            if e.flag != "--tie-input-output" or not getattr(args, "share_all_ties_output", False):
                raise
            raise CompactConfigError(
                "--share-all-embeddings", "it also ties the decoder output to the shared input embedding "
                f"(as fairseq's transformer does), but {e.problem}",
                "add --no-tie-input-output to share only the input embeddings, or " + e.fix) from e
        if getattr(args, "share_all_ties_output", False):
            logger.info("--share-all-embeddings: encoder and decoder input embeddings shared, decoder output "
                        "tied to them (as fairseq's transformer; --no-tie-input-output shares the inputs only)")
        if embed is not encoder_embed:  # two input embeddings (own tables, or --define-share map)
            both = nn.ModuleList([encoder_embed, embed]).parameters()  # a shared map table counted once
            logger.info(f"input embedding params, encoder and decoder together: {sum(p.numel() for p in both):,}")
        encoder = TransformerEncoder(args, src_dict, encoder_embed)
        match_model_scale(encoder_embed, encoder.embed_scale)
        decoder = CompactTransformerDecoder(args, tgt_dict, embed, output, no_encoder_attn=False)
        return cls(args, encoder, decoder)


def define_share(args) -> str:
    """``--define-share`` (``unit`` when unset: checkpoints from before the flag shared the whole
    unit), refused where it has nothing to choose."""
    share = getattr(args, "define_share", None) or "unit"
    if share == "unit":
        return share
    if share not in DEFINE_SHARE:  # a config built without argparse's choices check
        raise CompactConfigError("--define-share", f"unknown choice {share!r}", f"choose one of {', '.join(DEFINE_SHARE)}")
    if not getattr(args, "share_all_embeddings", False):
        raise CompactConfigError("--define-share", f"'{share}' says what --share-all-embeddings shares, which is "
                                 "not set (encoder and decoder then have embeddings of their own)",
                                 "add --share-all-embeddings, or drop --define-share")
    if get_option(args, "input_embedding") != "define":
        raise CompactConfigError("--define-share", f"'{share}' shares a DeFINE map table, but --input-embedding is "
                                 f"{get_option(args, 'input_embedding')}", "use --input-embedding define, or drop --define-share")
    return share


def imply_tie_from_share_all(args) -> None:
    """fairseq's ``--share-all-embeddings`` ties the decoder output too: set
    ``--tie-input-output`` when the command line left it unset (``None``; a checkpoint's saved
    ``False`` stays untied) and ``--no-tie-input-output`` is not given."""
    if (getattr(args, "share_all_embeddings", False) and getattr(args, "tie_input_output", None) is None
            and not getattr(args, "no_tie_input_output", False)):
        args.tie_input_output = True
        args.share_all_ties_output = True


def integer_dims(args) -> None:
    """``--decoder-input-dim`` / ``--decoder-output-dim`` as ints: fairseq declares them with an
    interpolated default (``II("model.decoder.embed_dim")``), so argparse leaves a value given on
    the command line a string (fairseq's own transformer converts it later, ours reads it)."""
    for name in ("decoder_input_dim", "decoder_output_dim"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            flag = "--" + name.replace("_", "-")
            try:
                setattr(args, name, int(value))
            except ValueError:
                raise CompactConfigError(flag, f"{value!r} is not an integer", f"give {flag} a whole number") from None


@register_model_architecture("compact_transformer", "compact_transformer")
def compact_transformer(args):
    imply_tie_from_share_all(args)
    fill_embedding_defaults(args)
    if getattr(args, "tie_input_output", False) and getattr(args, "decoder_output_dim", None) is None:
        # tied weights must fit: the decoder input dim, or DeFINE's map size n for a softmax tied
        # to the map table (the decoder then projects its d-dim states down to n)
        dim = getattr(args, "decoder_input_dim", None) or getattr(args, "decoder_embed_dim", None)
        args.decoder_output_dim = tied_output_dim(args, dim, dim) if dim is not None else None
    base_architecture(args)
    integer_dims(args)


@register_model_architecture("compact_transformer", "compact_transformer_wmt_en_de")
def compact_transformer_wmt_en_de(args):
    """Transformer base (Vaswani et al. 2017): 6+6 layers, d=512, ffn 2048, 8 heads."""
    compact_transformer(args)


@register_model_architecture("compact_transformer", "compact_transformer_wmt_en_de_define")
def compact_transformer_wmt_en_de_define(args):
    """Transformer base + DeFINE (Mehta et al. 2020, WMT14 En-De): a DeFINE input built as the
    authors' unit (n=128, k=1024, N=3, up to 4 groups, dropout 0.1 in the unit and on the map
    output) and a softmax tied to the V x n map table (the decoder projects 512 -> n). With
    ``--share-all-embeddings`` on a joined 37k vocabulary: 50,242,400 parameters against
    63,082,496 for ``compact_transformer_wmt_en_de``. Our copy of the paper gives only the
    baseline's 92M (not Vaswani et al.'s 65M layout) and cuts the DeFINE row off, so the count
    is not checked against the paper; n=128 is the map size of the authors' WMT14 configuration.
    Encoder and decoder share the whole unit (``--define-share unit``, what checkpoints of this
    preset were trained with); the authors' translation model shares only the map table: add
    ``--define-share map`` (51,544,768 parameters; on Multi30k it measured no worse, 36.81 vs
    36.72 BLEU)."""
    apply_preset(args, input_embedding="define", define_map_dim=128, define_expand_dim=1024, define_levels=3,
                 define_max_groups=4, define_widths="authors", define_reduce="authors", define_level_norm="shared",
                 define_init="xavier", define_dropout=0.1, define_map_dropout=0.1, tie_input_output=True)
    compact_transformer(args)


@register_model_architecture("compact_transformer", "compact_transformer_wmt_en_de_big")
def compact_transformer_wmt_en_de_big(args):
    """Transformer big: d=1024, ffn 4096, 16 heads, dropout 0.3."""
    imply_tie_from_share_all(args)
    fill_embedding_defaults(args)
    transformer_vaswani_wmt_en_de_big(args)
    integer_dims(args)
