"""Mixin for decoders whose output layer is a :class:`CompactOutputLayer`.

Our decoders return HIDDEN STATES ``[B, T, H]`` as ``net_output[0]``, not logits: the sampled
criterions then score only target + noise words, the adaptive loss computes only the tails it
needs, and fairseq's generic paths (beam search, label smoothing, sampling) go through
:meth:`get_normalized_probs`, which returns exact, fully normalised scores.

Where only the targets' log-probabilities are consumed (``fairseq-eval-lm``, hub ``score``,
``fairseq-generate --score-reference``, ``cross_entropy``) :mod:`fairseq_compactemb.target_scoring`
calls :meth:`target_log_probs` instead, which never builds the ``[B, T, V]`` distribution.

``--temperature`` (fairseq-generate, hub ``sample``): fairseq's SequenceGenerator divides
``net_output[0]`` in place before calling :meth:`get_normalized_probs`. For logits that is the
tempered distribution, but these are hidden states: ``W (h / T) + b`` leaves every output bias
untempered and scales each level of an adaptive softmax on its own. So in evaluation every
decoder keeps an unscaled copy of its last position (:meth:`keep_unscaled_last`);
:meth:`get_normalized_probs` recovers ``T`` from the two and returns ``p^(1/T)`` renormalised,
``log_softmax(log p / T)``, the temperature's meaning for any output layer (for a bias-free
softmax it equals fairseq's).
"""
from typing import Optional

import torch
import torch.nn.functional as F

_UNSCALED = "compact_unscaled_last"  # key of net_output[1]: [B, 1, H] copy of the last position


class CompactOutputDecoderMixin:
    """Needs ``self.compact_output`` (a CompactOutputLayer)."""

    supports_target_scoring = True
    # set only inside target_scoring.target_only(): see get_normalized_probs
    _target_only_scoring = False

    def output_layer(self, features, **kwargs):
        """fairseq hook: features are kept as they are (see module docstring)."""
        return features

    def keep_unscaled_last(self, x: torch.Tensor, extra):
        """``(x [B, T, H], extra dict) -> (x, extra)``; without autograd (generation, eval) it
        adds a copy of ``x[:, -1:]`` to ``extra`` (``B * H`` floats) for the temperature."""
        if not self.training and not torch.is_grad_enabled() and isinstance(extra, dict) and x.dim() == 3:
            extra[_UNSCALED] = x[:, -1:, :].clone()
        return x, extra

    @staticmethod
    def generation_temperature(net_output) -> Optional[float]:
        """``T`` when ``net_output[0]`` is the kept last position divided by ``T != 1`` (what
        SequenceGenerator does), else None."""
        extra = net_output[1] if len(net_output) > 1 else None
        unscaled = extra.get(_UNSCALED) if isinstance(extra, dict) else None
        scaled = net_output[0]
        if unscaled is None or unscaled.shape != scaled.shape:
            return None
        if torch.equal(scaled, unscaled):
            return None  # T = 1 (or the copy itself): one comparison per decoding step, no norms
        a, b = scaled.double(), unscaled.double()
        norm = a.norm()
        if norm == 0:
            return None
        t = float(b.norm() / norm)
        rtol = max(1e-5, 8 * torch.finfo(scaled.dtype).eps)  # fp16 / bf16 generation rounds the division
        if abs(t - 1.0) <= 1e-6 or not torch.allclose(a * t, b, rtol=rtol, atol=1e-12):
            return None  # unchanged, or changed by something other than a scale
        return t

    def target_log_probs(self, net_output, target: torch.Tensor) -> torch.Tensor:
        """``target [B, T]`` -> float32 ``[B, T]``: exactly ``get_normalized_probs(net_output,
        log_probs=True)`` gathered at ``target`` by the output layer's target-only path, at
        every non-padding target; 0 where the target is padding (fairseq's scorer and losses
        drop those positions: with ``fairseq-eval-lm --context-window`` they are the re-fed
        context, half of every block, which is therefore not scored at all)."""
        hidden = net_output[0]
        keep = target.ne(self.dictionary.pad())
        if bool(keep.all()):
            return self.compact_output.target_log_probs(hidden, target)
        out = hidden.new_zeros(target.shape, dtype=torch.float32)
        out[keep] = self.compact_output.target_log_probs(hidden[keep], target[keep])
        return out

    def get_normalized_probs(self, net_output, log_probs: bool, sample=None) -> torch.Tensor:
        if self._target_only_scoring and sample is not None and sample.get("target") is not None:
            # fairseq's SequenceScorer, inside target_scoring.target_only(): it reads these
            # scores only at sample["target"] (gather on the last dim), so the target scores are
            # returned as a [B, T, V] view (stride 0 over V) that holds them at every index.
            # Never returned outside that context, where every caller gets exact full scores.
            lp = self.target_log_probs(net_output, sample["target"])
            scores = lp if log_probs else lp.exp()
            return scores.unsqueeze(-1).expand(*scores.shape, self.compact_output.vocab_size)
        temperature = self.generation_temperature(net_output)
        if temperature is None:
            lprobs = self.compact_output.log_probs(net_output[0])
        else:
            lprobs = F.log_softmax(self.compact_output.log_probs(net_output[1][_UNSCALED]) / temperature, dim=-1)
        return lprobs if log_probs else lprobs.exp()

    def get_normalized_probs_scriptable(self, net_output, log_probs, sample=None):
        return self.get_normalized_probs(net_output, log_probs, sample)
