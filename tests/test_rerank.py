"""scripts/rerank.py: n-best parsing, LM scores equal fairseq's own sequence scorer, the weight
grid search returns the dev-BLEU maximum, and the whole score -> tune path on real
fairseq-generate --nbest output of a tiny translation model with a tiny target-side LM."""
import json
import math
import os
import subprocess
import sys

import pytest
import sacrebleu

from conftest import REPO, USER_DIR, run_cli

sys.path.insert(0, str(REPO / "scripts"))
import rerank  # noqa: E402

GENERATE_OUTPUT = """\
S-1\ta dog runs .
T-1\tein hund läuft .
H-1\t-0.5\tein hund läuft .
D-1\t-0.5\tein hund läuft .
P-1\t-0.1 -0.2 -0.3 -0.4 -1.5
H-1\t-0.9\tein hund .
P-1\t-0.5 -0.6 -1.2 -0.3
S-0\ta cat .
T-0\teine katze .
H-0\t-0.25\teine katze .
P-0\t-0.25 -0.25 -0.25 -0.25
2026-01-01 | INFO | fairseq_cli.generate | Translated 2 sentences
Generate test with beam=2: BLEU4 = 0.00
"""


def test_parse_nbest_reads_hypotheses_scores_and_references():
    nb = rerank.parse_nbest(GENERATE_OUTPUT)
    assert sorted(nb.hyps) == [0, 1] and nb.refs == {0: "eine katze .", 1: "ein hund läuft ."}
    h0, h1 = nb.hyps[1]
    assert (h0.rank, h0.tokens, h0.tm, h0.length) == (0, "ein hund läuft .", -0.5, 5)
    assert h0.tm_sum == pytest.approx(-2.5) and h1.tm_sum == pytest.approx(-2.6)
    assert (h1.rank, h1.tokens, h1.length) == (1, "ein hund .", 4)
    assert nb.hyps[0][0].length == 4
    with pytest.raises(ValueError, match="H- lines"):
        rerank.parse_nbest("S-0\tfoo\n")


def _hyp(sid, rank, text, tm, lm):
    return rerank.Hypothesis(sid, rank, text, tm, len(text.split()) + 1, lm={"x": lm})


def test_bleu_cache_equals_sacrebleu_corpus_bleu():
    cands = [["the cat sat on the mat", "a cat sat"], ["dogs run fast", "the dogs run fast today"],
             ["hello world", "hello there world"]]
    refs = ["the cat sat on the mat", "the dogs run fast", "hello world"]
    cache = rerank.BleuCache(cands, refs)
    for choice in ([0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 1]):
        hyps = [cands[i][c] for i, c in enumerate(choice)]
        assert cache.score(choice) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)


def test_grid_search_picks_the_highest_dev_bleu_of_the_grid():
    """Synthetic n-best lists: the translation model prefers a wrong hypothesis, the LM the
    right one; only LM weights above 0.5 (with w_len = 0) or other combinations recover the
    references. The search must return the grid point whose dev BLEU (recomputed here with
    plain sacrebleu.corpus_bleu, independently of the cache) is the highest."""
    refs = ["the quick brown fox jumps", "a man rides a horse on the beach", "two kids play football"]
    wrong = ["the fox quick brown", "a man a horse beach", "two kids football play"]
    other = ["quick the brown fox jumps over", "man rides horse", "two children play soccer"]
    lists = []
    for i, (r, w, o) in enumerate(zip(refs, wrong, other)):
        # per-token LM log-probabilities: right -1, wrong -3, other -2; tm prefers wrong by 1
        n = {t: len(t.split()) + 1 for t in (r, w, o)}
        lists.append([_hyp(i, 0, w, -1.0, -3.0 * n[w]), _hyp(i, 1, r, -2.0, -1.0 * n[r]),
                      _hyp(i, 2, o, -1.5, -2.0 * n[o])])
    cache = rerank.BleuCache([[h.tokens for h in hs] for hs in lists], refs)
    lm_grid, len_grid = rerank.frange("0:1:0.25"), rerank.frange("-0.5:0.5:0.25")
    (w_lm, w_len), best, table = rerank.grid_search(lists, cache, "x", lm_grid, len_grid)
    assert len(table) == len(lm_grid) * len(len_grid) == 25

    def direct_bleu(a, b):
        pick = rerank.choose(lists, "x", a, b)
        return sacrebleu.corpus_bleu([lists[i][c].tokens for i, c in enumerate(pick)], [refs]).score

    brute = {(a, b): direct_bleu(a, b) for a in lm_grid for b in len_grid}
    assert best == pytest.approx(max(brute.values())) == pytest.approx(100.0)
    assert brute[(w_lm, w_len)] == pytest.approx(best)
    assert w_lm > 0.5  # the tm alone (w_lm = 0) keeps the wrong hypotheses
    assert brute[(0.0, 0.0)] < 50
    # w_lm = w_len = 0 reproduces the decoder's 1-best
    assert rerank.choose(lists, "x", 0.0, 0.0) == [0, 0, 0]


