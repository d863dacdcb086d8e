"""Base class of every output layer (hidden states -> scores over the vocabulary)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .compact_input import check_saved_tensors, count_unique_parameters
from .errors import CompactConfigError


# no-grad target_log_probs: logits of this many (row, word) pairs at once (256 MB): enough rows per
# block that the V x H matrix, re-read by every block's GEMM, is not the cost (at V=267,735, H=512,
# blocks of 15 rows took 4.9 s for 256 rows, memory-bound), while a 4,096-token batch no longer
# allocates its whole [N, V] logits at once (4.4 GB there)
_SCORE_ELEMS = 1 << 26


def check_target_shape(hidden: torch.Tensor, target: torch.Tensor) -> None:
    """``target`` must hold one word id per hidden state: shape ``hidden.shape[:-1]``."""
    if tuple(target.shape) != tuple(hidden.shape[:-1]):
        raise ValueError(f"target shape {list(target.shape)} does not match the hidden states "
                         f"{list(hidden.shape)} (expected {list(hidden.shape[:-1])})")


class CompactOutputLayer(nn.Module):
    """Scores a vocabulary of ``vocab_size`` words from hidden states of size ``input_dim``.

    Entry points, so that every criterion and every fairseq evaluation path works:

    * ``layer(hidden)`` = :meth:`log_probs` ``[*, H] -> [*, V]``: fully normalised float32
      log-probabilities (beam search, sampling, label smoothing: whatever needs the whole
      distribution).
    * ``layer(hidden, target)`` = :meth:`target_log_probs` ``[*, H], [*] -> [*]``: the exact
      log-probability of each row's own target only (perplexity, ``cross_entropy``,
      ``fairseq-eval-lm``, hub ``score``, reranking), without writing the ``[N, V]``
      log-probabilities and, where the layer allows it, without computing all of them.
    * :meth:`score` ``[N, H], [S] -> [N, S]``: unnormalised logits of a shared word subset
      (target + noise words of NCE / importance sampling), without scoring all V words.
    * :meth:`score_targets` ``[N, H], [N] -> [N]``: the logit of each row's own word.

    The sampled criterions call both through :meth:`score_sample`, which a layer may override
    to share work between them. Layers whose scores are not one logit per word (the adaptive softmax) set
    ``supports_sampling = False`` and provide their own loss instead.
    """

    supports_sampling = True

    def __init__(self, vocab_size: int, input_dim: int, bias: bool = False):
        super().__init__()
        self.vocab_size = vocab_size
        self.input_dim = input_dim
        self.bias = nn.Parameter(torch.zeros(vocab_size)) if bias else None

    # -- to implement -------------------------------------------------------------------------
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[*, H] -> [*, V]`` unnormalised scores of every word (bias included)."""
        raise NotImplementedError

    def score(self, hidden: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
        """``[N, H], [S] -> [N, S]``: logits of the words ``word_ids`` for every row."""
        raise NotImplementedError

    def score_targets(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``[N, H], [N] -> [N]``: logit of ``targets[i]`` for row ``i``."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def forward(self, hidden: torch.Tensor, target: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``hidden [*, H]`` -> float32 log-probabilities ``[*, V]`` of every word, or, with
        ``target [*]`` (word ids), the log-probability of each row's target ``[*]``
        (:meth:`target_log_probs`)."""
        if target is None:
            return self.log_probs(hidden)
        return self.target_log_probs(hidden, target)

    def target_log_probs(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[*, H], [*] -> [*]``: ``log_probs(hidden)`` gathered at ``target``, exactly (float32,
        differentiable): ``log_softmax(logits)`` gathered at the targets, so the values are
        :meth:`log_probs`'s exactly; without autograd in blocks of rows, so no ``[N, V]`` tensor
        is written. (``logit[target] - logsumexp(logits)`` is the same value, but ATen runs
        ``logsumexp`` as separate passes over ``[N, V]`` and its backward as more: one training
        update of a 33,280-word softmax took ~1.6x as long in this loss as with the fused
        ``log_softmax``.) Layers with a cheaper exact path override this (the adaptive softmax
        evaluates one tail per row, the slim output streams ``log Z``)."""
        check_target_shape(hidden, target)
        flat, flat_target = hidden.reshape(-1, hidden.size(-1)), target.reshape(-1)
        # without autograd, rows in blocks of _SCORE_ELEMS scores
        with_grad = torch.is_grad_enabled() and (hidden.requires_grad or any(p.requires_grad for p in self.parameters()))
        rows = flat.size(0) if with_grad else max(1, _SCORE_ELEMS // self.vocab_size)
        parts = []
        for s in range(0, max(flat.size(0), 1), rows):
            lprobs = F.log_softmax(self.logits(flat[s:s + rows]).float(), dim=-1)
            parts.append(lprobs.gather(1, flat_target[s:s + rows].unsqueeze(1)).squeeze(1))
        return torch.cat(parts).view(target.shape)

    def score_sample(self, hidden: torch.Tensor, targets: torch.Tensor, word_ids: torch.Tensor):
        """``[N, H], [N], [S] -> ([N], [N, S])``: :meth:`score_targets` and :meth:`score` in one
        call (the two scores of NCE / importance sampling). Override when both can share work,
        e.g. one gather of the ``N + S`` rows of a weight matrix (one gradient of the matrix in
        backward instead of two that autograd then adds)."""
        return self.score_targets(hidden, targets), self.score(hidden, word_ids)

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[*, H] -> [*, V]`` float32 log-softmax over the full vocabulary."""
        return F.log_softmax(self.logits(hidden).float(), dim=-1)

    def add_bias(self, scores: torch.Tensor, word_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Add the per-word bias (all words, or those of ``word_ids``) when there is one."""
        if self.bias is None:
            return scores
        return scores + (self.bias if word_ids is None else self.bias[word_ids])

    def check_tie_type(self, emb, expected: type, fix: str) -> None:
        """Raise a CompactConfigError unless the input embedding ``emb`` is an ``expected``."""
        if not isinstance(emb, expected):
            got = getattr(emb, "registry_name", type(emb).__name__)
            want = getattr(expected, "registry_name", expected.__name__)
            raise CompactConfigError(
                "--tie-input-output",
                f"--output-layer {self.registry_name} can only be tied to --input-embedding {want}, not {got}", fix)

    def check_tie_shape(self, emb) -> None:
        """Raise a CompactConfigError unless the input embedding ``emb`` has this layer's
        vocabulary and dimension (shared by every layer that supports ``--tie-input-output``)."""
        if emb.embedding_dim != self.input_dim:
            raise CompactConfigError(
                "--tie-input-output", f"input embedding dim {emb.embedding_dim} != output layer input dim {self.input_dim}",
                "make the decoder output dim equal the embedding dim or drop --tie-input-output")
        self.check_tie_vocab(emb.num_embeddings)

    def check_tie_vocab(self, input_vocab: int) -> None:
        """Raise a CompactConfigError unless the tied input has this layer's vocabulary size."""
        if input_vocab != self.vocab_size:
            raise CompactConfigError(
                "--tie-input-output", f"input vocabulary {input_vocab} != output vocabulary {self.vocab_size}",
                "use one dictionary for both sides or drop --tie-input-output")

    def num_parameters(self) -> int:
        """Trainable scalars, shared tensors counted once (tied ones included)."""
        return count_unique_parameters(self)

    def standard_parameters(self) -> int:
        """Size of the ``V x H`` matrix this layer replaces."""
        return self.vocab_size * self.input_dim

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, *args, **kwargs):
        # one clear line for a checkpoint of another vocabulary / a tampered file
        check_saved_tensors(self, state_dict, prefix, strict, self.vocab_size)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, *args, **kwargs)

    @classmethod
    def from_config(cls, cfg, vocab_size: int, input_dim: int, tied_input=None):
        """Build from the flags; ``tied_input`` is the input embedding when
        ``--tie-input-output`` is set (raise :class:`CompactConfigError` if it cannot be tied)."""
        raise NotImplementedError
