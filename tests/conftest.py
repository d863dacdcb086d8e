"""Shared fixtures: the real fairseq CLIs, tiny binarised corpora cut from ../shared/data."""
import gzip
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
USER_DIR = REPO / "fairseq_compactemb"
DATA = Path(os.environ.get("COMPACTEMB_DATA", REPO.parent / "shared" / "data"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest-xdist workers on the two cores: one intra-op thread each for the
    # in-process tests, as run_cli gives the CLIs (oversubscribed thread pools run far slower)
    torch.set_num_threads(1)


def cli(name: str) -> str:
    """Path of a fairseq console script of the interpreter running the tests."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found next to {sys.executable} nor on PATH; run `make test`")
    return found


def run_cli(name, *args, cwd=None, expect_ok=True, timeout=600, env=None):
    """Run a fairseq CLI; on an unexpected exit code fail with its output.

    One intra-op thread by default: the tiny models of the tests run ~100x slower when torch's
    thread pool fights other processes for 2 cores."""
    if env is None:
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run([cli(name), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if expect_ok and proc.returncode != 0:
        pytest.fail(f"{name} exited {proc.returncode}\nSTDOUT:\n{proc.stdout[-4000:]}\n"
                    f"STDERR:\n{proc.stderr[-6000:]}")
    return proc


def compress_cli(*args, expect_ok=True):
    """``python -m fairseq_compactemb.compress ARGS`` on one thread; asserts exit 0 unless told."""
    proc = subprocess.run([sys.executable, "-m", "fairseq_compactemb.compress", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    if expect_ok:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


class MethodAsModule(torch.nn.Module):
    """``layer.<method>`` as a forward, so torch.func.functional_call / gradcheck can swap or
    perturb the layer's parameters."""

    def __init__(self, layer, method):
        super().__init__()
        self.layer, self.method = layer, method

    def forward(self, *args):
        return getattr(self.layer, self.method)(*args)


# a tiny LM for the tests that read fairseq-train's own log (stop_reason, train_seconds)
TINY_LM = ["--arch", "transformer_lm", "--decoder-layers", 1, "--decoder-embed-dim", 16,
           "--decoder-ffn-embed-dim", 32, "--decoder-attention-heads", 2, "--task", "language_modeling",
           "--tokens-per-sample", 16, "--max-tokens", 512, "--optimizer", "adam", "--no-progress-bar",
           "--log-format", "simple", "--num-workers", 0, "--seed", 3, "--no-epoch-checkpoints",
           "--max-valid-steps", 1, "--user-dir", USER_DIR]


def train_logged(log: Path, data, save_dir, *flags) -> str:
    """fairseq-train (TINY_LM) appended to ``log`` behind its command line, as examples/common.sh
    logs a row (a resume appends); returns the log's text."""
    args = [data, *TINY_LM, "--save-dir", save_dir, *flags]
    out = run_cli("fairseq-train", *args)
    with log.open("a") as f:
        f.write("+ fairseq-train " + " ".join(map(str, args)) + "\n" + out.stdout + out.stderr)
    return log.read_text()


def require_data(*parts) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real corpus {path} not found (set COMPACTEMB_DATA or put ../shared/data beside the repo)")
    return path


def _write_lines(path: Path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
def ptb_bin(tmp_path_factory) -> Path:
    """PTB cut to 2000/200/200 lines, binarised with fairseq-preprocess (LM data-bin)."""
    src = require_data("ptb")
    work = tmp_path_factory.mktemp("ptb")
    for split, n in [("train", 2000), ("valid", 200), ("test", 200)]:
        with lzma.open(src / f"ptb.{split}.txt.xz", "rt") as f:
            lines = [next(f).strip() for _ in range(n)]
        _write_lines(work / f"{split}.txt", lines)
    run_cli("fairseq-preprocess", "--only-source", "--trainpref", work / "train.txt",
            "--validpref", work / "valid.txt", "--testpref", work / "test.txt",
            "--destdir", work / "bin", "--workers", 1)
    return work / "bin"


@pytest.fixture(scope="session")
def tiny_bin(ptb_bin, tmp_path_factory):
    """120 PTB training lines with the full PTB dictionary (about 21 updates per epoch here)."""
    work = tmp_path_factory.mktemp("ptb_tiny")
    lines = (ptb_bin.parent / "train.txt").read_text().splitlines()[:120]
    (work / "train.txt").write_text("\n".join(lines) + "\n")
    run_cli("fairseq-preprocess", "--only-source", "--srcdict", ptb_bin / "dict.txt",
            "--trainpref", work / "train.txt", "--validpref", ptb_bin.parent / "valid.txt",
            "--destdir", work / "bin", "--workers", 1)
    return work / "bin"


@pytest.fixture(scope="session")
def multi30k_bin(tmp_path_factory) -> Path:
    """Multi30k EN-DE cut to 400/40/40 pairs, lower-cased, joined dictionary (MT data-bin)."""
    src = require_data("multi30k")
    work = tmp_path_factory.mktemp("multi30k")
    for split, out, n in [("train", "train", 400), ("val", "valid", 40), ("val", "test", 40)]:
        for lang in ("en", "de"):
            with gzip.open(src / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                lines = [next(f).strip().lower() for _ in range(n)]
            _write_lines(work / f"{out}.{lang}", lines)
    run_cli("fairseq-preprocess", "--source-lang", "en", "--target-lang", "de",
            "--trainpref", work / "train", "--validpref", work / "valid", "--testpref", work / "test",
            "--destdir", work / "bin", "--joined-dictionary", "--workers", 1)
    return work / "bin"


# Small LM training flags shared by the CLI round-trip tests.
TINY_LM_TRAIN = ["--task", "language_modeling", "--tokens-per-sample", 32, "--max-tokens", 512,
                 "--optimizer", "adam", "--lr", "0.003", "--no-progress-bar", "--log-interval", 5,
                 "--num-workers", 0, "--seed", 1, "--no-epoch-checkpoints"]
