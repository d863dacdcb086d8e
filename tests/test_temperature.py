"""``--temperature`` in fairseq's SequenceGenerator: our decoders return hidden states, which the
generator divides in place; the scores it gets back must still be the tempered distribution
``log_softmax(log p / T)`` of the untempered model, output biases and adaptive tails included."""
import pytest
import torch
import torch.nn.functional as F

from test_target_scoring import MODELS, build_lm

BIAS = {"softmax": ["--output-bias"], "adaptive": ["--output-bias"], "slim": ["--output-bias"], "hashnet": []}


def generator_step(model, tokens, temperature):
    """What SequenceGenerator does per step: the ensemble's forward_decoder with its
    incremental states."""
    from fairseq.sequence_generator import EnsembleModel

    ensemble = EnsembleModel([model])
    states = [{}]  # as SequenceGenerator._generate builds them, one dict per model
    out = None
    for t in range(1, tokens.size(1) + 1):  # feed the prefix one token at a time, as in decoding
        out, _ = ensemble.forward_decoder(tokens[:, :t], None, states, temperature)
    return out  # [B, V] log-probs of the next word


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7])
def test_generator_temperature_tempers_the_full_distribution(name, temperature):
    arch, flags = MODELS[name]
    model, _, _ = build_lm(arch, flags + BIAS[name])
    layer = model.decoder.compact_output
    if BIAS[name]:
        with torch.no_grad():
            layer.bias.normal_(0, 2)  # a bias that matters (it starts at 0)
    tokens = torch.randint(4, 80, (3, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model.get_normalized_probs(model(tokens), log_probs=True)[:, -1]
        got = generator_step(model, tokens, temperature)
    want = F.log_softmax(full / temperature, dim=-1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    if temperature != 1.0:
        assert not torch.allclose(got, full, atol=1e-2)  # it is tempered


def test_temperature_of_a_bias_free_softmax_is_fairseqs():
    """Without a bias, dividing the hidden state is the tempered softmax: both readings agree."""
    model, _, _ = build_lm(*MODELS["softmax"])
    tokens = torch.randint(4, 80, (2, 4), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        hidden = model(tokens)[0][:, -1]
        stock = F.log_softmax(model.decoder.compact_output.logits(hidden) / 0.6, dim=-1)
        torch.testing.assert_close(generator_step(model, tokens, 0.6), stock, rtol=1e-4, atol=1e-4)


def test_only_a_pure_rescaling_counts_as_a_temperature():
    model, _, _ = build_lm(*MODELS["softmax"])
    decoder = model.decoder
    with torch.no_grad():
        x, extra = model(torch.randint(4, 80, (2, 4)))
        last = x[:, -1:, :]
        assert decoder.generation_temperature((last, extra)) is None  # untouched
        assert decoder.generation_temperature((last / 2, extra)) == pytest.approx(2.0)
        assert decoder.generation_temperature((last + 1, extra)) is None  # not a scale
        half = {"compact_unscaled_last": extra["compact_unscaled_last"].half()}
        assert decoder.generation_temperature((half["compact_unscaled_last"] / 0.7, half)) == pytest.approx(0.7, rel=1e-3)
        assert decoder.generation_temperature((x, extra)) is None  # the whole sequence
        assert decoder.generation_temperature((last / 2, {"attn": None})) is None  # no copy kept
    model.train()
    _, extra = model(torch.randint(4, 80, (2, 4)))
    assert "compact_unscaled_last" not in extra  # training never pays for the copy


def test_fairseq_generate_temperature_scores_are_the_tempered_model(multi30k_bin, tmp_path):
    """Through the real CLI: a translation model with an output bias, greedy decoding at
    --temperature 0.5; every printed positional score equals log_softmax(log p / 0.5) of the
    untempered model, teacher-forced on the printed hypothesis."""
    import math

    from conftest import USER_DIR, run_cli
    from fairseq import checkpoint_utils
    from test_models_cli import MT_COMMON

    run_cli("fairseq-train", multi30k_bin, "--user-dir", USER_DIR, "--arch", "compact_transformer",
            "--output-bias", *MT_COMMON, "--save-dir", tmp_path)
    ckpt = tmp_path / "checkpoint_last.pt"
    state = torch.load(ckpt, weights_only=False)
    bias = state["model"]["decoder.output_projection.bias"]
    state["model"]["decoder.output_projection.bias"] = torch.randn(bias.shape, generator=torch.Generator().manual_seed(0)) * 2
    torch.save(state, ckpt)  # a bias that matters: 3 updates leave it near 0
    T = 0.5
    out = run_cli("fairseq-generate", multi30k_bin, "--user-dir", USER_DIR, "--path", ckpt, "--beam", 1,
                  "--temperature", T, "--batch-size", 8, "--max-len-b", 6, "--gen-subset", "valid").stdout
    lines = {line.split("\t")[0]: line.split("\t") for line in out.splitlines() if line[:2] in ("S-", "H-", "P-")}
    (model,), _, task = checkpoint_utils.load_model_ensemble_and_task([str(ckpt)], arg_overrides={"data": str(multi30k_bin)})
    model.eval()
    src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
    checked = 0
    for key in sorted(k for k in lines if k.startswith("H-"))[:8]:
        i = key[2:]
        src = src_dict.encode_line(lines[f"S-{i}"][1], add_if_not_exist=False).long().unsqueeze(0)
        hyp = tgt_dict.encode_line(lines[key][2], add_if_not_exist=False).long().unsqueeze(0)
        prev = torch.cat([hyp.new_full((1, 1), tgt_dict.eos()), hyp[:, :-1]], 1)
        with torch.no_grad():
            lp = model.get_normalized_probs(model(src, torch.tensor([src.size(1)]), prev), log_probs=True)
        want = F.log_softmax(lp / T, -1).gather(-1, hyp.unsqueeze(-1)).view(-1) / math.log(2)
        got = torch.tensor([float(x) for x in lines[f"P-{i}"][1].split()])
        torch.testing.assert_close(got, want, rtol=0, atol=2e-3)
        checked += 1
    assert checked == 8
