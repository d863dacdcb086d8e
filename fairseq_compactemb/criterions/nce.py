"""``nce``: noise-contrastive estimation (Mnih & Teh 2012) of a language model's softmax.

Trains the output scores ``s(w) - log Z`` as self-normalised log-probabilities by telling each
target word from ``--noise-samples`` noise words
(:func:`~fairseq_compactemb.modules.sampled_losses.nce_loss`).
``log Z`` is fixed (``--nce-log-z``) or learned (``--nce-learn-log-z``, a scalar criterion
parameter saved in the checkpoint's ``criterion`` entry).

The default ``log Z = log V`` makes the freshly initialised model (scores near 0) already
normalised; it is the same model as Mnih & Teh's ``Z = 1`` with every output score shifted by
``-log V``. With ``--nce-log-z 0`` the thousands of rare words, rarely drawn as noise, keep
scores near 0 for a long time and dominate the softmax: a 1-layer 64-unit LSTM on 2000 PTB
lines (100 noise words, Adam 0.01) reached validation perplexity 4.7e6 after 1000 updates with
``log Z = 0`` and 284 with ``log Z = log V`` (cross_entropy: 362, importance_sampling: 314).
Validation and ``fairseq-eval-lm`` use the exact normalised softmax. See
:mod:`~fairseq_compactemb.criterions.sampled_criterion` for sampling, logging and resuming.

Default: 100 noise words per batch (Mnih & Teh used 25-100 per word; ours are shared by the
whole batch, which costs one ``[N, H] x [H, 100]`` product).
"""
import math
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq.criterions import register_criterion
from torch import nn

from ..modules.sampled_losses import nce_loss
from .sampled_criterion import SampledCriterion, SampledCriterionConfig


@dataclass
class NCECriterionConfig(SampledCriterionConfig):
    noise_samples: int = field(
        default=100,
        metadata={"help": "number k of noise words drawn per batch (shared by all tokens of the batch)"},
    )
    nce_log_z: Optional[float] = field(
        default=None,
        metadata={"help": "fixed log normaliser: the model's log-probability is score - log Z "
                          "(default: log of the vocabulary size, so a fresh model starts normalised; "
                          "0 is Mnih & Teh's Z = 1)"},
    )
    nce_learn_log_z: bool = field(
        default=False, metadata={"help": "learn log Z (initialised to --nce-log-z) as a scalar parameter"}
    )


@register_criterion("nce", dataclass=NCECriterionConfig)
class NCECriterion(SampledCriterion):
    name = "nce"

    def __init__(self, task, noise_samples, noise_distribution, noise_alpha, noise_unique, sentence_avg,
                 nce_log_z=None, nce_learn_log_z=False):
        super().__init__(task, noise_samples, noise_distribution, noise_alpha, noise_unique, sentence_avg)
        if nce_log_z is None:
            nce_log_z = math.log(len(task.target_dictionary))
        if nce_learn_log_z:
            self.log_z = nn.Parameter(torch.tensor(float(nce_log_z)))
        else:
            self.log_z = float(nce_log_z)

    def sampled_loss(self, target_logits, noise_logits, targets, noise_ids, target_log_q, noise_log_q):
        log_z = self.log_z.float() if isinstance(self.log_z, torch.Tensor) else self.log_z
        return nce_loss(target_logits, noise_logits, target_log_q, noise_log_q, log_z)