def test_frange():
    assert rerank.frange("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert rerank.frange("-0.5:0.5:0.5") == [-0.5, 0.0, 0.5]
    assert rerank.frange("0.1,0.3") == [0.1, 0.3]


def _py(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_score_and_tune_on_real_nbest_lists(multi30k_bin, tmp_path):
    # a tiny translation model (a few updates) and its 3-best lists of the 40 test sentences
    run_cli("fairseq-train", multi30k_bin, "--user-dir", USER_DIR, "--arch", "compact_transformer",
            "--encoder-layers", 1, "--decoder-layers", 1, "--encoder-embed-dim", 16, "--decoder-embed-dim", 16,
            "--encoder-ffn-embed-dim", 32, "--decoder-ffn-embed-dim", 32, "--encoder-attention-heads", 2,
            "--decoder-attention-heads", 2, "--share-all-embeddings", "--optimizer", "adam", "--lr", 0.005,
            "--max-tokens", 1000, "--max-update", 6, "--no-progress-bar", "--num-workers", 0,
            "--no-epoch-checkpoints", "--seed", 1, "--save-dir", tmp_path / "mt")
    gen = run_cli("fairseq-generate", multi30k_bin, "--user-dir", USER_DIR, "--path", tmp_path / "mt" / "checkpoint_last.pt",
                  "--beam", 3, "--nbest", 3, "--batch-size", 16, "--max-len-b", 8, "--required-batch-size-multiple", 1)
    nbest = tmp_path / "test.nbest"
    nbest.write_text(gen.stdout, encoding="utf-8")
    parsed = rerank.parse_nbest(gen.stdout)
    assert len(parsed.hyps) == 40 and all(len(h) == 3 for h in parsed.hyps.values())

    # a tiny target-side LM in the translation model's target dictionary
    text = multi30k_bin.parent  # the fixture's raw text: train/valid/test.{en,de}
    lm_bin = tmp_path / "lm-bin"
    run_cli("fairseq-preprocess", "--only-source", "--srcdict", multi30k_bin / "dict.de.txt",
            "--trainpref", text / "train.de", "--validpref", text / "valid.de", "--destdir", lm_bin, "--workers", 1)
    run_cli("fairseq-train", lm_bin, "--user-dir", USER_DIR, "--task", "language_modeling", "--arch", "compact_lstm_lm",
            "--decoder-hidden-size", 16, "--decoder-layers", 1, "--tokens-per-sample", 32, "--max-tokens", 512,
            "--optimizer", "adam", "--lr", 0.01, "--max-update", 5, "--no-progress-bar", "--num-workers", 0,
            "--no-epoch-checkpoints", "--seed", 1, "--save-dir", tmp_path / "lm")
    lm_ckpt = tmp_path / "lm" / "checkpoint_last.pt"

    feats = tmp_path / "test.feats.jsonl"
    _py(REPO / "scripts" / "rerank.py", "score", "--nbest", nbest, "--lm", f"tiny={lm_ckpt}", "--lm-data", lm_bin,
        "--out", feats, "--refs-out", tmp_path / "refs.txt", "--batch-size", 7)
    rows = [json.loads(line) for line in feats.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 120 and all(math.isfinite(r["lm"]["tiny"]) and r["lm"]["tiny"] < 0 for r in rows)

    # the batched, padded scores equal fairseq's own SequenceScorer (the scorer of eval-lm) on
    # each sentence alone, read as the LM was trained: </s> as context, tokens + </s> as targets
    import torch
    from fairseq.sequence_scorer import SequenceScorer

    model, dictionary = rerank.load_lm(str(lm_ckpt), str(lm_bin), str(USER_DIR))
    scorer = SequenceScorer(dictionary)
    for r in rows[:8]:
        toks = dictionary.encode_line(r["tokens"], add_if_not_exist=False, append_eos=True).long()
        src = torch.cat([toks.new_tensor([dictionary.eos()]), toks[:-1]])
        sample = {"net_input": {"src_tokens": src[None], "src_lengths": torch.tensor([len(src)])},
                  "target": toks[None]}
        ref = scorer.generate([model], sample)[0][0]["positional_scores"].sum().item() / math.log(2)
        assert r["lm"]["tiny"] == pytest.approx(ref, rel=1e-5, abs=1e-4)

    # tune on the same set (dev = test): the chosen point is the grid's dev-BLEU maximum and
    # never below the decoder's 1-best, which is the grid point (0, 0)
    refs = tmp_path / "refs.txt"
    out = tmp_path / "result.json"
    res = _py(REPO / "scripts" / "rerank.py", "tune", "--lm-name", "tiny", "--dev", feats, "--dev-ref", refs,
              "--test", feats, "--test-ref", refs, "--lm-weights", "0:1:0.5", "--len-weights=-0.2:0.2:0.2",
              "--out", out, "--hyp-out", tmp_path / "reranked.txt")
    result = json.loads(out.read_text())
    grid = result["grid"]
    assert len(grid) == 9
    assert result["dev"]["bleu_reranked"] == pytest.approx(max(g["dev_bleu"] for g in grid))
    at_zero = next(g["dev_bleu"] for g in grid if g["w_lm"] == 0 and g["w_len"] == 0)
    assert at_zero == pytest.approx(result["dev"]["bleu_1best"])
    assert result["test"]["bleu_reranked"] == pytest.approx(result["dev"]["bleu_reranked"], abs=1e-6)
    assert "test BLEU: 1-best" in res.stdout
    assert len((tmp_path / "reranked.txt").read_text(encoding="utf-8").splitlines()) == 40


def test_tune_refuses_lists_with_missing_sentences(tmp_path):
    """fairseq-generate without --required-batch-size-multiple 1 drops up to 7 sentences; tune
    must say so instead of scoring hypotheses against the wrong references."""
    feats = tmp_path / "f.jsonl"
    rows = [_hyp(sid, 0, "a b", -1.0, -2.0) for sid in (0, 1, 3)]
    feats.write_text("".join(json.dumps(rerank.asdict(h)) + "\n" for h in rows), encoding="utf-8")
    refs = tmp_path / "refs.txt"
    refs.write_text("a b\na b\na b\na b\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"missing e.g. \[2\].*--required-batch-size-multiple 1"):
        rerank.main(["tune", "--lm-name", "x", "--dev", str(feats), "--dev-ref", str(refs)])
    rows.insert(2, _hyp(2, 0, "a b", -1.0, -2.0))
    feats.write_text("".join(json.dumps(rerank.asdict(h)) + "\n" for h in rows), encoding="utf-8")
    rerank.main(["tune", "--lm-name", "x", "--dev", str(feats), "--dev-ref", str(refs), "--lm-weights", "0,1",
                 "--len-weights", "0"])
