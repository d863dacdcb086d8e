"""Parts ``eval`` and ``generate`` of ``scripts/benchmark.py``: the stock fairseq CLIs, timed.

5. ``eval``     -- ``fairseq-eval-lm`` tokens/s (fairseq's own timer around the scorer, printed
   as "Evaluated N tokens in S s") of a 2-layer transformer LM on a synthetic Zipfian corpus:
   ours vs stock fairseq at equal parameters with the tied adaptive input + softmax (ADP-T)
   and with a plain softmax (d=128), and ours with a slim output (K=8, 1/8) vs the same model
   with a softmax at several (V, d): the slim output's gain grows with d (its gather-sum costs
   ``V * K`` adds per token whatever d is, the softmax ``V * d`` multiply-adds) and with V (the
   output layer's share of the model's cost).
6. ``generate`` -- ``fairseq-generate`` sentences/s (beam 4, every hypothesis forced to the
   same length with ``--min-len = --max-len-b``, so both models decode the same number of
   steps) of ``compact_transformer`` vs fairseq's ``transformer`` at equal parameters; and the
   same ``compact_transformer`` with a DeFINE input (n = d/4, k = 2d, 3 levels, softmax tied to
   the map table), decoded from one checkpoint twice: with the inference table built by itself
   (``--define-eval-cache auto``, the default) and with the unit run at every step (``never``).

Each model is a real checkpoint written by ``fairseq-train`` (one update: speed does not
depend on the weights, and the parameter counts are read from the training log and checked
equal). The CLIs run in subprocesses, interleaved (every repeat runs each contender once),
with ``OMP_NUM_THREADS`` threads each; medians are reported.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

import torch

USER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fairseq_compactemb")


def cli(name: str) -> str:
    """The fairseq console script next to this Python (or on PATH)."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    return path if os.path.exists(path) else name


def run(cmd: Sequence[str], threads: int) -> str:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{os.path.basename(str(cmd[0]))} failed ({proc.returncode}):\n"
                           + (proc.stdout + proc.stderr)[-3000:])
    return proc.stdout + proc.stderr


def zipf_words(n_tokens: int, vocab: int, seed: int, prefix: str = "w") -> List[str]:
    g = torch.Generator().manual_seed(seed)
    probs = 1.0 / torch.arange(1, vocab + 1, dtype=torch.float64)
    ids = torch.multinomial(probs / probs.sum(), n_tokens, replacement=True, generator=g)
    return [f"{prefix}{i}" for i in ids.tolist()]


def write_dict(path: str, vocab: int, prefix: str = "w") -> None:
    """fairseq dict.txt with every word, counts falling as 1/rank (ids sorted by frequency)."""
    with open(path, "w") as f:
        for i in range(vocab):
            f.write(f"{prefix}{i} {max(1, int(1e9 / (i + 1)))}\n")


def write_lines(path: str, words: List[str], line_len: int) -> None:
    with open(path, "w") as f:
        for s in range(0, len(words), line_len):
            f.write(" ".join(words[s:s + line_len]) + "\n")


def lm_data(work: str, vocab: int, n_valid: int) -> str:
    """A binarised Zipfian LM corpus (train is tiny: one update is all that is trained)."""
    text = os.path.join(work, "text")
    os.makedirs(text, exist_ok=True)
    write_dict(os.path.join(text, "dict.txt"), vocab - 4)  # + fairseq's 4 specials = vocab
    write_lines(os.path.join(text, "train.txt"), zipf_words(4096, vocab - 4, 1), 50)
    write_lines(os.path.join(text, "valid.txt"), zipf_words(n_valid, vocab - 4, 2), 50)
    dest = os.path.join(work, "lm-bin")
    run([cli("fairseq-preprocess"), "--only-source", "--srcdict", os.path.join(text, "dict.txt"),
         "--trainpref", os.path.join(text, "train.txt"), "--validpref", os.path.join(text, "valid.txt"),
         "--destdir", dest, "--workers", 1], 1)
    return dest


