"""The size flags as the papers state them: counts, compression ratios and derived defaults.

``--slim-pool``, ``--output-slim-pool``, ``--hashnet-buckets`` and ``--output-hashnet-buckets``
take either a count (``2000``: exactly that many sub-vectors / shared weights, with the
layers' own checks and errors) or a ratio of the ``V x d`` table they replace (``1/8``,
``0.125``): a slim layer with ``M`` sub-vectors of ``d/K`` numbers holds ``M * d / K``
parameters, so ratio ``r`` gives ``M = r * V * K`` (rounded to a multiple of ``K`` for the
disjoint pools of the slim output); HashNet with ratio ``r`` shares ``B = r * V * d`` weights.
The default is ``1/8``, the compression of the slim paper's One Billion Word output layer.

Derived when not given (and logged, so a run's log says what it used):

* ``--slim-subvectors`` / ``--output-slim-subvectors``: the divisor of the dimension nearest 8
  (the larger one on a tie), e.g. 10 for d = 650, 1150, 410 or 300.
* ``--adaptive-cutoffs``: the paper's fractions of the vocabulary, 7.5% and 22.4% (Baevski &
  Auli's 20,000 and 60,000 of WikiText-103's 267,735 words), e.g. ``2496,7455`` for V = 33,280.
"""
import logging
from fractions import Fraction
from typing import Optional, Union

from .errors import CompactConfigError

logger = logging.getLogger(__name__)

DEFAULT_RATIO = "1/8"
DEFAULT_SUBVECTORS = 8
CUTOFF_FRACTIONS = (0.075, 0.224)


def parse_size(value: Union[int, str, float], flag: str) -> Union[int, Fraction]:
    """``2000`` / ``"2000"`` -> ``2000`` (a count); ``"1/8"``, ``"0.125"``, ``0.125`` -> ``Fraction(1, 8)``
    (a ratio in ``(0, 1]``). Raises :class:`CompactConfigError` naming ``flag`` otherwise."""
    if isinstance(value, bool):
        raise CompactConfigError(flag, f"{value!r} is not a size", "give a count (e.g. 2000) or a ratio (e.g. 1/8)")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        ratio = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise CompactConfigError(flag, f"{text!r} is neither a count nor a ratio",
                                 "give a count (e.g. 2000) or a ratio of the table it replaces (e.g. 1/8 or 0.125)") from None
    if not 0 < ratio <= 1:
        raise CompactConfigError(flag, f"ratio {text} is not in (0, 1]",
                                 "give the fraction of the V x d table to keep, e.g. 1/8")
    return ratio


def resolve_size(value, flag: str, full: int, multiple: int = 1, minimum: int = 1, what: str = "") -> int:
    """A count as given, or ``ratio * full`` rounded to the nearest multiple of ``multiple``,
    at least ``minimum`` (logged with ``what``)."""
    size = parse_size(value, flag)
    if isinstance(size, int):
        return size
    floor = -(-max(minimum, 1) // multiple) * multiple
    count = max(floor, round(size * full / multiple) * multiple)
    logger.info(f"{flag} {value}: {count:,} {what}".rstrip())
    return count


def default_subvectors(dim: int, near: int = DEFAULT_SUBVECTORS) -> int:
    """The divisor of ``dim`` nearest ``near`` (the larger one on a tie)."""
    divisors = [q for q in range(1, dim + 1) if dim % q == 0]
    return min(divisors, key=lambda q: (abs(q - near), -q))


def resolve_subvectors(value: Optional[int], dim: int, flag: str) -> int:
    if value is not None:
        return int(value)
    k = default_subvectors(dim)
    logger.info(f"{flag} not given: K={k}, the divisor of the dimension {dim} nearest {DEFAULT_SUBVECTORS}")
    return k


def default_cutoffs(vocab_size: int) -> str:
    """Inner band boundaries at the paper's fractions of ``vocab_size`` (``""`` when the
    vocabulary is too small for two bands)."""
    cuts = []
    for fraction in CUTOFF_FRACTIONS:
        c = max(1, round(vocab_size * fraction))
        if (not cuts or c > cuts[-1]) and c < vocab_size:
            cuts.append(c)
    return ",".join(map(str, cuts))
