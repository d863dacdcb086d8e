"""Plain-PyTorch compact embeddings and output layers (no fairseq imports here).

Importing this package registers every method with the factory; a new method is one new file
plus one import line below.
"""
from .compact_input import CompactInputEmbedding
from .compact_output import CompactOutputLayer
from .errors import CompactCheckpointError, CompactConfigError
from .factory import (
    INPUT_EMBEDDINGS,
    OUTPUT_LAYERS,
    build_input_embedding,
    build_output_layer,
    describe_parameters,
    register_input_embedding,
    register_output_layer,
)
from .options import EmbeddingOptions

# -- registered methods: one line each --------------------------------------------------------
from . import standard_embedding  # noqa: F401,E402
from . import softmax_output  # noqa: F401,E402
from . import projected_embedding  # noqa: F401,E402
from . import adaptive_input  # noqa: F401,E402
from . import adaptive_softmax_output  # noqa: F401,E402
from . import define_embedding  # noqa: F401,E402
from . import slim_embedding  # noqa: F401,E402
from . import slim_output  # noqa: F401,E402
from . import hashnet_embedding  # noqa: F401,E402
from . import hashnet_output  # noqa: F401,E402
