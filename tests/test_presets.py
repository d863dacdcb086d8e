"""Each paper preset's parameter count matches the paper's reported size (within a few %)."""
import pytest

from fairseq_compactemb.model_size import build_for_vocab, count_parameters

# (arch, vocabulary size, extra flags, paper's parameter count, source)
PRESETS = [
    ("awd_lstm_lm_ptb", 10_000, [], 24e6, "Merity et al. 2018, Table 1: AWD-LSTM PTB 24M"),
    ("compact_transformer_wmt_en_de", 37_000, ["--share-all-embeddings", "--tie-input-output"], 65e6,
     "Vaswani et al. 2017, Table 3: base 65M (shared 37k BPE vocabulary)"),
    ("compact_transformer_wmt_en_de_big", 37_000, ["--share-all-embeddings", "--tie-input-output"], 213e6,
     "Vaswani et al. 2017, Table 3: big 213M"),
    ("compact_transformer_xl_wt103", 267_735, [], 151e6, "Dai et al. 2019, Table 1: Transformer-XL Standard 151M"),
    ("compact_transformer_lm_wiki103", 267_735, [], 246.9e6, "Baevski & Auli 2019, Table 3: ADP-T 246.9M"),
    ("compact_lstm_lm_ptb_650", 10_000, ["--input-embedding", "standard"], 20e6,
     "Merity et al. 2018, Table 1: Zaremba et al. (2014) LSTM (medium) 20M"),
]


@pytest.mark.parametrize("arch,vocab,extra,reported,source", PRESETS, ids=[p[0] for p in PRESETS])
def test_preset_parameter_count_matches_paper(arch, vocab, extra, reported, source):
    n = count_parameters(build_for_vocab(arch, vocab, extra))
    assert abs(n - reported) / reported < 0.05, f"{arch}: {n:,} vs {reported:,.0f} ({source})"


@pytest.mark.parametrize("arch,vocab", [
    # ADP-T -> ADP: the adaptive softmax gets its own bands (Baevski & Auli's ADP row)
    ("compact_transformer_lm_wiki103", 267_735),
    ("compact_transformer_xl_wt103", 267_735),
    ("awd_lstm_lm_ptb", 10_000),
])
def test_no_tie_input_output_unties_a_tying_preset(arch, vocab):
    tied = build_for_vocab(arch, vocab, [])
    untied = build_for_vocab(arch, vocab, ["--no-tie-input-output"])
    assert getattr(tied.decoder, "compact_output") is not None
    out_t, out_u = tied.decoder.compact_output, untied.decoder.compact_output
    shared = {id(p) for p in tied.decoder.embed_tokens.parameters()}
    assert any(id(p) in shared for p in out_t.parameters())
    shared_u = {id(p) for p in untied.decoder.embed_tokens.parameters()}
    assert not any(id(p) in shared_u for p in out_u.parameters())
    assert count_parameters(untied) > count_parameters(tied)


def test_tie_and_no_tie_together_is_a_config_error():
    from fairseq_compactemb.modules import CompactConfigError

    with pytest.raises(CompactConfigError) as e:
        build_for_vocab("compact_lstm_lm", 1000, ["--tie-input-output", "--no-tie-input-output"])
    assert e.value.flag == "--no-tie-input-output"


def test_define_presets_match_the_define_paper():
    """Mehta et al. 2020: AWD-LSTM + DeFINE 20M on PTB and Transformer-XL + DeFINE 73M on
    WikiText-103, each within 2%; both tie the softmax to the V x n map table."""
    awd = count_parameters(build_for_vocab("awd_lstm_lm_ptb_define", 10_000))
    assert abs(awd - 20e6) / 20e6 < 0.02, awd
    txl = count_parameters(build_for_vocab("compact_transformer_xl_wt103_define", 267_735))
    assert abs(txl - 73e6) / 73e6 < 0.02, txl
    m = build_for_vocab("awd_lstm_lm_ptb_define", 10_000, meta=False)
    emb, out = m.decoder.embed_tokens, m.decoder.compact_output
    assert out.weight is emb.map_layer.weight and emb.reduce_kind == "authors"
    assert [s.groups for s in emb.expand.plan] == [1, 4, 2, 1, 4, 2, 1] and emb.expand.plan[-1].out_dim == 400
    m = build_for_vocab("compact_transformer_xl_wt103_define", 2_000, meta=False)
    emb, out = m.decoder.embed_tokens, m.decoder.compact_output
    assert out.weight is emb.map_layer.weight and tuple(emb.map_layer.weight.shape) == (2_000, 112)


def test_wmt_define_preset_is_the_authors_unit_shared_and_tied_to_the_map_table():
    flags = ["--share-all-embeddings"]
    m = build_for_vocab("compact_transformer_wmt_en_de_define", 1_000, flags, meta=False)
    emb = m.encoder.embed_tokens
    assert m.decoder.embed_tokens is emb and m.decoder.compact_output.weight is emb.map_layer.weight
    assert tuple(emb.map_layer.weight.shape) == (1_000, 128) and emb.reduce_kind == "authors"
    define = count_parameters(build_for_vocab("compact_transformer_wmt_en_de_define", 37_000, flags))
    base = count_parameters(build_for_vocab("compact_transformer_wmt_en_de", 37_000, flags + ["--tie-input-output"]))
    assert define == 50_242_400 and base == 63_082_496  # the counts the docstring and README state
    # the authors' translation sharing (map table only): the count the docstring and README state
    share_map = count_parameters(build_for_vocab("compact_transformer_wmt_en_de_define", 37_000,
                                                 flags + ["--define-share", "map"]))
    assert share_map == 51_544_768
    # a flag the user gives wins over the preset's value
    m = build_for_vocab("compact_transformer_wmt_en_de_define", 1_000, flags + ["--define-map-dim", "64"], meta=False)
    assert tuple(m.encoder.embed_tokens.map_layer.weight.shape) == (1_000, 64)
