"""Shared glue of the sampled criterions ``nce`` and ``importance_sampling``.

Training (``model.training``): ``S = --noise-samples`` word ids are drawn once per batch from the
``--noise-distribution`` and shared by every target position; the output layer scores only the
targets (``[N]``) and those ids (``[N, S]``) in one ``score_sample`` call, and the subclass turns
the scores into a per-token loss (:mod:`fairseq_compactemb.modules.sampled_losses`). The logged
training ``loss`` is that sampled objective (no ``ppl`` is derived from it: the NCE loss is not a
cross-entropy, the importance-sampled one only estimates it).

Validation (``not model.training``): the exact full-softmax cross-entropy (the targets'
normalised log-probabilities, :func:`~fairseq_compactemb.target_scoring.target_log_probs`), logged as ``loss`` / ``nll_loss`` / ``ppl`` like
``cross_entropy``, so validation numbers (and checkpoint selection) are comparable across
criterions. ``fairseq-eval-lm`` is always exact as well.

Randomness: fairseq re-seeds the global RNG with ``--seed + num_updates`` before every update.
Each training batch seeds the sampler's own generator from that RNG (one draw, plus the
data-parallel rank so workers draw different words), so noise words are as reproducible as
dropout masks and a resumed run draws exactly the words an uninterrupted run would have drawn,
without storing any sampler state in the checkpoint (fairseq's trainer only saves a criterion's
``state_dict`` when the criterion has parameters).

Noise words: ``S`` ids drawn from ``--noise-distribution`` (``unigram``: the target dictionary's
counts raised to ``--noise-alpha``) over every word except ``<pad>`` and ``<s>``, which are never
targets; ``</s>`` and ``<unk>`` are targets and are drawn. ``<pad>`` and ``<s>`` are instead added
to every batch's noise words with expected count 1: evaluation normalises over all ``V`` words,
and a score that training never pushes down would leak probability mass from every real word
(importance sampling then estimates exactly the normaliser evaluation uses; NCE drives their
probability to 0, as for any word the data never shows).

fairseq does not store the counts of special symbols in ``dict.txt`` (a loaded dictionary says
1), so for ``unigram`` a sampleable special symbol whose count is <= 1 gets the count of the
most frequent word: ``</s>`` ends every sentence and must not be an almost-never-drawn noise word.
"""
import math
from dataclasses import dataclass, field

import torch
from fairseq import utils
from fairseq.criterions import FairseqCriterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.logging import metrics
from omegaconf import II

from ..modules.errors import CompactConfigError
from ..target_scoring import target_log_probs
from .token_logging import token_logging_output
from ..modules.factory import OUTPUT_LAYERS
from ..modules.noise_sampler import DISTRIBUTIONS, NoiseSampler


@dataclass
class SampledCriterionConfig(FairseqDataclass):
    noise_samples: int = field(
        default=1024,
        metadata={"help": "number S of noise words drawn per batch (shared by all tokens of the batch)"},
    )
    noise_distribution: ChoiceEnum(list(DISTRIBUTIONS)) = field(
        default="unigram",
        metadata={"help": "noise distribution: unigram (dictionary counts ^ --noise-alpha), "
                          "loguniform (Zipfian over ids, assumes frequency-sorted ids) or uniform"},
    )
    noise_alpha: float = field(
        default=0.75, metadata={"help": "exponent of the unigram counts (1: unigram, 0: uniform)"}
    )
    noise_unique: bool = field(
        default=False,
        metadata={"help": "draw S distinct noise words (corrected by the probability of being "
                          "drawn, 1 - (1 - q)^tries) instead of S independent draws"},
    )
    sentence_avg: bool = II("optimization.sentence_avg")


def sampling_output_layers():
    """Registered output layers that can score a subset of words."""
    return sorted(name for name, cls in OUTPUT_LAYERS.items() if cls.supports_sampling)


def _no_sampling_error(criterion_name: str, got: str) -> CompactConfigError:
    return CompactConfigError(
        "--criterion",
        f"{criterion_name} needs an output layer that scores a sample of words, and {got} cannot",
        f"use --output-layer {' / '.join(sampling_output_layers())}, or --criterion "
        f"compact_adaptive_loss / cross_entropy with this output layer",
    )


