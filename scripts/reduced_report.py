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
import re
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from component_costs import COMPONENTS, costs_markdown  # noqa: E402
from learning_curves import plot_curves, row_name, valid_curve  # noqa: E402
from results_table import read_results  # noqa: E402
from stop_reason import stop_reason  # noqa: E402
from train_seconds import RUN_START, training_seconds  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# The papers' numbers (full scale, for orientation): slim = Li et al. 2018, Table 2 (PTB, 300
# hidden, K=10, test ppl, the Dropout column = dropout on the input embedding); adaptive =
# Baevski & Auli 2019, Table 3 (WikiText-103 test ppl, params, train hours); DeFINE = Mehta et al. 2020
# (AWD-LSTM PTB test ppl, params; Transformer WMT14: only the baseline row survives in our copy).
PAPER = {
    "in300-std": "Table 2 NE, dropout 0: 89.54", "in300-std-drop0.1": "Table 2 NE, dropout 0.1: 88.56",
    "in300-M20K": "Table 2 SE M=20K: 89.34", "in300-M20K-drop0.1": "Table 2 SE M=20K, 0.1: 88.19",
    "in300-M10K": "Table 2 SE M=10K: 89.06", "in300-M10K-drop0.1": "Table 2 SE M=10K, 0.1: 88.37",
    "in300-M6.25K": "Table 2 SE M=6.25K: 89.00", "in300-M5K": "Table 2 SE M=5K: 89.54",
    # (train hours on one 8-GPU machine; SM's regime was modified, the paper's asterisk)
    "sm": "Table 3 SM: 24.92, 476.8M, 57 h*", "asm": "Table 3 ASM: 22.18, 263.1M, 35 h",
    "adp": "Table 3 ADP: 21.74, 291.3M, 34 h", "adp-t": "Table 3 ADP-T: 20.51, 246.9M, 30 h",
    "awd": "AWD-LSTM: 58.8, 24M", "awd-define": "AWD-LSTM + DeFINE: 54.2, 20M",
    "awd-define-authors": "AWD-LSTM + DeFINE: 54.2, 20M",
    "awd-long": "AWD-LSTM: 58.8, 24M", "awd-define-long": "AWD-LSTM + DeFINE: 54.2, 20M",
    "base": "Transformer: 25.81 BLEU, 92M", "base-define": "(row cut off in our copy)",
    "cmp-io-1of8": "proposed in the Conclusion, not measured there",
    # the K sweep: Li et al. 2018's Figs. 2 and 3 are on a 44M-word corpus with a 2 x 512 LSTM; the
    # text gives only these values (the rest of Fig. 3 is "almost the same", K=1 worse)
    "k1": "Fig. 3 (44M): K=1 worse (no value given)", "k10": "Fig. 2 (44M): K=8 at 1/8: 96.30",
    "k300": "Fig. 3 (44M): K=d=512: 95.73 (xxhash map: 97.35)",
}

# the rows of the DeFINE ablation (each part of the authors' unit alone; DEFINE_PARTS in examples/common.sh)
DEFINE_PARTS = ["define-reduce-authors", "define-dropout", "define-widths-authors", "define-level-norm-shared",
                "define-init-xavier"]


def paper_design_rows(model: str) -> tuple:
    """Every DeFINE row of the paper's design (n-dim softmax tied to the map table) of a recipe
    whose standard row is ``model``, the ablation's single-part rows included."""
    return (f"{model}-define", f"{model}-define-authors", f"{model}-define-authors-nodrop", *DEFINE_PARTS)

