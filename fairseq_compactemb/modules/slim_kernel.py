"""Optional C++ kernel for the slim output layer's no-grad log-softmax on CPU.

:func:`fused_log_softmax` gathers and sums the ``K`` partial products of every word and
normalises them in one pass over the vocabulary (``kernels/slim_log_softmax.cpp``): no
``[V, N]`` intermediate, no transposing copy, the softmax reductions done while each chunk
is in L1. It is compiled once with :func:`torch.utils.cpp_extension.load` (cached under
``$TORCH_EXTENSIONS_DIR``, ``~/.cache/torch_extensions`` by default; ``scripts/install.sh``
builds it) and used only for float32 CPU tensors without autograd. Without a compiler, or with
``COMPACTEMB_NO_KERNELS=1``, :func:`load` returns ``None`` once with a warning and the layer
keeps its pure-PyTorch path (same numbers to float tolerance; as fast on an idle CPU at the
Table 7 shape, 23% slower there under load, and it builds a ``[V, N]`` intermediate).
"""
import contextlib
import os
import warnings
from pathlib import Path
from typing import Optional

import torch

_SOURCE = Path(__file__).with_name("kernels") / "slim_log_softmax.cpp"
_state = {"module": None, "tried": False, "off": 0}


def kernels_disabled() -> bool:
    return _state["off"] > 0 or os.environ.get("COMPACTEMB_NO_KERNELS", "") not in ("", "0")


@contextlib.contextmanager
def disabled():
    """Run the pure-PyTorch path inside this block (benchmarks and tests compare the two)."""
    _state["off"] += 1
    try:
        yield
    finally:
        _state["off"] -= 1


def load(verbose: bool = False):
    """The compiled extension module, or ``None`` (disabled, or the build failed)."""
    if kernels_disabled():
        return None
    if not _state["tried"]:
        _state["tried"] = True
        try:
            from torch.utils.cpp_extension import load as load_extension

            # -march=native: the build happens on the machine that runs it (JIT, cached per
            # source/flags); -fopenmp: at::parallel_for is OpenMP in the PyTorch CPU wheels;
            # -fno-trapping-math: lets gcc if-convert the exp's clamp, so the exp loops
            # vectorise (they did not: 6.6 ns per exp; values are unchanged, no reassociation)
            _state["module"] = load_extension(
                name="compactemb_slim_cpu", sources=[str(_SOURCE)],
                extra_cflags=["-O3", "-march=native", "-fopenmp", "-fno-trapping-math"], extra_ldflags=["-fopenmp"],
                verbose=verbose)
        except Exception as e:  # no compiler / ninja / headers: the PyTorch path still works
            warnings.warn(f"fairseq-compactemb: the slim output C++ kernel could not be built "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); using the "
                          "pure-PyTorch path (set COMPACTEMB_NO_KERNELS=1 to skip the build)")
    return _state["module"]


def usable(table: torch.Tensor) -> bool:
    """Whether the kernel applies to this partial table (CPU float32, no autograd)."""
    return (table.device.type == "cpu" and table.dtype == torch.float32 and not table.requires_grad
            and load() is not None)


def log_partition(table: torch.Tensor, assignment_i32: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``log Z [N]`` of the scores ``sum_k table[assignment[w, k], n] (+ bias[w])`` over all ``V``
    words, streamed like :func:`fused_log_softmax` but without writing any ``[N, V]`` output."""
    module = load()
    empty = table.new_empty(0)
    return module.slim_log_partition(table.contiguous(), assignment_i32,
                                     empty if bias is None else bias.detach().float().contiguous())


def fused_log_softmax(table: torch.Tensor, assignment_i32: torch.Tensor, bias: Optional[torch.Tensor],
                      out: torch.Tensor) -> torch.Tensor:
    """``table [M, N]``, ``assignment_i32 [V, K]`` (int32), ``bias [V]`` or None, ``out [N, V]``
    (float32, contiguous rows) -> fills ``out`` with log-probabilities, returns ``log Z [N]``."""
    module = load()
    empty = table.new_empty(0)
    return module.slim_log_softmax(table.contiguous(), assignment_i32,
                                   empty if bias is None else bias.detach().float().contiguous(), out)
