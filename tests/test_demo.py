"""The main job (`make demo`) end to end in its tiny mode, and the report tool on its output."""
import json
import math
import os
import subprocess
import sys

from conftest import REPO


def test_demo_tiny_on_the_offline_corpus(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for attempt in ("first run", "rerun into the same --out"):  # the rerun must not resume or refuse
        out = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--tiny", "--corpus", "python-docs",
                              "--out", str(tmp_path)], capture_output=True, text=True, timeout=900, env=env)
        assert out.returncode == 0, attempt + "\n" + out.stdout[-3000:] + out.stderr[-3000:]
    for stage in ("1/5 corpus", "2/5 fairseq-preprocess", "3/5 fairseq-train 4/4", "4/5 fairseq-eval-lm 4/4", "5/5 results"):
        assert stage in out.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["model"].split()[0] for r in results] == ["standard", "adaptive", "slim", "DeFINE"]
    for r in results:
        assert math.isfinite(r["test_ppl"]) and r["test_ppl"] > 1
        assert r["updates"] == 8 and r["train_tokens_per_s"] > 0 and r["checkpoint_mb"] > 0
        assert 0 < r["embedding_params"] < r["total_params"]
    # the compact methods use fewer embedding parameters than the standard softmax model
    assert all(r["embedding_params"] < results[0]["embedding_params"] for r in results[1:])
    assert (tmp_path / "ppl_vs_params.png").stat().st_size > 1000
    assert "| standard softmax |" in (tmp_path / "results.md").read_text()

    rep = subprocess.run([sys.executable, "-m", "fairseq_compactemb.report", str(tmp_path / "model3" / "checkpoint_last.pt")],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr[-3000:]
    assert "slim" in rep.stdout and "% of a standard" in rep.stdout and "total:" in rep.stdout
