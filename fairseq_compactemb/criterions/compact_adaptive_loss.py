"""``compact_adaptive_loss``: training loss of ``--output-layer adaptive`` (adaptive softmax).

Thin glue around :meth:`AdaptiveSoftmaxOutput.loss`: the decoder returns hidden states, the
output layer evaluates the head on every token and each tail only on the tokens whose target
falls in it. Unlike fairseq's ``adaptive_loss`` it works with ``--ddp-backend pytorch_ddp`` /
``c10d``: the output layer keeps every parameter in the autograd graph on every call, so DDP
never waits for a gradient that does not come. Logs like ``cross_entropy`` (loss in base 2,
``ppl``), so numbers are directly comparable with the softmax baseline.
"""
import math
from dataclasses import dataclass

from fairseq import utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics
from omegaconf import II

from ..modules.errors import CompactConfigError
from .token_logging import token_logging_output


@dataclass
class CompactAdaptiveLossConfig(FairseqDataclass):
    sentence_avg: bool = II("optimization.sentence_avg")


def adaptive_output_layer(model):
    """The model's adaptive softmax, or a :class:`CompactConfigError` saying what to change."""
    decoder = getattr(model, "decoder", None)
    layer = getattr(decoder, "compact_output", None)
    if layer is None:
        got = f"model {type(model).__name__} without a fairseq-compactemb output layer"
    elif getattr(layer, "supports_sampling", True) or not callable(getattr(layer, "loss", None)):
        got = getattr(layer, "registry_name", type(layer).__name__)
    else:
        return layer
    raise _needs_adaptive(got)


def _needs_adaptive(got: str) -> CompactConfigError:
    return CompactConfigError(
        "--criterion", f"compact_adaptive_loss needs --output-layer adaptive, got {got}",
        "use --output-layer adaptive or --criterion cross_entropy",
    )


def configured_output_layer(cfg):
    """``--output-layer`` of the run this criterion config belongs to (``None`` when the config
    is not part of a full fairseq/hydra config, e.g. built by hand in a test)."""
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(cfg, DictConfig):
        return None
    try:
        return OmegaConf.select(cfg._get_root(), "model.output_layer", default=None)
    except Exception:  # partial or legacy configs: the check at forward still applies
        return None


@register_criterion("compact_adaptive_loss", dataclass=CompactAdaptiveLossConfig)
class CompactAdaptiveLoss(FairseqCriterion):
    """Summed NLL of the adaptive softmax over the non-padding target tokens."""

    def __init__(self, task, sentence_avg):
        super().__init__(task)
        self.sentence_avg = sentence_avg

    @classmethod
    def build_criterion(cls, cfg, task):
        # fairseq builds the criterion without the model: read --output-layer from the full
        # config so the mistake is reported before the first training step
        layer = configured_output_layer(cfg)
        if layer is not None and str(layer) != "adaptive":
            raise _needs_adaptive(str(layer))
        return super().build_criterion(cfg, task)

    def forward(self, model, sample, reduce=True):
        # The model is not passed to build_criterion, so the layer is checked here, before
        # the first forward pass does any work.
        layer = adaptive_output_layer(model)
        net_output = model(**sample["net_input"])
        hidden = net_output[0]
        target = model.get_targets(sample, net_output).reshape(-1)
        loss = layer.loss(hidden.reshape(-1, hidden.size(-1)), target, ignore_index=self.padding_idx,
                          reduction="sum" if reduce else "none")
        sample_size, logging_output = token_logging_output(loss.data, sample, self.sentence_avg)
        return loss, sample_size, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        """Aggregate logging outputs (base-2 loss, ``nll_loss`` per token, derived ``ppl``)."""
        loss_sum = utils.item(sum(log.get("loss", 0) for log in logging_outputs))
        ntokens = utils.item(sum(log.get("ntokens", 0) for log in logging_outputs))
        sample_size = utils.item(sum(log.get("sample_size", 0) for log in logging_outputs))
        metrics.log_scalar("loss", loss_sum / sample_size / math.log(2), sample_size, round=3)
        if sample_size != ntokens:
            metrics.log_scalar("nll_loss", loss_sum / ntokens / math.log(2), ntokens, round=3)
            metrics.log_derived("ppl", lambda meters: utils.get_perplexity(meters["nll_loss"].avg))
        else:
            metrics.log_derived("ppl", lambda meters: utils.get_perplexity(meters["loss"].avg))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
