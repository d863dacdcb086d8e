"""Target-only scoring: for every output layer ``target_log_probs`` equals the full
log-probabilities gathered at the targets (values and gradients), and fairseq's scorer and
``cross_entropy`` route our models to it while every full-distribution path stays exact."""
import math
import re

import pytest
import torch
import torch.nn.functional as F

from conftest import USER_DIR, run_cli
from fairseq_compactemb.modules import slim_kernel
from fairseq_compactemb.modules.adaptive_input import AdaptiveInput
from fairseq_compactemb.modules.adaptive_softmax_output import AdaptiveSoftmaxOutput
from fairseq_compactemb.modules.hashnet_output import HashNetOutput
from fairseq_compactemb.modules.slim_output import SlimOutput
from fairseq_compactemb.modules.softmax_output import SoftmaxOutput

V, H = 60, 8


def make_layer(name):
    torch.manual_seed(0)
    if name == "softmax":
        layer = SoftmaxOutput(V, H, bias=True)
    elif name == "adaptive":
        layer = AdaptiveSoftmaxOutput(V, H, [10, 30, V], factor=2.0, bias=True)
    elif name == "adaptive-tied":
        layer = AdaptiveSoftmaxOutput(V, H, [10, 30, V], factor=2.0, tied_input=AdaptiveInput(V, H, [10, 30, V], 2.0, padding_idx=1))
    elif name == "slim":
        layer = SlimOutput(V, H, subvectors=4, pool_size=24, bias=True)
    else:
        layer = HashNetOutput(V, H, buckets=50, bias=True)
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.normal_()
    return layer


LAYERS = ["softmax", "adaptive", "adaptive-tied", "slim", "hashnet"]


