"""Let fairseq 0.12's ``--ddp-backend pytorch_ddp`` (``c10d``) wrap a CPU model.

fairseq's ``DistributedFairseqModel`` always builds
``DistributedDataParallel(module, device_ids=[device_id], output_device=device_id)``. That is
right for one GPU per process, but PyTorch refuses it for a module on the CPU (``device_ids
and output_device arguments only work with single-device/multiple-device GPU modules or CPU
modules, but got device_ids [0] ...``), so ``--cpu --distributed-world-size 2`` with the
PyTorch DDP backend cannot start at all (the gloo backend itself works on CPU).

:func:`allow_cpu_pytorch_ddp` replaces the ``DistributedDataParallel`` name that fairseq's
module looks up with a subclass that drops ``device_ids`` / ``output_device`` *only when every
parameter of the module is on the CPU* -- exactly the case that otherwise raises -- and passes
every other call through unchanged, so GPU training is untouched. It is the documented way of
wrapping a CPU module (``device_ids=None``), not a behaviour change.
"""
import logging

from torch.nn.parallel import DistributedDataParallel

logger = logging.getLogger(__name__)


class CPUAwareDistributedDataParallel(DistributedDataParallel):
    """``DistributedDataParallel`` that accepts fairseq's ``device_ids=[i]`` for a CPU module."""

    def __init__(self, module, device_ids=None, output_device=None, *args, **kwargs):
        params = list(module.parameters())
        if params and all(p.device.type == "cpu" for p in params):
            device_ids, output_device = None, None
            logger.info(f"PyTorch DistributedDataParallel on CPU: {type(module).__name__} "
                        "(device_ids=None)")
        super().__init__(module, device_ids, output_device, *args, **kwargs)


def allow_cpu_pytorch_ddp() -> None:
    """Patch the name fairseq's ``DistributedFairseqModel`` uses (idempotent; no-op without fairseq)."""
    try:
        from fairseq.models import distributed_fairseq_model as dfm
    except ImportError:
        return
    if getattr(dfm, "DistributedDataParallel", None) is DistributedDataParallel:
        dfm.DistributedDataParallel = CPUAwareDistributedDataParallel
