#!/usr/bin/env python3
"""Validation perplexity per epoch of reduced-scale rows: did a row level off, or stop at its cap
while still falling, and does the gap between two rows close with training?

    python scripts/learning_curves.py examples/ptb_awd_define/results/{awd,awd-define-authors}.log \\
        --out curves.png [--title TEXT]
    python scripts/learning_curves.py ROW_A.log ROW_B.log --table 1,4,8,16,25

``--table`` prints the curves as a markdown table at the given epochs (by default the first, the
last and three between) and, for every row after the first, its gap to the first row in percent.

Reads fairseq-train logs (a kept ``examples/<recipe>/results/<row>.log`` or a work folder's
``logs/train.<row>.log``; the row is the file name without ``train.`` and ``.log``) and plots the
``ppl`` of every ``valid on 'valid' subset`` line against its epoch. A resumed run logs some epochs
again: the last line of an epoch wins. ``scripts/reduced_report.py`` draws one such figure per
experiment beside its table.
"""
import argparse
import re
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Tuple

VALID = re.compile(r"\| valid \| epoch (\d+) \| valid on 'valid' subset \|.*?\| ppl ([0-9.]+) ")


def valid_curve(text: str) -> List[Tuple[int, float]]:
    """``[(epoch, valid ppl)]`` in epoch order; for an epoch logged twice the later line wins."""
    by_epoch = {}
    for m in VALID.finditer(text):
        by_epoch[int(m.group(1))] = float(m.group(2))
    return sorted(by_epoch.items())


def row_name(path: Path) -> str:
    name = path.name[:-len(".log")] if path.name.endswith(".log") else path.name
    return name[len("train."):] if name.startswith("train.") else name


def plot_curves(curves: Dict[str, List[Tuple[int, float]]], path: Path, title: str) -> bool:
    """One line per row (log-scale perplexity); False (nothing drawn) when no row has a curve."""
    curves = {r: c for r, c in curves.items() if c}
    if not curves:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    colours = plt.get_cmap("tab20").colors  # distinct colours for up to 20 rows
    for i, (row, curve) in enumerate(curves.items()):
        ax.plot([e for e, _ in curve], [p for _, p in curve], marker=".", color=colours[2 * i % 20 + (i >= 10)],
                linestyle="-" if i < 10 else "--", label=f"{row} (last {curve[-1][1]:.2f})")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation perplexity (log scale)")
    ax.set_title(textwrap.fill(title, 90), fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the lines, not over them
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def default_epochs(curves: Dict[str, List[Tuple[int, float]]]) -> List[int]:
    """The first and last epoch any row logged and three evenly spaced between."""
    epochs = sorted({e for c in curves.values() for e, _ in c})
    if len(epochs) <= 5:
        return epochs
    first, last = epochs[0], epochs[-1]
    return sorted({first, last} | {round(first + (last - first) * i / 4) for i in (1, 2, 3)})


def markdown_table(curves: Dict[str, List[Tuple[int, float]]], epochs: List[int]) -> str:
    """``| epoch | e1 | e2 ...`` then one line per row (``-`` where it logged no such epoch) and,
    for every row after the first, its relative gap to the first row at each epoch."""
    by_row = {row: dict(c) for row, c in curves.items()}
    lines = ["| epoch | " + " | ".join(str(e) for e in epochs) + " |",
             "|---|" + "---:|" * len(epochs)]
    for row, values in by_row.items():
        lines.append(f"| `{row}` | " + " | ".join(f"{values[e]:.2f}" if e in values else "-" for e in epochs) + " |")
    first_row, first = next(iter(by_row.items()))
    for row, values in list(by_row.items())[1:]:
        gaps = [f"{100 * (values[e] / first[e] - 1):+.1f}%" if e in values and e in first else "-" for e in epochs]
        lines.append(f"| `{row}` vs `{first_row}` | " + " | ".join(gaps) + " |")
    return "\n".join(lines)


def parse_epochs(text: str) -> List[int]:
    try:
        epochs = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        epochs = []
    if not epochs or min(epochs) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of epochs; give e.g. --table 1,4,8,16")
    return epochs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logs", nargs="+", type=Path, help="fairseq-train logs, one per row")
    p.add_argument("--out", type=Path, help="the figure (.png)")
    p.add_argument("--title", default="validation perplexity per epoch")
    p.add_argument("--table", nargs="?", const="default", type=lambda t: t if t == "default" else parse_epochs(t),
                   help="print a markdown table at these epochs (comma-separated; default: first, last, 3 between)")
    args = p.parse_args(argv)
    if args.out is None and args.table is None:
        p.error("nothing to do: give --out FIGURE.png, --table [EPOCHS], or both")
    curves = {}
    for log in args.logs:
        if not log.is_file():
            sys.exit(f"learning_curves.py: {log} not found (a fairseq-train log or a kept results/<row>.log)")
        curves[row_name(log)] = valid_curve(log.read_text(errors="replace"))
        print(f"{row_name(log)}: " + (", ".join(f"{e}:{v:.2f}" for e, v in curves[row_name(log)])
                                      or "no validation lines"))
    if not any(curves.values()):
        sys.exit("learning_curves.py: no \"valid on 'valid' subset\" line in any log: nothing to plot")
    if args.table is not None:
        print(markdown_table(curves, default_epochs(curves) if args.table == "default" else args.table))
    if args.out is not None:
        plot_curves(curves, args.out, args.title)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
