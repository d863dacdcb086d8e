"""Compress a trained checkpoint: its ``standard`` input table and ``softmax`` output matrix
become compact layers, initialised from the trained weights (``modules/fit_layers.py``).

    python -m fairseq_compactemb.compress IN.pt OUT.pt --input-embedding slim --output-layer slim \\
        [--slim-pool 1/8 --output-slim-pool 1/8 --slim-subvectors 10 ...] [--data DATA-BIN]

Any architecture of the plugin (LSTM, AWD-LSTM, transformer LM, Transformer-XL, translation
transformer), tied or untied, and stock fairseq's ``transformer_lm`` / ``transformer``
checkpoints (read as the plugin's equivalents, checked to score the same: ``stock_import.py``).
Every other tensor is copied as trained. OUT.pt is an ordinary checkpoint of the plugin's
architecture with the new flags in its config: it loads in
``fairseq-eval-lm``, ``fairseq-generate`` and ``from_pretrained`` as it is, and fine-tunes with
``fairseq-train --finetune-from-model OUT.pt`` plus the same compact flags. The optimizer state
is not carried over (it belongs to the old parameters).

The fits are weighted by the dictionary's word counts (``--fit-weights``): frequent words are
reproduced best, as perplexity weighs them. The output is untied unless ``--tie-input-output``
is given (then the output is fitted through the input, e.g. slim with ``--slim-assignment
disjoint``). DeFINE has no closed-form fit and is refused.
"""
import argparse
import copy
import os
import sys
import time
from argparse import Namespace

import torch

from .modules import CompactCheckpointError, CompactConfigError, EmbeddingOptions, describe_parameters
from .modules.fit_layers import fit_input_embedding, fit_output_layer
from .modules.softmax_output import SoftmaxOutput
from .modules.standard_embedding import StandardEmbedding
from .modules.table_fits import FLAT_KMEANS_LIMIT, KMEANS_METHODS, kmeans_backend
from .stock_import import import_stock, is_stock