def mt_data(work: str, vocab: int, n_sentences: int, length: int) -> str:
    """A binarised synthetic parallel corpus (source and target: Zipfian words of their own)."""
    text = os.path.join(work, "mt-text")
    os.makedirs(text, exist_ok=True)
    for lang, prefix in (("src", "s"), ("tgt", "t")):
        write_dict(os.path.join(text, f"dict.{lang}.txt"), vocab - 4, prefix)
        for split, n, seed in (("train", 256, 1), ("valid", n_sentences, 2)):
            write_lines(os.path.join(text, f"{split}.{lang}"),
                        zipf_words(n * length, vocab - 4, seed + (lang == "tgt"), prefix), length)
    dest = os.path.join(work, "mt-bin")
    run([cli("fairseq-preprocess"), "--source-lang", "src", "--target-lang", "tgt",
         "--srcdict", os.path.join(text, "dict.src.txt"), "--tgtdict", os.path.join(text, "dict.tgt.txt"),
         "--trainpref", os.path.join(text, "train"), "--validpref", os.path.join(text, "valid"),
         "--destdir", dest, "--workers", 1], 1)
    return dest


def checkpoint(data: str, save_dir: str, flags: Sequence, threads: int) -> tuple:
    """Train one update with ``flags``; returns (checkpoint path, parameter count)."""
    log = run([cli("fairseq-train"), data, "--user-dir", USER_DIR, "--save-dir", save_dir, "--max-update", 1,
               "--disable-validation", "--no-epoch-checkpoints", "--num-workers", 0, "--seed", 1,
               "--optimizer", "adam", "--lr", 1e-4, *flags], threads)
    params = int(re.search(r"num\. shared model params: ([0-9,]+)", log).group(1).replace(",", ""))
    return os.path.join(save_dir, "checkpoint_last.pt"), params


def interleaved_cli(cmds: Dict[str, List], pattern: str, repeats: int, threads: int) -> Dict[str, List[float]]:
    """Run every command once per repeat, in turn; ``pattern``'s group 1 is the measured rate."""
    rates = {name: [] for name in cmds}
    for _ in range(repeats):
        for name, cmd in cmds.items():
            found = re.findall(pattern, run(cmd, threads))
            if not found:
                raise RuntimeError(f"{name}: no rate matching {pattern!r} in the output")
            rates[name].append(float(found[-1]))
    return rates


def lm_sizes(mode: str) -> dict:
    if mode == "full":
        return dict(vocab=50000, layers=2, dim=128, heads=4, cutoffs="4000,12000", valid=40000, repeats=3,
                    slim=[(50000, 128), (50000, 512), (267735, 512)])
    if mode == "quick":
        return dict(vocab=33280, layers=2, dim=128, heads=4, cutoffs="2500,7500", valid=20000, repeats=2,
                    slim=[(33280, 128), (33280, 512)])
    return dict(vocab=2000, layers=1, dim=16, heads=2, cutoffs="300,900", valid=1000, repeats=1,
                slim=[(2000, 16)])


