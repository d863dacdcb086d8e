"""Target-only scoring in fairseq's own scoring paths, for this plugin's models.

Perplexity, reference scoring and the cross-entropy loss need ``log p(target)`` of every
position, not the ``[B, T, V]`` distribution that fairseq's ``get_normalized_probs`` returns
and they then index. Every output layer has an exact cheaper path
(:meth:`CompactOutputLayer.target_log_probs`: adaptive softmax - the head plus the target's
own tail; slim - ``log Z`` streamed without writing ``[N, V]``; softmax - a fused
``log_softmax`` in blocks of rows, gathered). :func:`install` (run when the plugin is
imported, i.e. by ``--user-dir``) routes fairseq's consumers of target scores to it when
*every* model involved has such a decoder (``supports_target_scoring``); any other model takes
fairseq's code unchanged:

* ``SequenceScorer.generate``: ``fairseq-eval-lm``, hub ``score`` and
  ``fairseq-generate --score-reference``. It runs as fairseq wrote it, inside
  :func:`target_only`, where our decoders' ``get_normalized_probs(..., sample=...)`` return
  the target scores as a stride-0 ``[B, T, V]`` view; the scorer only gathers it at
  ``sample["target"]`` (its ensemble averaging, ``--softmax-batch`` chunking and output are
  untouched). Outside that context (beam search, sampling, label smoothing, any user code)
  ``get_normalized_probs`` returns exact full log-probabilities, so unlike fairseq's adaptive
  softmax shortcut no caller can read wrong values away from the targets.
* ``CrossEntropyCriterion.compute_loss`` (``--criterion cross_entropy``, training and
  validation): ``-target_log_probs`` summed over non-padding targets, the same loss and
  gradients as ``nll_loss(log_softmax(...))``.

:func:`target_log_probs` is the same choice for scripts (``scripts/rerank.py``).
"""
import contextlib
from typing import Iterable

import torch


def _decoder(model):
    return getattr(model, "decoder", model)


def supports_target_scoring(model) -> bool:
    """Whether ``model``'s decoder has the exact target-only path (this plugin's decoders)."""
    return bool(getattr(_decoder(model), "supports_target_scoring", False))


@contextlib.contextmanager
def target_only(models: Iterable):
    """Inside this block our decoders answer ``get_normalized_probs(..., sample=s)`` with the
    scores of ``s["target"]`` only (see the module docstring); restored on exit."""
    decoders = [_decoder(m) for m in models]
    previous = [d.__dict__.get("_target_only_scoring") for d in decoders]
    for d in decoders:
        d._target_only_scoring = True
    try:
        yield
    finally:
        for d, p in zip(decoders, previous):
            if p is None:
                del d._target_only_scoring  # back to the class default (False)
            else:
                d._target_only_scoring = p


def target_log_probs(model, net_output, target: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` log-probabilities of ``target`` under ``model`` (any fairseq model): the
    target-only path when the decoder has one, else ``get_normalized_probs`` gathered."""
    if supports_target_scoring(model):
        return _decoder(model).target_log_probs(net_output, target)
    lprobs = model.get_normalized_probs(net_output, log_probs=True)
    return lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1).float()


def install() -> None:
    """Patch fairseq's SequenceScorer and cross_entropy criterion once (idempotent)."""
    from fairseq.criterions.cross_entropy import CrossEntropyCriterion
    from fairseq.sequence_scorer import SequenceScorer

    if getattr(SequenceScorer.generate, "_compactemb", False):
        return
    stock_generate = SequenceScorer.generate
    stock_compute_loss = CrossEntropyCriterion.compute_loss

    def generate(self, models, sample, **kwargs):
        if models and all(supports_target_scoring(m) for m in models):
            with target_only(models):
                return stock_generate(self, models, sample, **kwargs)
        return stock_generate(self, models, sample, **kwargs)

    def compute_loss(self, model, net_output, sample, reduce=True):
        if not supports_target_scoring(model):
            return stock_compute_loss(self, model, net_output, sample, reduce=reduce)
        target = model.get_targets(sample, net_output)
        nll = -target_log_probs(model, net_output, target)
        nll = nll.masked_fill(target.eq(self.padding_idx), 0.0).view(-1)
        loss = nll.sum() if reduce else nll
        return loss, loss

    generate._compactemb = True
    generate.__doc__ = stock_generate.__doc__
    compute_loss.__doc__ = stock_compute_loss.__doc__
    SequenceScorer.generate = generate
    CrossEntropyCriterion.compute_loss = compute_loss
