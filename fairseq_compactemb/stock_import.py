"""Read a checkpoint of stock fairseq's ``transformer_lm`` or ``transformer`` (any of their
``--arch`` presets) as the plugin's ``compact_transformer_lm`` / ``compact_transformer`` with a
standard input and a softmax output: the same tensors under the same names, the same function.

This is what lets ``compress`` start from a model trained without the plugin. The attention
stacks are fairseq's own in both, so only the configuration is translated: fairseq's
``--share-decoder-input-output-embed`` becomes ``--tie-input-output``, ``--share-all-embeddings``
keeps its meaning, and an LM keeps the normalisation it was built with (stock fairseq builds
``--arch transformer_lm`` from its config, post-norm unless ``--decoder-normalize-before``). The
translation is then *checked*: both models score the same random batch and must give the same
log-probabilities, otherwise the checkpoint is refused - a conversion is never silently wrong.

Stock models that are already compact (``--adaptive-input``, ``--adaptive-softmax-cutoff``,
``--character-embeddings``) and other stock families (``lstm_lm``, ...) are refused in one line.
"""
import copy
from argparse import Namespace

import torch

from .modules import CompactCheckpointError

STOCK_TO_COMPACT = {"transformer_lm": "compact_transformer_lm", "transformer": "compact_transformer"}
_ALREADY_COMPACT = ("adaptive_input", "adaptive_softmax_cutoff", "character_embeddings")


def model_name(model_cfg) -> str:
    """The registered model (not preset) name of a checkpoint's ``cfg.model``."""
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY

    name = getattr(model_cfg, "_name", None) or getattr(model_cfg, "arch", None)
    return ARCH_MODEL_NAME_REGISTRY.get(name, name)


def is_stock(model_cfg) -> bool:
    from fairseq.models import MODEL_REGISTRY

    name = model_name(model_cfg)
    return name not in MODEL_REGISTRY or not MODEL_REGISTRY[name].__module__.startswith("fairseq_compactemb.")


def compact_config(model_cfg, path: str):
    """``cfg.model`` of a stock checkpoint, translated for the plugin's equivalent model."""
    from omegaconf import OmegaConf

    from .models.compact_transformer_decoder import switched_on

    stock = model_name(model_cfg)
    if stock not in STOCK_TO_COMPACT:
        raise CompactCheckpointError(
            path, f"is a checkpoint of fairseq's {stock!r} model, which compress cannot read",
            "give a checkpoint of the plugin's models or of stock fairseq's transformer_lm / transformer")
    on = switched_on(model_cfg, _ALREADY_COMPACT)
    if on:
        flag = "--" + on[0].replace("_", "-")
        raise CompactCheckpointError(
            path, f"was trained with stock fairseq's {flag}: its embeddings are not a standard table and softmax",
            "compress starts from a standard input table and a full softmax")
    name = STOCK_TO_COMPACT[stock]
    values = dict(vars(model_cfg)) if isinstance(model_cfg, Namespace) else OmegaConf.to_container(model_cfg)
    tied = bool(values.get("share_decoder_input_output_embed")) or bool(values.get("share_all_embeddings"))
    values.update(share_decoder_input_output_embed=False, input_embedding="standard", output_layer="softmax",
                  tie_input_output=tied, no_tie_input_output=not tied)
    if stock == "transformer_lm":
        values["keep_decoder_normalize_before"] = True  # the norm placement it was trained with
    if isinstance(model_cfg, Namespace):
        return Namespace(**{**values, "arch": name, "_name": name})
    values["_name"] = name
    return OmegaConf.create(values)


def _batch(task, translation: bool, generator: torch.Generator) -> dict:
    """Two random sentences of real words (no padding): an LM's or a translation model's input."""
    def words(d, length):
        return torch.randint(d.nspecial, len(d), (2, length), generator=generator)

    tgt = words(task.target_dictionary, 7)
    if not translation:
        return {"src_tokens": tgt, "src_lengths": torch.full((2,), 7)}
    bos = torch.full((2, 1), task.target_dictionary.eos())  # fairseq starts decoding from eos
    return {"src_tokens": words(task.source_dictionary, 6), "src_lengths": torch.full((2,), 6),
            "prev_output_tokens": torch.cat([bos, tgt[:, :-1]], dim=1)}


def import_stock(state: dict, task, path: str):
    """The plugin's model equivalent to the stock checkpoint ``state`` (its ``cfg.model``
    translated, ``state["model"]`` loaded strictly), checked to give the same log-probs.
    Returns ``(model, compact cfg.model)``."""
    cfg = state["cfg"]
    new_cfg = compact_config(cfg.model, path)
    stock = task.build_model(copy.deepcopy(cfg.model))
    stock.load_state_dict(state["model"], strict=True, model_cfg=cfg.model)
    ours = task.build_model(copy.deepcopy(new_cfg))
    try:
        ours.load_state_dict(state["model"], strict=True, model_cfg=new_cfg)
    except RuntimeError as e:  # a stock variant whose tensors the plugin's model does not have
        raise CompactCheckpointError(path, f"its tensors do not fit {new_cfg._name}: {str(e).splitlines()[-1].strip()}",
                                     "train the model with the plugin's architecture instead") from None
    net_input = _batch(task, new_cfg._name == "compact_transformer", torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = stock.eval().get_normalized_probs(stock(**net_input), log_probs=True)
        got = ours.eval().get_normalized_probs(ours(**net_input), log_probs=True)
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
        gap = (got - expected).abs().max().item() if got.shape == expected.shape else float("nan")
        raise CompactCheckpointError(
            path, f"read as {new_cfg._name}, it does not compute what stock fairseq computes "
            f"(log-probs differ by up to {gap:.3g})", "report this checkpoint's flags as a bug; nothing was written")
    return ours, new_cfg
