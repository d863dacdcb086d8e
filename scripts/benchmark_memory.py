"""Benchmark part ``memory``: parameter bytes and peak RSS of the One Billion Word LSTM, slim vs
uncompressed, each measured in a fresh process (``scripts/benchmark.py --memory-child``)."""
import json
import os
import subprocess
import sys
from typing import List

import torch

from benchmark_sizes import Sizes
from benchmark_timing import quiet_imports, table
from benchmark_training import build_lm, count, unique_params, zipf_batch

BENCHMARK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark.py")


# -- part 4: memory ---------------------------------------------------------------------------------
def gbw_flags(kind: str, V: int, H: int) -> List[str]:
    """compact_lstm_lm_gbw_2048 (2 x H LSTM) with slim input 1/32 + slim output 1/8, or uncompressed."""
    flags = ["--decoder-hidden-size", H, "--criterion", "cross_entropy"]
    if kind == "slim":
        return flags + ["--slim-pool", max(8, V * 8 // 32), "--output-slim-pool", 8 * (V // 8)]
    return flags + ["--input-embedding", "standard", "--output-layer", "softmax"]


def memory_child(spec: dict) -> dict:
    """Run in a fresh process: build the model, one forward/backward on a tiny batch, one SGD step
    (no momentum, so no optimizer state); report parameter bytes and peak RSS."""
    quiet_imports()
    from fairseq_compactemb.model_size import fake_dictionary

    def rss(field: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith(field + ":"))

    base = rss("VmRSS")
    d = fake_dictionary(spec["vocab"])
    model, criterion = build_lm(d, "compact_lstm_lm_gbw_2048", gbw_flags(spec["kind"], spec["vocab"], spec["hidden"]))
    params = unique_params([model])
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    built = rss("VmRSS")
    sample = zipf_batch(d, 2, 8)
    optimizer = torch.optim.SGD(params, lr=0.1)
    model.train()
    loss, _, _ = criterion(model, sample)
    loss.backward()
    optimizer.step()
    return {"kind": spec["kind"], "vocab": spec["vocab"], "params": count(params), "param_bytes": param_bytes,
            "buffer_bytes": buffer_bytes, "rss_after_build": built - base, "peak_rss": rss("VmHWM"),
            "baseline_rss": base}


def measure_in_subprocess(spec: dict) -> dict:
    out = subprocess.run([sys.executable, BENCHMARK, "--memory-child", json.dumps(spec)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def meta_param_bytes(kind: str, V: int, H: int) -> int:
    """fp32 bytes of the unique parameters, counted on the meta device (nothing allocated)."""
    from fairseq_compactemb.model_size import build_for_vocab

    model = build_for_vocab("compact_lstm_lm_gbw_2048", V, gbw_flags(kind, V, H))
    return sum(p.numel() * 4 for p in unique_params([model]))


def part_memory(sz: Sizes) -> dict:
    V, H, Vr = sz.mem_vocab, sz.mem_hidden, sz.mem_reduced_vocab
    GB = 1e9
    print(f"\n## 4. Memory of the One Billion Word LSTM (compact_lstm_lm_gbw_2048: 2 x {H}): slim input 1/32 + "
          f"slim output 1/8 vs standard input + softmax output; peak RSS of a fresh process that builds the "
          f"model and runs one forward/backward (2 x 8 tokens, cross_entropy) and one SGD step (no momentum: "
          f"no optimizer state); RSS cap {sz.mem_cap_gb:.0f} GB")
    quiet_imports()
    counted = {kind: meta_param_bytes(kind, V, H) for kind in ("slim", "uncompressed")}
    runs = []
    for vocab in sorted({V, Vr}, reverse=True):
        for kind in ("slim", "uncompressed"):
            need = 2.2 * (counted[kind] * vocab / V)  # parameters + gradients + a margin
            if need > sz.mem_cap_gb * GB:
                runs.append({"kind": kind, "vocab": vocab, "skipped": f"needs ~{need / GB:.1f} GB (params + "
                                                                     f"grads) > cap {sz.mem_cap_gb:g} GB"})
            else:
                runs.append(measure_in_subprocess({"kind": kind, "vocab": vocab, "hidden": H}))
    rows = []
    for r in runs:
        if "skipped" in r:
            rows.append([r["kind"], f"{r['vocab']:,}", "-", "-", "-", "-", "not run: " + r["skipped"]])
        else:
            rows.append([r["kind"], f"{r['vocab']:,}", f"{r['params']:,}", f"{r['param_bytes'] / GB:.2f} GB",
                         f"{r['buffer_bytes'] / GB:.2f} GB", f"{r['peak_rss'] / GB:.2f} GB",
                         f"{(r['peak_rss'] - r['baseline_rss']) / GB:.2f} GB"])
    print(table(rows, ["model", "V", "params", "param bytes (fp32)", "buffers (assignments)", "peak RSS",
                       "peak RSS - imports"]))
    ratio = counted["uncompressed"] / counted["slim"]
    print(f"counted at V={V:,}: slim {counted['slim'] / GB:.2f} GB vs uncompressed {counted['uncompressed'] / GB:.2f} GB "
          f"of fp32 parameters ({ratio:.1f}x smaller); training with Adam keeps 4x that (weights, grads, 2 moments): "
          f"{4 * counted['slim'] / GB:.1f} GB vs {4 * counted['uncompressed'] / GB:.1f} GB")
    out = {"vocab": V, "param_bytes": counted, "param_bytes_ratio": ratio, "runs": runs}
    measured = {(r["kind"], r["vocab"]): r for r in runs if "skipped" not in r}
    for vocab in (V, Vr):
        if ("slim", vocab) in measured and ("uncompressed", vocab) in measured:
            out[f"peak_rss_ratio_at_{vocab}"] = (measured[("uncompressed", vocab)]["peak_rss"]
                                                 / measured[("slim", vocab)]["peak_rss"])
    return out
