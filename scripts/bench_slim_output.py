"""Time the slim output layer's log_probs against the dense softmax it replaces (CPU, fp32).

Default shape: the paper's Table 7 (One Billion Word, V=793,471, H=2048), K=8 sub-vectors and
M = K * floor(V / 8) pool rows, i.e. 1/8 of the dense parameters, N=20 hidden states. The
dense baseline multiplies by the slim layer's own materialised V x H matrix, so the two outputs
must agree (checked). Needs about 8 GB of memory at the default shape.

    python3 scripts/bench_slim_output.py [--vocab 793471 --hidden 2048 --subvectors 8 --rows 20]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from fairseq_compactemb.modules.slim_output import SlimOutput


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=793471)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--subvectors", type=int, default=8)
    p.add_argument("--compression", type=int, default=8, help="pool params = V*H / compression")
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    V, H, K, N = args.vocab, args.hidden, args.subvectors, args.rows
    M = K * (V // args.compression)
    slim = SlimOutput(V, H, subvectors=K, pool_size=M).eval()
    with torch.no_grad():
        dense_w = slim.materialize()  # [V, H]: the same function, computed densely
    x = torch.randn(N, H)
    print(f"V={V:,} H={H} K={K} M={M:,} N={N} threads={torch.get_num_threads()} "
          f"slim params {slim.num_parameters():,} = 1/{V * H / slim.num_parameters():.2f} of {V * H:,}")

    def dense():
        return F.log_softmax(x @ dense_w.t(), dim=-1)

    def fast():
        return slim.log_probs(x)

    with torch.no_grad():
        ref, got = dense(), fast()
        err = (ref - got).abs().max().item()
        times = {"dense": [], "slim": []}
        for _ in range(args.repeats):  # interleaved, so background load hits both alike
            for name, fn in (("dense", dense), ("slim", fast)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        print(f"{name:5s} log_probs: min {min(ts) * 1e3:8.1f} ms  median {statistics.median(ts) * 1e3:8.1f} ms")
    print(f"speed-up dense/slim: min-to-min {min(times['dense']) / min(times['slim']):.2f}x, "
          f"median-to-median {statistics.median(times['dense']) / statistics.median(times['slim']):.2f}x; "
          f"max |difference| {err:.2e}")


if __name__ == "__main__":
    main()
