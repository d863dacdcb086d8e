#!/usr/bin/env python3
"""Wall seconds a fairseq-train row spent training, summed over every run of a resumed row.

    python scripts/train_seconds.py TRAIN_LOG

fairseq's ``wall`` (the epoch summary's ``| train | epoch ... | wall N``) counts from the start
of its process: a row cut off and resumed from ``checkpoint_last.pt`` starts it again at 0, so
the last ``wall`` of the log is only the last run's. This sums each run's last ``wall``. On the
excerpt ``examples/save_row.sh`` keeps (no train lines; the validations listed before the
config lines), each run is timed from its config line (``fairseq_cli.train | {...}``, printed
when the process starts) to the last validation logged before the next run started. Both count
the wall clock, so minutes a run spent paused (``kill -STOP``) are in; the part of a run after
its last finished epoch is not (that work was lost with it).

Reads fairseq's ``--log-format simple`` (the recipes'). Prints nothing when the log holds no
timed epoch, or when an excerpt's validations reach back before the first run start it kept.
"""
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stop_reason import read_train_log  # noqa: E402

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \| INFO \| ")
RUN_START = "| fairseq_cli.train | {"   # the config fairseq-train logs first, once per process
WALL = re.compile(r"\| train \| epoch .*\| wall (\d+)")


def training_seconds(text: str) -> Optional[int]:
    """Summed training wall seconds of every run in ``text`` (a fairseq-train log, or the kept
    excerpt of one), or None when no epoch was timed."""
    total, last, timed = 0, 0, False
    for line in text.splitlines():  # fairseq's own clock, exact: each run's last wall
        if RUN_START in line:
            total, last = total + last, 0
        m = WALL.search(line)
        if m:
            last, timed = int(m.group(1)), True
    if timed:
        return total + last
    # the kept excerpt lists the validations before the config lines: place each validation in
    # the run that started last before it
    starts, ends = [], []
    for line in text.splitlines():
        m = STAMP.match(line)
        if m:
            when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
            if RUN_START in line:
                starts.append(when)
            elif "| valid on " in line:
                ends.append(when)
    starts.sort()
    if not starts or not ends or min(ends) < starts[0]:
        return None  # a validation before the first run's start: an earlier run's start was not kept
    last_of_run = {}
    for when in ends:
        began = max(s for s in starts if s <= when)
        last_of_run[began] = max(when, last_of_run.get(began, when))
    return int(sum((end - began).total_seconds() for began, end in last_of_run.items()))


def main(argv=None):
    seconds = training_seconds(read_train_log(argv, "train_seconds.py"))
    if seconds is not None:
        print(seconds)


if __name__ == "__main__":
    main()
