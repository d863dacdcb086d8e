"""fairseq's own flags keep fairseq's meaning on the plugin's models."""
import pytest

from fairseq_compactemb.model_size import build_for_vocab, count_parameters
from fairseq_compactemb.modules import CompactConfigError

MT = ["--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "64", "--decoder-embed-dim", "64",
      "--encoder-ffn-embed-dim", "128", "--decoder-ffn-embed-dim", "128", "--encoder-attention-heads", "2",
      "--decoder-attention-heads", "2"]
V = 3000


def test_share_all_embeddings_ties_the_output_as_in_fairseq():
    stock = build_for_vocab("transformer", V, MT + ["--share-all-embeddings"])
    ours = build_for_vocab("compact_transformer", V, MT + ["--share-all-embeddings"])
    assert count_parameters(ours) == count_parameters(stock)
    out, emb = ours.decoder.compact_output, ours.encoder.embed_tokens
    assert ours.decoder.embed_tokens is emb and out.weight is emb.weight
    # the explicit --tie-input-output is the same model
    assert count_parameters(build_for_vocab("compact_transformer", V, MT + ["--share-all-embeddings",
                                                                           "--tie-input-output"])) == count_parameters(ours)


def test_share_all_embeddings_with_no_tie_shares_only_the_inputs():
    ours = build_for_vocab("compact_transformer", V, MT + ["--share-all-embeddings", "--no-tie-input-output"])
    assert ours.decoder.embed_tokens is ours.encoder.embed_tokens
    assert ours.decoder.compact_output.weight is not ours.encoder.embed_tokens.weight
    stock_shared = build_for_vocab("transformer", V, MT + ["--share-all-embeddings"])
    assert count_parameters(ours) == count_parameters(stock_shared) + V * 64


def test_share_all_embeddings_that_cannot_tie_names_the_flag_and_the_fix():
    flags = MT + ["--share-all-embeddings", "--input-embedding", "define", "--define-map-dim", "8",
                  "--define-expand-dim", "32", "--define-levels", "2", "--define-max-groups", "2", "--output-layer", "slim",
                  "--output-slim-subvectors", "4", "--output-slim-pool", "400"]
    with pytest.raises(CompactConfigError) as e:
        build_for_vocab("compact_transformer", V, flags)
    assert e.value.flag == "--share-all-embeddings" and "--no-tie-input-output" in e.value.fix
    build_for_vocab("compact_transformer", V, flags + ["--no-tie-input-output"])  # builds


def test_checkpoints_saved_before_the_implied_tie_load_untied():
    """Older checkpoints saved tie_input_output=False with share_all_embeddings: the model is
    rebuilt untied, as it was trained (build_model re-runs the architecture function)."""
    from argparse import Namespace

    from fairseq_compactemb.models.compact_transformer import compact_transformer, imply_tie_from_share_all

    saved = Namespace(share_all_embeddings=True, tie_input_output=False, no_tie_input_output=False)
    imply_tie_from_share_all(saved)
    assert saved.tie_input_output is False
    fresh = Namespace(share_all_embeddings=True, tie_input_output=None)
    compact_transformer(fresh)
    assert fresh.tie_input_output is True


@pytest.mark.parametrize("arch", ["compact_transformer", "compact_transformer_wmt_en_de_big"])
def test_decoder_output_dim_from_the_command_line_is_fairseqs_projection(arch):
    """fairseq leaves --decoder-output-dim a string (its default is an interpolation): it must
    reach the decoder as a number, with fairseq's meaning (a projection d -> n before the output)."""
    ours = build_for_vocab(arch, 500, ["--decoder-output-dim", "24"], meta=False)
    stock = build_for_vocab("transformer" if arch == "compact_transformer" else "transformer_wmt_en_de_big", 500,
                            ["--decoder-output-dim", "24"], meta=False)
    d = ours.decoder.embed_dim
    assert tuple(ours.decoder.project_out_dim.weight.shape) == tuple(stock.decoder.project_out_dim.weight.shape) == (24, d)
    assert tuple(ours.decoder.compact_output.weight.shape) == (500, 24)
    assert count_parameters(ours) == count_parameters(stock)


def test_decoder_output_dim_that_is_not_a_number_names_the_flag():
    with pytest.raises(CompactConfigError) as e:
        build_for_vocab("compact_transformer", 100, ["--decoder-output-dim", "6x4"])
    assert e.value.flag == "--decoder-output-dim"