@pytest.mark.parametrize("name", LAYERS)
def test_target_log_probs_equal_the_gathered_full_log_probs(name):
    layer = make_layer(name)
    hidden = torch.randn(3, 5, H) * 2
    target = torch.randint(0, V, (3, 5))
    target[0, 0], target[1, 1], target[2, 2] = 0, 29, V - 1  # head, band edge, last word
    with torch.no_grad():
        full = layer(hidden)
        assert full.shape == (3, 5, V)
        want = full.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        got = layer(hidden, target)
        assert got.shape == (3, 5) and got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(layer.target_log_probs(hidden, target), got)
        if name == "slim":  # both log-partition paths: the C++ kernel (when built) and PyTorch
            with slim_kernel.disabled():
                torch.testing.assert_close(layer(hidden, target), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", LAYERS)
def test_target_log_probs_gradients_equal_the_full_path(name):
    layer = make_layer(name).double()
    hidden = torch.randn(7, H, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, V, (7,))
    params = [p for p in layer.parameters()]

    def grads(fn):
        loss = fn()
        return torch.autograd.grad(loss, [hidden] + params, allow_unused=True)

    full = grads(lambda: layer.log_probs(hidden).gather(1, target[:, None]).pow(2).sum())
    fast = grads(lambda: layer.target_log_probs(hidden, target).pow(2).sum())
    for a, b in zip(full, fast):
        if a is None or b is None:
            assert a is None and b is None or (a if a is not None else b).abs().max() == 0
            continue
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # float32 scores (log_probs casts)


@pytest.mark.parametrize("name", ["softmax", "slim", "hashnet"])
def test_training_path_is_the_full_log_softmax_gathered_bit_for_bit(name):
    """With autograd the dense layers take the fused ``log_softmax`` of their logits at the targets
    (not ``logit - logsumexp``, ~1.6x the loss's time and not the same bits), so the training loss
    of ``cross_entropy`` is exactly that of fairseq's ``nll_loss(log_softmax)``."""
    layer = make_layer(name)
    hidden = (torch.randn(64, H) * 3).requires_grad_()
    target = torch.randint(0, V, (64,))
    want = layer.log_probs(hidden).gather(1, target[:, None]).squeeze(1)
    assert torch.equal(layer.target_log_probs(hidden, target), want)


def test_target_shape_must_match_the_hidden_states():
    layer = make_layer("softmax")
    with pytest.raises(ValueError, match="target shape"):
        layer.target_log_probs(torch.randn(4, H), torch.zeros(5, dtype=torch.long))


def test_softmax_target_path_in_row_blocks(monkeypatch):
    from fairseq_compactemb.modules import compact_output

    layer = make_layer("softmax")
    hidden, target = torch.randn(23, H), torch.randint(0, V, (23,))
    with torch.no_grad():
        want = layer.log_probs(hidden)[torch.arange(23), target]
        monkeypatch.setattr(compact_output, "_SCORE_ELEMS", 4 * V)  # blocks of 4 rows
        torch.testing.assert_close(layer.target_log_probs(hidden, target), want, rtol=1e-6, atol=1e-6)


# -- fairseq integration ---------------------------------------------------------------------------
def build_lm(arch, flags, vocab=80):
    from fairseq import options, tasks
    from fairseq.data import Dictionary
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    d = Dictionary()
    for i in range(vocab - len(d)):
        d.add_symbol(f"w{i}", n=1000 - i)
    argv = ["/nonexistent", "--task", "language_modeling", "--arch", arch, "--user-dir", str(USER_DIR),
            "--tokens-per-sample", "16", *map(str, flags)]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    task = tasks.TASK_REGISTRY["language_modeling"](cfg.task, d, d)
    torch.manual_seed(0)
    return task.build_model(cfg.model).eval(), task, cfg


TLM = ["--decoder-layers", 1, "--decoder-embed-dim", 16, "--decoder-ffn-embed-dim", 32, "--decoder-attention-heads", 2]
MODELS = {
    "softmax": ("compact_transformer_lm", TLM),
    "adaptive": ("compact_transformer_lm", TLM + ["--input-embedding", "adaptive", "--output-layer", "adaptive",
                                                  "--tie-input-output", "--adaptive-cutoffs", "20,50"]),
    "slim": ("compact_lstm_lm", ["--decoder-hidden-size", 16, "--output-layer", "slim", "--output-slim-subvectors", 4,
                                 "--output-slim-pool", 40]),
    "hashnet": ("awd_lstm_lm", ["--decoder-embed-dim", 16, "--decoder-hidden-size", 16, "--output-layer", "hashnet",
                                "--output-hashnet-buckets", 300]),
}


def lm_sample(vocab=80, bsz=3, tsz=9):
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(4, vocab, (bsz, tsz + 1), generator=g)
    target = tokens[:, 1:].clone()
    target[2, -2:] = 1  # padding at the end of one row
    return {"id": torch.arange(bsz), "ntokens": int(target.ne(1).sum()), "nsentences": bsz,
            "net_input": {"src_tokens": tokens[:, :-1], "src_lengths": torch.full((bsz,), tsz)},
            "target": target}


def full_scores(model, sample):
    with torch.no_grad():
        out = model(**sample["net_input"])
        return model.get_normalized_probs(out, log_probs=True).gather(-1, sample["target"].unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("softmax_batch", [None, 5])
def test_sequence_scorer_equals_the_full_distribution(name, softmax_batch):
    from fairseq.sequence_scorer import SequenceScorer

    model, task, _ = build_lm(*MODELS[name])
    sample = lm_sample()
    want = full_scores(model, sample)
    calls = []
    layer = model.decoder.compact_output
    original = type(layer).target_log_probs
    layer.target_log_probs = lambda h, t: calls.append(1) or original(layer, h, t)
    hypos = SequenceScorer(task.target_dictionary, softmax_batch=softmax_batch).generate([model], sample)
    assert calls, "the scorer did not take the target-only path"
    for i, h in enumerate(hypos):
        n = int(sample["target"][i].ne(1).sum())
        torch.testing.assert_close(h[0]["positional_scores"], want[i, :n], rtol=1e-5, atol=1e-5)
    # an ensemble averages probabilities, as fairseq does
    model2, _, _ = build_lm(*MODELS[name])
    with torch.no_grad():
        for p in model2.parameters():
            p.add_(0.01 * torch.randn_like(p))
    both = SequenceScorer(task.target_dictionary).generate([model, model2], sample)
    mix = torch.logaddexp(want, full_scores(model2, sample)) - math.log(2)
    torch.testing.assert_close(both[0][0]["positional_scores"], mix[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_get_normalized_probs_stays_exact_outside_the_scorer(name):
    """The target-only view exists only inside the scorer: beam search, label smoothing and user
    code passing a sample still get the exact full distribution at every word."""
    model, _, _ = build_lm(*MODELS[name])
    sample = lm_sample()
    with torch.no_grad():
        out = model(**sample["net_input"])
        got = model.get_normalized_probs(out, log_probs=True, sample=sample)
        want = model.decoder.compact_output.log_probs(out[0])
    torch.testing.assert_close(got, want)
    assert got.stride(-1) == 1  # a real tensor, not the scorer's stride-0 view


def test_stock_fairseq_models_keep_the_stock_scorer():
    from fairseq_compactemb.target_scoring import supports_target_scoring
    from fairseq.sequence_scorer import SequenceScorer

    model, task, _ = build_lm("transformer_lm", TLM)
    assert not supports_target_scoring(model)
    sample = lm_sample()
    hypos = SequenceScorer(task.target_dictionary).generate([model], sample)
    torch.testing.assert_close(hypos[0][0]["positional_scores"], full_scores(model, sample)[0])


@pytest.mark.parametrize("name", list(MODELS))
def test_cross_entropy_equals_nll_of_the_full_log_probs(name):
    from fairseq.criterions.cross_entropy import CrossEntropyCriterion

    model, task, _ = build_lm(*MODELS[name])
    model.train()
    crit = CrossEntropyCriterion(task, sentence_avg=False)
    sample = lm_sample()

    def grads(loss):
        return torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad], allow_unused=True)

    torch.manual_seed(3)  # same dropout masks in both passes
    loss, sample_size, _ = crit(model, sample)
    g_fast = grads(loss)
    torch.manual_seed(3)
    out = model(**sample["net_input"])
    lprobs = model.decoder.compact_output.log_probs(out[0]).view(-1, V_of(model))
    ref = F.nll_loss(lprobs, sample["target"].view(-1), ignore_index=1, reduction="sum")
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-4)
    assert sample_size == sample["ntokens"]
    for a, b in zip(g_fast, grads(ref)):
        if a is not None and b is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    per_token, _ = crit.compute_loss(model, model(**sample["net_input"]), sample, reduce=False)
    assert per_token.shape == (sample["target"].numel(),) and per_token.view(3, -1)[2, -2:].eq(0).all()


def V_of(model):
    return model.decoder.compact_output.vocab_size


def test_label_smoothing_still_sees_the_full_distribution():
    from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion

    model, task, _ = build_lm(*MODELS["adaptive"])
    crit = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    sample = lm_sample()
    with torch.no_grad():
        loss, _, _ = crit(model, sample)
        lprobs = model.decoder.compact_output.log_probs(model(**sample["net_input"])[0]).view(-1, V_of(model))
        t = sample["target"].view(-1)
        keep = t.ne(1)
        nll = -lprobs.gather(1, t[:, None]).squeeze(1)[keep].sum()
        smooth = -lprobs.sum(1)[keep].sum()
        eps = 0.1 / (V_of(model) - 1)
        want = (1 - 0.1 - eps) * nll + eps * smooth
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-3)


