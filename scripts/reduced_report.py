#!/usr/bin/env python3
"""Tables, plots and one verdict per claim of the converged reduced-scale reproductions.

    python scripts/reduced_report.py [--work DIR ...] [--out FILE] [--no-plots]

Reads the finished rows kept in the repository (``examples/<recipe>/results/<row>.tsv``, written
by ``examples/save_row.sh``) and any ``results.tsv`` under ``--work`` folders (rows still in a work
folder; a later file wins for a repeated row), prints one markdown table per experiment with the
paper's figure beside each row where the paper has one (table cited), a verdict per claim
(holds / does not hold, with the gap / not run yet), and draws one plot per experiment into its
``examples/<recipe>/`` folder. Rows that did not run are shown as missing, never invented.
"""
import argparse
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from component_costs import COMPONENTS, costs_markdown  # noqa: E402
from learning_curves import plot_curves, row_name, valid_curve  # noqa: E402
from reduced_claims import BASELINES, DECISIVE_ROWS, EXPERIMENTS, PAPER, SHORT, num, verdict  # noqa: E402
from results_table import read_results  # noqa: E402
from row_readings import add_log_readings, add_pace, add_ran_on  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def baselines(tables) -> str:
    """One line per baseline: what it reaches here, the paper's figure, and the gap where the two
    models are the same (elsewhere the paper's figure is for orientation only)."""
    lines = ["| experiments | baseline row | reduced scale | paper | gap | what differs |", "|---|---|---|---|---|---|"]
    for exps, recipe, row, metric, paper, same, differs in BASELINES:
        if isinstance(row, tuple):  # the first of these rows that ran (a longer-trained one first)
            row = next((r for r in row if num(tables.get(recipe, {}), r, metric)), row[-1])
        ours = num(tables.get(recipe, {}), row, metric)
        gap = f"{100 * (ours / same - 1):+.1f}%" if ours and same else "-"
        shown = f"{ours:.2f}" if ours else "not run yet"
        lines.append(f"| {exps} | {row} | {shown} | {paper} | {gap} | {differs} |")
    return "\n".join(lines)


def still_improving(rows, table, cap: str = "") -> list:
    """The rows that stopped at a cap while validation still improved (``cap``: only those
    stopped by that one, e.g. "epoch cap")."""
    return [r for r in rows if (s := table.get(r, {}).get("stopped", "")).startswith(cap) and "still improving" in s]


def convergence_note(rows, table):
    """A line naming the rows that stopped at a cap while validation still improved, or ''."""
    capped = still_improving(rows, table)
    if not capped:
        return ""
    return (f"Not converged: {', '.join(capped)} stopped at their epoch or update cap while validation was "
            "still improving; the verdict holds for these budgets, not necessarily at convergence.")


def cell(table, row, metric):
    v = table.get(row, {}).get(metric)
    if v in (None, ""):
        return "-"
    if metric in ("params", "emb_params"):
        return f"{int(v):,}"
    return v


