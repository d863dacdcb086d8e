"""Benchmark part ``output``: inference of the output layer at the slim paper's Table 7 shape, dense
softmax vs slim vs HashNet vs adaptive softmax, fp32 and bf16 (``scripts/benchmark.py``)."""
import copy

import torch
import torch.nn.functional as F

import benchmark_timing as timing
from benchmark_sizes import Sizes
from benchmark_timing import bf16_supported, interleaved, med, ms, table


def part_output(sz: Sizes) -> dict:
    from fairseq_compactemb.modules.adaptive_softmax_output import AdaptiveSoftmaxOutput
    from fairseq_compactemb.modules.hashnet_output import HashNetOutput
    from fairseq_compactemb.modules import slim_kernel
    from fairseq_compactemb.modules.slim_output import SlimOutput

    V, H, N, K, c = sz.out_vocab, sz.out_hidden, sz.out_rows, sz.out_subvectors, sz.out_compression
    M = K * (V // c)  # pool rows: M * H/K parameters = V*H/c
    cutoffs = sz.out_cutoffs + [V]
    print(f"\n## 1. Output layer inference (no grad): V={V:,} H={H} rows N={N} K={K} "
          f"slim M={M:,} (1/{c}), adaptive cutoffs {','.join(map(str, sz.out_cutoffs))} factor 4, "
          f"HashNet B=V*H/{c}; {sz.out_repeats} interleaved repeats, medians")
    torch.manual_seed(0)
    slim = SlimOutput(V, H, subvectors=K, pool_size=M).eval().to(timing.DEVICE)
    adaptive = AdaptiveSoftmaxOutput(V, H, cutoffs, factor=4.0).eval().to(timing.DEVICE)
    x = torch.randn(N, H).to(timing.DEVICE)
    res: dict = {"shape": dict(V=V, H=H, N=N, K=K, M=M, compression=c, adaptive_cutoffs=sz.out_cutoffs)}
    with torch.no_grad():
        W = slim.materialize()  # [V, H]: the dense matrix slim stands for
        fns = {
            "dense": lambda: F.log_softmax(x @ W.t(), dim=-1),
            "slim": lambda: slim.log_probs(x),
            "adaptive": lambda: adaptive.log_probs(x),
        }
        ref = fns["dense"]()
        err = (fns["slim"]() - ref).abs().max().item()
        # where slim's time goes: its two steps alone, and a plain log-softmax of an [N, V] table
        table_ = slim.partial_table(x)
        kernel = slim_kernel.usable(table_)

        def slim_pytorch():
            with slim_kernel.disabled():
                return slim.log_probs(x)

        steps = {
            "slim without the C++ kernel": slim_pytorch,
            "dense h @ W.T alone": lambda: x @ W.t(),
            "slim step 1 (partial table)": lambda: slim.partial_table(x),
            "slim step 2 (gather-sum)": lambda: slim.gather_sum(table_, slim.assignment),
            "log_softmax [N, V]": lambda: F.log_softmax(ref, dim=-1),
        }
        times = interleaved({**fns, **steps}, sz.out_repeats)
        del W, ref, table_
        # HashNet rebuilds the hashed V x H matrix in every call (it has no fast algorithm): time it
        # on hashnet_vocab words and scale linearly (its cost is V * H hashes + a dense product).
        Vh = min(V, sz.hashnet_vocab)
        hn = HashNetOutput(Vh, H, buckets=max(1, Vh * H // c)).eval().to(timing.DEVICE)
        t_h = interleaved({"hashnet": lambda: hn.log_probs(x)}, 2 if sz.mode != "tiny" else 1)["hashnet"]
        times["hashnet"] = [t * V / Vh for t in t_h]
        del hn
    d = med(times["dense"])
    rows = []
    for name, label in (("dense", "dense log_softmax(h @ W.T)"), ("slim", "slim (K matmuls + gather-sum)"),
                        ("hashnet", f"HashNet (timed at V={Vh:,}, x{V / Vh:.1f})"),
                        ("adaptive", "adaptive softmax")):
        rows.append([label, ms(med(times[name])), ms(min(times[name])), f"{d / med(times[name]):.2f}x"])
    print(table(rows, ["fp32", "median", "min", "dense/this"]))
    print(f"slim vs dense: max |log-prob difference| = {err:.2e} (fp32); slim's fused C++ gather-sum + "
          f"log-softmax kernel: {'used' if kernel else 'not available (pure-PyTorch path)'}")
    print("parts, timed alone in the same loop (medians): " + ", ".join(
        f"{name} {ms(med(times[name]))}" for name in steps))
    res.update(fp32_s={k: med(v) for k, v in times.items() if k not in steps},
               parts_s={k: med(times[k]) for k in steps}, slim_max_abs_err=err, slim_kernel=kernel,
               slim_vs_dense=d / med(times["slim"]), adaptive_vs_dense=d / med(times["adaptive"]),
               hashnet_vs_dense=d / med(times["hashnet"]), hashnet_timed_vocab=Vh)
    res.update(part_output_bf16(sz, slim, x))
    return res


def part_output_bf16(sz: Sizes, slim, x) -> dict:
    if timing.DEVICE.type == "cpu" and not bf16_supported():
        print("bf16: not supported by this CPU (no AVX512-BF16 / AMX): skipped")
        return {"bf16": None}
    with torch.no_grad():
        ref32 = slim.log_probs(x)
        slim16 = copy.deepcopy(slim).to(torch.bfloat16)
        W16 = slim16.materialize()  # the same bf16 weights, dense
        x16 = x.to(torch.bfloat16)
        fns = {
            "dense": lambda: F.log_softmax((x16 @ W16.t()).float(), dim=-1),
            "slim": lambda: slim16.log_probs(x16),
        }
        err = {k: (fn() - ref32).abs().max().item() for k, fn in fns.items()}
        times = interleaved(fns, sz.out_repeats)
        del W16
    d = med(times["dense"])
    rows = [[k, ms(med(v)), ms(min(v)), f"{d / med(v):.2f}x", f"{err[k]:.2e}"] for k, v in times.items()]
    print(table(rows, ["bf16", "median", "min", "dense/this", "max |err| vs fp32"]))
    return {"bf16": {"s": {k: med(v) for k, v in times.items()}, "slim_vs_dense": d / med(times["slim"]),
                     "max_abs_err_vs_fp32": err}}
