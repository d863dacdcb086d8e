"""Side-by-side speed and memory benchmark of the compact output layers (one machine, one run).

Four parts, each printing a table and ratios where faster (or smaller) = larger:

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
import copy
import datetime
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run as a script from anywhere: import the package from this checkout
    sys.path.insert(0, REPO)

PARTS = ("output", "train", "fairseq", "memory", "eval", "generate")
DEVICE = torch.device("cpu")  # --device; parts 1-3 run there, part 4 measures host RSS


def now() -> float:
    """A timestamp after the device has finished its queued work."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)
    return time.perf_counter()


# -- sizes -----------------------------------------------------------------------------------------
@dataclass
class Sizes:
    mode: str
    # part 1: output layer inference
    out_vocab: int
    out_hidden: int
    out_rows: int
    out_subvectors: int
    out_compression: int
    out_cutoffs: List[int]  # adaptive softmax head / tail cutoffs (the last band ends at V)
    hashnet_vocab: int  # HashNet rebuilds its V x H matrix every call: timed on this many words
    out_repeats: int
    # part 2: LSTM training
    lm_vocab: int
    lm_hidden: int
    lm_batch: int
    lm_steps_len: int
    lm_cutoffs: List[int]
    is_samples: int
    nce_samples: int
    lm_repeats: int
    # part 3: transformer vs fairseq
    tf_vocab: int
    tf_layers: int
    tf_dim: int
    tf_ffn: int
    tf_heads: int
    tf_batch: int
    tf_len: int
    tf_cutoffs: List[int]
    tf_repeats: int
    # part 4: memory
    mem_vocab: int
    mem_hidden: int
    mem_reduced_vocab: int
    mem_cap_gb: float


def sizes_for(mode: str) -> Sizes:
    if mode == "full":
        return Sizes(mode, 793471, 2048, 20, 8, 8, [60000, 160000], 20000, 7,
                     267735, 512, 64, 32, [20000, 60000], 8192, 1024, 3,
                     267735, 2, 512, 2048, 8, 8, 256, [20000, 60000], 5,
                     793471, 2048, 99184, 13.0)
    if mode == "quick":
        return Sizes(mode, 100000, 2048, 20, 8, 8, [7560, 20160], 2000, 5,
                     50000, 512, 16, 32, [4000, 12000], 2048, 256, 2,
                     50000, 1, 256, 1024, 4, 4, 128, [4000, 12000], 3,
                     50000, 2048, 50000, 13.0)
    if mode == "tiny":
        return Sizes(mode, 3000, 64, 4, 4, 8, [300, 900], 200, 2,
                     2000, 32, 4, 8, [300, 900], 64, 16, 1,
                     2000, 1, 32, 64, 2, 2, 16, [300, 900], 1,
                     2000, 64, 2000, 2.0)
    raise ValueError(mode)


# -- helpers ---------------------------------------------------------------------------------------
def quiet_imports() -> None:
    """fairseq and hydra log and warn a lot when models are built from flags; keep the tables readable."""
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)