def part_eval(mode: str, threads: int, table, overrides: Optional[dict] = None) -> dict:
    """``overrides``: ``slim`` (the (V, d) pairs) and ``valid`` (tokens evaluated) replacing the mode's."""
    s = dict(lm_sizes(mode), **(overrides or {}))
    V, cut = s["vocab"], s["cutoffs"]
    print(f"\n## 5. fairseq-eval-lm, tokens/s: {s['layers']}-layer transformer LM, d={s['dim']} (slim pairs: "
          f"{', '.join(f'V={v:,} d={d}' for v, d in s['slim'])}), ffn 4d, V={V:,} (Zipfian), {s['valid']:,} tokens, --tokens-per-sample 128 --context-window 64 "
          f"--max-tokens 4096, {threads} thread(s) per run, {s['repeats']} interleaved repeats")
    def dims(d):
        return ["--task", "language_modeling", "--tokens-per-sample", 128, "--max-tokens", 2048,
                "--decoder-layers", s["layers"], "--decoder-embed-dim", d, "--decoder-ffn-embed-dim", 4 * d,
                "--decoder-attention-heads", s["heads"], "--decoder-input-dim", d, "--decoder-output-dim", d,
                "--no-decoder-final-norm"]

    common = dims(s["dim"])
    contenders = {
        "fairseq transformer_lm, tied adaptive": common + ["--arch", "transformer_lm", "--adaptive-input",
            "--adaptive-input-cutoff", cut, "--adaptive-input-factor", 4, "--adaptive-softmax-cutoff", cut,
            "--adaptive-softmax-factor", 4, "--tie-adaptive-weights", "--tie-adaptive-proj",
            "--criterion", "adaptive_loss", "--ddp-backend", "legacy_ddp"],
        "ours compact_transformer_lm, tied adaptive": common + ["--arch", "compact_transformer_lm",
            "--input-embedding", "adaptive", "--output-layer", "adaptive", "--tie-input-output",
            "--adaptive-cutoffs", cut, "--adaptive-factor", 4, "--criterion", "compact_adaptive_loss"],
        "fairseq transformer_lm, softmax": common + ["--arch", "transformer_lm", "--criterion", "cross_entropy"],
        "ours compact_transformer_lm, softmax": common + ["--arch", "compact_transformer_lm",
                                                          "--criterion", "cross_entropy"],
    }
    pairs = [(list(contenders)[0], list(contenders)[1]), (list(contenders)[2], list(contenders)[3])]
    vocab_of = {name: V for name in contenders}
    for v, d in s["slim"]:
        soft, slim = f"ours V={v:,} d={d}, softmax", f"ours V={v:,} d={d}, slim output 1/8"
        contenders[soft] = dims(d) + ["--arch", "compact_transformer_lm", "--criterion", "cross_entropy"]
        contenders[slim] = dims(d) + ["--arch", "compact_transformer_lm", "--output-layer", "slim",
                                      "--output-slim-subvectors", 8, "--output-slim-pool", "1/8",
                                      "--criterion", "cross_entropy"]
        vocab_of[soft] = vocab_of[slim] = v
        pairs.append((soft, slim))
    with tempfile.TemporaryDirectory(prefix="compactemb-bench-") as work:
        data = {v: lm_data(os.path.join(work, f"v{v}"), v, s["valid"]) for v in sorted(set(vocab_of.values()))}
        ckpts, params = {}, {}
        for i, (name, flags) in enumerate(contenders.items()):
            ckpts[name], params[name] = checkpoint(data[vocab_of[name]], os.path.join(work, f"ckpt{i}"),
                                                   flags + ["--no-save-optimizer-state"], threads)
        names = list(contenders)
        for a, b in pairs[:2]:
            if params[a] != params[b]:
                raise RuntimeError(f"unequal sizes: {a} {params[a]:,} vs {b} {params[b]:,}")
        cmds = {name: [cli("fairseq-eval-lm"), data[vocab_of[name]], "--user-dir", USER_DIR, "--path", ckpts[name],
                       "--tokens-per-sample", 128, "--context-window", 64, "--max-tokens", 4096,
                       "--gen-subset", "valid", "--num-workers", 0] for name in names}
        # the slim kernel is JIT-built on first use; after a source change that first use would
        # be inside the first timed slim run (a 58 s build read as 137 tokens/s), so build it here
        from fairseq_compactemb.modules import slim_kernel
        slim_kernel.load()
        rates = interleaved_cli(cmds, r"Evaluated [0-9,]+ tokens in [0-9.]+s \(([0-9.]+) tokens/s\)",
                                s["repeats"], threads)
    tps = {k: statistics.median(v) for k, v in rates.items()}
    ref = {name: name for name in names}
    for a, b in pairs:
        ref[b] = a
    rows = [[n, f"{params[n]:,}", f"{tps[n]:,.0f}", f"{tps[n] / tps[ref[n]]:.2f}x" + (f" vs {ref[n]}" if ref[n] != n else "")]
            for n in names]
    print(table(rows, ["model", "params", "eval-lm tokens/s", "ratio"]))
    out = {"tokens_per_s": tps, "params": params, "all_rates": rates,
           "eval_vs_fairseq_adaptive": tps[pairs[0][1]] / tps[pairs[0][0]],
           "eval_vs_fairseq_softmax": tps[pairs[1][1]] / tps[pairs[1][0]]}
    for (a, b), (v, d) in zip(pairs[2:], s["slim"]):
        out[f"eval_slim_vs_softmax_V{v}_d{d}"] = tps[b] / tps[a]
    out["eval_slim_vs_softmax"] = {f"V={v},d={d}": out[f"eval_slim_vs_softmax_V{v}_d{d}"] for v, d in s["slim"]}
    out["eval_slim_vs_softmax_mac_ratio"] = {f"V={v},d={d}": slim_mac_ratio(v, d, s["layers"]) for v, d in s["slim"]}
    caps = ", ".join(f"{k} {r:.2f}x" for k, r in out["eval_slim_vs_softmax_mac_ratio"].items())
    print("multiply-adds per token, softmax model / slim model (the speedup if only the GEMMs took time; "
          f"the body's share caps it): {caps}")
    out["eval_slim_output_layer_alone"], out["eval_slim_vs_softmax_ceiling"] = {}, {}
    rows = []
    for (a, b), (v, d) in zip(pairs[2:], s["slim"]):
        soft_s, slim_s = output_layer_seconds(v, d, threads)
        body_s = 1.0 / tps[a] - soft_s  # what the softmax model's eval-lm spends outside its output layer
        key = f"V={v},d={d}"
        out["eval_slim_output_layer_alone"][key] = soft_s / slim_s
        out["eval_slim_vs_softmax_ceiling"][key] = (1.0 / tps[a]) / body_s if body_s > 0 else None
        ceiling = out["eval_slim_vs_softmax_ceiling"][key]
        rows.append([key, f"{soft_s * 1e6:,.1f}", f"{slim_s * 1e6:,.1f}", f"{soft_s / slim_s:.2f}x",
                     f"{body_s * 1e6:,.1f}", f"{tps[b] / tps[a]:.2f}x", "-" if ceiling is None else f"{ceiling:.2f}x"])
    print("output layers alone (target_log_probs, no autograd, same threads), and the eval-lm ratio's ceiling: "
          "the softmax model's time per token over its time outside the output layer (a slim layer that "
          "cost nothing)")
    print(table(rows, ["pair", "softmax us/token", "slim us/token", "layer ratio", "rest us/token",
                       "eval-lm ratio", "ceiling"]))
    return out


