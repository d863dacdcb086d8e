"""Mixin for decoders whose output layer is a :class:`CompactOutputLayer`.

Our decoders return HIDDEN STATES ``[B, T, H]`` as ``net_output[0]``, not logits: the sampled
criterions then score only target + noise words, the adaptive loss computes only the tails it
needs, and fairseq's generic paths (beam search, label smoothing, sampling) go through
:meth:`get_normalized_probs`, which returns exact, fully normalised scores.

Where only the targets' log-probabilities are consumed (``fairseq-eval-lm``, hub ``score``,
``fairseq-generate --score-reference``, ``cross_entropy``) :mod:`fairseq_compactemb.target_scoring`
calls :meth:`target_log_probs` instead, which never builds the ``[B, T, V]`` distribution.
"""
import torch


class CompactOutputDecoderMixin:
    """Needs ``self.compact_output`` (a CompactOutputLayer)."""

    supports_target_scoring = True
    # set only inside target_scoring.target_only(): see get_normalized_probs
    _target_only_scoring = False

    def output_layer(self, features, **kwargs):
        """fairseq hook: features are kept as they are (see module docstring)."""
        return features

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
        lprobs = self.compact_output.log_probs(net_output[0])
        return lprobs if log_probs else lprobs.exp()

    def get_normalized_probs_scriptable(self, net_output, log_probs, sample=None):
        return self.get_normalized_probs(net_output, log_probs, sample)
