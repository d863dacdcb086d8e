"""Benchmark parts ``train`` and ``fairseq``: training steps of models built from fairseq-train's
own flags on Zipfian tokens (full softmax vs sampled losses vs adaptive vs slim; ours vs stock
fairseq at equal sizes), and the model building ``scripts/row_pace.py`` shares
(``scripts/benchmark.py``)."""
from typing import Dict, Sequence

import torch

import benchmark_timing as timing
from benchmark_sizes import Sizes
from benchmark_timing import med, ms, now, quiet_imports, table


# -- fairseq model building ----------------------------------------------------------------------
def zipf_dictionary(vocab_size: int):
    """A fairseq Dictionary of ``vocab_size`` symbols whose word counts fall as ``1 / rank``."""
    from fairseq.data import Dictionary

    d = Dictionary()
    for i in range(vocab_size - len(d)):
        d.add_symbol(f"w{i}", n=max(1, int(1e9 / (i + 1))))
    return d


def to_device(sample: dict) -> dict:
    return {k: (to_device(v) if isinstance(v, dict) else v.to(timing.DEVICE) if torch.is_tensor(v) else v)
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
        model.to(timing.DEVICE)
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
            model.to(timing.DEVICE)
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
