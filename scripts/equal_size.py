#!/usr/bin/env python3
"""Size a baseline to the parameter count of a compact model (the "equal size" baselines of the
slim-embeddings paper: SM, a smaller standard model, and PM, a low-rank projection model).

    python scripts/equal_size.py --vocab-size 10000 \
        --target "compact_lstm_lm_ptb_650 --input-embedding slim --slim-pool 1000 ..." \
        --baseline "compact_lstm_lm_ptb_650 --input-embedding standard --decoder-hidden-size {}" \
        --range 8:650

prints the integer ``{}`` in ``--range`` whose baseline has the parameter count closest to the
target's (models are built on the meta device, so this costs no memory; the count is assumed to
grow with ``{}``, found by bisection). Details go to stderr, the number alone to stdout.
"""
import argparse
import shlex
import sys

from fairseq_compactemb.model_size import build_for_vocab, count_parameters


def params(spec: str, vocab: int) -> int:
    arch, *flags = shlex.split(spec)
    return count_parameters(build_for_vocab(arch, vocab, flags))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab-size", type=int, required=True)
    p.add_argument("--target", required=True, help="ARCH and flags of the compact model")
    p.add_argument("--baseline", required=True, help="ARCH and flags with one {} to size")
    p.add_argument("--range", default="1:4096", help="LO:HI search range of {}")
    p.add_argument("--multiple-of", type=int, default=1, help="only values divisible by this (e.g. heads)")
    args = p.parse_args(argv)
    import logging
    import warnings
    logging.disable(logging.INFO)
    warnings.filterwarnings("ignore")  # hydra's deprecation notes, once per model built
    target = params(args.target, args.vocab_size)
    lo, hi = (int(x) for x in args.range.split(":"))
    m = args.multiple_of
    lo, hi = -(-lo // m), hi // m  # search over multiples of m
    cache = {}

    def size(k):
        if k not in cache:
            cache[k] = params(args.baseline.format(k * m), args.vocab_size)
        return cache[k]

    while hi - lo > 1:  # invariant: answer in [lo, hi]
        mid = (lo + hi) // 2
        if size(mid) <= target:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda k: abs(size(k) - target))
    print(f"target {target:,} parameters; baseline {{}}={best * m}: {size(best):,} parameters", file=sys.stderr)
    print(best * m)


if __name__ == "__main__":
    main()
