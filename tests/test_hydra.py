"""The dataclass-configured models train through ``fairseq-hydra-train`` with the YAML files
of ``examples/hydra/``, plus command-line overrides, and give ordinary fairseq checkpoints."""
import json
import math

from conftest import REPO, USER_DIR, run_cli
from test_cli_plugin import eval_lm_ppl

CONFIG_DIR = REPO / "examples" / "hydra"


def hydra_train(config, data, save_dir, *overrides, expect_ok=True):
    return run_cli("fairseq-hydra-train", "--config-dir", CONFIG_DIR, "--config-name", config,
                   f"task.data={data}", f"common.user_dir={USER_DIR}", f"checkpoint.save_dir={save_dir}",
                   "optimization.max_update=4", "common.log_interval=1", *overrides,
                   cwd=save_dir.parent, expect_ok=expect_ok)


def train_records(log):
    marker = "[train_inner][INFO] - "
    return [json.loads(line.split(marker, 1)[1]) for line in log.splitlines() if marker in line]


def test_lstm_slim_nce_yaml_with_overrides(ptb_bin, tmp_path):
    save = tmp_path / "ck"
    out = hydra_train("compact_lstm_lm_tiny", ptb_bin, save, "model.slim_pool=64", "criterion.noise_samples=30")
    log = out.stdout + out.stderr
    # the YAML's model (slim input K=4, d=32) with the overridden pool M=64: 64 x 8 parameters
    assert "embedding params: 512 (0.32% of a standard 4,992 x 32 table)" in log
    assert "output layer params: 2,048" in log  # slim output K=4, M=256 from the YAML
    recs = train_records(log)
    assert [int(r["num_updates"]) for r in recs] == [1, 2, 3, 4]
    assert all(math.isfinite(float(r["loss"])) for r in recs)
    ckpt = save / "checkpoint_last.pt"
    assert ckpt.exists() and (save / "hydra_train.log").exists()  # hydra.run.dir = the save dir
    # an ordinary fairseq checkpoint: the stock eval-lm reads it (exact softmax, not NCE)
    ev = run_cli("fairseq-eval-lm", ptb_bin, "--user-dir", USER_DIR, "--path", ckpt,
                 "--tokens-per-sample", 32, "--max-tokens", 512)
    assert math.isfinite(eval_lm_ppl(ev.stdout + ev.stderr))


def test_transformer_adaptive_yaml(ptb_bin, tmp_path):
    out = hydra_train("compact_transformer_lm_adaptive_tiny", ptb_bin, tmp_path / "ck")
    log = out.stdout + out.stderr
    # bands [0,300) x 32, [300,1500) x 8, [1500,4992) x 2, each with its projection to d=32
    assert "embedding params: 27,528 (17.23% of a standard 4,992 x 32 table)" in log
    assert "num. shared model params: 44,680" in log  # tied adaptive softmax adds no tables
    recs = train_records(log)
    assert len(recs) == 4 and all(math.isfinite(float(r["loss"])) for r in recs) and "ppl" in recs[-1]


def test_hydra_reports_our_config_error(ptb_bin, tmp_path):
    out = hydra_train("compact_lstm_lm_tiny", ptb_bin, tmp_path / "ck", "model.slim_subvectors=5",
                      expect_ok=False)
    assert out.returncode == 1  # Hydra catches the exception itself and exits 1
    assert ("CompactConfigError: --slim-subvectors: K=5 does not divide the dimension 32; choose a divisor "
            "of 32") in out.stderr
    assert not (tmp_path / "ck" / "checkpoint_last.pt").exists()
