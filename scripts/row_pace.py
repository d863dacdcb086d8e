#!/usr/bin/env python3
"""Seconds per training update of reduced-scale language-model rows, before running them: the
campaign's planning figure (which rows fit a session; see examples/README.md).

    python scripts/row_pace.py wikitext103_adaptive:sm wikitext103_adaptive:asm --vocab 33280
    python scripts/row_pace.py ptb_slim:in300-std ptb_slim:k1 --vocab 10008 --repeats 5

Each row's ``fairseq-train`` command is taken from its recipe's dry run (``run.sh --reduced
--dry-run --rows ROW``); the model and criterion are built from exactly those flags (fairseq's
parser, task and criterion) for a dictionary of ``--vocab`` words whose counts fall as 1 / rank,
and one update's forward + backward (the optimizer step left out) runs on a batch of Zipfian
tokens of the row's shape (``--batch-size`` or ``--max-tokens`` sequences of
``--tokens-per-sample``). Rows are timed in turn, every repeat once each, and the median is
printed, so load from other processes hits all rows alike: name the CPU and the load with every
figure. Language-model recipes only (the translation rows need a source side).
"""
import argparse
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark  # noqa: E402  (its Zipfian data, flag-built models and interleaved timing)

REPO = Path(__file__).resolve().parents[1]
WORK = "/nonexistent/row_pace"  # the dry run's --work: nothing is written there


def train_flags(recipe: str, row: str, data: str) -> list:
    """The flags of the row's ``fairseq-train`` command in its recipe's reduced dry run, without
    the data folder, ``--user-dir`` and ``--save-dir``."""
    proc = subprocess.run(["bash", str(REPO / "examples" / recipe / "run.sh"), "--reduced", "--dry-run", "--data", data,
                           "--rows", row, "--work", WORK], capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() + proc.stderr.splitlines() if ln.startswith("+ fairseq-train ")]
    if proc.returncode or not lines:
        sys.exit(f"row_pace.py: {recipe}:{row}: its recipe's dry run printed no fairseq-train command "
                 f"(check the recipe and row names: bash examples/{recipe}/run.sh --reduced --dry-run --rows {row})")
    words, flags, i = shlex.split(lines[0])[2:], [], 0
    while i < len(words):
        if words[i] in ("--user-dir", "--save-dir"):
            i += 2
        elif words[i].startswith(WORK):  # the data folder, under the dry run's --work
            i += 1
        else:
            flags.append(words[i])
            i += 1
    return flags


def flag(flags: list, name: str, default=None):
    return flags[flags.index(name) + 1] if name in flags else default


def update(model, criterion, sample) -> None:
    """One update's forward and backward, as fairseq's trainer runs them (gradients cleared first)."""
    model.train()
    model.zero_grad(set_to_none=True)
    criterion(model, sample)[0].backward()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="+", metavar="recipe:row")
    ap.add_argument("--vocab", type=int, required=True, help="dictionary size of the row's data (fairseq's, specials included)")
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="passed to the recipe's dry run")
    args = ap.parse_args(argv)
    bad = [r for r in args.rows if r.count(":") != 1 or "" in r.split(":")]
    if bad:
        ap.error(f"{bad[0]!r} is not recipe:row (e.g. ptb_slim:in300-std)")
    benchmark.quiet_imports()
    dictionary = benchmark.zipf_dictionary(args.vocab)
    contenders, shapes = {}, {}
    for item in args.rows:
        flags = train_flags(*item.split(":"), args.data)
        if flag(flags, "--task", "language_modeling") != "language_modeling":
            sys.exit(f"row_pace.py: {item} trains --task {flag(flags, '--task')}; only language-model rows are timed")
        length = int(flag(flags, "--tokens-per-sample", 512))
        batch = int(flag(flags, "--batch-size", 0)) or max(1, int(flag(flags, "--max-tokens", 4096)) // length)
        model, criterion = benchmark.build_lm(dictionary, flag(flags, "--arch"), flags)
        sample = benchmark.zipf_batch(dictionary, batch, length)
        contenders[item] = lambda m=model, c=criterion, s=sample: update(m, c, s)
        shapes[item] = (batch, length)
    times = benchmark.interleaved(contenders, args.repeats)
    print(f"{benchmark.machine()['cpu']}, {benchmark.torch.get_num_threads()} torch thread(s), V = {args.vocab:,}")
    for item, ts in times.items():
        batch, length = shapes[item]
        print(f"{item:40s} {benchmark.med(ts):7.3f} s per update ({batch} x {length} tokens, forward + backward)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
