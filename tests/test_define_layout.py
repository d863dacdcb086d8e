"""A DeFINE checkpoint written before a structural flag existed loads as it was trained.

Its saved config does not name ``--define-reduce`` / ``--define-widths`` / ``--define-level-norm``,
so fairseq rebuilds the unit with today's defaults; the unit reads the layout off the saved
tensors' shapes (``modules/define_layout.py``) and rebuilds its expand and reduce steps that way."""
import itertools
import warnings

import pytest
import torch

from conftest import USER_DIR, run_cli
from fairseq_compactemb.modules.define_embedding import DeFINEEmbedding
from fairseq_compactemb.modules.define_layout import STRUCTURAL, matching_options, module_shapes
from fairseq_compactemb.modules.softmax_output import SoftmaxOutput
from test_define import randomise

SIZES = dict(map_dim=8, expand_dim=32, levels=3, max_groups=4)
LAYOUTS = [dict(zip(STRUCTURAL, c)) for c in itertools.product(*(choices for choices, _ in STRUCTURAL.values()))]


@pytest.mark.parametrize("trained", LAYOUTS, ids=lambda o: "-".join(o.values()))
def test_every_layout_loads_into_a_unit_built_with_other_flags(trained):
    torch.manual_seed(0)
    src = randomise(DeFINEEmbedding(40, 16, padding_idx=1, **SIZES, **trained)).eval()
    built = dict(reduce="authors", widths="authors", level_norm="shared")  # what today's flags could build
    dst = DeFINEEmbedding(40, 16, padding_idx=1, **SIZES, **built)
    tied = SoftmaxOutput(40, 8, tied_input=dst)  # holds dst's map table: must stay tied after the rebuild
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dst.load_state_dict(src.state_dict())  # strict
    rebuilt = [str(w.message) for w in caught if "loaded as trained" in str(w.message)]
    assert bool(rebuilt) == (module_shapes(src) != module_shapes(DeFINEEmbedding(40, 16, 1, **SIZES, **built)))
    if rebuilt:
        assert f"--define-reduce {trained['reduce']} --define-widths {trained['widths']}" in rebuilt[0]
        assert dst.options["reduce"] == trained["reduce"] and dst.options["widths"] == trained["widths"]
    dst.eval()
    tokens = torch.randint(0, 40, (3, 7))
    torch.testing.assert_close(dst(tokens), src(tokens))
    hidden = torch.randn(4, 8)
    torch.testing.assert_close(tied.logits(hidden), hidden @ src.map_layer.weight.t())
    # trains on: the rebuilt steps are parameters of the unit (an optimizer built now sees them)
    assert {id(p) for p in dst.expand.parameters()} <= {id(p) for p in dst.parameters()}


def test_a_unit_of_other_sizes_is_left_to_the_size_check():
    from fairseq_compactemb.modules.errors import CompactCheckpointError

    src = DeFINEEmbedding(40, 16, **SIZES)
    dst = DeFINEEmbedding(40, 16, **dict(SIZES, expand_dim=64))
    with pytest.raises(CompactCheckpointError, match="has shape .* in the checkpoint but .* in this model"):
        dst.load_state_dict(src.state_dict())
    assert matching_options(lambda **o: DeFINEEmbedding(40, 16, **o), dst.options,
                            {k: tuple(v.shape) for k, v in src.state_dict().items()}) == []


def test_fairseq_checkpoint_without_the_layout_flags_evaluates_as_trained(tiny_bin, tmp_path):
    """A real fairseq-train checkpoint in the ``linear`` layout, its config stripped of the layout
    keys (as one written before they existed): fairseq-eval-lm gives the same perplexity."""
    model = ["--task", "language_modeling", "--arch", "compact_lstm_lm", "--decoder-embed-dim", 16,
             "--decoder-hidden-size", 16, "--input-embedding", "define",
             "--define-map-dim", 8, "--define-expand-dim", 32, "--define-levels", 3, "--define-max-groups", 4,
             "--tokens-per-sample", 16, "--user-dir", USER_DIR]
    save = tmp_path / "ckpt"
    run_cli("fairseq-train", tiny_bin, *model, "--define-reduce", "linear", "--define-widths", "linear",
            "--define-level-norm", "group", "--optimizer", "adam", "--lr", 0.003, "--max-tokens", 512,
            "--max-update", 8, "--save-dir", save, "--no-epoch-checkpoints", "--num-workers", 0, "--seed", 1)

    def ppl(path):
        out = run_cli("fairseq-eval-lm", tiny_bin, "--path", path, "--user-dir", USER_DIR, "--max-tokens", 512,
                      "--tokens-per-sample", 16, "--gen-subset", "valid", "--num-workers", 0)
        line = [x for x in (out.stdout + out.stderr).splitlines() if "Perplexity:" in x][-1]
        return line.split("Perplexity:")[1].strip(), out.stdout + out.stderr

    state = torch.load(save / "checkpoint_best.pt", map_location="cpu", weights_only=False)
    for key in ("define_reduce", "define_widths", "define_level_norm"):
        state["cfg"]["model"].pop(key)
    torch.save(state, tmp_path / "stripped.pt")
    trained, _ = ppl(save / "checkpoint_best.pt")
    stripped, log = ppl(tmp_path / "stripped.pt")
    assert stripped == trained
    import fairseq_compactemb.modules.options as options
    if options.EmbeddingOptions.__dataclass_fields__["define_reduce"].default != "linear":
        assert "loaded as trained" in log
