"""The benchmark's shared means: the device the parts run on, interleaved timing with medians,
the machine's description and the tables it prints (``scripts/benchmark.py`` and its parts)."""
import datetime
import logging
import os
import platform
import statistics
import time
import warnings
from typing import Callable, Dict, List, Sequence

import torch

DEVICE = torch.device("cpu")  # set_device(); the timed parts run there, part memory measures host RSS


def set_device(name: str) -> None:
    global DEVICE
    DEVICE = torch.device(name)


def now() -> float:
    """A timestamp after the device has finished its queued work."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)
    return time.perf_counter()


def quiet_imports() -> None:
    """fairseq and hydra log and warn a lot when models are built from flags; keep the tables readable."""
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)


def interleaved(fns: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> Dict[str, List[float]]:
    """Seconds per call of every function, run in turn ``repeats`` times (after ``warmup`` rounds)."""
    times = {name: [] for name in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            t0 = now()
            fn()
            if r >= warmup:
                times[name].append(now() - t0)
    return times


def med(ts: Sequence[float]) -> float:
    return statistics.median(ts)


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "bf16_cpu": bf16_supported(),
        "amx_bf16": " amx_bf16" in flags,
        "device": str(DEVICE),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def bf16_supported() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def table(rows: List[List[str]], header: List[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "| " + " | ".join(str(x).rjust(w) for x, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def ms(t: float) -> str:
    return f"{t * 1e3:.1f} ms"
