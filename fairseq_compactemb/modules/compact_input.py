"""Base class of every input embedding (token ids -> model-dimension vectors)."""
from typing import Optional

import torch
from torch import nn

from .errors import CompactCheckpointError


def count_unique_parameters(module: nn.Module) -> int:
    """Number of scalar parameters, each shared tensor counted once."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


def check_saved_tensors(module: nn.Module, state_dict, prefix: str, strict: bool, vocab_size: int) -> None:
    """Raise :class:`CompactCheckpointError` if ``state_dict`` cannot fill ``module``'s tensors.

    Called from the ``_load_from_state_dict`` of every input embedding and output layer, before
    anything is copied, for the whole subtree (parameters and persistent buffers): a missing
    tensor (with ``strict``, as fairseq loads) or a saved shape that differs. torch would report
    these too, but as a multi-line ``RuntimeError`` after a traceback; here the message names
    the tensor and, when the first dimension is the vocabulary (``[V, ...]`` tables, biases),
    says that the checkpoint was trained with another dictionary.
    """
    persistent = module.state_dict(keep_vars=True)  # what this module would save, names relative
    for name, own in persistent.items():
        key = prefix + name
        saved = state_dict.get(key)
        if saved is None:
            if strict:
                raise CompactCheckpointError(
                    key, "is missing from the checkpoint",
                    "use the checkpoint file fairseq-train wrote (this one is incomplete or was "
                    "tampered with), trained with the same embedding flags")
            continue
        if not isinstance(saved, torch.Tensor) or not isinstance(own, torch.Tensor):
            continue
        if saved.shape == own.shape:
            continue
        fix = "load it with the data directory (dict.txt) it was trained with"
        if saved.dim() == own.dim() >= 1 and own.size(0) == vocab_size and saved.size(0) != vocab_size:
            raise CompactCheckpointError(
                key, f"the checkpoint has a {saved.size(0):,}-word vocabulary (shape "
                f"{list(saved.shape)}) but the dictionary has {vocab_size:,} words", fix)
        raise CompactCheckpointError(
            key, f"has shape {list(saved.shape)} in the checkpoint but {list(own.shape)} in this "
            f"model (vocabulary of {vocab_size:,} words)",
            f"{fix}, and the embedding flags it was trained with")


class CompactInputEmbedding(nn.Module):
    """Maps token ids ``[*]`` to vectors ``[*, embedding_dim]``.

    Subclasses implement :meth:`embed` and the classmethod :meth:`from_config`; this base class
    zeroes the padding positions (like ``nn.Embedding(padding_idx=...)``, whatever the method's
    parameter sharing) and reports parameter counts relative to a standard ``V x d`` table.

    Args:
        num_embeddings: vocabulary size V.
        embedding_dim: output dimension d.
        padding_idx: id whose vector is all zeros (``None``: no padding id).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[*]`` long -> ``[*, embedding_dim]``; padding need not be handled."""
        raise NotImplementedError

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out = self.embed(tokens)
        if self.padding_idx is not None:
            out = out.masked_fill(tokens.eq(self.padding_idx).unsqueeze(-1), 0.0)
        return out

    def match_model_scale(self, model_scale: float) -> None:
        """The model multiplies this embedding's output by ``model_scale`` (fairseq's
        transformers: ``sqrt(d)``, 1 with ``--no-scale-embedding``; LSTMs never call this).
        Every method here starts its vectors at the standard table's scale, which assumes that
        factor, so by default nothing changes; a method whose output is meant to enter the
        model as it is (DeFINE's authors' unit) undoes it."""

    def num_parameters(self) -> int:
        """Trainable scalars of this embedding (shared tensors counted once)."""
        return count_unique_parameters(self)

    def standard_parameters(self) -> int:
        """Size of the ``V x d`` table this embedding replaces."""
        return self.num_embeddings * self.embedding_dim

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, *args, **kwargs):
        # one clear line for a checkpoint of another vocabulary / a tampered file (see above)
        check_saved_tensors(self, state_dict, prefix, strict, self.num_embeddings)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, *args, **kwargs)

    @classmethod
    def from_config(cls, cfg, vocab_size: int, embed_dim: int, padding_idx: Optional[int]):
        """Build from the flags of :class:`~fairseq_compactemb.modules.options.EmbeddingOptions`."""
        raise NotImplementedError