def output_layer_seconds(vocab: int, dim: int, threads: int, rows: int = 4096, repeats: int = 3) -> tuple:
    """Seconds per token of the softmax and the slim (K=8, 1/8) output layers' target-only scoring
    (the path fairseq-eval-lm takes), in this process: ``rows`` random hidden states, best of
    ``repeats`` (the values do not change the work)."""
    import time
    from fairseq_compactemb.modules.slim_output import SlimOutput
    from fairseq_compactemb.modules.size_options import resolve_size
    from fairseq_compactemb.modules.softmax_output import SoftmaxOutput
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        hidden = torch.randn(rows, dim, generator=g)
        target = torch.randint(0, vocab, (rows,), generator=g)
        pool = resolve_size("1/8", "--output-slim-pool", vocab * 8, multiple=8, minimum=8)  # as the CLI resolves it
        layers = [SoftmaxOutput(vocab, dim).eval(), SlimOutput(vocab, dim, subvectors=8, pool_size=pool).eval()]
        best = []
        with torch.no_grad():
            for layer in layers:
                layer.target_log_probs(hidden, target)  # warm-up (and the kernel's JIT build)
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    layer.target_log_probs(hidden, target)
                    times.append(time.perf_counter() - t0)
                best.append(min(times) / rows)
        return best[0], best[1]
    finally:
        torch.set_num_threads(before)


def slim_mac_ratio(vocab: int, dim: int, layers: int, context: int = 128) -> float:
    """Multiply-adds per token of the softmax model over those of the slim (1/8) model: the body
    (per layer 4 d^2 attention projections, 8 d^2 ffn, 2 * context * d attention) plus the output
    layer's GEMMs (V * d, and for slim the partial table: V * d / 8, its pool's size)."""
    body = layers * (12 * dim * dim + 2 * context * dim)
    return (body + vocab * dim) / (body + vocab * dim / 8)


