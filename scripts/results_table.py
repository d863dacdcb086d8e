#!/usr/bin/env python3
"""Pivot recipe results (``WORK/results.tsv``: ``row<TAB>metric<TAB>value`` lines written by
``examples/common.sh``) into one table, and optionally plot a metric against parameters.

    python scripts/results_table.py work/ptb_slim-reduced/results.tsv
    python scripts/results_table.py a/results.tsv b/results.tsv --markdown \\
        --rows in300-std,in300-M20K --plot examples/ptb_slim/reduced.png --y ppl --title "PTB"

Several files are merged (rows run side by side in separate work folders); a later file wins
for a repeated (row, metric). Rows keep their first-seen order unless --rows gives one.
"""
import argparse
import sys
from pathlib import Path

# columns in this order first, any other metric after them
KNOWN = ["params", "emb_params", "updates", "train_s", "ppl", "BLEU", "valid_BLEU"]


def read_results(paths):
    """-> (rows in order, {row: {metric: value}})"""
    order, table = [], {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            sys.exit(f"results_table.py: {path} not found (run the recipe first, or check --work)")
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                sys.exit(f"results_table.py: {path}:{n}: expected 'row<TAB>metric<TAB>value', got {line!r}")
            row, metric, value = parts
            if row not in table:
                order.append(row)
                table[row] = {}
            table[row][metric] = value
    return order, table


def fmt(metric, value):
    if value in (None, ""):
        return "-"
    if metric in ("params", "emb_params"):
        try:
            return f"{int(value):,}"
        except ValueError:
            return value
    return value


def render(order, table, markdown):
    metrics = [m for m in KNOWN if any(m in table[r] for r in order)]
    metrics += sorted({m for r in order for m in table[r]} - set(metrics))
    header = ["row"] + metrics
    body = [[r] + [fmt(m, table[r].get(m)) for m in metrics] for r in order]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(lines)
    widths = [max(len(x[i]) for x in [header] + body) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip() for x in [header] + body)


def plot(order, table, out, x, y, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = []
    for r in order:
        try:
            points.append((r, float(table[r][x]), float(table[r][y])))
        except (KeyError, ValueError):
            continue  # a row without this metric (e.g. failed) is left out of the plot
    if not points:
        sys.exit(f"results_table.py: no row has both {x} and {y} to plot")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter([p[1] for p in points], [p[2] for p in points])
    for r, px, py in points:
        ax.annotate(r, (px, py), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(f"{x} (log scale)")
    ax.set_ylabel(y)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}", file=sys.stderr)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="results.tsv file(s)")
    p.add_argument("--rows", help="comma-separated rows to keep, in this order")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--plot", help="write a PNG of --y against --x (log x) for the selected rows")
    p.add_argument("--x", default="params")
    p.add_argument("--y", default="ppl")
    p.add_argument("--title", default="")
    args = p.parse_args(argv)
    order, table = read_results(args.results)
    if args.rows:
        wanted = [r for r in args.rows.split(",") if r]
        missing = [r for r in wanted if r not in table]
        if missing:
            sys.exit(f"results_table.py: --rows {','.join(missing)} not in the results (have: {','.join(order)})")
        order = wanted
    print(render(order, table, args.markdown))
    if args.plot:
        plot(order, table, args.plot, args.x, args.y, args.title)


if __name__ == "__main__":
    main()
