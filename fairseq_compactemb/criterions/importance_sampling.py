"""``importance_sampling``: sampled softmax (Jean et al. 2015; Jozefowicz et al. 2016).

Cross-entropy over each target and ``--noise-samples`` shared noise words, every noise score
corrected by ``-log Q`` (its expected count in the sample) and noise words equal to the row's
target masked out (the target's own score is exact and uncorrected; see
:func:`~fairseq_compactemb.modules.sampled_losses.sampled_softmax_loss`).
It tends to the full softmax loss as the sample grows. Validation and ``fairseq-eval-lm`` use
the exact softmax. See :mod:`~fairseq_compactemb.criterions.sampled_criterion` for sampling,
logging and resuming.

Default: 1024 noise words per batch (Jozefowicz et al. used 8192 for an 800k vocabulary).
"""
from dataclasses import dataclass

from fairseq.criterions import register_criterion

from ..modules.sampled_losses import sampled_softmax_loss
from .sampled_criterion import SampledCriterion, SampledCriterionConfig


@dataclass
class ImportanceSamplingCriterionConfig(SampledCriterionConfig):
    pass


@register_criterion("importance_sampling", dataclass=ImportanceSamplingCriterionConfig)
class ImportanceSamplingCriterion(SampledCriterion):
    name = "importance_sampling"

    def sampled_loss(self, target_logits, noise_logits, targets, noise_ids, target_log_q, noise_log_q):
        return sampled_softmax_loss(target_logits, noise_logits, targets, noise_ids, noise_log_q)