# (title, recipe, rows, plot, claim, verdict function name)
EXPERIMENTS = [
    ("1. PTB, 2 x 300 LSTM: standard (NE) vs slim input (SE, K=10) at M = 20K / 10K / 6.25K / 5K",
     "ptb_slim", ["in300-std", "in300-std-drop0.1", "in300-M20K", "in300-M20K-drop0.1", "in300-M10K",
                  "in300-M10K-drop0.1", "in300-M6.25K", "in300-M5K"], "reduced_slim_input.png",
     "compressing the input embedding costs no perplexity (Table 2)", "slim_input"),
    ("2a. PTB, 2 x 300 LSTM: slim input + output (K=10) at 1/4, 1/8, 1/32 vs a smaller LSTM of equal size",
     "ptb_slim", ["in300-std", "io300-1of4", "sm300-1of4", "io300-1of8", "sm300-1of8", "io300-1of32", "sm300-1of32"],
     "reduced_slim_in_out.png", "slim in + out beats an equal-size smaller LSTM (Fig. 4, 44M corpus)", "slim_io"),
    ("2b. PTB, 2 x 300 LSTM: number of sub-vectors K at a fixed 1/8 slim input",
     "ptb_slim", ["k1", "k2", "k4", "k10", "k30", "k300"], "reduced_k_sweep.png",
     "flat in K except K=1 (Fig. 3, 44M corpus)", "k_sweep"),
    ("3. WikiText-2, 2-layer d=256 transformer LM: SM vs ASM vs ADP vs ADP-T",
     "wikitext103_adaptive", ["sm", "asm", "adp", "adp-t"], "reduced_wikitext2.png",
     "ADP-T <= ADP <= ASM < SM in perplexity, each with fewer parameters than SM and faster training (Table 3)", "adaptive"),
    ("4. PTB, small AWD-LSTM (200 / 400 / 3 layers, dropouts halved, 16-epoch cap; the -long rows 80) with and without DeFINE",
     "ptb_awd_define", ["awd", "awd-define", "awd-define-authors", "awd-define-authors-nodrop", "awd-define-authors-proj", *DEFINE_PARTS, "awd-out-n",
                        "awd-untied", "awd-define-untied", "awd-long", "awd-define-long"],
     "reduced_awd_define.png",
     "DeFINE: fewer parameters, no worse perplexity (54.2 vs 58.8)", "define_awd"),
    ("5a. Multi30k EN-DE, 2+2-layer d=256 transformer: standard (tied) vs DeFINE embeddings (60-epoch cap; "
     "the DeFINE ablation rows 25)",
     "wmt14_en_de", ["base", "base-define", "base-define-authors", "base-define-authors-nodrop", "base-out-n", "base-untied", "base-define-authors-untied",
                     "base-define-share-map", "base-define-authors-nodrop-25", "base-define-authors-proj", *DEFINE_PARTS,
                     "base-define-authors-nodrop-25-seed2", "base-define-long"], "reduced_multi30k.png",
     "DeFINE: fewer parameters, similar BLEU",
     "define_mt"),
    ("5b. Multi30k n-best reranking with a normal and a slim (1/8 in + out) German LSTM LM",
     "mt_rerank", ["lm-normal", "lm-slim", "mt-1best", "oracle-dev", "rerank-none", "rerank-normal", "rerank-slim"], None,
     "the slim LM reranks as well as the normal one (Table 6)", "rerank"),
    ("6. PTB, the converged 2 x 300 LSTM (in300-std) compressed (`compress`, k-means / SVD fits), then "
     "fine-tuned for 10% of its updates; beside it the same sizes trained from scratch (io300: random "
     "slim, sm300: a smaller LSTM)",
     "ptb_slim", ["in300-std", "cmp-io-1of4", "io300-1of4", "sm300-1of4", "cmp-io-1of8", "io300-1of8", "sm300-1of8",
                  "cmp-io-1of32", "io300-1of32", "sm300-1of32", "cmp-in-slim-1of8", "cmp-in-projected-1of8",
                  "cmp-in-adaptive-1of8"], "reduced_compress.png",
     "the data-driven assignment the slim paper proposes (Conclusion): compressed + fine-tuned within 5% of "
     "the uncompressed model at 1/8, better than random slim from scratch at every ratio and than the "
     "equal-size LSTM at 1/32", "compress"),
]


# Each experiment's baseline row (or rows, the first that ran) against its paper: (experiments, recipe, row, metric, the paper's
# figure and model, its value where the model is the same as ours (else None), what differs)
BASELINES = [
    ("1, 2a, 2b, 6", "ptb_slim", "in300-std", "ppl", "Li et al. 2018, Table 2, NE 300 units, dropout 0: 89.54", 89.54,
     "the same 2 x 300 model; the issue's mark: <= 115 (Zaremba et al.'s small model: 114.5)"),
    ("3", "wikitext103_adaptive", "sm", "ppl", "Baevski & Auli 2019, Table 3 SM: 24.92 (WikiText-103, 16 layers)", None,
     "another corpus (WikiText-2, 2M words) and a 2-layer d=256 model"),
    ("4", "ptb_awd_define", ("awd-long", "awd"), "ppl", "Mehta et al. 2020: AWD-LSTM 24M: 58.8", None,
     "a 4.7M-parameter AWD-LSTM, dropouts halved, until its lr schedule stops it (awd-long; awd: 16 epochs) "
     "against the paper's 500+ with NT-ASGD"),
    ("5a", "wmt14_en_de", "base", "BLEU", "Mehta et al. 2020: Transformer 92M on WMT14: 25.81 BLEU", None,
     "another corpus (Multi30k, flickr 2016 test) and a 2+2-layer d=256 model"),
    ("5b", "mt_rerank", "mt-1best", "BLEU", "Li et al. 2018, Table 6: baseline 25.69 BLEU", None,
     "another corpus and translation model"),
]


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