def part_generate(mode: str, threads: int, table) -> dict:
    if mode == "full":
        s = dict(vocab=16000, dim=256, ffn=1024, heads=4, layers=2, sentences=200, length=20, repeats=3)
    elif mode == "quick":
        s = dict(vocab=8000, dim=256, ffn=1024, heads=4, layers=2, sentences=80, length=16, repeats=2)
    else:
        s = dict(vocab=500, dim=16, ffn=32, heads=2, layers=1, sentences=8, length=5, repeats=1)
    print(f"\n## 6. fairseq-generate, sentences/s: {s['layers']}+{s['layers']}-layer transformer, d={s['dim']}, "
          f"ffn {s['ffn']}, V={s['vocab']:,} per side, {s['sentences']} sentences, beam 4, every hypothesis "
          f"{s['length']} tokens, --batch-size 32, {threads} thread(s) per run, {s['repeats']} interleaved repeats")
    common = ["--task", "translation", "--max-tokens", 4096, "--criterion", "cross_entropy",
              "--encoder-layers", s["layers"], "--decoder-layers", s["layers"], "--encoder-embed-dim", s["dim"],
              "--decoder-embed-dim", s["dim"], "--encoder-ffn-embed-dim", s["ffn"], "--decoder-ffn-embed-dim",
              s["ffn"], "--encoder-attention-heads", s["heads"], "--decoder-attention-heads", s["heads"]]
    define = ["--arch", "compact_transformer", "--tie-input-output", "--input-embedding", "define",
              "--define-map-dim", max(s["dim"] // 4, 8), "--define-expand-dim", 2 * s["dim"], "--define-levels", 3]
    # name: (training flags, generation flags); contenders with the same training flags share a checkpoint
    contenders = {"fairseq transformer": (["--arch", "transformer", "--share-decoder-input-output-embed"], []),
                  "ours compact_transformer": (["--arch", "compact_transformer", "--tie-input-output"], []),
                  "ours + DeFINE input, table (auto)": (define, []),
                  "ours + DeFINE input, unit every step": (define, ["--model-overrides",
                                                                   "{'define_eval_cache': 'never'}"])}
    with tempfile.TemporaryDirectory(prefix="compactemb-bench-") as work:
        data = mt_data(work, s["vocab"], s["sentences"], s["length"])
        trained = {}  # training flags -> (checkpoint path, parameter count)
        for flags, _ in contenders.values():
            if tuple(flags) not in trained:
                save_dir = os.path.join(work, f"ckpt{len(trained)}")
                trained[tuple(flags)] = checkpoint(data, save_dir, common + flags, threads)
        names = list(contenders)
        ckpts = {name: trained[tuple(flags)][0] for name, (flags, _) in contenders.items()}
        params = {name: trained[tuple(flags)][1] for name, (flags, _) in contenders.items()}
        if params[names[0]] != params[names[1]]:
            raise RuntimeError(f"unequal sizes: {params}")
        cmds = {name: [cli("fairseq-generate"), data, "--user-dir", USER_DIR, "--path", ckpts[name],
                       "--gen-subset", "valid", "--beam", 4, "--batch-size", 32, "--max-len-a", 0,
                       "--max-len-b", s["length"], "--min-len", s["length"], "--quiet",
                       "--required-batch-size-multiple", 1, "--num-workers", 0, *extra]
                for name, (_, extra) in contenders.items()}
        rates = interleaved_cli(cmds, r"Translated [0-9,]+ sentences \([0-9,]+ tokens\) in [0-9.]+s "
                                      r"\(([0-9.]+) sentences/s", s["repeats"], threads)
    sps = {k: statistics.median(v) for k, v in rates.items()}
    rows = [[n, f"{params[n]:,}", f"{sps[n]:,.1f}", f"{sps[n] / sps[names[0]]:.2f}x"] for n in names]
    print(table(rows, ["model", "params", "sentences/s", "vs fairseq"]))
    return {"sentences_per_s": sps, "params": params, "all_rates": rates,
            "generate_vs_fairseq": sps[names[1]] / sps[names[0]],
            "generate_define_table_vs_unit": sps[names[2]] / sps[names[3]]}
