#!/usr/bin/env python3
"""Where the reduced-scale campaign stands: one line per row, for the issue notes.

    bash examples/run_reduced.sh --status            # the whole queue of run_reduced.sh
    python scripts/campaign_status.py [--work DIR] [--root REPO] recipe:row [recipe:row ...]

Each row is one of
  kept     its results are in examples/RECIPE/results/ROW.tsv (score, epochs, why it stopped)
  running  a process trains or evaluates it now (its --save-dir is on a command line)
  resumes  its work folder holds checkpoint_last.pt: the same command continues it
  queued   nothing of it yet
with the last validation of a row in progress, read from WORK/RECIPE/ROW/logs/train.ROW.log, and
its pace: the median minutes between two validations and how long the epochs left under its
--max-epoch would take at that pace (an upper bound: the lr floor or --patience may stop it sooner).
A row that resumes is measured against the cap its recipe sets today (its --dry-run command), which
is the one the same command continues it under, not the one its log started with.
"""
import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import read_results  # noqa: E402
from stop_reason import validations  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def kept_summary(tsv: Path) -> str:
    """'ppl 93.00, 18 epochs, lr floor' from a kept row's results file."""
    fields = read_results([tsv])[1].get(tsv.stem, {})
    score = next((f"{k} {fields[k]}" for k in ("ppl", "BLEU") if k in fields), "no score")
    parts = [score] + ([f"{fields['epochs']} epochs"] if "epochs" in fields else [])
    return ", ".join(parts + ([fields["stopped"]] if "stopped" in fields else []))


def command_lines() -> list:
    """The command lines of this machine's processes (empty where /proc is not there)."""
    out = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            out.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # the process ended meanwhile
            pass
    return out


def recipe_cap(root: Path, recipe: str, row: str):
    """The last ``--max-epoch`` of the row's ``fairseq-train`` command in its recipe today (``--reduced
    --dry-run``, into a scratch folder), or None where the recipe prints none."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            out = subprocess.run(["bash", str(root / "examples" / recipe / "run.sh"), "--reduced", "--dry-run",
                                  "--rows", row, "--work", scratch], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            return None
    train = [line for line in out.splitlines() if "fairseq-train" in line]
    caps = re.findall(r"--max-epoch '?(\d+)", train[-1]) if train else []
    return int(caps[-1]) if caps else None


def pace(text: str, last_epoch: int, cap=None) -> str:
    """', ~6.4 min per epoch, at most 21 epochs (~2.2 h) to the cap of 25' from a fairseq-train log
    ('' before two validations of one run). Steps are timed within each run of the log (a
    resumed row starts a new run with its config line), so the gap of a cut-off row is not one.
    ``cap``: the epoch cap to count to (default: the last one the log was started with)."""
    steps = []
    for run in re.split(r"\n(?=\S+ \S+ \| INFO \| fairseq_cli.train \| \{)", text):
        stamps = [datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S") for line in run.splitlines()
                  if "| valid on " in line and re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line)]
        steps += [(b - a).total_seconds() / 60 for a, b in zip(stamps, stamps[1:])]
    if not steps or statistics.median(steps) <= 0:
        return ""
    minutes = statistics.median(steps)
    out = f", ~{minutes:.1f} min per epoch"
    if cap is None:
        logged = re.findall(r"'max_epoch': (\d+)", text)
        cap = int(logged[-1]) if logged else None
    if cap:
        left = max(cap - last_epoch, 0)
        out += f", at most {left} epochs (~{left * minutes / 60:.1f} h) to the cap of {cap}"
    return out


def row_status(recipe: str, row: str, work: Path, root: Path, commands: list) -> str:
    kept = root / "examples" / recipe / "results" / f"{row}.tsv"
    if kept.is_file():
        return f"kept     {recipe}:{row}  {kept_summary(kept)}"
    folder = work / recipe / row
    save_dir = folder / "ckpt" / row
    log = folder / "logs" / f"train.{row}.log"
    progress = ""
    running = any(f" {folder}/" in c or f" {folder} " in c + " " for c in commands)
    if log.is_file():
        text = log.read_text(errors="replace")
        valid = validations(text)
        if valid:
            last = valid[-1]
            progress = f"  epoch {int(last.get('epoch', 0))}, valid ppl {last.get('ppl', float('nan')):.2f}"
            # a running row keeps the cap it was started with; one that resumes gets today's recipe's
            cap = None if running else recipe_cap(root, recipe, row)
            progress += pace(text, int(last.get("epoch", 0)), cap)
        progress += f", log written {(time.time() - log.stat().st_mtime) / 60:.0f} min ago"
    # the recipe's bash (--work FOLDER) or its fairseq processes (FOLDER/data-bin, FOLDER/ckpt/ROW)
    if running:
        return f"running  {recipe}:{row}{progress}"
    if (save_dir / "checkpoint_last.pt").is_file():
        return f"resumes  {recipe}:{row}{progress} (checkpoint_last.pt in {save_dir})"
    return f"queued   {recipe}:{row}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="+", metavar="recipe:row")
    ap.add_argument("--work", type=Path, default=Path.home() / "compactemb-work" / "reduced",
                    help="the campaign's work folder (run_reduced.sh --work)")
    ap.add_argument("--root", type=Path, default=REPO, help="the checkout whose examples/*/results are read")
    args = ap.parse_args(argv)
    bad = [r for r in args.rows if r.count(":") != 1 or "" in r.split(":")]
    if bad:
        ap.error(f"{bad[0]!r} is not recipe:row (e.g. ptb_slim:in300-std)")
    commands = command_lines()
    lines = [row_status(*item.split(":"), args.work.resolve(), args.root, commands) for item in args.rows]
    print("\n".join(lines))
    counts = {state: sum(line.startswith(state) for line in lines) for state in ("kept", "running", "resumes", "queued")}
    print(", ".join(f"{n} {state}" for state, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
