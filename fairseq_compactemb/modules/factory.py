"""The one factory: builds any registered input embedding and output layer from config.

A new method is one new file in ``modules/`` whose class carries
``@register_input_embedding("name")`` (or ``@register_output_layer``) and implements
``from_config``, plus one import line in ``modules/__init__.py``. Every model builds its
embeddings through :func:`build_input_embedding` / :func:`build_output_layer`, and the
``--input-embedding`` / ``--output-layer`` choices are the registry keys.
"""
from typing import Callable, Dict, Optional, Type

from .compact_input import CompactInputEmbedding
from .compact_output import CompactOutputLayer
from .errors import CompactConfigError
from .options import get_option

INPUT_EMBEDDINGS: Dict[str, Type[CompactInputEmbedding]] = {}
OUTPUT_LAYERS: Dict[str, Type[CompactOutputLayer]] = {}


def _register(registry: Dict[str, type], base: type, name: str) -> Callable[[type], type]:
    def decorator(cls: type) -> type:
        if name in registry:
            raise ValueError(f"{base.__name__} {name!r} is registered twice")
        if not issubclass(cls, base):
            raise TypeError(f"{cls.__name__} must subclass {base.__name__}")
        registry[name] = cls
        cls.registry_name = name
        return cls

    return decorator


def register_input_embedding(name: str):
    """Class decorator: make ``--input-embedding name`` build this class."""
    return _register(INPUT_EMBEDDINGS, CompactInputEmbedding, name)


def register_output_layer(name: str):
    """Class decorator: make ``--output-layer name`` build this class."""
    return _register(OUTPUT_LAYERS, CompactOutputLayer, name)


def _lookup(registry: Dict[str, type], flag: str, name: str) -> type:
    if name not in registry:
        raise CompactConfigError(
            flag, f"unknown choice {name!r}", f"choose one of {', '.join(sorted(registry))}"
        )
    return registry[name]


def build_input_embedding(
    cfg, vocab_size: int, embed_dim: int, padding_idx: Optional[int]
) -> CompactInputEmbedding:
    """The ``--input-embedding`` of ``cfg`` for a vocabulary of ``vocab_size`` and output ``embed_dim``."""
    cls = _lookup(INPUT_EMBEDDINGS, "--input-embedding", get_option(cfg, "input_embedding"))
    return cls.from_config(cfg, vocab_size, embed_dim, padding_idx)


def build_output_layer(
    cfg, vocab_size: int, input_dim: int, input_embedding: Optional[CompactInputEmbedding] = None
) -> CompactOutputLayer:
    """The ``--output-layer`` of ``cfg``; tied to ``input_embedding`` if ``--tie-input-output``."""
    cls = _lookup(OUTPUT_LAYERS, "--output-layer", get_option(cfg, "output_layer"))
    tied = input_embedding if get_option(cfg, "tie_input_output") else None
    if get_option(cfg, "tie_input_output") and get_option(cfg, "no_tie_input_output"):
        raise CompactConfigError("--no-tie-input-output", "given together with --tie-input-output",
                                 "pass only one of them")
    if get_option(cfg, "tie_input_output") and input_embedding is None:
        raise CompactConfigError(
            "--tie-input-output", "this model has no target-side input embedding to tie to",
            "drop --tie-input-output",
        )
    return cls.from_config(cfg, vocab_size, input_dim, tied_input=tied)


def describe_parameters(module, what: str = "embedding") -> str:
    """``"embedding params: N (x% of a standard V x d table)"`` for a built module."""
    n, std = module.num_parameters(), module.standard_parameters()
    return (f"{what} params: {n:,} ({100.0 * n / std:.2f}% of a standard "
            f"{module_shape(module)} table)")


def module_shape(module) -> str:
    if isinstance(module, CompactOutputLayer):
        return f"{module.vocab_size:,} x {module.input_dim}"
    return f"{module.num_embeddings:,} x {module.embedding_dim}"
