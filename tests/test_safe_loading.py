"""Checkpoints load with torch's weights_only=True unpickler, and only with what fairseq needs."""
import subprocess
import sys

import torch

from conftest import USER_DIR, run_cli
from fairseq_compactemb.safe_loading import FAIRSEQ_CHECKPOINT_GLOBALS

TINY_TRANSFORMER = [
    "--arch", "transformer", "--encoder-layers", 1, "--decoder-layers", 1,
    "--encoder-embed-dim", 16, "--decoder-embed-dim", 16, "--encoder-ffn-embed-dim", 32,
    "--decoder-ffn-embed-dim", 32, "--encoder-attention-heads", 2, "--decoder-attention-heads", 2,
    "--optimizer", "adam", "--lr", "0.001", "--max-tokens", 400, "--max-update", 4,
    "--no-progress-bar", "--num-workers", 0, "--no-epoch-checkpoints",
]


def unsafe_globals(ckpt):
    """Globals torch's weights_only unpickler would refuse, checked in a process without the plugin."""
    code = f"import torch; print(sorted(torch.serialization.get_unsafe_globals_in_checkpoint({str(ckpt)!r})))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(eval(res.stdout))


def _allowlisted_names():
    return {f"{g.__module__}.{g.__qualname__}" for g in FAIRSEQ_CHECKPOINT_GLOBALS}


def test_weights_only_is_the_default_and_fairseq_does_not_disable_it():
    import inspect

    from fairseq import checkpoint_utils

    assert "weights_only=False" not in inspect.getsource(checkpoint_utils)
    assert torch.__version__ < "2.6" or inspect.signature(torch.load).parameters["weights_only"].default in (None, True)


def test_generate_loads_translation_checkpoint(multi30k_bin, tmp_path):
    run_cli("fairseq-train", multi30k_bin, "--user-dir", USER_DIR, "--save-dir", tmp_path, *TINY_TRANSFORMER)
    ckpt = tmp_path / "checkpoint_last.pt"
    # the checkpoint needs globals beyond torch's defaults (argparse.Namespace) ...
    needed = unsafe_globals(ckpt)
    assert "argparse.Namespace" in needed
    # ... and nothing beyond our allowlist
    assert needed <= _allowlisted_names()
    # stock fairseq without the plugin fails exactly as users report (weights_only=True) ...
    bare = run_cli("fairseq-generate", multi30k_bin, "--path", ckpt, "--beam", 2,
                   "--batch-size", 8, expect_ok=False)
    assert bare.returncode != 0 and "Weights only load failed" in bare.stderr
    # ... and with --user-dir it works, through the real CLI, with sacrebleu scoring
    out = run_cli("fairseq-generate", multi30k_bin, "--user-dir", USER_DIR, "--path", ckpt,
                  "--beam", 2, "--batch-size", 8, "--scoring", "sacrebleu", "--max-len-b", 20)
    assert "Generate test with beam=2: BLEU" in out.stdout
    assert sum(line.startswith("H-") for line in out.stdout.splitlines()) == 40


class _Payload:
    """What an attacker would pickle: unpickling runs os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_with_unexpected_pickled_class_is_refused(multi30k_bin, tmp_path):
    run_cli("fairseq-train", multi30k_bin, "--user-dir", USER_DIR, "--save-dir", tmp_path, *TINY_TRANSFORMER)
    state = torch.load(tmp_path / "checkpoint_last.pt")  # our allowlist lets this load safely
    marker = tmp_path / "pwned"
    state["extra_state"]["payload"] = _Payload(marker)
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    out = run_cli("fairseq-generate", multi30k_bin, "--user-dir", USER_DIR, "--path", evil,
                  "--beam", 2, "--batch-size", 8, expect_ok=False)
    assert out.returncode != 0
    assert "Weights only load failed" in out.stderr and "posix.system" in out.stderr
    assert not marker.exists(), "the pickled payload ran"
    # in-process too: importing the plugin did not weaken torch.load for other globals
    code = (f"import sys; sys.path.insert(0, {str(USER_DIR.parent)!r}); import fairseq_compactemb, torch\n"
            f"try:\n    torch.load({str(evil)!r})\nexcept Exception as e:\n    print(type(e).__name__)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "UnpicklingError" in res.stdout and not marker.exists()
