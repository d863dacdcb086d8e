"""Checks of the model flags that fairseq itself only meets deep inside a layer.

fairseq's transformer layers ``assert embed_dim % num_heads == 0`` and ``nn.Dropout`` raises a
``ValueError`` at build time for ``p > 1``, each as a traceback without the flag's name (and
fairseq's own dropout module accepts ``p > 1`` silently). Models call these before building a
layer so the user gets one :class:`CompactConfigError` line naming the flag instead.
"""
from typing import Iterable

from ..modules import CompactConfigError


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_dropouts(cfg, names: Iterable[str]) -> None:
    """Every ``cfg.<name>`` that is set must be a probability in ``[0, 1)``."""
    for name in names:
        p = getattr(cfg, name, None)
        if p is None:
            continue
        if not 0.0 <= float(p) < 1.0:  # also rejects NaN
            raise CompactConfigError(_flag(name), f"{p} is not a dropout probability in [0, 1)",
                                     f"use e.g. {_flag(name)} 0.1 (0 disables it)")


def check_heads(cfg, dim_name: str, heads_name: str) -> None:
    """``cfg.<heads_name>`` attention heads must be >= 1 and divide ``cfg.<dim_name>``."""
    dim, heads = getattr(cfg, dim_name, None), getattr(cfg, heads_name, None)
    if dim is None or heads is None:
        return
    if heads < 1:
        raise CompactConfigError(_flag(heads_name), f"{heads} attention heads", "use at least 1")
    if dim % heads:
        divisors = [h for h in range(1, min(dim, 64) + 1) if dim % h == 0]
        raise CompactConfigError(
            _flag(heads_name), f"{heads} heads do not divide {_flag(dim_name)} {dim} (each head gets "
            f"an equal slice)", f"use a divisor of {dim}, e.g. {', '.join(map(str, divisors[-6:]))}")
