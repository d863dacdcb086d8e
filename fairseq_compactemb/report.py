"""Embedding breakdown and compression of a trained checkpoint.

    python -m fairseq_compactemb.report checkpoints/checkpoint_best.pt [--data data-bin/ptb]

Loads the checkpoint the way the fairseq CLIs do (weights_only=True, the training data
directory recorded in the checkpoint unless ``--data`` is given, for the dictionaries) and
prints, for every compact input embedding and output layer in the model, its parameters and
their share of the standard ``V x d`` table it replaces, then the rest of the model.
"""
import argparse
import os

from .modules import CompactInputEmbedding, CompactOutputLayer
from .modules.compact_input import count_unique_parameters


def embedding_report(model) -> str:
    lines, seen = [], set()
    for name, module in model.named_modules():
        if not isinstance(module, (CompactInputEmbedding, CompactOutputLayer)) or id(module) in seen:
            continue
        seen.add(id(module))
        side = "output" if isinstance(module, CompactOutputLayer) else "input"
        shape = (f"{module.vocab_size:,} x {module.input_dim}" if side == "output"
                 else f"{module.num_embeddings:,} x {module.embedding_dim}")
        n, std = module.num_parameters(), module.standard_parameters()
        detail = module.extra_repr()
        lines.append(f"  {name:<28} {side:<6} {getattr(module, 'registry_name', type(module).__name__):<9} "
                     f"{n:>14,} params = {100.0 * n / std:6.2f}% of a standard {shape} table"
                     + (f"  ({detail})" if detail else ""))
    total, embeddings = count_unique_parameters(model), _unique_in(model, seen)
    lines.append(f"  embedding + output layers: {embeddings:,} params (tied weights counted once)")
    lines.append(f"  rest of the model:        {total - embeddings:,} params")
    lines.append(f"  total:                    {total:,} params")
    return "\n".join(lines)


def _unique_in(model, module_ids) -> int:
    """Scalars of the parameters owned by the given modules, each tensor once."""
    params = {}
    for m in model.modules():
        if id(m) in module_ids:
            params.update({id(p): p for p in m.parameters()})
    return sum(p.numel() for p in params.values())


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fairseq_compactemb.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--data", help="data-bin directory with the dictionaries (default: the one used for training)")
    args = p.parse_args(argv)
    from fairseq import checkpoint_utils

    overrides = {"data": args.data} if args.data else {}
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([args.checkpoint], arg_overrides=overrides)
    model = models[0]
    size_mb = os.path.getsize(args.checkpoint) / 2 ** 20
    print(f"{args.checkpoint}: arch {getattr(cfg.model, 'arch', None) or cfg.model._name}, "
          f"{size_mb:.1f} MB on disk, target vocabulary {len(task.target_dictionary):,}")
    print(embedding_report(model))


if __name__ == "__main__":
    main()
