#!/usr/bin/env python3
"""Seconds per training update of reduced-scale language-model rows, before running them: the
campaign's planning figure (which rows fit a session; see examples/README.md).

    python scripts/row_pace.py wikitext103_adaptive:sm wikitext103_adaptive:asm --vocab 33280
    python scripts/row_pace.py ptb_slim:in300-std ptb_slim:k1 --vocab 10008 --repeats 5

Each row's ``fairseq-train`` command is taken from its recipe's dry run (``run.sh --reduced
--dry-run --rows ROW``); the model and criterion are built from exactly those flags (fairseq's
parser, task and criterion) for a dictionary of ``--vocab`` words whose counts fall as 1 / rank,
and one whole update runs as fairseq's trainer runs it - forward, backward, gradient clipping
(``--clip-norm``) and the step of the row's ``--optimizer`` - on a batch of Zipfian tokens of the
row's shape (``--batch-size`` or ``--max-tokens`` sequences of ``--tokens-per-sample``, times
``--update-freq``). Rows are timed in turn, every repeat once each, and the median is printed, so
load from other processes hits all rows alike: name the CPU and the load with every figure.
Language-model recipes only (the translation rows need a source side).

``--out FILE`` also keeps the figures as a TSV (``recipe:row``, seconds per update, the day and
CPU): ``examples/<recipe>/row_pace.tsv`` is where ``scripts/row_readings.py`` (for the report) reads them, for
a claim about training speed whose rows ran on different machines or were resumed (their own
wall times then do not compare).
"""
import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_timing  # noqa: E402  (the benchmark's interleaved timing and machine description)
import benchmark_training  # noqa: E402  (its Zipfian data and flag-built models)

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


def update(model, criterion, optimizer, clip_norm: float, update_freq: int, sample) -> None:
    """One update as fairseq's trainer runs it: gradients cleared; forward and backward of
    ``update_freq`` batches (``--update-freq``; the same batch again here); the summed gradients
    divided by the summed sample size; their norm clipped to ``clip_norm`` (only measured when
    0, as fairseq does); the optimizer's step."""
    model.train()
    optimizer.zero_grad()
    sample_size = 0
    for _ in range(update_freq):
        loss, size, _ = criterion(model, sample)
        loss.backward()
        sample_size += size
    optimizer.multiply_grads(1.0 / (sample_size or 1.0))
    optimizer.clip_grad_norm(clip_norm)
    optimizer.step()


def trainer_parts(dictionary, flags: list):
    """(model, criterion, optimizer, clip norm, update freq) exactly as fairseq-train builds them
    from ``flags``: the optimizer over the trainable parameters of the model and the criterion."""
    from fairseq import optim

    cfg = benchmark_training.lm_config(flag(flags, "--arch"), flags)
    model, criterion = benchmark_training.build_lm(dictionary, flag(flags, "--arch"), flags, cfg)
    params = [p for m in (model, criterion) for p in m.parameters() if p.requires_grad]
    return (model, criterion, optim.build_optimizer(cfg.optimizer, params), float(cfg.optimization.clip_norm),
            int(cfg.optimization.update_freq[0]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="+", metavar="recipe:row")
    ap.add_argument("--vocab", type=int, required=True, help="dictionary size of the row's data (fairseq's, specials included)")
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="passed to the recipe's dry run")
    ap.add_argument("--out", type=Path, help="also write the figures here as TSV (e.g. examples/RECIPE/row_pace.tsv)")
    ap.add_argument("--note", default="", help="kept in --out's header, e.g. the load: 'beside two training runs'")
    args = ap.parse_args(argv)
    bad = [r for r in args.rows if r.count(":") != 1 or "" in r.split(":")]
    if bad:
        ap.error(f"{bad[0]!r} is not recipe:row (e.g. ptb_slim:in300-std)")
    if args.out and not args.out.parent.is_dir():  # said before the minutes of timing, not after
        ap.error(f"--out {args.out}: no folder {args.out.parent}; create it or give another path")
    benchmark_timing.quiet_imports()
    dictionary = benchmark_training.zipf_dictionary(args.vocab)
    contenders, shapes = {}, {}
    for item in args.rows:
        flags = train_flags(*item.split(":"), args.data)
        if flag(flags, "--task", "language_modeling") != "language_modeling":
            sys.exit(f"row_pace.py: {item} trains --task {flag(flags, '--task')}; only language-model rows are timed")
        length = int(flag(flags, "--tokens-per-sample", 512))
        batch = int(flag(flags, "--batch-size", 0)) or max(1, int(flag(flags, "--max-tokens", 4096)) // length)
        model, criterion, optimizer, clip, freq = trainer_parts(dictionary, flags)
        sample = benchmark_training.zipf_batch(dictionary, batch, length)
        contenders[item] = lambda m=model, c=criterion, o=optimizer, n=clip, f=freq, s=sample: update(m, c, o, n, f, s)
        shapes[item] = (batch * freq, length)
    times = benchmark_timing.interleaved(contenders, args.repeats)
    info = benchmark_timing.machine()  # the CPU and torch threads, as the benchmark names them
    cpu, threads = info["cpu"], info["torch_threads"]
    print(f"{cpu}, {threads} torch thread(s), V = {args.vocab:,}")
    for item, ts in times.items():
        batch, length = shapes[item]
        print(f"{item:40s} {benchmark_timing.med(ts):7.3f} s per update ({batch} x {length} tokens, forward, backward, "
              "clipping, optimizer step)")
    if args.out:
        ran = f"{time.strftime('%Y-%m-%d', time.gmtime())}, {cpu}"
        lines = [f"# python scripts/row_pace.py {shlex.join(argv if argv is not None else sys.argv[1:])}",
                 f"# {threads} torch thread(s), {args.repeats} interleaved repeats, medians; ran {ran}"
                 + (f"; {args.note}" if args.note else ""),
                 "row\ts_per_update\tran"]
        lines += [f"{item}\t{benchmark_timing.med(ts):.4f}\t{ran}" for item, ts in times.items()]
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
