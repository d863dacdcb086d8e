"""DeFINE's inference table built by itself (``--define-eval-cache auto``, ``modules/table_cache.py``):
built once evaluation without autograd has done V vectors' work (distinct ids + a per-call
overhead), equal to the unit's own vectors, never used in training or while autograd records, not
built in a training run's validation, dropped on .train() and on new weights, and the same
translations through the real fairseq-generate with the table on and off."""
import re
import warnings

import pytest
import torch

from conftest import USER_DIR, run_cli
from fairseq_compactemb.modules import CompactConfigError
from fairseq_compactemb.modules.define_embedding import DeFINEEmbedding
from fairseq_compactemb.modules.table_cache import CALL_COST
from test_models_cli import DEFINE_SMALL, MT_COMMON

V = 200


def make_emb(**kw):
    torch.manual_seed(0)
    return DeFINEEmbedding(V, 12, padding_idx=1, map_dim=8, expand_dim=16, levels=3, max_groups=2, **kw)


def test_built_once_evaluation_has_computed_v_vectors_and_equals_the_unit():
    emb = make_emb().eval()
    first, second = torch.arange(0, 100).view(10, 10), torch.arange(100, 200).view(10, 10)
    with torch.no_grad():
        want_first, want_second = emb.vectors(first), emb.vectors(second)
        want_first[first.eq(1)] = 0
        torch.testing.assert_close(emb(first), want_first, rtol=0, atol=0)
        assert not emb.is_cached  # 100 distinct ids + a call's overhead < V: cheaper than the table
        torch.testing.assert_close(emb(second), want_second, rtol=0, atol=0)
        assert emb.is_cached and emb.cached_table.shape == (V, 12)  # 200 + 2 calls >= V
        emb.expand.forward = None  # from now on a lookup: the levels are not run
        torch.testing.assert_close(emb(first), want_first, rtol=0, atol=1e-6)
        torch.testing.assert_close(emb(second), want_second, rtol=0, atol=1e-6)
    assert "cached_table" not in emb.state_dict()


def test_counts_distinct_ids_and_calls():
    emb = make_emb().eval()
    calls = -(-V // (1 + CALL_COST))  # a decoding step of one repeated token: one vector + a call's overhead
    with torch.no_grad():
        for _ in range(calls - 1):
            emb(torch.full((4, 1), 7))
        assert not emb.is_cached
        emb(torch.full((4, 1), 7))
    assert emb.is_cached


def test_never_with_autograd_or_in_training():
    ids = torch.arange(V).view(20, 10)
    never = make_emb(eval_cache="never").eval()
    with torch.no_grad():
        for _ in range(3):
            never(ids)
    assert not never.is_cached
    grad = make_emb().eval()
    for _ in range(3):
        grad(ids)  # autograd records: the vectors need the unit's graph
    assert not grad.is_cached
    train = make_emb()
    with torch.no_grad():
        for _ in range(3):
            train(ids)
    assert not train.is_cached


def test_auto_table_not_used_while_autograd_records():
    emb = make_emb().eval()
    ids = torch.arange(V)
    with torch.no_grad():
        emb(ids)
    assert emb.is_cached
    emb(ids).sum().backward()  # eval mode, autograd on: computed by the unit, gradients reach it
    assert all(p.grad is not None for p in emb.expand.parameters())
    assert emb.is_cached  # kept for the next no_grad call


def test_train_drops_table_and_restarts_the_count():
    emb = make_emb().eval()
    with torch.no_grad():
        emb(torch.arange(V))
    assert emb.is_cached
    emb.train()
    assert not emb.is_cached
    emb.eval()
    with torch.no_grad():
        emb(torch.arange(100))
    assert not emb.is_cached  # one call of 100 since train(), not V + 100 in all


def test_new_weights_drop_the_auto_table_silently():
    emb, other = make_emb().eval(), make_emb()
    torch.nn.init.normal_(other.reduce.weight)
    ids = torch.arange(V)
    with torch.no_grad():
        emb(ids)
        emb.load_state_dict(other.state_dict())
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an auto table is rebuilt, not warned about
            out = emb(ids)
        want = other.eval()(ids)
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    assert emb.is_cached  # the count restarted and reached V again


def test_bad_choice_names_the_flag():
    with pytest.raises(CompactConfigError, match="--define-eval-cache"):
        make_emb(eval_cache="always")


def test_generate_same_translations_with_and_without_the_table(multi30k_bin, tmp_path):
    # validation on the 400 training pairs too: work enough for a table, which a training run must not build
    train = run_cli("fairseq-train", multi30k_bin, "--user-dir", USER_DIR, "--arch", "compact_transformer",
                    "--share-all-embeddings", *DEFINE_SMALL, *MT_COMMON, "--valid-subset", "valid,train",
                    "--save-dir", tmp_path)
    said = r"DeFINEEmbedding: evaluation computed [0-9,]+ vectors"
    assert "valid on 'train' subset" in train.stdout + train.stderr
    assert not re.search(said, train.stdout + train.stderr)
    ckpt, outs = tmp_path / "checkpoint_last.pt", {}  # 5 batches of 21 calls: more work than the 2,504-word table
    for mode in ("auto", "never"):
        outs[mode] = run_cli("fairseq-generate", multi30k_bin, "--user-dir", USER_DIR, "--path", ckpt, "--beam", 5,
                             "--batch-size", 8, "--max-len-a", 0, "--max-len-b", 20, "--min-len", 20,
                             "--model-overrides", repr({"define_eval_cache": mode}))
    built = [bool(re.search(said, o.stdout + o.stderr)) for o in outs.values()]
    assert built == [True, False]
    hyps = {m: [line.split("\t") for line in o.stdout.splitlines() if line.startswith("H-")] for m, o in outs.items()}
    assert len(hyps["auto"]) == 40 and [h[2] for h in hyps["auto"]] == [h[2] for h in hyps["never"]]
    for a, b in zip(hyps["auto"], hyps["never"]):
        assert float(a[1]) == pytest.approx(float(b[1]), abs=2e-4)


def test_not_built_while_the_parameters_hold_gradients():
    """A training run's validation (fairseq-train: the last step's gradients are still there) keeps
    the unit: no table rebuilt every epoch beside the optimizer's state, validation as before."""
    emb = make_emb()
    emb(torch.arange(V)).sum().backward()
    emb.eval()
    with torch.no_grad():
        for _ in range(3):
            emb(torch.arange(V))
    assert not emb.is_cached
    for p in emb.parameters():
        p.grad = None  # as zero_grad(set_to_none=True): nothing trains it any more
    with torch.no_grad():
        emb(torch.arange(V))
    assert emb.is_cached
