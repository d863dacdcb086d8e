"""Every architecture x several input/output/criterion combinations, through the real CLIs:
fairseq-train a few updates on tiny real data, save, reload with fairseq-eval-lm (or
fairseq-generate / fairseq-interactive for translation) and get a finite score."""
import math
import re

import pytest

from conftest import USER_DIR, run_cli
from test_cli_plugin import eval_lm_ppl

LM_COMMON = ["--task", "language_modeling", "--tokens-per-sample", 24, "--max-tokens", 384,
             "--optimizer", "adam", "--lr", 0.003, "--max-update", 3, "--no-progress-bar", "--log-interval", 1,
             "--num-workers", 0, "--seed", 1, "--no-epoch-checkpoints", "--max-valid-steps", 2]

SLIM_IO = ["--input-embedding", "slim", "--slim-subvectors", 4, "--slim-pool", 64,
           "--output-layer", "slim", "--output-slim-subvectors", 4, "--output-slim-pool", 128]
ADAPTIVE_TIED = ["--input-embedding", "adaptive", "--output-layer", "adaptive", "--tie-input-output",
                 "--adaptive-cutoffs", "300,1500", "--criterion", "compact_adaptive_loss"]
DEFINE_SMALL = ["--input-embedding", "define", "--define-map-dim", 8, "--define-expand-dim", 32,
                "--define-levels", 2, "--define-max-groups", 2]
NCE = ["--criterion", "nce", "--noise-samples", 20]
IS = ["--criterion", "importance_sampling", "--noise-samples", 30]

LSTM = ["--arch", "compact_lstm_lm", "--decoder-hidden-size", 16, "--decoder-layers", 2]
AWD = ["--arch", "awd_lstm_lm", "--decoder-embed-dim", 16, "--decoder-hidden-size", 24]
TLM = ["--arch", "compact_transformer_lm", "--decoder-embed-dim", 16, "--decoder-layers", 1,
       "--decoder-ffn-embed-dim", 32, "--decoder-attention-heads", 2]

LM_CASES = {
    "lstm-standard-tied-ce": LSTM + ["--tie-input-output"],
    "lstm-slim-io-nce": LSTM + SLIM_IO + NCE,
    "lstm-adaptive-tied": LSTM + ADAPTIVE_TIED,
    "lstm-define-hashnet-is": LSTM + DEFINE_SMALL + ["--output-layer", "hashnet", "--output-hashnet-buckets", 4096] + IS,
    "awd-standard-tied-bias": AWD + ["--tie-input-output", "--output-bias"],
    "awd-define-proj-softmax": AWD + DEFINE_SMALL + ["--define-input-proj", 8],  # the authors' projection, d/2
    "awd-slim-io-is": AWD + SLIM_IO + IS,
    "tlm-adaptive-tied": TLM + ADAPTIVE_TIED,
    "tlm-projected-softmax-nce": TLM + ["--input-embedding", "projected", "--projected-dim", 8] + NCE,
    "tlm-hashnet-io": TLM + ["--input-embedding", "hashnet", "--hashnet-buckets", 2048, "--output-layer", "hashnet"],
}


@pytest.mark.parametrize("case", list(LM_CASES))
def test_lm_train_save_eval(case, ptb_bin, tmp_path):
    out = run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, *LM_CASES[case], *LM_COMMON, "--save-dir", tmp_path)
    log = out.stdout + out.stderr
    assert "embedding params:" in log and "num_updates 3" in log
    assert re.search(r"valid on 'valid' subset \| loss [0-9.]+", log)
    ev = run_cli("fairseq-eval-lm", ptb_bin, "--user-dir", USER_DIR, "--path", tmp_path / "checkpoint_last.pt",
                 "--tokens-per-sample", 24, "--max-tokens", 384)
    ppl = eval_lm_ppl(ev.stdout + ev.stderr)
    assert math.isfinite(ppl) and 1 < ppl < 1e5


MT_COMMON = ["--encoder-layers", 1, "--decoder-layers", 1, "--encoder-embed-dim", 16, "--decoder-embed-dim", 16,
             "--encoder-ffn-embed-dim", 32, "--decoder-ffn-embed-dim", 32, "--encoder-attention-heads", 2,
             "--decoder-attention-heads", 2, "--optimizer", "adam", "--lr", 0.002, "--max-tokens", 500,
             "--max-update", 3, "--no-progress-bar", "--num-workers", 0, "--no-epoch-checkpoints", "--seed", 1]
MT_CASES = {
    "shared-standard-tied": ["--share-all-embeddings", "--tie-input-output"],
    "define-enc-dec-label-smoothing": DEFINE_SMALL + ["--criterion", "label_smoothed_cross_entropy",
                                                      "--label-smoothing", 0.1],
    "slim-io-nce": SLIM_IO + NCE,
    # the authors' translation model: one shared map table, an expand / reduce unit per side
    "define-share-map-tied": ["--share-all-embeddings", *DEFINE_SMALL, "--define-share", "map"],
    "adaptive-shared-tied": ["--share-all-embeddings", "--input-embedding", "adaptive", "--output-layer", "adaptive",
                             "--tie-input-output", "--adaptive-cutoffs", "200,800", "--criterion", "compact_adaptive_loss"],
}


@pytest.mark.parametrize("case", list(MT_CASES))
def test_translation_train_save_generate(case, multi30k_bin, tmp_path):
    run_cli("fairseq-train", multi30k_bin, "--user-dir", USER_DIR, "--arch", "compact_transformer",
            *MT_CASES[case], *MT_COMMON, "--save-dir", tmp_path)
    out = run_cli("fairseq-generate", multi30k_bin, "--user-dir", USER_DIR, "--path", tmp_path / "checkpoint_last.pt",
                  "--beam", 2, "--batch-size", 16, "--max-len-b", 10, "--scoring", "sacrebleu")
    bleu = re.search(r"BLEU = ([0-9.]+)", out.stdout)
    assert bleu and math.isfinite(float(bleu.group(1)))
    scores = [float(line.split("\t")[1]) for line in out.stdout.splitlines() if line.startswith("H-")]
    assert len(scores) == 40 and all(math.isfinite(s) for s in scores)


def test_translation_interactive(multi30k_bin, tmp_path):
    run_cli("fairseq-train", multi30k_bin, "--user-dir", USER_DIR, "--arch", "compact_transformer",
            *MT_CASES["slim-io-nce"], *MT_COMMON, "--save-dir", tmp_path)
    import subprocess

    from conftest import cli

    proc = subprocess.run([cli("fairseq-interactive"), str(multi30k_bin), "--user-dir", str(USER_DIR),
                           "--path", str(tmp_path / "checkpoint_last.pt"), "--beam", "2", "--source-lang", "en",
                           "--target-lang", "de", "--max-len-b", "8"],
                          input="a man is riding a bike .\ntwo dogs play in the snow .\n",
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hyps = [line for line in proc.stdout.splitlines() if line.startswith("H-")]
    assert len(hyps) == 2 and all(math.isfinite(float(h.split("\t")[1])) for h in hyps)
