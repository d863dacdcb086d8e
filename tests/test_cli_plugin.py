"""The stock fairseq CLIs see the plugin through --user-dir: editable checkout and installed copy."""
import math
import re
import subprocess
import sys

from conftest import REPO, TINY_LM_TRAIN, USER_DIR, cli, run_cli
from test_safe_loading import _allowlisted_names, unsafe_globals


def eval_lm_ppl(stdout_and_err: str) -> float:
    m = re.search(r"Perplexity: ([0-9.]+|inf|nan)", stdout_and_err)
    assert m, f"no perplexity in eval-lm output:\n{stdout_and_err[-3000:]}"
    return float(m.group(1))


def test_user_dir_helper_prints_package_dir():
    out = subprocess.run([cli("fairseq-compactemb-user-dir")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(USER_DIR)
    out = subprocess.run([sys.executable, "-m", "fairseq_compactemb.user_dir"], capture_output=True,
                         text=True, check=True, cwd="/")
    assert out.stdout.strip() == str(USER_DIR)


def test_train_and_eval_lm_from_repo_root_with_relative_user_dir(ptb_bin, tmp_path):
    out = run_cli("fairseq-train", ptb_bin, "--user-dir", "fairseq_compactemb", "--arch", "compact_lstm_lm",
                  "--decoder-hidden-size", 32, "--decoder-layers", 1, "--max-update", 6,
                  "--save-dir", tmp_path, *TINY_LM_TRAIN, cwd=REPO)
    log = out.stdout + out.stderr
    assert re.search(r"embedding params: 159,744 \(100\.00% of a standard 4,992 x 32 table\)", log)
    ckpt = tmp_path / "checkpoint_last.pt"
    assert unsafe_globals(ckpt) <= _allowlisted_names()
    ev = run_cli("fairseq-eval-lm", ptb_bin, "--user-dir", "fairseq_compactemb", "--path", ckpt,
                 "--tokens-per-sample", 32, "--max-tokens", 512, cwd=REPO)
    ppl = eval_lm_ppl(ev.stdout + ev.stderr)
    assert math.isfinite(ppl) and 1 < ppl < 4992 * 2


def test_non_editable_install_works_from_any_directory(ptb_bin, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO)], check=True, capture_output=True)
    installed = target / "fairseq_compactemb"
    assert (installed / "models" / "compact_lstm_lm.py").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = run_cli("fairseq-train", ptb_bin, "--user-dir", installed, "--arch", "compact_lstm_lm",
                  "--decoder-hidden-size", 16, "--decoder-layers", 1, "--max-update", 2,
                  "--save-dir", elsewhere / "ck", *TINY_LM_TRAIN, cwd=elsewhere)
    assert f"loaded from {installed}" in out.stdout + out.stderr  # the copy, not the checkout
    ev = run_cli("fairseq-eval-lm", ptb_bin, "--user-dir", installed, "--path", elsewhere / "ck" / "checkpoint_last.pt",
                 "--tokens-per-sample", 32, "--max-tokens", 512, cwd=elsewhere)
    assert math.isfinite(eval_lm_ppl(ev.stdout + ev.stderr))


def test_config_error_is_one_line_with_exit_code_2():
    code = ("import fairseq_compactemb\nfrom fairseq_compactemb.modules import CompactConfigError\n"
            "def build():\n    raise CompactConfigError('--slim-pool', 'M=3 < K=4', 'use --slim-pool >= 4')\n"
            "build()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == \
        "fairseq-compactemb: error: --slim-pool: M=3 < K=4; use --slim-pool >= 4"
    assert "Traceback" not in res.stderr


def test_unknown_input_embedding_is_rejected_by_the_cli(ptb_bin, tmp_path):
    out = run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, "--arch", "compact_lstm_lm",
                  "--input-embedding", "bogus", "--save-dir", tmp_path, *TINY_LM_TRAIN, expect_ok=False)
    assert out.returncode == 2
    assert "--input-embedding: invalid choice: 'bogus'" in out.stderr


def test_tensorboard_logging(ptb_bin, tmp_path):
    run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, "--arch", "compact_lstm_lm",
            "--decoder-hidden-size", 16, "--decoder-layers", 1, "--max-update", 4, "--input-embedding", "slim",
            "--slim-subvectors", 4, "--slim-pool", 64, "--tensorboard-logdir", tmp_path / "tb",
            "--save-dir", tmp_path / "ck", *TINY_LM_TRAIN)
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert {e.parent.name for e in events} == {"train", "valid"}
    assert all(b"loss" in e.read_bytes() and b"ppl" in e.read_bytes() for e in events)  # the scalar tags


def test_from_pretrained_scores_a_sentence_in_three_lines(ptb_bin, tmp_path):
    run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, "--arch", "compact_lstm_lm", "--decoder-hidden-size", 16,
            "--decoder-layers", 1, "--max-update", 3, "--input-embedding", "define", "--define-map-dim", 8,
            "--define-expand-dim", 16, "--define-levels", 2, "--save-dir", tmp_path, *TINY_LM_TRAIN)
    code = (f"import fairseq_compactemb\n"
            f"lm = fairseq_compactemb.from_pretrained({str(tmp_path / 'checkpoint_last.pt')!r}, {str(ptb_bin)!r})\n"
            f"print(lm.score('the market closed higher')['positional_scores'].tolist())\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    scores = eval(res.stdout.strip().splitlines()[-1])
    # one log-prob per word, each predicted from </s> (sentence start) and the words before it
    assert len(scores) == 4 and all(math.isfinite(s) and s < 0 for s in scores)