def interleaved(fns: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> Dict[str, List[float]]:
    """Seconds per call of every function, run in turn ``repeats`` times (after ``warmup`` rounds)."""
    times = {name: [] for name in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            t0 = now()
            fn()
            if r >= warmup:
                times[name].append(now() - t0)
    return times


def med(ts: Sequence[float]) -> float:
    return statistics.median(ts)


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "bf16_cpu": bf16_supported(),
        "amx_bf16": " amx_bf16" in flags,
        "device": str(DEVICE),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def bf16_supported() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def table(rows: List[List[str]], header: List[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "| " + " | ".join(str(x).rjust(w) for x, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def ms(t: float) -> str:
    return f"{t * 1e3:.1f} ms"


# -- part 1: output layer inference -----------------------------------------------------------------
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
    slim = SlimOutput(V, H, subvectors=K, pool_size=M).eval().to(DEVICE)
    adaptive = AdaptiveSoftmaxOutput(V, H, cutoffs, factor=4.0).eval().to(DEVICE)
    x = torch.randn(N, H).to(DEVICE)
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
        hn = HashNetOutput(Vh, H, buckets=max(1, Vh * H // c)).eval().to(DEVICE)
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
    if DEVICE.type == "cpu" and not bf16_supported():
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


# -- fairseq model building ----------------------------------------------------------------------
def zipf_dictionary(vocab_size: int):
    """A fairseq Dictionary of ``vocab_size`` symbols whose word counts fall as ``1 / rank``."""
    from fairseq.data import Dictionary

    d = Dictionary()
    for i in range(vocab_size - len(d)):
        d.add_symbol(f"w{i}", n=max(1, int(1e9 / (i + 1))))
    return d


def to_device(sample: dict) -> dict:
    return {k: (to_device(v) if isinstance(v, dict) else v.to(DEVICE) if torch.is_tensor(v) else v)
            for k, v in sample.items()}


def zipf_batch(dictionary, batch: int, length: int, seed: int = 0) -> dict:
    """A language-model sample of ``batch x length`` Zipfian word tokens (targets = next token)."""
    g = torch.Generator().manual_seed(seed)
    n_words = len(dictionary) - dictionary.nspecial
    probs = 1.0 / torch.arange(1, n_words + 1, dtype=torch.float64)
    cdf = (probs / probs.sum()).cumsum(0)
    stream = torch.searchsorted(cdf, torch.rand(batch, length + 1, generator=g, dtype=torch.float64))
    stream = stream.clamp_(max=n_words - 1) + dictionary.nspecial
    src, tgt = stream[:, :-1].contiguous(), stream[:, 1:].contiguous()
    return {"id": torch.arange(batch), "nsentences": batch, "ntokens": batch * length,
            "net_input": {"src_tokens": src, "src_lengths": torch.full((batch,), length)},
            "target": tgt}


def lm_config(arch: str, flags: Sequence[str]):
    """fairseq-train's configuration for ``--task language_modeling --arch arch flags``."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from fairseq_compactemb.user_dir import user_dir

    parser = options.get_training_parser()
    argv = ["/nonexistent", "--task", "language_modeling", "--arch", arch, "--user-dir", user_dir(),
            *map(str, flags)]
    return convert_namespace_to_omegaconf(options.parse_args_and_arch(parser, argv))


def build_lm(dictionary, arch: str, flags: Sequence[str], cfg=None):
    """(model, criterion) exactly as ``fairseq-train`` builds them for ``--arch arch flags``
    (``cfg``: that configuration, when the caller has it already)."""
    from fairseq import tasks

    cfg = cfg or lm_config(arch, flags)
    task = tasks.TASK_REGISTRY["language_modeling"](cfg.task, dictionary, dictionary)
    return task.build_model(cfg.model), task.build_criterion(cfg.criterion)


def unique_params(modules) -> list:
    seen = {}
    for m in modules:
        for p in m.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


def count(params) -> int:
    return sum(p.numel() for p in params)


class Trainer:
    """One training step as fairseq's trainer does it: zero grads, criterion forward, backward,
    optimizer step (fairseq's own Adam implementation, what ``--optimizer adam`` runs on CPU).
    Steps of each phase are timed separately."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def step(self, model, criterion, sample) -> Dict[str, float]:
        t0 = now()
        self.optimizer.zero_grad(set_to_none=True)
        model.train()
        loss, _, _ = criterion(model, sample)
        t1 = now()
        loss.backward()
        t2 = now()
        self.optimizer.step()
        t3 = now()
        return {"forward": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2, "total": t3 - t0}


def run_training(contenders: Dict[str, tuple], sample: dict, optimizer, repeats: int) -> Dict[str, Dict[str, float]]:
    """Median phase times per contender (model, criterion), steps interleaved round-robin after
    one warm-up step each (which also allocates Adam's state)."""
    trainer = Trainer(optimizer)
    times = {name: [] for name in contenders}
    for r in range(1 + repeats):
        for name, (model, criterion) in contenders.items():
            t = trainer.step(model, criterion, sample)
            if r:
                times[name].append(t)
    return {name: {k: med([t[k] for t in ts]) for k in ts[0]} for name, ts in times.items()}


# -- part 2: LSTM training throughput ---------------------------------------------------------------
def part_train(sz: Sizes) -> dict:
    from fairseq.optim.adam import Adam

    V, H = sz.lm_vocab, sz.lm_hidden
    B, T = sz.lm_batch, sz.lm_steps_len
    cut = ",".join(map(str, sz.lm_cutoffs))
    print(f"\n## 2. Training step of a 2 x {H} compact_lstm_lm, V={V:,}, standard input embedding, "
          f"{B} x {T} = {B * T} tokens per step (Zipfian), fairseq's Adam over all parameters, "
          f"{sz.lm_repeats} interleaved repeats, medians")
    quiet_imports()
    d = zipf_dictionary(V)
    base = ["--decoder-hidden-size", H, "--decoder-layers", 2, "--dropout", 0.1, "--input-embedding", "standard"]
    softmax = base + ["--output-layer", "softmax"]
    specs = {
        "full softmax": (softmax, ["--criterion", "cross_entropy"]),
        f"importance sampling ({sz.is_samples})": (softmax, ["--criterion", "importance_sampling",
                                                             "--noise-samples", sz.is_samples]),
        f"NCE ({sz.nce_samples})": (softmax, ["--criterion", "nce", "--noise-samples", sz.nce_samples]),
        f"adaptive softmax ({cut}, factor 4)": (base + ["--output-layer", "adaptive", "--adaptive-cutoffs", cut,
                                                        "--adaptive-factor", 4],
                                                ["--criterion", "compact_adaptive_loss"]),
        f"slim output (K=8, 1/8) + NCE ({sz.nce_samples})": (
            base + ["--output-layer", "slim", "--output-slim-subvectors", 8, "--output-slim-pool", 8 * (V // 8)],
            ["--criterion", "nce", "--noise-samples", sz.nce_samples]),
    }
    torch.manual_seed(0)
    # Models with the same output layer are one model; every model shares the first one's input
    # embedding and LSTM (same shapes), so that all contenders fit in memory at once and can be
    # interleaved. A step still computes and updates exactly what its own model has: fairseq's
    # Adam skips parameters without a gradient, and grads are reset to None before each step.
    models: Dict[str, object] = {}
    contenders, sizes = {}, {}
    body = None
    for name, (model_flags, crit_flags) in specs.items():
        key = " ".join(map(str, model_flags))
        model, criterion = build_lm(d, "compact_lstm_lm", list(model_flags) + list(crit_flags))
        if key in models:
            model = models[key]
        else:
            if body is None:
                body = model.decoder
            else:
                model.decoder.embed_tokens, model.decoder.lstm = body.embed_tokens, body.lstm
            models[key] = model
        contenders[name] = (model, criterion)
        sizes[name] = count(unique_params([model, criterion]))
    for model in models.values():
        model.to(DEVICE)
    params = unique_params([m for m in models.values()] + [c for _, c in contenders.values()])
    optimizer = Adam(params, lr=1e-4)
    sample = to_device(zipf_batch(d, B, T))
    head = (sample["target"] < d.nspecial + sz.lm_cutoffs[0]).float().mean().item()
    print(f"(targets in the adaptive head band: {head:.0%})")
    res = run_training(contenders, sample, optimizer, sz.lm_repeats)
    full = res["full softmax"]["total"]
    rows = [[name, f"{sizes[name]:,}", ms(t["forward"]), ms(t["backward"]), ms(t["optimizer"]), ms(t["total"]),
             f"{B * T / t['total']:,.0f}", f"{full / t['total']:.2f}x"] for name, t in res.items()]
    print(table(rows, ["output / criterion", "params", "forward", "backward", "Adam step", "step",
                       "tokens/s", "vs full"]))
    names = list(specs)
    return {"tokens_per_step": B * T, "vocab": V, "params": sizes, "step_s": res,
            "is_vs_full": full / res[names[1]]["total"], "nce_vs_full": full / res[names[2]]["total"],
            "adaptive_vs_full": full / res[names[3]]["total"],
            "slim_nce_vs_full": full / res[names[4]]["total"]}


# -- part 3: our adaptive input/softmax vs fairseq's ------------------------------------------------
def part_fairseq(sz: Sizes) -> dict:
    """Training steps of stock fairseq's transformer LM and ours with the same layers, in two pairs:
    tied adaptive input + softmax (ADP-T), and a full softmax (cross-entropy) at a vocabulary of at
    most 33,280 words (WikiText-2's: at the paper sizes' 267,735 one step would take minutes)."""
    from fairseq.optim.adam import Adam

    V, L, D = sz.tf_vocab, sz.tf_layers, sz.tf_dim
    Vs = min(V, 33280)
    cut = ",".join(map(str, sz.tf_cutoffs))
    B, T = sz.tf_batch, sz.tf_len
    print(f"\n## 3. Ours vs stock fairseq, training steps of a transformer LM with the same layers: "
          f"{L} layers, d={D}, ffn {sz.tf_ffn}, {sz.tf_heads} heads; adaptive input + tied adaptive softmax (ADP-T) "
          f"at V={V:,}, cutoffs {cut}, factor 4; full softmax (cross-entropy) at V={Vs:,}; "
          f"{B} x {T} = {B * T} tokens per step (Zipfian), fairseq's Adam, {sz.tf_repeats} interleaved repeats")
    quiet_imports()
    common = ["--decoder-layers", L, "--decoder-embed-dim", D, "--decoder-ffn-embed-dim", sz.tf_ffn,
              "--decoder-attention-heads", sz.tf_heads, "--decoder-input-dim", D, "--decoder-output-dim", D,
              "--dropout", 0.1, "--attention-dropout", 0.0, "--no-decoder-final-norm",
              "--tokens-per-sample", T, "--ddp-backend", "legacy_ddp"]
    adaptive = common + ["--adaptive-softmax-dropout", 0.0]
    pairs = {  # kind: (vocabulary, stock (name, arch, flags), ours (name, arch, flags))
        "adaptive": (V, ("fairseq transformer_lm --adaptive-input", "transformer_lm", adaptive + [
                         "--adaptive-input", "--adaptive-input-cutoff", cut, "--adaptive-input-factor", 4,
                         "--adaptive-softmax-cutoff", cut, "--adaptive-softmax-factor", 4,
                         "--tie-adaptive-weights", "--tie-adaptive-proj", "--criterion", "adaptive_loss"]),
                     ("ours compact_transformer_lm adaptive", "compact_transformer_lm", adaptive + [
                         "--input-embedding", "adaptive", "--output-layer", "adaptive", "--tie-input-output",
                         "--adaptive-cutoffs", cut, "--adaptive-factor", 4, "--criterion", "compact_adaptive_loss"])),
        "softmax": (Vs, ("fairseq transformer_lm, softmax", "transformer_lm", common + ["--criterion", "cross_entropy"]),
                    ("ours compact_transformer_lm, softmax", "compact_transformer_lm",
                     common + ["--criterion", "cross_entropy"])),
    }
    rows, out = [], {"tokens_per_step": B * T, "params": {}, "step_s": {}}
    for kind, (vocab, stock, ours) in pairs.items():
        d = zipf_dictionary(vocab)
        torch.manual_seed(0)
        contenders = {name: build_lm(d, arch, flags) for name, arch, flags in (stock, ours)}
        sizes = {k: count(unique_params([m])) for k, (m, _) in contenders.items()}
        if len(set(sizes.values())) != 1:
            raise RuntimeError(f"the two models differ in size: {sizes}")
        for model, _ in contenders.values():
            model.to(DEVICE)
        optimizer = Adam(unique_params([m for m, _ in contenders.values()]), lr=1e-4)
        res = run_training(contenders, to_device(zipf_batch(d, B, T, seed=1)), optimizer, sz.tf_repeats)
        base = res[stock[0]]["total"]
        rows += [[name, f"{vocab:,}", f"{sizes[name]:,}", ms(t["forward"]), ms(t["backward"]), ms(t["optimizer"]),
                  ms(t["total"]), f"{B * T / t['total']:,.0f}", f"{base / t['total']:.2f}x"] for name, t in res.items()]
        out["params"][kind] = sizes[stock[0]]
        out["step_s"].update(res)
        out[f"ours_vs_fairseq_{kind}"] = base / res[ours[0]]["total"]
        del contenders, optimizer, res
    print(table(rows, ["model", "V", "params", "forward", "backward", "Adam step", "step", "tokens/s", "vs fairseq"]))
    return out


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
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", json.dumps(spec)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def meta_param_bytes(kind: str, V: int, H: int) -> int:
    from fairseq_compactemb.model_size import build_for_vocab

    """fp32 bytes of the unique parameters, counted on the meta device (nothing allocated)."""
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
    global DEVICE
    DEVICE = torch.device(args.device)
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
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmark_cli, beside this script
    import benchmark_cli

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
