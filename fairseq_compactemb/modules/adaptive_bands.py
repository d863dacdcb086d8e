"""Frequency bands shared by the adaptive input and the adaptive softmax.

Both methods split a frequency-sorted vocabulary ``[0, V)`` into bands
``[0, c_1), [c_1, c_2), ..., [c_{n-1}, V)`` and give band ``i`` the dimension ``d / factor^i``.
The user passes only the inner boundaries (``--adaptive-cutoffs 20000,60000``); the last band
always ends at ``V``. Parsing and validation live here once, so the input embedding and the
output layer accept exactly the same values and can be tied band by band.
"""
import logging
from typing import List

from .errors import CompactConfigError
from .size_options import default_cutoffs

logger = logging.getLogger(__name__)


def _suggested_cutoffs(vocab_size: int) -> str:
    """Boundaries at the same relative positions as the paper's WikiText-103 setup
    (20000 and 60000 of 267,735 words), scaled to ``vocab_size``."""
    return default_cutoffs(vocab_size) or "20000,60000"


def parse_cutoffs(spec: str, vocab_size: int) -> List[int]:
    """``"20000,60000"`` and V -> band ends ``[20000, 60000, V]``.

    An empty value derives the boundaries from V (:func:`~.size_options.default_cutoffs`: the
    paper's 7.5% and 22.4%, logged). Raises :class:`CompactConfigError` (naming
    ``--adaptive-cutoffs``) for non-integers, values ``<= 0`` or ``>= V``, values that are not
    strictly increasing, and a vocabulary too small for two bands.
    """
    text = "" if spec is None else str(spec).strip()
    suggestion = _suggested_cutoffs(vocab_size)
    if not text:
        text = default_cutoffs(vocab_size)
        if not text:
            raise CompactConfigError(
                "--adaptive-cutoffs", f"a vocabulary of V={vocab_size} words is too small for two "
                "frequency bands", "use --input-embedding standard / --output-layer softmax")
        logger.info(f"--adaptive-cutoffs not given: {text} (7.5% and 22.4% of V={vocab_size:,}, the "
                    "paper's 20000,60000 of 267,735)")
    cutoffs = []
    for item in text.split(","):
        item = item.strip()
        try:
            value = int(item)
        except ValueError:
            raise CompactConfigError(
                "--adaptive-cutoffs", f"{item!r} in {text!r} is not an integer",
                f"give comma-separated integers, e.g. --adaptive-cutoffs {suggestion}",
            ) from None
        cutoffs.append(value)
    for value in cutoffs:
        if value <= 0:
            raise CompactConfigError(
                "--adaptive-cutoffs", f"boundary {value} in {text!r} is <= 0 (the first band "
                "would be empty)", f"use positive boundaries, e.g. --adaptive-cutoffs {suggestion}",
            )
        if value >= vocab_size:
            raise CompactConfigError(
                "--adaptive-cutoffs", f"boundary {value} in {text!r} is >= the vocabulary size "
                f"V={vocab_size}", "give only the inner boundaries, all < V (the last band ends "
                f"at V={vocab_size} automatically), e.g. --adaptive-cutoffs {suggestion}",
            )
    for prev, nxt in zip(cutoffs, cutoffs[1:]):
        if nxt <= prev:
            raise CompactConfigError(
                "--adaptive-cutoffs", f"{text!r} is not strictly increasing ({prev} then {nxt}; "
                "each band must hold at least one word)",
                "list distinct boundaries in increasing order, e.g. --adaptive-cutoffs "
                f"{suggestion}",
            )
    return cutoffs + [vocab_size]


def check_factor(factor: float) -> float:
    """``--adaptive-factor`` must be >= 1 (band dimensions shrink, never grow)."""
    if not factor >= 1:  # also rejects NaN
        raise CompactConfigError(
            "--adaptive-factor", f"factor {factor} is < 1 (band i has dimension d / factor^i, "
            "which would grow for rarer words)", "use --adaptive-factor >= 1, e.g. 4 as in the paper",
        )
    return float(factor)


def band_dims(dim: int, factor: float, num_bands: int) -> List[int]:
    """Dimension of each band: ``d // factor^i``, at least 1 (``1024, 256, 64`` for d=1024, 4)."""
    return [max(1, int(dim // (factor ** i))) for i in range(num_bands)]


def band_starts(cutoffs: List[int]) -> List[int]:
    """First id of each band: ``[0] + cutoffs[:-1]``."""
    return [0] + list(cutoffs[:-1])
