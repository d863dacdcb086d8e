"""Mixin for decoders whose output layer is a :class:`CompactOutputLayer`.

Our decoders return HIDDEN STATES ``[B, T, H]`` as ``net_output[0]``, not logits: the sampled
criterions then score only target + noise words, the adaptive loss computes only the tails it
needs, and fairseq's generic paths (``cross_entropy``, ``fairseq-eval-lm``, beam search) go
through :meth:`get_normalized_probs`, which always returns exact, fully normalised scores.
"""
import torch


class CompactOutputDecoderMixin:
    """Needs ``self.compact_output`` (a CompactOutputLayer)."""

    def output_layer(self, features, **kwargs):
        """fairseq hook: features are kept as they are (see module docstring)."""
        return features

    def get_normalized_probs(self, net_output, log_probs: bool, sample=None) -> torch.Tensor:
        lprobs = self.compact_output.log_probs(net_output[0])
        return lprobs if log_probs else lprobs.exp()

    def get_normalized_probs_scriptable(self, net_output, log_probs, sample=None):
        return self.get_normalized_probs(net_output, log_probs, sample)
