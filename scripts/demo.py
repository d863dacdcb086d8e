#!/usr/bin/env python3
"""The main job (`make demo`): compact embeddings vs a standard softmax on a real corpus, on CPU.

Stages (one progress line each, fairseq's own logs in between):
 1. corpus: your own text with --corpus PATH (a plain-text file, split 90/5/5% by lines, or a
    folder with train/valid/test files); else WikiText-2 from ../shared/data (or
    $COMPACTEMB_DATA) if present; else downloaded and sha256-checked; else, offline, the Python
    docs corpus (stdlib docstrings + the language reference that every Python carries; see
    scripts/corpora.py).
 2. fairseq-preprocess.
 3. fairseq-train: four 2-layer LSTM LMs of equal hidden size, each for the same number of
    updates of the same 2,048 tokens (--updates-per-model): standard softmax / adaptive input
    + tied adaptive softmax / slim input+output trained with NCE / DeFINE input. An equal token
    budget and fixed seeds make the perplexities independent of the machine's load (an equal
    wall-clock budget did not: other jobs on the cores changed the ranking); the wall and CPU
    time each model took are reported beside them.
 4. fairseq-eval-lm on the held-out test text.
 5. a table (embedding params, total params, test perplexity, training tokens/s, checkpoint
    size) printed and written to results.md, and a plot (perplexity vs embedding params) PNG.

    python scripts/demo.py                      # ~13 minutes on 2 CPU cores
    python scripts/demo.py --corpus my_text.txt # the same comparison on your own text
    python scripts/demo.py --tiny               # seconds: a smoke test of every stage
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpora import (CorpusError, default_shared_data, download_wikitext2, find_wikitext2,  # noqa: E402
                     python_docs_corpus, user_corpus)

REPO = Path(__file__).resolve().parents[1]
USER_DIR = REPO / "fairseq_compactemb"


def stage(msg: str) -> None:
    print(f"\n=== [demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fairseq_cli(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def run(name, args, log: Path, show=re.compile(r"train_inner|valid on|params:|Perplexity|error", re.I)):
    """Run a fairseq CLI, stream the interesting lines, keep the full log. Returns the log and
    the CPU seconds (user + system) the process used."""
    cmd = [fairseq_cli(name), *map(str, args)]
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            f.write(line)
            if show.search(line):  # drop fairseq's "date time | INFO |" prefix, keep the message
                print("   " + line.rstrip().split(" | INFO | ")[-1][:200], flush=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            sys.exit(f"{name} failed (exit {proc.returncode}); full log: {log}")
    return log.read_text(), usage.ru_utime + usage.ru_stime


def get_corpus(args, work: Path):
    if args.corpus not in ("auto", "wikitext2", "python-docs"):
        try:
            return f"your corpus {args.corpus}", user_corpus(Path(args.corpus), work / "raw")
        except CorpusError as e:
            sys.stderr.write(f"demo.py: error: --corpus {e}\n")
            sys.exit(2)
    if args.corpus in ("auto", "wikitext2"):
        local = find_wikitext2(Path(args.data) / "wikitext-2", work / "raw") if Path(args.data).exists() else None
        if local:
            return "WikiText-2 (local copy, sha256 checked)", local
        got = download_wikitext2(work / "raw")
        if got:
            return "WikiText-2 (downloaded, sha256 checked)", got
        if args.corpus == "wikitext2":
            sys.exit("WikiText-2 not found locally (--data) and the download failed")
        print("[corpus] WikiText-2 unavailable offline: using the Python docs corpus")
    return "Python docs corpus (stdlib docstrings + language reference, offline)", python_docs_corpus(work / "raw")


def cut(src: Path, dst: Path, max_lines=None, max_tokens=None) -> Path:
    out, n = [], 0
    for line in src.read_text(encoding="utf-8").splitlines():
        if (max_lines and len(out) >= max_lines) or (max_tokens and n >= max_tokens):
            break
        out.append(line)
        n += len(line.split()) + 1
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")
    return dst


def models_for(vocab: int, hidden: int):
    """(name, model flags, criterion flags) - every model has the same LSTM (hidden x 2 layers)."""
    cutoffs = f"{max(vocab // 16, 8)},{max(vocab // 3, 16)}"
    k = 8
    m_in = max(k, (vocab * k // 8) // k * k)        # slim input: 1/8 of the table
    m_out = max(k, (vocab * k // 8) // k * k)       # slim output: 1/8, disjoint pools
    return [
        ("standard softmax", ["--input-embedding", "standard", "--output-layer", "softmax"],
         ["--criterion", "cross_entropy"]),
        ("adaptive input + tied adaptive softmax",
         ["--input-embedding", "adaptive", "--output-layer", "adaptive", "--tie-input-output",
          "--adaptive-cutoffs", cutoffs], ["--criterion", "compact_adaptive_loss"]),
        ("slim input+output (1/8), NCE",
         ["--input-embedding", "slim", "--slim-subvectors", k, "--slim-pool", m_in, "--output-layer", "slim",
          "--output-slim-subvectors", k, "--output-slim-pool", m_out],
         ["--criterion", "nce", "--noise-samples", 256, "--noise-distribution", "unigram"]),
        ("DeFINE input (n=64, k=512, N=3)",
         ["--input-embedding", "define", "--define-map-dim", 64, "--define-expand-dim", 512,
          "--define-levels", 3, "--output-layer", "softmax"], ["--criterion", "cross_entropy"]),
    ]


def embedding_parameters(ckpt: Path) -> int:
    """Unique scalars of the input embedding + output layer, from the checkpoint itself."""
    state = torch.load(ckpt, map_location="cpu")["model"]
    seen, n = set(), 0
    for key, t in state.items():
        # 0-d float tensors are buffers (DeFINE's map_scale), never parameters
        if key.startswith(("decoder.embed_tokens.", "decoder.compact_output.")) and t.is_floating_point() and t.dim():
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                n += t.numel()
    return n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="auto",
                   help="auto, wikitext2, python-docs, or PATH: a plain-text file (split 90/5/5%% by lines) "
                        "or a folder with one train, valid (or dev) and test file")
    p.add_argument("--data", default=str(default_shared_data()), help="folder holding wikitext-2/")
    p.add_argument("--out", default=str(REPO / "demo_output"))
    p.add_argument("--updates-per-model", type=int, default=300,
                   help="training updates of 2,048 tokens per model, the same for all four (default 300)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--tiny", action="store_true", help="smoke test: small cut of the corpus, 8 updates per model")
    p.add_argument("--only", default="", metavar="WORDS",
                   help="train only the models whose name contains one of these comma-separated words, e.g. "
                        "--only define,adaptive (default: all four)")
    args = p.parse_args(argv)
    wanted = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    names = [m[0] for m in models_for(100, args.hidden)]
    if wanted and not any(w in n.lower() for n in names for w in wanted):
        p.error(f"--only {args.only}: no model name contains it; the models are: {'; '.join(names)}")
    t0 = time.time()
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)

    stage("1/5 corpus")
    corpus_name, raw = get_corpus(args, work)
    lines = dict(train=3000, valid=200, test=300) if args.tiny else dict(train=None, valid=None, test=None)
    tokens = dict(train=None, valid=20000, test=60000) if not args.tiny else dict(train=None, valid=None, test=None)
    text = {s: cut(raw[s], work / f"{s}.txt", lines[s], tokens[s]) for s in ("train", "valid", "test")}
    print(f"[corpus] {corpus_name}: " + ", ".join(
        f"{s} {sum(len(l.split()) + 1 for l in open(f)):,} tokens" for s, f in text.items()))

    stage("2/5 fairseq-preprocess")
    data_bin = work / "data-bin"
    # a rerun into the same --out starts clean: fairseq-preprocess refuses an existing dictionary
    shutil.rmtree(data_bin, ignore_errors=True)
    run("fairseq-preprocess", ["--only-source", "--trainpref", text["train"], "--validpref", text["valid"],
                               "--testpref", text["test"], "--destdir", data_bin, "--workers", 2], work / "preprocess.log")
    vocab = sum(1 for _ in open(data_bin / "dict.txt")) + 4
    print(f"[preprocess] vocabulary {vocab:,} (incl. 4 special symbols)")
    updates = 8 if args.tiny else args.updates_per_model

    results = []
    # a model keeps its folder number (model1..model4) whatever --only picks, so a rerun of one
    # model into the same --out replaces that model's folder and no other
    models = [(n, m) for n, m in enumerate(models_for(vocab, args.hidden), 1)
              if not wanted or any(w in m[0].lower() for w in wanted)]
    for i, (number, (name, model_flags, crit_flags)) in enumerate(models, 1):
        stage(f"3/5 fairseq-train {i}/{len(models)}: {name}")
        save = work / f"model{number}"
        shutil.rmtree(save, ignore_errors=True)  # else fairseq-train would resume an earlier demo's checkpoint
        t_start = time.time()
        log, cpu_s = run("fairseq-train", [
            data_bin, "--user-dir", USER_DIR, "--task", "language_modeling", "--arch", "compact_lstm_lm",
            "--decoder-hidden-size", args.hidden, "--decoder-layers", 2, "--dropout", 0.2,
            *model_flags, *crit_flags, "--tokens-per-sample", 64, "--max-tokens", 2048,
            "--optimizer", "adam", "--lr", 0.003, "--clip-norm", 0.25, "--max-update", updates, "--max-epoch", 1000,
            "--save-dir", save, "--no-epoch-checkpoints", "--log-format", "simple",
            "--log-interval", 2 if args.tiny else 25, "--max-valid-steps", 10, "--num-workers", 0, "--seed", 1,
        ], work / f"train{number}.log")
        wall_s = time.time() - t_start
        done = max(int(x) for x in re.findall(r"num_updates[= ](\d+)", log))
        wps = [float(x) for x in re.findall(r"train_inner.*?wps=([0-9.]+)", log)]
        total = int(re.search(r"num\. shared model params: ([0-9,]+)", log).group(1).replace(",", ""))
        ckpt = save / "checkpoint_last.pt"
        stage(f"4/5 fairseq-eval-lm {i}/{len(models)}: {name}")
        ev, _ = run("fairseq-eval-lm", [data_bin, "--user-dir", USER_DIR, "--path", ckpt, "--gen-subset", "test",
                                     "--tokens-per-sample", 64, "--max-tokens", 4096, "--num-workers", 0],
                 work / f"eval{number}.log")
        ppl = float(re.search(r"Perplexity: ([0-9.]+|inf)", ev).group(1))
        results.append(dict(model=name, embedding_params=embedding_parameters(ckpt), total_params=total,
                            test_ppl=ppl, train_tokens_per_s=sum(wps) / max(len(wps), 1), updates=done,
                            train_wall_s=wall_s, train_cpu_s=cpu_s, checkpoint_mb=ckpt.stat().st_size / 2 ** 20))

    stage("5/5 results")
    header = (f"Corpus: {corpus_name}. Model: 2-layer LSTM LM, hidden {args.hidden}, {updates} updates of "
              f"2,048 tokens each ({updates * 2048:,} training tokens, the same for every model)"
              f"; test perplexity from fairseq-eval-lm on {sum(len(l.split()) + 1 for l in open(text['test'])):,} test tokens.")
    rows = ["| model | embedding params | total params | test ppl | train tokens/s | train wall s | train CPU s "
            "| updates | checkpoint MB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r['model']} | {r['embedding_params']:,} | {r['total_params']:,} | {r['test_ppl']:.1f} | "
                    f"{r['train_tokens_per_s']:,.0f} | {r['train_wall_s']:.0f} | {r['train_cpu_s']:.0f} | "
                    f"{r['updates']} | {r['checkpoint_mb']:.1f} |")
    table = header + "\n\n" + "\n".join(rows) + "\n\n(checkpoint MB includes the Adam optimizer state.)\n"
    print(table)
    (work / "results.md").write_text(table)
    (work / "results.json").write_text(json.dumps(results, indent=1))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for r in results:
        ax.scatter(r["embedding_params"], r["test_ppl"], s=40)
        ax.annotate(r["model"], (r["embedding_params"], r["test_ppl"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("embedding + output-layer parameters")
    ax.set_ylabel("test perplexity")
    ax.set_title(f"{corpus_name.split(' (')[0]}: perplexity vs embedding parameters", fontsize=9)
    fig.tight_layout()
    fig.savefig(work / "ppl_vs_params.png", dpi=120)
    print(f"wrote {work / 'results.md'} and {work / 'ppl_vs_params.png'} in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
