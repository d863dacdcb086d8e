"""Build any registered architecture for a given vocabulary size, without data, to count its
parameters (used by the preset tests and ``python -m fairseq_compactemb.report``).

Parameters are allocated on PyTorch's ``meta`` device, so a 250M-parameter preset costs no
memory and builds in seconds.
"""
import argparse
from typing import Sequence

import torch


def fake_dictionary(vocab_size: int):
    """A fairseq Dictionary of exactly ``vocab_size`` symbols (4 specials + words)."""
    from fairseq.data import Dictionary

    d = Dictionary()
    for i in range(vocab_size - len(d)):
        d.add_symbol(f"w{i}", n=vocab_size - i)
    assert len(d) == vocab_size
    return d


def build_for_vocab(arch: str, vocab_size: int, extra_args: Sequence[str] = (), meta: bool = True):
    """The model of ``--arch arch`` (plus ``extra_args`` flags) for a ``vocab_size`` dictionary
    (shared by source and target for translation architectures)."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.models import ARCH_MODEL_REGISTRY, FairseqEncoderDecoderModel

    from .user_dir import user_dir

    is_mt = issubclass(ARCH_MODEL_REGISTRY[arch], FairseqEncoderDecoderModel)  # ours or stock fairseq
    task = "translation" if is_mt else "language_modeling"
    parser = options.get_training_parser()
    argv = ["/nonexistent", "--task", task, "--arch", arch, "--user-dir", user_dir(), *map(str, extra_args)]
    if is_mt:
        argv += ["--source-lang", "src", "--target-lang", "tgt"]
    args = options.parse_args_and_arch(parser, argv)
    cfg = convert_namespace_to_omegaconf(args)
    dictionary = fake_dictionary(vocab_size)
    task_cls = tasks.TASK_REGISTRY[task]
    task_obj = task_cls(cfg.task, dictionary, dictionary)
    with torch.device("meta") if meta else torch.device("cpu"):
        return task_obj.build_model(cfg.model)


def count_parameters(model) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fairseq_compactemb.model_size", description=__doc__)
    p.add_argument("arch")
    p.add_argument("--vocab-size", type=int, required=True)
    ns, extra = p.parse_known_args(argv)
    model = build_for_vocab(ns.arch, ns.vocab_size, extra)
    print(f"{ns.arch} V={ns.vocab_size:,}: {count_parameters(model):,} parameters")


if __name__ == "__main__":
    main()
