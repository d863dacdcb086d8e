"""Corpus preparation scripts: newstest2014 extraction from the official .sgm files equals the
plain text of ../shared/data, the count checks use the published counting convention (checked on
WikiText-2, whose counts are known), PTB cuts are checksummed, and missing data or no network
fail with a clear message instead of a traceback."""
import subprocess
import sys

import pytest

from conftest import REPO, require_data

sys.path.insert(0, str(REPO / "scripts"))
import prepare_common  # noqa: E402
import prepare_gbw  # noqa: E402
import prepare_wmt14_en_de as wmt  # noqa: E402


def test_sgm_extraction_equals_the_plain_newstest2014():
    folder = require_data("wmt14-en-de")
    for lang, (name, digest) in wmt.TEST_SGM.items():
        sgm = prepare_common.find_file(folder, name.split("/")[-1])
        assert prepare_common.sha256_file(sgm, decompress=True) == digest
        text = b"".join(wmt.open_any(sgm)).decode("utf-8")
        plain = (folder / f"newstest2014.{lang}").read_text(encoding="utf-8").splitlines()
        assert wmt.sgm_lines(text) == plain and len(plain) == 3003


def test_published_count_convention_on_wikitext2():
    """WikiText-103 is verified by counts; the same convention (tokens + one <eos> per line)
    must reproduce WikiText-2's published 2,088,628 / 217,646 / 245,569."""
    folder = require_data("wikitext-2")
    for split, (lines, tokens_eos) in {"valid": (3760, 217646), "test": (4358, 245569)}.items():
        got = prepare_common.count(prepare_common.read_lines(folder / f"wiki.{split}.tokens.xz"))
        prepare_common.check_counts(f"wt2 {split}", got, {"lines": lines, "tokens_eos": tokens_eos})
    with pytest.raises(SystemExit, match="unexpected counts"):
        prepare_common.check_counts("x", {"lines": 3}, {"lines": 4})


def _run(script, *args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_prepare_ptb_cut_and_missing_data(tmp_path):
    require_data("ptb")
    ok = _run("prepare_ptb.py", "--out", tmp_path / "ptb", "--max-lines", "train=10,valid=3,test=4")
    assert ok.returncode == 0, ok.stderr
    assert [len((tmp_path / "ptb" / f"{s}.txt").read_text().splitlines()) for s in ("train", "valid", "test")] == [10, 3, 4]
    assert (tmp_path / "ptb" / "valid.txt").read_text().startswith("consumers may want to move")
    bad = _run("prepare_ptb.py", "--data", tmp_path / "nowhere", "--out", tmp_path / "x")
    assert bad.returncode != 0 and "PTB not found" in bad.stderr and "Traceback" not in bad.stderr


def test_missing_corpora_fail_clearly(tmp_path):
    for script, needle in [("prepare_wikitext103.py", "WikiText-103 not found"),
                           ("prepare_gbw.py", "One Billion Word not found")]:
        res = _run(script, "--data", tmp_path / "nowhere", "--out", tmp_path / "o")
        assert res.returncode != 0 and needle in res.stderr and "Traceback" not in res.stderr
    res = _run("prepare_wmt14_en_de.py", "--data", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert res.returncode != 0 and "pass --download" in res.stderr


def test_download_failure_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="could not download .* offline"):
        prepare_common.download("http://127.0.0.1:9/corpus.tgz", tmp_path / "corpus.tgz", timeout=5)
    assert not (tmp_path / "corpus.tgz").exists() and not (tmp_path / "corpus.tgz.part").exists()


def test_gbw_structure_check(tmp_path):
    root = tmp_path / prepare_gbw.ROOT
    (root / prepare_gbw.TRAIN_DIR).mkdir(parents=True)
    (root / prepare_gbw.HELDOUT_DIR).mkdir(parents=True)
    for i in range(1, 100):
        (root / prepare_gbw.TRAIN_DIR / f"news.en-{i:05d}-of-00100").write_text(f"train line {i} .\n")
    for i in range(49):  # one held-out shard missing
        (root / prepare_gbw.HELDOUT_DIR / f"news.en.heldout-{i:05d}-of-00050").write_text(f"heldout {i} .\n")
    res = _run("prepare_gbw.py", "--data", tmp_path, "--out", tmp_path / "out")
    assert res.returncode != 0 and "49 held-out shards (expected 50)" in res.stderr
    (root / prepare_gbw.HELDOUT_DIR / "news.en.heldout-00049-of-00050").write_text("heldout 49 .\n")
    res = _run("prepare_gbw.py", "--data", tmp_path, "--out", tmp_path / "out")  # 99 words: not the benchmark
    assert res.returncode != 0 and "differ from the published ones" in res.stderr
    res = _run("prepare_gbw.py", "--data", tmp_path, "--out", tmp_path / "out", "--skip-verify")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "train.txt").read_text().count("\n") == 99
    assert (tmp_path / "out" / "test.txt").read_text() == "heldout 0 .\n"
    assert (tmp_path / "out" / "valid.txt").read_text() == "heldout 1 .\n"