def markdown(rows, table):
    metrics = ["params", "emb_params", "updates", "epochs", "stopped", "train_s", "ran", "valid_ppl",
               "compressed_ppl", "ppl", "BLEU", "valid_BLEU", "lm_weight"]
    metrics = [m for m in metrics if any(m in table.get(r, {}) for r in rows)]
    head = ["row"] + metrics + ["paper (full scale)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        line = [r if r in table else f"{r} (not run yet)"] + [cell(table, r, m) for m in metrics] + [PAPER.get(r, "")]
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def plot(rows, table, path, title, k_sweep=False):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ykey = "BLEU" if any("BLEU" in table.get(r, {}) for r in rows) else "ppl"
    pts = []
    for r in rows:
        try:
            x = float(r[1:]) if k_sweep else float(table[r]["params"])
            pts.append((r, x, float(table[r][ykey])))
        except (KeyError, ValueError):
            continue
    if not pts:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot([q[1] for q in pts], [q[2] for q in pts], "o", color="tab:blue")
    for r, x, y in pts:
        ax.annotate(r, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log", base=2 if k_sweep else 10)
    ax.set_xlabel("sub-vectors K (log scale)" if k_sweep else "parameters (log scale)")
    ax.set_ylabel(f"test {ykey}" if ykey == "BLEU" else "test perplexity")
    ax.set_title(textwrap.fill("REDUCED SCALE, converged - " + title, 90), fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def load_tables(work_dirs):
    files = sorted(REPO.glob("examples/*/results/*.tsv"))
    for w in work_dirs:
        files += sorted(Path(w).rglob("results.tsv"), key=lambda f: f.stat().st_mtime)
    by_recipe = {}
    for f in files:
        if f.parent.name == "results" and f.parent.parent.parent == REPO / "examples":
            recipe = f.parent.parent.name
        else:
            recipe = next((r for _, r, *_ in EXPERIMENTS if r in f.parts), f.parent.name)
        by_recipe.setdefault(recipe, []).append(f)
    return {recipe: read_results(fs)[1] for recipe, fs in by_recipe.items()}


def curve_logs(recipe: str, work_dirs) -> dict:
    """{row: log path} of the recipe's kept rows, then of rows still in --work folders (these win)."""
    logs = {row_name(f): f for f in sorted((REPO / "examples" / recipe / "results").glob("*.log"))}
    for w in work_dirs:
        for f in sorted(Path(w).rglob("logs/train.*.log"), key=lambda f: f.stat().st_mtime):
            if recipe in f.parts:
                logs[row_name(f)] = f
    return logs


def draw_figures(args, recipe, rows, table, png, title) -> list:
    """Draw the experiment's figures into ``examples/<recipe>/`` (the metric against parameters, and
    the validation perplexity per epoch of its finished rows); their file names."""
    folder = args.root / "examples" / recipe
    if not png or args.no_plots or not folder.is_dir():
        return []
    figures = [png] if plot(rows, table, folder / png, title, k_sweep=rows[0] == "k1") else []
    logs = curve_logs(recipe, args.work)
    curves = {r: valid_curve(logs[r].read_text(errors="replace")) for r in rows if r in logs and r in table}
    curves_png = png.replace(".png", "_curves.png")
    if plot_curves(curves, folder / curves_png, "REDUCED SCALE - validation perplexity per epoch - " + title):
        figures.append(curves_png)
    return figures


def summary(tables) -> str:
    """One line per claim: the experiment, the claim and its verdict (the answer a reader wants
    first; each experiment's table and figures follow)."""
    lines = ["| experiment | claim (paper) | verdict, reduced scale |", "|---|---|---|"]
    for title, recipe, rows, _, claim, kind in EXPERIMENTS:
        name = title.split(".")[0] + ". " + SHORT[kind]
        table = tables.get(recipe, {})
        text = verdict(kind, table)
        ran = [r for r in rows if r in table]
        # the headline says it too: these rows had not converged (an update cap is a fixed budget
        # by design, e.g. experiment 6's fine-tuning: its section's note names those rows)
        capped = still_improving(ran, table, "epoch cap")
        decisive = DECISIVE_ROWS.get(kind, ())
        if capped and decisive and all(r in table for r in decisive) and not set(decisive) & set(capped):
            # the verdict rests on rows that converged: the capped ones are the rest of the table
            others = [r for r in ran if r not in decisive]
            text += (f"; its rows {' and '.join(decisive)} converged; {len(capped)} of the other {len(others)} "
                     "rows stopped at their epoch cap still improving")
        elif capped:
            text += f"; not converged: {len(capped)} of the {len(ran)} rows stopped at their epoch cap still improving"
        lines.append(f"| {name} | {claim} | {text} |")
    return "\n".join(lines)


BEGIN, END = "<!-- reduced-report: begin (written by scripts/reduced_report.py) -->", "<!-- reduced-report: end -->"
# a second, optional block: the verdict table alone, where a README wants it near its top
VERDICTS_BEGIN = "<!-- reduced-verdicts: begin (written by scripts/reduced_report.py) -->"
VERDICTS_END = "<!-- reduced-verdicts: end -->"


def replace_block(path: Path, block: str, begin: str = BEGIN, end: str = END, append: bool = True) -> None:
    """Put ``block`` between the ``begin`` / ``end`` markers of ``path`` (appended with them if
    absent and ``append``); everything outside the markers is kept as it is."""
    text = path.read_text() if path.exists() else ""
    new = f"{begin}\n{block.strip()}\n{end}"
    if begin in text and end in text.split(begin, 1)[1]:
        head, rest = text.split(begin, 1)
        text = head + new + rest.split(end, 1)[1]
    elif append:
        text = text.rstrip() + ("\n\n" if text.strip() else "") + "## Reduced-scale results\n\n" + new + "\n"
    path.write_text(text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, action="append", default=[], help="also read results.tsv files here")
    p.add_argument("--out", type=Path, help="also write the markdown here")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--update-readmes", action="store_true",
                   help="write the tables and verdicts into README.md and each recipe's README.md, between "
                        "the reduced-report markers")
    p.add_argument("--root", type=Path, default=REPO, help=argparse.SUPPRESS)  # tests write into a copy
    args = p.parse_args(argv)
    tables = load_tables(args.work)
    add_ran_on(tables, REPO)
    add_log_readings(tables, REPO)
    add_pace(tables, REPO)
    intro = ("Reduced scale, trained to convergence (whole PTB / WikiText-2 / Multi30k, small models, the "
             "recipes' learning-rate schedules, early stopping, the best checkpoint evaluated; one CPU thread per "
             "run). The papers' full-scale figures are beside the rows for orientation, not as targets. "
             "train_s: fairseq's training wall seconds (summed over the runs of a resumed row), on the CPU named in ran (the day the row was "
             "kept and its CPU; one thread per row, most of them beside a second row).")
    out, per_recipe = [intro, "\nOne verdict per claim (the tables below give the rows behind each):\n", summary(tables),
                       "\nThe baselines, against their papers:\n", baselines(tables)], {}
    for title, recipe, rows, png, claim, kind in EXPERIMENTS:
        table = tables.get(recipe, {})
        section = [f"\n**{title}** (claim: {claim})\n", markdown(rows, table), f"\nVerdict: **{verdict(kind, table)}**"]
        note = convergence_note(rows, table)
        section += [f"\n{note}"] if note else []
        mt = kind.endswith("_mt")  # translation: BLEU, with the validation set's beside it
        costs = costs_markdown(COMPONENTS[kind], table, "BLEU" if mt else "ppl", "valid_BLEU" if mt else None) \
            if kind in COMPONENTS else ""
        section += [f"\nWhat each change costs (one row against the row it differs from by that change only):\n\n{costs}"] \
            if costs else []
        figures = draw_figures(args, recipe, rows, table, png, title)
        out += section + [f"\nplot: [`examples/{recipe}/{f}`](examples/{recipe}/{f})" for f in figures]
        per_recipe.setdefault(recipe, [intro]).extend(section + [f"\nplot: [`{f}`]({f})" for f in figures])
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.update_readmes:
        replace_block(args.root / "README.md", text)
        replace_block(args.root / "README.md", summary(tables), VERDICTS_BEGIN, VERDICTS_END, append=False)
        for recipe, lines in per_recipe.items():
            if (args.root / "examples" / recipe).is_dir():
                replace_block(args.root / "examples" / recipe / "README.md", "\n".join(lines))
    return text


if __name__ == "__main__":
    main()