def _configured_output_layer(cfg):
    """``--output-layer`` of the run the criterion config belongs to, when it can be read."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.select(cfg._get_root(), "model.output_layer", default=None)
    except Exception:  # not part of a full fairseq config (tests, legacy args): check at forward
        pass
    return None


def unigram_counts(dictionary, exclude) -> torch.Tensor:
    """``[V]`` float64 dictionary counts, sampleable special symbols raised to the top count."""
    counts = torch.tensor([float(c) for c in dictionary.count], dtype=torch.float64)
    nspecial = getattr(dictionary, "nspecial", 0)
    if len(counts) > nspecial:
        top = counts[nspecial:].max()
        for idx in range(nspecial):
            if idx not in exclude and counts[idx] <= 1:
                counts[idx] = top
    return counts


class SampledCriterion(FairseqCriterion):
    """Base of ``nce`` and ``importance_sampling``; subclasses implement :meth:`sampled_loss`."""

    name = "sampled"

    def __init__(self, task, noise_samples, noise_distribution, noise_alpha, noise_unique, sentence_avg):
        super().__init__(task)
        self.sentence_avg = sentence_avg
        self.noise_samples = noise_samples
        dictionary = task.target_dictionary
        exclude = sorted({dictionary.pad(), dictionary.bos()})
        distribution = str(noise_distribution)
        counts = unigram_counts(dictionary, exclude) if distribution == "unigram" else None
        self.sampler = NoiseSampler(len(dictionary), distribution, counts=counts, alpha=noise_alpha,
                                    exclude=exclude, unique=noise_unique)
        self.sampler.check_num_samples(noise_samples)
        R = self.sampler.num_sampleable
        if noise_samples > R or (noise_unique and noise_samples == R):
            raise CompactConfigError(
                "--noise-samples",
                f"{noise_samples} noise samples{' with --noise-unique' if noise_unique else ''} but only "
                f"{R} words can be sampled (a sampled criterion needs fewer noise words than the vocabulary)",
                f"use fewer than {R} (or the full softmax, --criterion cross_entropy)",
            )
        # Never targets, so never drawn, but scored in every batch with Q = 1 (see module docstring).
        self.always_scored = torch.tensor(exclude, dtype=torch.long)
        # Stands in for padding targets so their (masked) rows stay finite.
        self.filler_target = int(self.sampler.support[0])

    @classmethod
    def build_criterion(cls, cfg, task):
        layer = _configured_output_layer(cfg)  # fail before training when the config tells
        if layer in OUTPUT_LAYERS and not OUTPUT_LAYERS[layer].supports_sampling:
            raise _no_sampling_error(cls.name, f"--output-layer {layer}")
        return super().build_criterion(cfg, task)

    # -- pieces ------------------------------------------------------------------------------
    def output_layer(self, model):
        layer = getattr(getattr(model, "decoder", None), "compact_output", None)
        if layer is None:
            raise _no_sampling_error(
                self.name, f"model {type(model).__name__} (no fairseq-compactemb output layer)")
        if not layer.supports_sampling:
            name = getattr(layer, "registry_name", type(layer).__name__)
            raise _no_sampling_error(self.name, f"--output-layer {name}")
        return layer

    def draw_noise(self):
        """Re-seed the sampler from the global RNG (see module docstring) and draw S ids."""
        seed = int(torch.randint(0, 2 ** 62, (1,)))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            seed += 7919 * torch.distributed.get_rank()
        self.sampler.manual_seed(seed)
        return self.sampler.sample(self.noise_samples)

    def sampled_loss(self, target_logits, noise_logits, targets, noise_ids, target_log_q, noise_log_q):
        """``[N], [N, S], [N], [S], [N], [S]`` -> per-token loss ``[N]`` (float32)."""
        raise NotImplementedError

    def sampled_forward(self, model, hidden, target):
        """hidden ``[B, T, H]``, target ``[B, T]`` -> per-token sampled loss ``[B*T]`` (0 at padding)."""
        layer = self.output_layer(model)
        noise = self.draw_noise()
        hidden = hidden.reshape(-1, hidden.size(-1))  # [N, H]
        target = target.reshape(-1)  # [N]
        pad = target.eq(self.padding_idx)
        target = target.masked_fill(pad, self.filler_target)
        # S drawn words (log Q from the sampler) + the never-drawn specials, scored with Q = 1
        noise_ids = torch.cat([noise.ids, self.always_scored])  # [S + 2], CPU
        noise_log_q = torch.cat([self.sampler.log_expected_count(noise.ids, noise.num_tries),
                                 torch.zeros(len(self.always_scored), dtype=torch.float64)])
        noise_ids = noise_ids.to(hidden.device, non_blocking=True)
        noise_log_q = noise_log_q.to(hidden.device, torch.float32, non_blocking=True)
        target_log_q = self.sampler.log_expected_count(target, noise.num_tries).float()
        target_logits, noise_logits = layer.score_sample(hidden, target, noise_ids)
        loss = self.sampled_loss(target_logits, noise_logits, target, noise_ids, target_log_q, noise_log_q)
        return loss.masked_fill(pad, 0.0)

    # -- fairseq API -------------------------------------------------------------------------
    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        target = model.get_targets(sample, net_output)
        if model.training:
            loss = self.sampled_forward(model, net_output[0], target)
        else:  # exact: the normalised log-probabilities of the targets (target-only path)
            lp = target_log_probs(model, net_output, target)
            loss = (-lp).masked_fill(target.eq(self.padding_idx), 0.0).reshape(-1)
        if reduce:
            loss = loss.sum()
        sample_size, logging_output = token_logging_output(loss.data.sum(), sample, self.sentence_avg)
        if not model.training:  # the exact full-softmax loss, for nll_loss / ppl
            logging_output.update({"nll_loss": loss.data.sum(), "exact_ntokens": sample["ntokens"]})
        return loss, sample_size, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        """``loss`` (base 2, per ``sample_size``); ``nll_loss`` and ``ppl`` from the exact batches."""
        def total(key):
            return utils.item(sum(log.get(key, 0) for log in logging_outputs))

        sample_size = total("sample_size")
        metrics.log_scalar("loss", total("loss") / max(sample_size, 1) / math.log(2), sample_size, round=3)
        exact_ntokens = total("exact_ntokens")
        if exact_ntokens > 0:
            metrics.log_scalar("nll_loss", total("nll_loss") / exact_ntokens / math.log(2), exact_ntokens,
                               round=3)
            metrics.log_derived("ppl", lambda meters: utils.get_perplexity(meters["nll_loss"].avg))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
