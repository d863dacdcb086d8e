"""fairseq view of :class:`~fairseq_compactemb.modules.options.EmbeddingOptions`.

Every compact model config inherits :class:`CompactEmbeddingConfig`, so every model takes the
same ``--input-embedding / --output-layer / --tie-input-output / --slim-* / --define-* ...``
flags. The method choices are the factory's registry keys, so argparse rejects an unknown
``--input-embedding`` with the list of valid ones.
"""
import dataclasses
from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from ..modules import INPUT_EMBEDDINGS, OUTPUT_LAYERS, EmbeddingOptions

_HELP = {name: f.metadata for name, f in EmbeddingOptions.__dataclass_fields__.items()}


@dataclass
class CompactEmbeddingConfig(FairseqDataclass, EmbeddingOptions):
    input_embedding: ChoiceEnum(sorted(INPUT_EMBEDDINGS)) = field(
        default="standard", metadata=_HELP["input_embedding"]
    )
    output_layer: ChoiceEnum(sorted(OUTPUT_LAYERS)) = field(
        default="softmax", metadata=_HELP["output_layer"]
    )


def add_embedding_args(parser) -> None:
    """Add the compact-embedding flags to an argparse-configured model (``compact_transformer``),
    skipping names the parser already has (e.g. fairseq's ``--adaptive-softmax-dropout``, which
    means the same thing). Defaults are deleted, as fairseq does, so architectures can set them;
    :func:`fill_embedding_defaults` supplies the rest."""
    from fairseq.dataclass.utils import gen_parser_from_dataclass

    existing = {action.dest for action in parser._actions}
    own = [(f.name, f.type, f) for f in dataclasses.fields(CompactEmbeddingConfig)
           if f.name != "_name" and f.name not in existing]
    subset = dataclasses.make_dataclass("CompactEmbeddingArgs", own, bases=(FairseqDataclass,))
    gen_parser_from_dataclass(parser, subset(), delete_default=True)


def fill_embedding_defaults(args) -> None:
    """Set every compact-embedding option the command line left unset to its default."""
    for f in dataclasses.fields(EmbeddingOptions):
        if getattr(args, f.name, None) is None:
            setattr(args, f.name, f.default)


def apply_preset(cfg, **values) -> None:
    """Architecture presets: give every option the command line left unset (``None``) the
    preset's value. ``--no-tie-input-output`` wins over a preset's ``tie_input_output=True``."""
    for name, value in values.items():
        if name == "tie_input_output" and getattr(cfg, "no_tie_input_output", False):
            value = False
        if getattr(cfg, name, None) is None:
            setattr(cfg, name, value)
