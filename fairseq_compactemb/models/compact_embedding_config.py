"""fairseq view of :class:`~fairseq_compactemb.modules.options.EmbeddingOptions`.

Every compact model config inherits :class:`CompactEmbeddingConfig`, so every model takes the
same ``--input-embedding / --output-layer / --tie-input-output / --slim-* / --define-* ...``
flags. The method choices are the factory's registry keys, so argparse rejects an unknown
``--input-embedding`` with the list of valid ones.
"""
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
