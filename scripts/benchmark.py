"""Side-by-side speed and memory benchmark of the compact output layers (one machine, one run).

Six parts, each printing a table and ratios where faster (or smaller) = larger:

1. ``output``  -- inference of the output layer at the slim paper's Table 7 shape (One Billion
   Word, V=793,471, H=2048, 20 hidden states, K=8, 1/8 compression): dense full softmax
   (``log_softmax(hidden @ W.T)``) vs slim (``SlimOutput.log_probs``: K partial matmuls +
   gather-sum, the dense matrix being the slim layer's own materialised ``V x H`` product, so
   the results must agree) vs HashNet vs adaptive softmax; fp32, and bf16 where the CPU has it.
2. ``train``   -- training step throughput (forward + backward + Adam step, tokens/s) of a
   2 x 512 ``compact_lstm_lm`` at V=267,735: full softmax (``cross_entropy``) vs
   ``importance_sampling`` (8192 samples) vs ``nce`` (1024) vs adaptive softmax vs slim output +
   ``nce``, built with fairseq's own argument parser, task, criterions and Adam.
3. ``fairseq`` -- training tokens/s of ``compact_transformer_lm`` vs stock fairseq
   ``transformer_lm`` at equal sizes (same parameter count, checked), in two pairs: our adaptive
   input + tied adaptive softmax vs ``--adaptive-input ... --tie-adaptive-weights
   --tie-adaptive-proj``, and a full softmax with ``cross_entropy`` (V at most 33,280).
4. ``memory``  -- parameter bytes (counted) and peak RSS (measured in a fresh subprocess per
   configuration: build + one forward/backward + SGD step on a tiny batch) of the One Billion
   Word 2 x 2048 LSTM with slim input (1/32) + slim output (1/8) vs standard input + softmax.
5. ``eval``    -- ``fairseq-eval-lm`` tokens/s, ours vs stock fairseq (adaptive, softmax) and
   slim output vs softmax (``scripts/benchmark_cli.py``).
6. ``generate`` -- ``fairseq-generate`` sentences/s, ``compact_transformer`` vs ``transformer``, and
   a DeFINE input decoded with its inference table vs running its unit at every step.

Each part lives beside this script: ``benchmark_output.py`` (1), ``benchmark_training.py`` (2, 3),
``benchmark_memory.py`` (4), ``benchmark_cli.py`` (5, 6); their sizes per mode are in
``benchmark_sizes.py``, the timing and the machine's description in ``benchmark_timing.py``.

Timings are interleaved (every repeat runs each contender once, in turn) and summarised by their
median, so load from other processes hits all contenders alike. Training data are synthetic
Zipfian tokens (``p(rank r) ~ 1/(r+1)``): adaptive softmax and the unigram noise distribution
depend on word frequencies, uniform tokens would misrepresent both.

    python scripts/benchmark.py            # paper sizes: ~3 min on an idle 2-core CPU (~8 under load), ~11 GB RSS
    python scripts/benchmark.py --quick    # reduced sizes (printed), under 2 minutes
    python scripts/benchmark.py --parts output,memory

The last line of the output is one JSON object: the headline ratios ``slim_vs_dense``,
``is_vs_full``, ``nce_vs_full``, ``adaptive_vs_full``, ``ours_vs_fairseq_adaptive``, ``ours_vs_fairseq_softmax``,
``eval_vs_fairseq_adaptive``, ``eval_vs_fairseq_softmax``, ``eval_slim_vs_softmax`` (with
``eval_slim_vs_softmax_mac_ratio``, the multiply-add ratio that caps it), ``generate_vs_fairseq``,
``generate_define_table_vs_unit``, the
absolute timings and the machine. ``--tiny`` (toy sizes, seconds) exists for the test suite.
"""
import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from typing import Optional, Sequence

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run as a script from anywhere: import the package from this checkout
    sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its parts, beside this script
import benchmark_cli  # noqa: E402
import benchmark_timing  # noqa: E402
from benchmark_memory import memory_child, part_memory  # noqa: E402
from benchmark_output import part_output  # noqa: E402
from benchmark_sizes import sizes_for  # noqa: E402
from benchmark_timing import machine, quiet_imports, table  # noqa: E402
from benchmark_training import part_fairseq, part_train  # noqa: E402

PARTS = ("output", "train", "fairseq", "memory", "eval", "generate")


# -- main -------------------------------------------------------------------------------------------
def slim_pairs(text: str) -> list:
    """``"33280:128,267735:512"`` -> ``[(33280, 128), (267735, 512)]``; ``[]`` unless every pair has
    V > 8 and d a multiple of 8 (the slim output of part eval uses K=8)."""
    try:
        pairs = [tuple(int(x) for x in pair.split(":")) for pair in text.split(",")]
    except ValueError:
        return []
    ok = all(len(pair) == 2 and pair[0] > 8 and pair[1] >= 8 and pair[1] % 8 == 0 for pair in pairs)
    return pairs if ok else []