_FLAGS = [f for f in EmbeddingOptions.__dataclass_fields__.values()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fairseq_compactemb.compress", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="checkpoint with --input-embedding standard and --output-layer softmax")
    p.add_argument("output", help="where to write the compressed checkpoint")
    p.add_argument("--data", help="data-bin with the dictionaries (default: the one recorded in the checkpoint)")
    p.add_argument("--fit-weights", choices=["counts", "sqrt", "uniform"], default="counts",
                   help="weight of each word in the fits: its dictionary count, the count's square root, or 1")
    p.add_argument("--kmeans-iters", type=int, default=20, help="k-means iterations (slim)")
    p.add_argument("--kmeans", choices=KMEANS_METHODS, default="auto",
                   help="slim fits: flat k-means, or two levels (coarse cells, then k-means in each: "
                        "sub-quadratic in the vocabulary); auto: two levels once points x centroids exceeds "
                        f"{FLAT_KMEANS_LIMIT:.0e}")
    for f in _FLAGS:
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            p.add_argument(flag, action="store_true", default=None, help=f.metadata.get("help"))
        else:
            p.add_argument(flag, default=None, help=f.metadata.get("help"))
    return p


def _get(cfg, name, default=None):
    return getattr(cfg, name, default) if isinstance(cfg, Namespace) else cfg.get(name, default)


def _put(cfg, name, value) -> None:
    if isinstance(cfg, Namespace):
        setattr(cfg, name, value)
    else:
        cfg[name] = value


def _convert(field, text):
    if text is None or field.type in (str, "str", "Optional[str]") or isinstance(text, bool):
        return text
    if "int" in str(field.type):
        return int(text)
    if "float" in str(field.type):
        return float(text)
    return text


def _embedding_modules(model):
    """(input embedding of the decoder, output layer, encoder input embedding or None)."""
    dec = model.decoder
    enc = getattr(getattr(model, "encoder", None), "embed_tokens", None)
    return dec.embed_tokens, dec.compact_output, enc


def _prefixes(model, modules):
    ids = {id(m) for m in modules if m is not None}
    return tuple(name + "." for name, m in model.named_modules(remove_duplicate=False) if id(m) in ids and name)


def _count(model) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def _progress_bar():
    from tqdm import tqdm

    bars = {}

    def progress(step, done, total):
        key = step.split(":")[0]
        bar = bars.get(key)
        if bar is None:
            bar = bars[key] = tqdm(total=total, desc=step, file=sys.stderr, leave=True)
        bar.set_description(step)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            bars.pop(key)

    return progress


def compress(args) -> dict:
    from fairseq import checkpoint_utils, tasks
    from omegaconf import OmegaConf, open_dict

    state = checkpoint_utils.load_checkpoint_to_cpu(args.input)
    cfg = state["cfg"]
    if args.data:
        with open_dict(cfg.task):
            cfg.task.data = args.data
    data = cfg.task.data
    if not os.path.isdir(str(data)):
        raise CompactConfigError("--data", f"the data directory {data!r} recorded in {args.input} does not exist",
                                 "pass --data DATA-BIN (the folder with the dictionaries the model was trained on)")
    task = tasks.setup_task(cfg.task)
    if is_stock(cfg.model):  # trained without the plugin: read as its equivalent, checked equal
        old, model_cfg = import_stock(state, task, args.input)
        with open_dict(cfg):
            cfg.model = model_cfg
    else:
        old = task.build_model(cfg.model)
        old.load_state_dict(state["model"], strict=True, model_cfg=cfg.model)
    old_in, old_out, old_enc = _embedding_modules(old)
    if not isinstance(old_in, StandardEmbedding) or not isinstance(old_out, SoftmaxOutput):
        raise CompactConfigError(
            "IN.pt", f"{args.input} has --input-embedding {getattr(old_in, 'registry_name', '?')} and --output-layer "
            f"{getattr(old_out, 'registry_name', '?')}; compress starts from a standard input and a softmax output",
            "give a checkpoint trained with --input-embedding standard --output-layer softmax")
    if old_enc is not None and not isinstance(old_enc, StandardEmbedding):
        raise CompactConfigError("IN.pt", f"{args.input}: the encoder's input embedding is not standard",
                                 "give a checkpoint trained with --input-embedding standard")

    new_cfg = copy.deepcopy(cfg.model)
    given = {f.name: _convert(f, getattr(args, f.name)) for f in _FLAGS if getattr(args, f.name) is not None}
    if not given.get("tie_input_output"):  # untied unless asked: the compact pair may not tie
        given.update(tie_input_output=False, no_tie_input_output=True)
    for name, value in given.items():
        _put(new_cfg, name, value)
    if isinstance(new_cfg, Namespace) and _get(new_cfg, "share_all_embeddings", False) and not given.get("tie_input_output"):
        _put(new_cfg, "share_all_ties_output", False)
    new = task.build_model(new_cfg)
    new_in, new_out, new_enc = _embedding_modules(new)

    skip = _prefixes(new, [new_in, new_out, new_enc])
    rest = {k: v for k, v in state["model"].items() if not k.startswith(skip)}
    own = new.state_dict()
    missing = [k for k in own if not k.startswith(skip) and (k not in rest or rest[k].shape != own[k].shape)]
    if missing:
        raise CompactCheckpointError(missing[0], "has no trained counterpart of the same shape in the input checkpoint",
                                     "compress only changes --input-embedding / --output-layer and their flags")
    new.load_state_dict({**own, **{k: rest[k] for k in own if k in rest and not k.startswith(skip)}}, strict=True)

    progress = _progress_bar()
    t0 = time.time()

    def weights_of(dictionary):
        counts = torch.tensor(dictionary.count, dtype=torch.float64).clamp_min(1.0)
        return {"counts": counts, "sqrt": counts.sqrt(), "uniform": None}[args.fit_weights]

    tgt_w = weights_of(task.target_dictionary)
    fits = {"progress": progress, "iters": args.kmeans_iters, "kmeans_method": args.kmeans}
    fit_input_embedding(new_in, old_in.weight.detach(), tgt_w, **fits)
    if new_enc is not None and new_enc is not new_in:
        fit_input_embedding(new_enc, old_enc.weight.detach(), weights_of(task.source_dictionary), **fits)
    tied = bool(_get(new_cfg, "tie_input_output", False))
    fit_output_layer(new_out, old_out.weight.detach(), tgt_w, None if old_out.bias is None else old_out.bias.detach(),
                     tied=tied, **fits)

    state["model"] = new.state_dict()
    with open_dict(cfg):
        cfg.model = new_cfg
    state["cfg"] = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True) if OmegaConf.is_config(cfg) else cfg
    state["last_optimizer_state"] = None
    state["extra_state"] = {k: v for k, v in (state.get("extra_state") or {}).items() if k in ("epoch",)}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    checkpoint_utils.torch_persistent_save(state, args.output)
    report = {"params_before": _count(old), "params_after": _count(new),
              "input": describe_parameters(new_in), "output": describe_parameters(new_out, "output layer"),
              "seconds": time.time() - t0, "kmeans": f"{kmeans_backend()}, {args.kmeans}"}
    print(f"compress: {args.input} -> {args.output}")
    print(f"  parameters: {report['params_before']:,} -> {report['params_after']:,} "
          f"({100.0 * report['params_after'] / report['params_before']:.1f}%)")
    print(f"  input:  {describe_parameters(old_in)} -> {report['input']}")
    print(f"  output: {describe_parameters(old_out, 'output layer')} -> {report['output']}")
    print(f"  fits: {report['seconds']:.1f} s (k-means: {report['kmeans']}, weights: {args.fit_weights})")
    return report


def main(argv=None) -> dict:
    import fairseq_compactemb  # noqa: F401  (registers the models, one-line errors)

    args = _parser().parse_args(argv)
    try:
        return compress(args)
    except (CompactConfigError, CompactCheckpointError) as e:
        sys.stderr.write(f"fairseq-compactemb: error: {e}\n")
        sys.exit(2 if isinstance(e, CompactConfigError) else 1)


if __name__ == "__main__":
    main()
