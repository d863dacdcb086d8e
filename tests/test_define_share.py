"""``--define-share``: what ``--share-all-embeddings`` shares of a DeFINE input in the translation
model - the whole unit (``unit``, the default) or only the ``V x n`` map table with an expand and
reduce unit per side (``map``, as the authors' translation model)."""
import pytest
import torch

from fairseq_compactemb.model_size import build_for_vocab, count_parameters
from fairseq_compactemb.modules import CompactConfigError
from fairseq_compactemb.modules.define_embedding import DeFINEEmbedding

MT = ["--encoder-layers", "1", "--decoder-layers", "1", "--encoder-embed-dim", "64", "--decoder-embed-dim", "64",
      "--encoder-ffn-embed-dim", "32", "--decoder-ffn-embed-dim", "32", "--encoder-attention-heads", "2",
      "--decoder-attention-heads", "2", "--share-all-embeddings", "--input-embedding", "define",
      "--define-map-dim", "16", "--define-expand-dim", "64", "--define-levels", "3", "--define-max-groups", "4"]
V = 200


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def model(*extra):
    return build_for_vocab("compact_transformer", V, [*MT, *extra], meta=False)


def unit_parameters(emb):
    """Ids of the unit's own parameters (everything but the map table)."""
    return {id(p) for name, p in emb.named_parameters() if not name.startswith("map_layer.")}


def test_twin_shares_the_map_table_and_nothing_else():
    emb = DeFINEEmbedding(V, 32, 1, map_dim=16, expand_dim=64, levels=3, max_groups=4)
    twin = emb.twin_sharing_map()
    assert twin.map_layer is emb.map_layer and twin.options == emb.options
    assert not unit_parameters(emb) & unit_parameters(twin)
    tokens = torch.randint(2, V, (3, 7))
    with torch.no_grad():
        assert not torch.allclose(emb(tokens), twin(tokens))  # own (fresh) expand / reduce weights
        twin.load_state_dict(emb.state_dict())  # the same weights: the same function
        torch.testing.assert_close(twin(tokens), emb(tokens))
    twin = emb.twin_sharing_map()
    # the shared table collects the gradients of both units
    emb(tokens).square().sum().backward()
    alone = emb.map_layer.weight.grad.clone()
    emb.zero_grad(), twin.zero_grad()
    twin(tokens).square().sum().backward()
    twin_alone = emb.map_layer.weight.grad.clone()
    emb.zero_grad(), twin.zero_grad()
    (emb(tokens).square().sum() + twin(tokens).square().sum()).backward()
    torch.testing.assert_close(emb.map_layer.weight.grad, alone + twin_alone)


def test_map_sharing_model_ties_the_output_to_the_shared_table_and_counts_one_more_unit(caplog):
    unit = model()
    with caplog.at_level("INFO"):
        mapped = model("--define-share", "map")
    assert unit.decoder.embed_tokens is unit.encoder.embed_tokens  # the default: one unit
    enc, dec = mapped.encoder.embed_tokens, mapped.decoder.embed_tokens
    assert enc is not dec and enc.map_layer is dec.map_layer
    assert mapped.decoder.compact_output.weight is enc.map_layer.weight  # tied to the n-dim map table
    unit_size = sum(p.numel() for name, p in enc.named_parameters() if not name.startswith("map_layer."))
    assert count_parameters(mapped) - count_parameters(unit) == unit_size > 0
    # one line counts the two inputs' distinct parameters (what the recipes record as emb_params)
    together = sum(p.numel() for p in {id(p): p for p in [*enc.parameters(), *dec.parameters()]}.values())
    assert together == sum(p.numel() for p in enc.parameters()) + unit_size
    assert f"input embedding params, encoder and decoder together: {together:,}" in caplog.text
    # each side undoes its own transformer's embedding scale (the authors' reduce block)
    assert enc.out_scale.item() * mapped.encoder.embed_scale == pytest.approx(1.0)
    assert dec.out_scale.item() * mapped.decoder.embed_scale == pytest.approx(1.0)


def test_map_sharing_model_trains_both_units_and_round_trips_through_its_state_dict():
    m = model("--define-share", "map")
    src, prev = torch.randint(4, V, (2, 6)), torch.randint(4, V, (2, 5))
    lengths = torch.full((2,), 6)
    lprobs = m.get_normalized_probs(m(src, lengths, prev), log_probs=True)
    assert lprobs.shape == (2, 5, V)
    lprobs.mean().backward()
    enc, dec = m.encoder.embed_tokens, m.decoder.embed_tokens
    for side in (enc, dec):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in side.expand.parameters())
    assert enc.map_layer.weight.grad.abs().sum() > 0
    m.eval()
    with torch.no_grad():
        expected = m.get_normalized_probs(m(src, lengths, prev), log_probs=True)
    fresh = model("--define-share", "map").eval()
    fresh.load_state_dict(m.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh.get_normalized_probs(fresh(src, lengths, prev), log_probs=True), expected)
        # still one table after loading: a change through the encoder reaches the decoder and the output
        fresh.encoder.embed_tokens.map_layer.weight[5] += 1.0
    assert fresh.decoder.embed_tokens.map_layer.weight is fresh.decoder.compact_output.weight
    torch.testing.assert_close(fresh.decoder.embed_tokens.map_layer.weight[5], m.encoder.embed_tokens.map_layer.weight[5] + 1)


def test_checkpoints_without_the_flag_load_as_one_shared_unit():
    m = model()  # define_share unset (None), as in every checkpoint written before the flag
    assert m.decoder.embed_tokens is m.encoder.embed_tokens
    fresh = model("--define-share", "unit")
    fresh.load_state_dict(m.state_dict())  # strict: the same keys


@pytest.mark.parametrize("flags, problem", [
    (["--define-share", "map", "--no-share-all-embeddings"], "not set"),
    (["--define-share", "map", "--input-embedding", "standard"], "--input-embedding is standard"),
])
def test_define_share_errors_name_the_flag(flags, problem):
    argv = [f for f in MT if f != "--share-all-embeddings"] if "--no-share-all-embeddings" in flags else list(MT)
    flags = [f for f in flags if f != "--no-share-all-embeddings"]
    with pytest.raises(CompactConfigError) as e:
        build_for_vocab("compact_transformer", V, [*argv, *flags], meta=False)
    assert e.value.flag == "--define-share" and problem in str(e.value)


def test_define_share_rejects_an_unknown_choice_on_the_command_line(capsys):
    with pytest.raises(SystemExit):
        model("--define-share", "everything")
    assert "--define-share: invalid choice: 'everything'" in capsys.readouterr().err
