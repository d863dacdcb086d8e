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
