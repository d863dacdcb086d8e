"""Criterions ``nce`` / ``importance_sampling``: glue against a materialised reference, errors, CLI."""
import math
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from fairseq.criterions.cross_entropy import CrossEntropyCriterion
from fairseq.data import Dictionary
from fairseq.logging import metrics
from omegaconf import OmegaConf
from torch import nn

from conftest import TINY_LM_TRAIN, USER_DIR, run_cli
from fairseq_compactemb.criterions.importance_sampling import ImportanceSamplingCriterion
from fairseq_compactemb.criterions.nce import NCECriterion
from fairseq_compactemb.modules import OUTPUT_LAYERS, CompactConfigError, CompactOutputLayer
from fairseq_compactemb.modules.softmax_output import SoftmaxOutput

H = 8
WORDS = 20


def make_dictionary(counts=None):
    d = Dictionary()
    for i in range(WORDS):
        d.add_symbol(f"w{i}", n=(counts[i] if counts is not None else 1000 // (i + 1)))
    return d  # like a dict.txt loaded from disk: <s> <pad> </s> <unk> have count 1


class TinyLM(nn.Module):
    """Just enough of a fairseq LM: hidden states from an embedding, a compact output layer."""

    def __init__(self, vocab, output=None):
        super().__init__()
        self.embed = nn.Embedding(vocab, H)
        self.decoder = nn.Module()
        if output is not False:
            self.decoder.compact_output = output or SoftmaxOutput(vocab, H, bias=True)

    def forward(self, src_tokens, src_lengths=None):
        return self.embed(src_tokens), {"attn": None}

    def get_targets(self, sample, net_output):
        return sample["target"]

    def get_normalized_probs(self, net_output, log_probs, sample=None):
        lprobs = self.decoder.compact_output.log_probs(net_output[0])
        return lprobs if log_probs else lprobs.exp()


def make_sample(d, seed=0, B=3, T=7):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(d.nspecial - 2, len(d), (B, T), generator=g)  # </s>, <unk> and words
    tgt = torch.randint(d.nspecial - 2, len(d), (B, T), generator=g)
    tgt[0, -3:] = d.pad()
    return {"net_input": {"src_tokens": src, "src_lengths": torch.full((B,), T)}, "target": tgt,
            "ntokens": int(tgt.ne(d.pad()).sum())}


def build(cls, d=None, **kw):
    args = dict(noise_samples=6, noise_distribution="unigram", noise_alpha=0.75, noise_unique=False,
                sentence_avg=False)
    args.update(kw)
    return cls(SimpleNamespace(target_dictionary=d or make_dictionary()), **args)


def reference_losses(model, sample, crit, seed):
    """Per-token sampled losses from the materialised [N, V] logits and the same noise words."""
    torch.manual_seed(seed)
    noise = crit.draw_noise()  # the criterion draws exactly this, first thing after the forward
    layer = model.decoder.compact_output
    hidden, _ = model(**sample["net_input"])
    logits = layer.logits(hidden.reshape(-1, H)).double()  # [N, V]
    target = sample["target"].reshape(-1)
    ids = torch.cat([noise.ids, torch.tensor([0, 1])])  # + <s>, <pad>, scored with Q = 1
    log_q = torch.cat([crit.sampler.log_expected_count(noise.ids, noise.num_tries),
                       torch.zeros(2, dtype=torch.float64)])
    out = []
    for i, t in enumerate(target.tolist()):
        if t == crit.padding_idx:
            out.append(torch.tensor(0.0, dtype=torch.float64))
            continue
        s_t, s_n = logits[i, t], logits[i, ids] - log_q
        if isinstance(crit, NCECriterion):
            log_q_t = crit.sampler.log_expected_count(torch.tensor(t), noise.num_tries)
            out.append(-F.logsigmoid(s_t - crit.log_z - log_q_t) - F.logsigmoid(-(s_n - crit.log_z)).sum())
        else:
            keep = ids != t
            out.append(torch.logsumexp(torch.cat([s_t.view(1), s_n[keep]]), 0) - s_t)
    return torch.stack(out)


@pytest.mark.parametrize("cls,kw", [
    (ImportanceSamplingCriterion, {}), (ImportanceSamplingCriterion, {"noise_unique": True}),
    (NCECriterion, {"nce_log_z": 1.5}), (NCECriterion, {"noise_distribution": "loguniform"}),
])
def test_training_loss_matches_a_materialised_reference(cls, kw):
    d = make_dictionary()
    torch.manual_seed(0)
    model, crit, sample = TinyLM(len(d)).train(), build(cls, d, **kw), make_sample(d)
    torch.manual_seed(42)
    per_token, _, _ = crit(model, sample, reduce=False)
    torch.manual_seed(42)
    loss, sample_size, log = crit(model, sample)
    ref = reference_losses(model, sample, crit, 42)
    torch.testing.assert_close(per_token.double(), ref, rtol=1e-5, atol=1e-5)
    assert per_token.view(3, 7)[0, -3:].eq(0).all()  # padding contributes nothing
    torch.testing.assert_close(loss.double(), ref.sum(), rtol=1e-5, atol=1e-5)
    assert sample_size == sample["ntokens"] == 18 and "nll_loss" not in log
    loss.backward()
    assert model.embed.weight.grad.abs().sum() > 0 and model.decoder.compact_output.weight.grad.abs().sum() > 0
    torch.manual_seed(43)
    assert not torch.equal(crit(model, sample)[0], loss)  # new update, new noise words


@pytest.mark.parametrize("cls", [ImportanceSamplingCriterion, NCECriterion])
def test_validation_reports_the_exact_cross_entropy(cls):
    d = make_dictionary()
    torch.manual_seed(0)
    model, crit, sample = TinyLM(len(d)).eval(), build(cls, d), make_sample(d)
    loss, sample_size, log = crit(model, sample)
    ce_loss, _, _ = CrossEntropyCriterion(SimpleNamespace(target_dictionary=d), False)(model, sample)
    torch.testing.assert_close(loss, ce_loss)
    assert log["nll_loss"] == log["loss"] and log["exact_ntokens"] == sample["ntokens"]
    with metrics.aggregate() as valid:
        cls.reduce_metrics([log])
    assert valid.get_smoothed_values()["ppl"] == pytest.approx(2 ** (ce_loss.item() / 18 / math.log(2)), rel=1e-3)
    model.train()
    with metrics.aggregate() as train:
        cls.reduce_metrics([crit(model, sample)[2]])
    assert "loss" in train.get_smoothed_values() and "ppl" not in train.get_smoothed_values()


def test_noise_words_exclude_pad_and_bos_and_specials_get_a_real_count():
    d = make_dictionary()
    crit = build(ImportanceSamplingCriterion, d, noise_alpha=1.0)
    q = crit.sampler.probs()
    assert q[d.bos()] == 0 and q[d.pad()] == 0
    # dict.txt does not store </s>/<unk> counts (they load as 1): they get the top word count
    assert q[d.eos()] == q[d.unk()] == q[d.nspecial] == q.max()
    assert crit.always_scored.tolist() == [d.bos(), d.pad()]
    assert not list(crit.parameters()) and not crit.state_dict()  # nothing to checkpoint


def test_nce_log_z_defaults_to_log_vocabulary_size():
    d = make_dictionary()
    assert build(NCECriterion, d).log_z == pytest.approx(math.log(len(d)))
    assert build(NCECriterion, d, nce_log_z=0.0).log_z == 0.0


def test_learned_log_z_is_a_trained_criterion_parameter():
    d = make_dictionary()
    torch.manual_seed(0)
    crit = build(NCECriterion, d, nce_log_z=2.0, nce_learn_log_z=True)
    assert set(crit.state_dict()) == {"log_z"} and crit.log_z.item() == 2.0
    loss, _, _ = crit(TinyLM(len(d)).train(), make_sample(d))
    loss.backward()
    assert crit.log_z.grad is not None and crit.log_z.grad.abs() > 0


def test_configuration_errors_are_raised_when_building():
    with pytest.raises(CompactConfigError, match="--noise-samples: 0 noise samples"):
        build(NCECriterion, noise_samples=0)
    R = WORDS + 2  # words + </s> + <unk>
    build(ImportanceSamplingCriterion, noise_samples=R)
    with pytest.raises(CompactConfigError, match=f"--noise-samples: {R + 1} noise samples but only {R} words"):
        build(ImportanceSamplingCriterion, noise_samples=R + 1)
    with pytest.raises(CompactConfigError, match=f"--noise-samples: {R} noise samples with --noise-unique"):
        build(ImportanceSamplingCriterion, noise_samples=R, noise_unique=True)
    with pytest.raises(CompactConfigError, match="--noise-distribution: unknown choice 'zipf'"):
        build(NCECriterion, noise_distribution="zipf")
    with pytest.raises(CompactConfigError, match="--noise-alpha"):
        build(NCECriterion, noise_alpha=-1.0)
    with pytest.raises(CompactConfigError, match="--noise-distribution: all word counts"):
        build(NCECriterion, make_dictionary(counts=[0] * WORDS))
    build(NCECriterion, make_dictionary(counts=[0] * WORDS), noise_distribution="uniform")


class NoSamplingOutput(CompactOutputLayer):
    supports_sampling = False
    registry_name = "nosampling"


def test_output_layers_that_cannot_score_samples_are_rejected(monkeypatch):
    d = make_dictionary()
    monkeypatch.setitem(OUTPUT_LAYERS, "nosampling", NoSamplingOutput)
    # at build time, when the run's config names the output layer
    root = OmegaConf.create({"model": {"output_layer": "nosampling"},
                             "criterion": {"_name": "nce", "noise_samples": 5, "noise_distribution": "unigram",
                                           "noise_alpha": 0.75, "noise_unique": False, "sentence_avg": False,
                                           "nce_log_z": 0.0, "nce_learn_log_z": False}})
    task = SimpleNamespace(target_dictionary=d)
    fix = "use --output-layer (.* / )?softmax"
    with pytest.raises(CompactConfigError, match=f"--criterion: nce .*--output-layer nosampling cannot; {fix}"):
        NCECriterion.build_criterion(root.criterion, task)
    root.model.output_layer = "softmax"
    assert NCECriterion.build_criterion(root.criterion, task).noise_samples == 5
    # otherwise at the first training forward
    crit = build(ImportanceSamplingCriterion, d)
    for model, what in [(TinyLM(len(d), NoSamplingOutput(len(d), H)), "--output-layer nosampling"),
                        (TinyLM(len(d), output=False), "no fairseq-compactemb output layer")]:
        with pytest.raises(CompactConfigError, match=f"--criterion: importance_sampling .*{what}.*; {fix}"):
            crit(model.train(), make_sample(d))


# -- the real fairseq CLIs ---------------------------------------------------------------------
def _eval_ppl(data, ckpt):
    ev = run_cli("fairseq-eval-lm", data, "--user-dir", USER_DIR, "--path", ckpt,
                 "--tokens-per-sample", 32, "--max-tokens", 512)
    m = re.search(r"Perplexity: ([0-9.]+|inf|nan)", ev.stdout + ev.stderr)
    assert m, (ev.stdout + ev.stderr)[-3000:]
    return float(m.group(1))


def _train(data, save_dir, *extra, max_update=20):
    return run_cli("fairseq-train", data, "--user-dir", USER_DIR, "--arch", "compact_lstm_lm",
                   "--decoder-hidden-size", 32, "--decoder-layers", 1, "--output-layer", "softmax",
                   "--max-update", max_update, "--save-dir", save_dir, *TINY_LM_TRAIN, *extra)


@pytest.mark.parametrize("criterion", ["nce", "importance_sampling"])
def test_cli_train_then_eval_lm(ptb_bin, tmp_path, criterion):
    out = _train(ptb_bin, tmp_path, "--criterion", criterion, "--noise-samples", 64)
    log = out.stdout + out.stderr
    valid = r"valid on 'valid' subset \| loss [0-9.]+ \| nll_loss [0-9.]+ \| ppl [0-9.]+"  # exact, as cross_entropy
    assert re.search(valid, log), log[-3000:]
    ppl = _eval_ppl(ptb_bin, tmp_path / "checkpoint_last.pt")
    print(criterion, "eval-lm ppl after 20 updates:", ppl)
    assert 1 < ppl < 4992  # 20 updates: far from trained, but better than a uniform guess


def test_cli_resume_draws_the_same_noise_words(ptb_bin, tmp_path):
    """10 updates in one go == 5 updates, then resume for 5: identical parameters."""
    args = ["--criterion", "importance_sampling", "--noise-samples", 32, "--noise-unique", "--dropout", 0.3]
    _train(ptb_bin, tmp_path / "straight", *args, max_update=10)
    _train(ptb_bin, tmp_path / "resumed", *args, "--save-interval-updates", 5, max_update=5)
    _train(ptb_bin, tmp_path / "resumed", *args, max_update=10)
    ckpts = [torch.load(tmp_path / run / "checkpoint_last.pt", weights_only=False)
             for run in ("straight", "resumed")]
    assert [c["optimizer_history"][-1]["num_updates"] for c in ckpts] == [10, 10]
    for name, p in ckpts[0]["model"].items():
        assert torch.equal(p, ckpts[1]["model"][name]), name


def test_cli_bad_noise_flags_fail_in_one_line(ptb_bin, tmp_path):
    out = run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, "--arch", "compact_lstm_lm",
                  "--criterion", "nce", "--noise-samples", 100000, "--save-dir", tmp_path, *TINY_LM_TRAIN,
                  expect_ok=False)
    assert out.returncode == 2, out.stderr[-2000:]
    assert re.search(r"fairseq-compactemb: error: --noise-samples: 100000 noise samples but only \d+ words",
                     out.stderr)
    assert "Traceback" not in out.stderr
