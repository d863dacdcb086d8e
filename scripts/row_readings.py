#!/usr/bin/env python3
"""What ``scripts/reduced_report.py`` reads again from each kept row's files, beside its results
line: the day and CPU it ran on, why it stopped and its training seconds (with today's rules), and
the seconds per update measured side by side by ``scripts/row_pace.py``.

Each ``add_*`` takes ``{recipe: {row: fields}}`` and the repository root, and fills fields in place.
"""
import re
from pathlib import Path

from stop_reason import stop_reason
from train_seconds import RUN_START, training_seconds


def ran_on(log: Path) -> str:
    """'2026-12-06, Intel Xeon': the day and CPU a kept row ran on, from the header line that
    ``examples/save_row.sh`` writes into its log ('' for a log without one). train_s depends on it.
    The first saves wrote the row's commands above that line, so the first 20 lines are searched."""
    try:
        with open(log, errors="replace") as f:
            head = "".join(line for _, line in zip(range(20), f))
    except OSError:
        return ""
    m = re.search(r"^# .*saved (\d{4}-\d\d-\d\d) [\d:]+ UTC on (.+)$", head, re.MULTILINE)
    return f"{m.group(1)}, {short_cpu(m.group(2))}" if m else ""


def short_cpu(model_name: str) -> str:
    """'Intel(R) Xeon(R) Processor' -> 'Intel Xeon' (/proc/cpuinfo's model name, trademarks dropped)."""
    return " ".join(re.sub(r"\((R|TM)\)|\bProcessor\b|\bCPU\b", "", model_name).split())


def add_ran_on(tables, root: Path) -> None:
    """Put each kept row's day and CPU into its table as the 'ran' column (name the CPU with every
    figure); a row only in a --work folder says 'not kept yet', a kept log without the header
    (kept before save_row.sh wrote one) 'not recorded'."""
    for recipe, table in tables.items():
        for row, fields in table.items():
            log = root / "examples" / recipe / "results" / f"{row}.log"
            fields.setdefault("ran", (ran_on(log) or "not recorded") if log.is_file() else "not kept yet")


def add_pace(tables, root: Path) -> None:
    """Put the seconds per update that ``scripts/row_pace.py --out examples/<recipe>/row_pace.tsv``
    measured side by side in one run into the rows that ran, as 'pace_s' with its 'pace_ran' (day,
    CPU): a speed comparison that holds where the rows' own wall times do not compare."""
    for recipe, table in tables.items():
        path = root / "examples" / recipe / "row_pace.tsv"
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            item, seconds, ran = (line.split("\t") + ["", ""])[:3]
            row = item.split(":", 1)[-1]
            if line.startswith("#") or item == "row" or row not in table or not item.startswith(recipe + ":"):
                continue
            day, _, cpu = ran.partition(", ")
            table[row].update(pace_s=seconds, pace_ran=f"{day}, {short_cpu(cpu)}")


def add_log_readings(tables, root: Path) -> None:
    """Read two fields again from each kept row's log, with today's rules: why it stopped
    (``scripts/stop_reason.py``: a cap within ``--patience`` of the best validation counts as still
    improving) and, for a row resumed after a cut, its training seconds summed over every run
    (``scripts/train_seconds.py``; rows kept before 2026-12-06 recorded their last run's only). A
    resumed row whose log cannot time every run keeps its recorded figure, marked as a lower bound."""
    for recipe, table in tables.items():
        for row, fields in table.items():
            log = root / "examples" / recipe / "results" / f"{row}.log"
            if not log.is_file():
                continue
            text = log.read_text(errors="replace")
            stopped = stop_reason(text)
            if stopped:
                fields["stopped"] = stopped
            started = max(text.count(RUN_START), len(re.findall(r"^\+ fairseq-train", text, re.M)))
            if started > 1 and fields.get("train_s"):
                seconds = training_seconds(text)
                fields["train_s"] = str(seconds) if seconds is not None else f">= {fields['train_s']} (resumed)"
