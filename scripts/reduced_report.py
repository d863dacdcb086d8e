#!/usr/bin/env python3
"""Tables and plots of the reduced-scale reproductions (``examples/run_reduced.sh``).

    python scripts/reduced_report.py --work work/reduced [--out examples/reduced_results.md]

Reads every ``results.tsv`` under ``--work`` (one work folder per recipe or per row, as
``run_reduced.sh`` lays them out), prints one markdown table per experiment with the paper's
number beside each row where the paper has one, and draws one plot per experiment into its
``examples/<recipe>/`` folder. Rows that did not run are shown as missing, never invented.
"""
import argparse
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import read_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# Paper numbers at full scale, for orientation only (different data size, model size and budget).
# Baevski & Auli: WikiText-103 test ppl / params (Table 3 of the OpenReview submission version);
# Mehta et al.: PTB AWD-LSTM test ppl / params, WMT14 newstest2014 BLEU / params (submission).
PAPER = {
    "sm": "WT-103: 24.92, 476.8M", "asm": "WT-103: 22.18, 263.1M", "adp": "WT-103: 21.74, 291.3M",
    "adp-t": "WT-103: 20.51, 246.9M",
    "awd": "PTB: 58.8, 24M", "awd-define": "PTB: 54.2, 20M",
    "base": "WMT14: 25.01 BLEU, 92M (their impl.)", "base-define": "WMT14: 27.01 BLEU, 68M",
}

EXPERIMENTS = [
    # (title, recipe folder, rows, plot file, claim)
    ("1. PTB, 2 x 300 LSTM: standard vs slim input (K=10) at 20% / 10% / 5% of the embedding",
     "ptb_slim", ["in300-std", "in300-M20K", "in300-M10K", "in300-M5K"], "reduced_slim_input.png",
     "slim input costs no perplexity"),
    ("2a. PTB, 2 x 300 LSTM: slim input + output (K=10) at 1/4, 1/8, 1/32 vs a smaller LSTM of equal size",
     "ptb_slim", ["in300-std", "io300-1of4", "sm300-1of4", "io300-1of8", "sm300-1of8", "io300-1of32", "sm300-1of32"],
     "reduced_slim_in_out.png", "perplexity degrades gracefully and beats a small model of equal size"),
    ("2b. PTB, 2 x 300 LSTM: number of sub-vectors K at a fixed 1/8 slim input",
     "ptb_slim", ["k1", "k2", "k4", "k10", "k30", "k300"], "reduced_k_sweep.png",
     "flat except K=1; K=d is a hashing scheme"),
    ("3. WikiText-2, 2-layer d=128 transformer LM: SM vs ASM vs ADP vs ADP-T",
     "wikitext103_adaptive", ["sm", "asm", "adp", "adp-t"], "reduced_wikitext2.png",
     "ADP-T has the best perplexity with the fewest parameters and trains faster than SM"),
    ("4. PTB, small AWD-LSTM (200 / 600 / 3 layers) with and without DeFINE",
     "ptb_awd_define", ["awd", "awd-define"], "reduced_awd_define.png",
     "fewer parameters, no worse perplexity"),
    ("5a. Multi30k EN-DE, 2+2-layer d=256 transformer: standard (tied) vs DeFINE embeddings (softmax tied to the map table)",
     "wmt14_en_de", ["base", "base-define"], "reduced_multi30k.png", "fewer parameters, similar BLEU"),
    ("5b. Multi30k n-best (10) reranking with a normal and a slim (1/8 in + out) German LSTM LM",
     "mt_rerank", ["lm-normal", "lm-slim", "mt-1best", "rerank-none", "rerank-normal", "rerank-slim"], None,
     "the slim LM reranks as well as the normal one"),
]


def cell(table, row, metric):
    v = table.get(row, {}).get(metric)
    if v in (None, ""):
        return "-"
    if metric in ("params", "emb_params"):
        return f"{int(v):,}"
    return v


def markdown(rows, table):
    metrics = ["params", "emb_params", "updates", "train_s", "ppl", "BLEU"]
    metrics = [m for m in metrics if any(m in table.get(r, {}) for r in rows)]
    head = ["row"] + metrics + (["paper (full scale)"] if any(r in PAPER for r in rows) else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        line = [r if r in table else f"{r} (not run)"] + [cell(table, r, m) for m in metrics]
        if head[-1].startswith("paper"):
            line.append(PAPER.get(r, ""))
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
    ax.plot([p[1] for p in pts], [p[2] for p in pts], "o", color="tab:blue")
    for r, x, y in pts:
        ax.annotate(r, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log", base=2 if k_sweep else 10)
    ax.set_xlabel("sub-vectors K (log scale)" if k_sweep else "parameters (log scale)")
    ax.set_ylabel(f"test {ykey}" if ykey == "BLEU" else "test perplexity")
    ax.set_title(textwrap.fill("REDUCED SCALE - " + title, 90), fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=REPO / "work" / "reduced")
    p.add_argument("--out", type=Path, help="also write the markdown here")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    # oldest first: a row re-run later (in another folder) wins
    files = sorted(args.work.rglob("results.tsv"), key=lambda f: f.stat().st_mtime)
    if not files:
        sys.exit(f"reduced_report.py: no results.tsv under {args.work} (run examples/run_reduced.sh first)")
    by_recipe = {}
    for f in files:
        # work/reduced/<recipe-ish>/[row/]results.tsv: group by the recipe the folder belongs to
        rel = f.relative_to(args.work).parts
        by_recipe.setdefault(rel[0], []).append(f)
    alias = {"wt2_adaptive": "wikitext103_adaptive", "wmt14": "wmt14_en_de"}
    tables = {}
    for key, fs in by_recipe.items():
        _, table = read_results(fs)
        tables[alias.get(key, key)] = table
    out = ["Reduced scale (whole PTB / WikiText-2 / Multi30k, small models, a fixed short budget, one CPU "
           "thread per run, two runs side by side on 2 cores); not comparable with the papers' absolute "
           "numbers, which are shown for orientation. train_s: wall seconds of fairseq-train."]
    for title, recipe, rows, png, claim in EXPERIMENTS:
        table = tables.get(recipe, {})
        out.append(f"\n**{title}** (the paper's claim: {claim})\n")
        out.append(markdown(rows, table))
        if png and not args.no_plots:
            path = REPO / "examples" / recipe / png
            if plot(rows, table, path, title, k_sweep=rows[0] == "k1"):
                out.append(f"\nplot: [`examples/{recipe}/{png}`]({recipe}/{png})")
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
