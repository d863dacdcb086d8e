"""Plain-PyTorch compact embeddings and output layers (no fairseq imports here).

Every layer is an ordinary ``nn.Module``: an input embedding maps ids ``[*]`` to vectors
``[*, d]`` (``emb(tokens)``); an output layer maps hidden states ``[*, H]`` to float32
log-probabilities ``[*, V]`` (``out(hidden)``) or, given targets ``[*]``, to the exact
log-probability of each target ``[*]`` (``out(hidden, target)``), and scores word subsets for
the sampled losses (``score``, ``score_targets``, ``score_sample``; ``nce_loss``,
``sampled_softmax_loss`` with a :class:`NoiseSampler`). See the README section "Plain PyTorch".

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

# -- the public classes and functions, importable as fairseq_compactemb.modules.<Name> ---------
from .standard_embedding import StandardEmbedding  # noqa: E402
from .projected_embedding import ProjectedEmbedding  # noqa: E402
from .adaptive_input import AdaptiveInput  # noqa: E402
from .define_embedding import DeFINEEmbedding  # noqa: E402
from .define_export import define_to_standard, replace_define_with_standard  # noqa: E402
from .hierarchical_group_transform import HierarchicalGroupTransform  # noqa: E402
from .slim_embedding import SlimEmbedding  # noqa: E402
from .hashnet_embedding import HashNetEmbedding  # noqa: E402
from .softmax_output import SoftmaxOutput  # noqa: E402
from .adaptive_softmax_output import AdaptiveSoftmaxOutput  # noqa: E402
from .slim_output import SlimOutput  # noqa: E402
from .hashnet_output import HashNetOutput  # noqa: E402
from .noise_sampler import NoiseSampler  # noqa: E402
from .sampled_losses import nce_loss, sampled_softmax_loss  # noqa: E402

__all__ = [
    "CompactInputEmbedding", "CompactOutputLayer", "CompactCheckpointError", "CompactConfigError",
    "EmbeddingOptions", "INPUT_EMBEDDINGS", "OUTPUT_LAYERS", "build_input_embedding", "build_output_layer",
    "describe_parameters", "register_input_embedding", "register_output_layer",
    "StandardEmbedding", "ProjectedEmbedding", "AdaptiveInput", "DeFINEEmbedding", "define_to_standard",
    "replace_define_with_standard", "HierarchicalGroupTransform", "SlimEmbedding", "HashNetEmbedding",
    "SoftmaxOutput", "AdaptiveSoftmaxOutput", "SlimOutput", "HashNetOutput", "NoiseSampler", "nce_loss",
    "sampled_softmax_loss",
]