def main(argv: Optional[Sequence[str]] = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="reduced sizes (printed), under 2 minutes")
    mode.add_argument("--tiny", action="store_true", help="toy sizes, for the test suite only")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's default)")
    p.add_argument("--device", default="cpu", help="device of parts 1-3, e.g. cuda (part 4 measures host RSS)")
    p.add_argument("--eval-slim-pairs", metavar="V:d,...",
                   help="part eval: the (vocabulary, dimension) pairs of the slim-vs-softmax comparison "
                        "(default: the mode's), e.g. 267735:512 for One Billion Word's vocabulary")
    p.add_argument("--eval-tokens", type=int, help="part eval: tokens of the evaluated set (default: the mode's)")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    overrides = {}
    if args.eval_slim_pairs:
        overrides["slim"] = slim_pairs(args.eval_slim_pairs)
        if not overrides["slim"]:
            p.error(f"--eval-slim-pairs: {args.eval_slim_pairs!r} is not a list like 33280:128,267735:512 "
                    "(V > 8, d a multiple of 8: the slim output uses K=8)")
    if args.eval_tokens is not None:
        if args.eval_tokens < 100:
            p.error(f"--eval-tokens: {args.eval_tokens} is too few to time; give at least 100")
        overrides["valid"] = args.eval_tokens
    if args.memory_child:
        print(json.dumps(memory_child(json.loads(args.memory_child))))
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    benchmark_timing.set_device(args.device)
    parts = [x for x in args.parts.split(",") if x]
    unknown = set(parts) - set(PARTS)
    if unknown:
        p.error(f"--parts: unknown {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    sz = sizes_for("tiny" if args.tiny else "quick" if args.quick else "full")
    quiet_imports()
    info = machine()
    print(f"# fairseq-compactemb benchmark, {sz.mode} mode ({'reduced sizes' if sz.mode != 'full' else 'paper sizes'})")
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} with {info['torch_threads']} threads, "
          f"bf16 {'yes' if info['bf16_cpu'] else 'no'}, GPU {info['gpu'] or 'none'}; parts 1-3 on {info['device']}; "
          f"{info['date']}")
    t0 = time.perf_counter()
    results = {}
    cli_threads = args.threads or 1  # the CLI parts: one thread per run unless --threads says otherwise
    runners = {"output": part_output, "train": part_train, "fairseq": part_fairseq, "memory": part_memory,
               "eval": lambda sz: benchmark_cli.part_eval(sz.mode, cli_threads, table, overrides),
               "generate": lambda sz: benchmark_cli.part_generate(sz.mode, cli_threads, table)}
    for part in parts:
        results[part] = runners[part](sz)
    summary = {
        "mode": sz.mode,
        "slim_vs_dense": results.get("output", {}).get("slim_vs_dense"),
        "is_vs_full": results.get("train", {}).get("is_vs_full"),
        "nce_vs_full": results.get("train", {}).get("nce_vs_full"),
        "adaptive_vs_full": results.get("train", {}).get("adaptive_vs_full"),
        "ours_vs_fairseq_adaptive": results.get("fairseq", {}).get("ours_vs_fairseq_adaptive"),
        "ours_vs_fairseq_softmax": results.get("fairseq", {}).get("ours_vs_fairseq_softmax"),
        "eval_vs_fairseq_adaptive": results.get("eval", {}).get("eval_vs_fairseq_adaptive"),
        "eval_vs_fairseq_softmax": results.get("eval", {}).get("eval_vs_fairseq_softmax"),
        "eval_slim_vs_softmax": results.get("eval", {}).get("eval_slim_vs_softmax"),
        "eval_slim_vs_softmax_mac_ratio": results.get("eval", {}).get("eval_slim_vs_softmax_mac_ratio"),
        "eval_slim_vs_softmax_ceiling": results.get("eval", {}).get("eval_slim_vs_softmax_ceiling"),
        "eval_slim_output_layer_alone": results.get("eval", {}).get("eval_slim_output_layer_alone"),
        "generate_vs_fairseq": results.get("generate", {}).get("generate_vs_fairseq"),
        "generate_define_table_vs_unit": results.get("generate", {}).get("generate_define_table_vs_unit"),
        "details": results,
        "sizes": asdict(sz),
        "machine": info,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"\n(total {summary['seconds']:.0f} s)")
    print(json.dumps(summary, default=float))
    return summary


if __name__ == "__main__":
    main()
