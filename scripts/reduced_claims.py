#!/usr/bin/env python3
"""The reduced-scale reproductions' claims: which rows each experiment compares, the papers'
figures beside them (table cited), and one rule per claim that turns the kept rows into a verdict
(holds / does not hold, with the gap / not run yet). ``scripts/reduced_report.py`` prints them.

A table here is ``{row: {metric: value}}`` as ``scripts/results_table.py`` reads it; a row that did
not run is absent, and a verdict never invents it.
"""

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
# two training runs of one unit (seeds 1 and 2): how far chance alone moves a row's BLEU
SEED_PAIRS = {"define_mt": ("base-define-authors-nodrop-25", "base-define-authors-nodrop-25-seed2")}


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
        margin = round(best[1] - (a - 1.0), 2)  # >= 0: within the threshold (BLEU has 2 decimals)
        outcome = "holds" if margin >= 0 else "does not hold"
        detail = f"best DeFINE row {best[0]} {best[1]:.2f} vs {a:.2f} BLEU; threshold -1.0"
        seeds = [num(t, r, "BLEU") for r in SEED_PAIRS[kind]]
        if None not in seeds:
            spread = round(abs(seeds[0] - seeds[1]), 2)
            detail += (f"; two seeds of the default unit at 25 epochs: {seeds[0]:.2f} and {seeds[1]:.2f}, "
                       f"{spread:.2f} apart")
            if abs(margin) < spread:  # another seed could put the best row on the other side
                outcome = "inconclusive"
                detail += f", more than the best row's {abs(margin):.2f} from the threshold"
        return f"{outcome} ({detail})"
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