# the experiments' names in the summary table, by verdict kind
SHORT = {"slim_input": "slim input, PTB", "slim_io": "slim input + output vs a smaller LSTM, PTB",
         "k_sweep": "sub-vectors K of the slim input, PTB", "adaptive": "adaptive input and softmax, WikiText-2",
         "define_awd": "DeFINE, AWD-LSTM on PTB", "define_mt": "DeFINE, transformer on Multi30k",
         "rerank": "slim LM reranking n-best lists, Multi30k", "compress": "compressing a trained model, PTB"}


def num(table, row, metric):
    try:
        return float(table[row][metric])
    except (KeyError, ValueError):
        return None


def best_row(rows, value, pick):
    """``(row, value)`` of the rows that ran, chosen by ``pick`` (min / max) on the value, or None."""
    ran = [(r, v) for r, v in ((r, value(r)) for r in rows) if v]
    return pick(ran, key=lambda x: x[1]) if ran else None


# the rows a verdict rests on once they ran (verdict() prefers them to the rest of its table)
DECISIVE_ROWS = {"define_awd": ("awd-long", "awd-define-long")}


def verdict(kind, t):  # noqa: C901 (one small rule per claim)
    p = lambda r: num(t, r, "ppl")  # noqa: E731
    if kind == "slim_input":
        pairs = [(r, "in300-std-drop0.1" if r.endswith("drop0.1") else "in300-std") for r in
                 ["in300-M20K", "in300-M20K-drop0.1", "in300-M10K", "in300-M10K-drop0.1", "in300-M6.25K", "in300-M5K"]]
        gaps = [(r, 100 * (p(r) / p(b) - 1)) for r, b in pairs if p(r) and p(b)]
        if not gaps:
            return "not run yet"
        text = ", ".join(f"{r} {g:+.1f}%" for r, g in gaps)
        missing = len(pairs) - len(gaps)
        # a pass needs every pair; a pool size over the threshold contradicts the claim there
        over = sum(g > 3 for _, g in gaps)
        head = ("does not hold" if over == len(gaps) else "holds only in part" if over
                else "holds so far" if missing else "holds")
        return head + f" (SE vs NE: {text}; threshold +3%)" + (f"; {missing} pair(s) not run yet" if missing else "")
    if kind == "slim_io":
        out = []
        for d in ("1of4", "1of8", "1of32"):
            a, b = p(f"io300-{d}"), p(f"sm300-{d}")
            if a and b:
                out.append((d, a, b))
        if not out:
            return "not run yet"
        wins = [a < b for _, a, b in out]
        head = "holds" if all(wins) else "does not hold" if not any(wins) else "holds only in part"
        text = ", ".join(f"1/{d[3:]}: slim {a:.2f} vs small {b:.2f} ({100 * (a / b - 1):+.1f}%, "
                         f"{'holds' if a < b else 'does not hold'})" for d, a, b in out)
        missing = 3 - len(out)
        return head + f" at the measured ratios ({text})" + (f"; {missing} ratio(s) not run yet" if missing else "")
    if kind == "k_sweep":
        # two halves: K = 1 worse than every K >= 2, and K >= 2 within 3% of each other; rows still
        # missing can only widen the spread and raise the best K >= 2, so a failure among the rows
        # in is final. One half failing is "holds only in part", both "does not hold"
        vals = {k: v for k in (1, 2, 4, 10, 30, 300) if (v := p(f"k{k}")) is not None}
        rest = {k: v for k, v in vals.items() if k > 1}
        if len(vals) < 2 or not rest:
            return "not run yet" + (f" (only K={next(iter(vals))} in)" if vals else "")
        best, worst = min(rest, key=rest.get), max(rest.values())
        flat = (worst / rest[best] - 1) * 100
        halves = [flat <= 3] + ([vals[1] > worst] if 1 in vals else [])
        missing = 6 - len(vals)
        head = ("does not hold" if not any(halves) else "holds only in part" if not all(halves)
                else "holds so far" if missing else "holds")
        text = ", ".join(f"K={k} {v:.2f}" for k, v in vals.items())
        detail = ""
        if not all(halves):
            near = [k for k, v in rest.items() if v <= rest[best] * 1.03]
            far = ", ".join(f"K={k} {100 * (v / rest[best] - 1):+.1f}%" for k, v in rest.items() if k not in near)
            one = ""
            if 1 in vals:
                level = ", ".join(str(k) for k, v in rest.items() if v >= vals[1])
                one = ("; K=1 worse than every K>=2, as claimed" if halves[-1]
                       else f"; K=1 no worse than K={level}, against the claim")
            detail = (one + f"; within 3% of the best K>=2 (K={best}): K={', '.join(map(str, near))}"
                      + (f"; above it: {far}" if far else ""))
        return (head + f" (K>=2 within {flat:.1f}%; {text}{detail})"
                + (f"; {missing} K not run yet" if missing else ""))
    if kind == "adaptive":
        # the claim is a chain, ADP-T <= ADP <= ASM < SM: check each row that ran against the next
        # one in the chain that ran (SM, ~20 h on one thread here, may be missing)
        chain = [("ADP-T", "adp-t"), ("ADP", "adp"), ("ASM", "asm"), ("SM", "sm")]
        ran = [(name, v) for name, r in chain if (v := p(r)) is not None]
        if len(ran) < 2:
            return "not run yet" + (f" (only {ran[0][0]} {ran[0][1]:.2f} in)" if ran else "")
        broken = [f"{a} {x:.2f} > {b} {y:.2f}" if b != "SM" else f"{a} {x:.2f} >= SM {y:.2f}"
                  for (a, x), (b, y) in zip(ran, ran[1:]) if (x > y if b != "SM" else x >= y)]
        missing = [name for name, _ in chain if name not in dict(ran)]
        costs, cheaper = adaptive_costs_vs_sm(t, [(name, r) for name, r in chain if p(r) is not None])
        head = ("does not hold" if broken else "holds only in part" if not cheaper
                else "holds so far" if missing else "holds")
        text = ", ".join(f"{name} {v:.2f}" for name, v in ran)
        return (head + f" ({text}" + (f"; broken: {', '.join(broken)}" if broken else "") + ")"
                + (f"; {costs}" if costs else "") + (f"; not run yet: {', '.join(missing)}" if missing else ""))
    if kind == "define_awd":
        base = p("awd")
        best = best_row(paper_design_rows("awd"), p, min)
        if base is None or best is None:
            return "not run yet"
        gap = 100 * (best[1] / base - 1)
        capped = f"best DeFINE row {best[0]} {best[1]:.2f} vs {base:.2f}: {gap:+.1f}%"
        pair = DECISIVE_ROWS["define_awd"]
        long, define_long = map(p, pair)
        if long is None or define_long is None:  # the pair past the cap decides once both ran
            missing = " and ".join(r for r in pair if p(r) is None)
            return (("holds" if gap <= 3 else "does not hold") + f" at the 16-epoch cap ({capped}); "
                    f"of the pair past the cap, {missing} not run yet")
        gap_long = 100 * (define_long / long - 1)
        return (("holds" if gap_long <= 3 else "does not hold")
                + f" (past the 16-epoch cap: awd-define-long {define_long:.2f} vs awd-long {long:.2f}: "
                f"{gap_long:+.1f}%; at the cap: {capped})")
    if kind == "define_mt":
        a = num(t, "base", "BLEU")
        # base stopped by --patience; base-define-long is the default unit past the 60-epoch cap
        best = best_row((*paper_design_rows("base"), "base-define-long"), lambda r: num(t, r, "BLEU"), max)
        if a is None or best is None:
            return "not run yet"
        return (("holds" if best[1] >= a - 1.0 else "does not hold")
                + f" (best DeFINE row {best[0]} {best[1]:.2f} vs {a:.2f} BLEU; threshold -1.0)")
    if kind == "compress":
        base, parts, passed, missing, ran = p("in300-std"), [], [], False, False
        better = lambda b, ref: b < ref  # noqa: E731
        for d in ("1of4", "1of8", "1of32"):
            b = p(f"cmp-io-{d}")
            # the goals at this ratio: (name, reference ppl, test of b against it)
            goals = [("random slim from scratch", p(f"io300-{d}"), better)]
            if d == "1of8":
                goals.append(("uncompressed", base, lambda b, ref: b <= 1.05 * ref))
            if d == "1of32":
                goals.append(("equal-size LSTM", p(f"sm300-{d}"), better))
            if b is None:
                missing = True
                parts.append(f"1/{d[3:]}: not run yet")
                continue
            ran, checks = True, []
            for name, ref, test in goals:
                if ref is None:
                    missing = True
                    checks.append(f"vs {name}: not run yet")
                    continue
                passed.append(test(b, ref))
                checks.append(f"vs {name} {ref:.2f}: {100 * (b / ref - 1):+.1f}% ({'met' if passed[-1] else 'not met'})")
            parts.append(f"1/{d[3:]} {b:.2f}: " + ", ".join(checks))
        if not ran:
            return "not run yet"
        if not passed:
            return "inconclusive (comparison rows not run yet): " + "; ".join(parts)
        head = "does not hold" if not all(passed) else "inconclusive (rows missing)" if missing else "holds"
        return head + " (" + "; ".join(parts) + ")"
    if kind == "rerank":
        n, s = num(t, "rerank-normal", "BLEU"), num(t, "rerank-slim", "BLEU")
        if n is None or s is None:
            return "not run yet"
        text = f"slim {s:.2f} vs normal {n:.2f} BLEU"
        none = num(t, "rerank-none", "BLEU")  # the length weight alone, tuned the same way
        if none is not None:
            text += f", length-only reranking {none:.2f}"
            if n <= none:  # the normal LM adds nothing: matching it says nothing about the slim LM
                return f"inconclusive: the normal LM does not improve on length-only reranking ({text})"
        return ("holds" if s >= n - 0.2 else "does not hold") + f" ({text})"
    return ""