def test_eval_lm_cli_matches_the_full_distribution(ptb_bin, tmp_path):
    """fairseq-eval-lm through the real CLI: the plugin's target-only scorer gives the perplexity
    of the exact full distribution (computed in-process from the same checkpoint)."""
    from fairseq import checkpoint_utils

    run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, "--arch", "compact_transformer_lm", *TLM,
            "--input-embedding", "adaptive", "--output-layer", "adaptive", "--tie-input-output",
            "--adaptive-cutoffs", "300,1500", "--criterion", "compact_adaptive_loss", "--task", "language_modeling",
            "--tokens-per-sample", 24, "--max-tokens", 384, "--optimizer", "adam", "--lr", 0.003, "--max-update", 5,
            "--no-progress-bar", "--num-workers", 0, "--seed", 1, "--no-epoch-checkpoints", "--save-dir", tmp_path)
    ckpt = tmp_path / "checkpoint_last.pt"
    ev = run_cli("fairseq-eval-lm", ptb_bin, "--user-dir", USER_DIR, "--path", ckpt, "--tokens-per-sample", 24,
                 "--max-tokens", 384, "--gen-subset", "valid")
    loss2 = float(re.findall(r"Loss \(base 2\): ([0-9.]+)", ev.stdout + ev.stderr)[-1])
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(ckpt)], arg_overrides={"data": str(ptb_bin)})
    model = models[0].eval()
    task.load_dataset("valid")
    itr = task.eval_lm_dataloader(task.dataset("valid"), max_tokens=384, context_window=0, num_workers=0)
    total, count = 0.0, 0
    for sample in itr:  # the full distribution, gathered by hand

        keep = sample["target"].ne(task.target_dictionary.pad())
        lp = full_scores(model, sample)
        total += float(lp[keep].sum())
        count += int(keep.sum())
    assert abs(loss2 - (-total / count / math.log(2))) < 5e-4
