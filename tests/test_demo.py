"""The main job (`make demo`) end to end in its tiny mode, and the report tool on its output."""
import json
import math
import os
import subprocess
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))


def busy_loop():
    """A competing CPU-bound job on this machine (one busy core for the duration of a demo run:
    beside the demo's own process and, under `make test`, the other test worker, the cores are
    oversubscribed, so every step of the demo runs slower and at a varying pace)."""
    code = "import time\nt = time.time()\nwhile time.time() - t < 900: pass\n"
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def test_demo_tiny_on_your_own_folder_then_one_model_under_load(tmp_path):
    """The tiny demo on a folder of train/valid/test text files (here the offline Python docs
    corpus, written out as a user would have it): all four models, then one model again
    (--only) into the same --out beside a competing CPU job. The rerun neither resumes nor
    refuses, replaces that model's folder and no other, and gives the same perplexity under load
    as idle (equal token budgets, not time budgets; the load is on the one-model rerun only, so
    the suite pays for one loaded model, not four)."""
    import corpora

    mine = tmp_path / "my_corpus"
    mine.mkdir()
    for split, path in corpora.python_docs_corpus(tmp_path / "docs").items():
        (mine / f"{split}.txt").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    out_dir = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    demo = [sys.executable, str(REPO / "scripts" / "demo.py"), "--tiny", "--corpus", str(mine), "--out", str(out_dir)]
    out = subprocess.run(demo, capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"your corpus {mine}" in out.stdout
    for stage in ("1/5 corpus", "2/5 fairseq-preprocess", "3/5 fairseq-train 4/4", "4/5 fairseq-eval-lm 4/4", "5/5 results"):
        assert stage in out.stdout
    results = json.loads((out_dir / "results.json").read_text())
    assert [r["model"].split()[0] for r in results] == ["standard", "adaptive", "slim", "DeFINE"]
    for r in results:
        assert math.isfinite(r["test_ppl"]) and r["test_ppl"] > 1
        assert r["updates"] == 8 and r["train_tokens_per_s"] > 0 and r["checkpoint_mb"] > 0
        assert r["train_wall_s"] > 0 and r["train_cpu_s"] > 0
        assert 0 < r["embedding_params"] < r["total_params"]
    # the compact methods use fewer embedding parameters than the standard softmax model
    assert all(r["embedding_params"] < results[0]["embedding_params"] for r in results[1:])
    assert (out_dir / "ppl_vs_params.png").stat().st_size > 1000
    assert "| standard softmax |" in (out_dir / "results.md").read_text()

    # --only reruns one model under load into the same --out: same flags, seed and data, same perplexity
    kept = {n: (out_dir / f"model{n}" / "checkpoint_last.pt").stat().st_mtime_ns for n in (1, 2, 3, 4)}
    load = busy_loop()
    try:
        one = subprocess.run(demo + ["--only", "DEFINE"], capture_output=True, text=True, timeout=900, env=env)
    finally:
        os.killpg(load.pid, 9)
    assert one.returncode == 0 and "3/5 fairseq-train 1/1: DeFINE" in one.stdout, one.stderr[-3000:]
    only = json.loads((out_dir / "results.json").read_text())
    assert [r["model"] for r in only] == [results[3]["model"]] and only[0]["test_ppl"] == results[3]["test_ppl"]
    again = {n: (out_dir / f"model{n}" / "checkpoint_last.pt").stat().st_mtime_ns for n in (1, 2, 3, 4)}
    assert [n for n in kept if again[n] != kept[n]] == [4]  # DeFINE's folder, not the first one
    bad = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--only", "lstm"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith(
        "demo.py: error: --only lstm: no model name contains it; the models are: standard softmax;")

    rep = subprocess.run([sys.executable, "-m", "fairseq_compactemb.report", str(out_dir / "model3" / "checkpoint_last.pt")],
                         capture_output=True, text=True, env=env, cwd=out_dir)
    assert rep.returncode == 0, rep.stderr[-3000:]
    assert "slim" in rep.stdout and "% of a standard" in rep.stdout and "total:" in rep.stdout


def test_your_own_text_file_is_split_deterministically_and_bad_input_is_one_line(tmp_path):
    """--corpus FILE: split 90/5/5% by lines (the same files every time); a folder may call its
    valid file dev; one clear line (exit 2) for empty, binary, too-small or missing input."""
    import corpora

    words = [f"w{i % 300}" for i in range(40000)]
    text = "\n".join(" ".join(words[i:i + 12]) for i in range(0, len(words), 12)) + "\n"
    mine = tmp_path / "my_text.txt"
    mine.write_text(text)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    lines = text.splitlines()
    split = corpora.user_corpus(mine, tmp_path / "split")
    got = {s: p.read_text().splitlines() for s, p in split.items()}
    n = len(lines)
    assert got["train"] == lines[:int(n * 0.9)] and got["test"] == lines[int(n * 0.95):]  # deterministic
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, part in (("train.txt", "train"), ("dev.txt", "valid"), ("test.txt", "test")):
        (folder / name).write_text("\n".join(got[part]) + "\n")
    assert corpora.user_corpus(folder, tmp_path / "split2")["valid"].read_text().splitlines() == got["valid"]

    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 50)
    (tmp_path / "small.txt").write_text("just a few words\n" * 20)
    (tmp_path / "nofolder").mkdir()
    for path, problem in [("empty.txt", "is empty"), ("binary.bin", "looks binary"),
                          ("small.txt", "too small"), ("nofolder", "no file named like 'train'"),
                          ("missing.txt", "no such file or folder")]:
        bad = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--corpus", str(tmp_path / path),
                              "--out", str(tmp_path / "bad")], capture_output=True, text=True, timeout=120, env=env)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr[-2000:]
        line = bad.stderr.strip().splitlines()[-1]
        assert line.startswith(f"demo.py: error: --corpus {tmp_path / path}: ") and problem in line, line