def adaptive_costs_vs_sm(t, ran):
    """The other half of the adaptive claim (Table 3: every factorisation has fewer parameters than
    SM and trains faster): ``(text, cheaper)`` for the rows in ``ran`` (``[(name, row)]``, SM last)
    against SM: parameters, and seconds per update - measured side by side in one run
    (``add_pace``) where the row and SM have that, else the rows' own train_s / updates where the
    two ran on the same CPU (one thread each, each beside another row). ``cheaper`` is False if a
    row is not smaller or not faster than SM; ``("", True)`` while SM has not run."""
    sm = dict(ran).get("SM")
    if sm is None:
        return "", True
    per_update = lambda r: (num(t, r, "train_s") or 0) / (num(t, r, "updates") or float("inf"))  # noqa: E731
    cpu = lambda r: t[r].get("ran", "").split(", ")[-1]  # noqa: E731  ('2026-12-06, Intel Xeon' -> the CPU)
    n_sm, b, pace_sm = num(t, sm, "params"), per_update(sm), num(t, sm, "pace_s")
    sizes, side, speeds, cheaper = [], [], [], True
    for name, r in ran:
        if r == sm:
            continue
        n = num(t, r, "params")
        if n and n_sm:
            sizes.append(f"{name} {100 * (n / n_sm - 1):+.0f}%")
            cheaper &= n < n_sm
        a, pace = per_update(r), num(t, r, "pace_s")
        if pace_sm and pace and t[r].get("pace_ran") == t[sm].get("pace_ran"):
            side.append(f"{name} x{pace / pace_sm:.2f}")
            cheaper &= pace < pace_sm
        elif not (a and b):
            speeds.append(f"{name} untimed")
        elif cpu(r) != cpu(sm):
            speeds.append(f"{name} not compared (another CPU)")
        else:
            speeds.append(f"{name} x{a / b:.2f}")
            cheaper &= a < b
    text = f"parameters vs SM: {', '.join(sizes)}"
    if side:
        text += (f"; seconds per update vs SM, side by side in one run (scripts/row_pace.py, "
                 f"{t[sm]['pace_ran']}): {', '.join(side)}")
    if speeds:
        text += f"; seconds per update vs SM{', their own runs' if side else ''}: {', '.join(speeds)}"
    return text, cheaper


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


def markdown(rows, table):
    metrics = ["params", "emb_params", "updates", "epochs", "stopped", "train_s", "ran", "valid_ppl",
               "compressed_ppl", "ppl", "BLEU", "lm_weight"]
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
        costs = costs_markdown(COMPONENTS[kind], table, "BLEU" if kind.endswith("_mt") else "ppl") \
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
