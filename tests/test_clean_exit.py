"""The plugin stops fairseq's data-loading threads at exit, so a finished run exits with 0.

Without it, a ``BackgroundConsumer`` thread that frees a numpy-backed tensor while Python
finalises aborts the process (``terminate called without an active exception``, exit 134);
this failed ``fairseq-train`` in CI after a completed run. The script below makes the race
near-certain: its consumer thread builds and frees numpy-backed tensors in a loop, as
fairseq's collate does.
"""
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO

SCRIPT = """
import sys
import numpy as np
import torch
from fairseq.data.iterators import BufferedIterator
if sys.argv[1] == "plugin":
    sys.path.insert(0, {repo!r})
    import fairseq_compactemb  # noqa: F401

class Source:
    def __init__(self, n): self.n = n
    def __len__(self): return self.n
    def __iter__(self):
        for _ in range(self.n):
            x = torch.from_numpy(np.ones(4))
            y = x.clone()
            del x  # freed in the consumer thread, like fairseq's collate inputs
            yield y

it = BufferedIterator({size}, Source(10 ** 7))
next(it)
"""


def run_script(tmp_path, mode, size=10 ** 7):
    path = tmp_path / "exit_race.py"
    path.write_text(SCRIPT.format(repo=str(REPO), size=size))
    return subprocess.run([sys.executable, str(path), mode], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("size", [10 ** 7, 2])  # consumer busy collating / blocked on a full queue
def test_process_exits_cleanly_with_the_plugin(tmp_path, size):
    for _ in range(3):
        proc = run_script(tmp_path, "plugin", size)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "terminate called" not in proc.stderr


def test_control_without_the_plugin_the_race_aborts(tmp_path):
    """The script does exercise the race: stock fairseq aborts on it (at least once in 3 runs)."""
    procs = [run_script(tmp_path, "stock") for _ in range(3)]
    for proc in procs:  # the script itself works: any failure is the abort at exit
        assert proc.returncode == 0 or "terminate called without an active exception" in proc.stderr, \
            proc.stderr[-2000:]
    if all(proc.returncode == 0 for proc in procs):
        pytest.skip("the exit race did not trigger on this machine in 3 runs (timing dependent)")


def test_stop_background_consumers_stops_a_blocked_consumer():
    from fairseq.data.iterators import BufferedIterator

    from fairseq_compactemb.clean_exit import stop_background_consumers

    def endless():
        while True:
            yield torch.from_numpy(np.zeros(3))

    class Source:
        def __len__(self):
            return 10 ** 9

        def __iter__(self):
            return endless()

    it = BufferedIterator(1, Source())
    assert next(it).shape == (3,)
    consumer = it._consumer
    assert consumer.is_alive()  # blocked on the full queue
    assert stop_background_consumers(timeout=10) >= 1
    consumer.join(1)
    assert not consumer.is_alive()
