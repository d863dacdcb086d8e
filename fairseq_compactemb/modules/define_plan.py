"""The level plan of DeFINE's expansion: widths, groups and skip connections of every level.

Two layouts (``--define-widths``):

* ``linear`` (ours, the default; see :mod:`.hierarchical_group_transform` for the rounding): level
  ``l`` outputs ``n + (k - n) (l + 1) / N`` features, the last one exactly ``k``; groups
  ``g_max, g_max/2, ..., 1`` (then 1).
* ``authors`` (the DeFINE unit of the authors' DeLighT release, ICLR mode, read for
  this project): widths ``linspace(n, k, N)[1:]`` for levels ``0 .. N-2``, each rounded up to a multiple
  of ``max(g_l, g_{l+1}, 8)``, and the last level outputs the model dimension ``d`` itself; the
  groups count ``1, 2, 4, ...`` up to ``g_max``, restart at 1 when they would exceed it, and the
  list is reversed (``N=3, g_max=4``: ``4, 2, 1``; ``N=7``: ``1, 4, 2, 1, 4, 2, 1``).

Both feed level ``l >= 1`` the map output ``e`` beside the previous level's output as the
variant says (plain concatenation or the split + mix of the DeFINE unit).
"""
from dataclasses import dataclass
from typing import List, Optional

from .errors import CompactConfigError

LAYOUTS = ("linear", "authors")

VARIANTS = ("linear", "group", "hgt", "define_no_mixer", "define")
ACTIVATIONS = ("gelu", "relu", "prelu")
# how level l >= 1 receives the map output e: not at all, by plain concatenation, by the mixer
_SKIP = {"linear": "none", "group": "none", "hgt": "none", "define_no_mixer": "concat", "define": "mix"}
# what the levels take in (and the skip links carry): its flag, symbol and name in error messages
INPUTS = {"map": ("--define-map-dim", "n", "the map output"),
          "projection": ("--define-input-proj", "P", "the projected map output")}


@dataclass(frozen=True)
class LevelSpec:
    """One level: ``in_dim -> out_dim`` with ``groups`` groups; ``skip`` says how the map
    output enters its input (``"none"``, ``"concat"`` or ``"mix"``; always ``"none"`` at level 0)."""

    in_dim: int
    out_dim: int
    groups: int
    skip: str


def authors_groups(levels: int, max_groups: int) -> List[int]:
    """The authors' group counts (module docstring): 1, 2, 4, ... restarting above ``g_max``, reversed."""
    groups, counter = [], 0
    for _ in range(levels):
        g = 2 ** counter
        if g <= max_groups:
            counter += 1
        else:
            g, counter = 1, 1
        groups.append(g)
    return groups[::-1]


def plan_levels(map_dim: int, expand_dim: int, levels: int, max_groups: int, variant: str,
                layout: str = "linear", out_dim: Optional[int] = None, source: str = "map") -> List[LevelSpec]:
    """Widths and groups of every level (see the module docstring), validating the flags.
    ``layout="authors"`` needs ``out_dim`` (d, what its last level outputs). ``source``: what the
    ``map_dim`` features are (a key of :data:`INPUTS`), so a width the groups do not divide names its flag.

    Raises :class:`CompactConfigError` naming the offending ``--define-*`` flag.
    """
    if layout not in LAYOUTS:
        raise CompactConfigError("--define-widths", f"unknown layout {layout!r}", f"choose one of {', '.join(LAYOUTS)}")
    if variant not in VARIANTS:
        raise CompactConfigError("--define-transform", f"unknown variant {variant!r}",
                                 f"choose one of {', '.join(VARIANTS)}")
    for flag, value, what in [("--define-map-dim", map_dim, "map dimension n"),
                              ("--define-expand-dim", expand_dim, "expanded dimension k"),
                              ("--define-levels", levels, "number of levels N"),
                              ("--define-max-groups", max_groups, "maximum number of groups g_max")]:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CompactConfigError(flag, f"the {what} is {value!r}", "give an integer >= 1")
    if max_groups & (max_groups - 1):
        raise CompactConfigError(
            "--define-max-groups", f"g_max={max_groups} is not a power of two (the groups are "
            "halved at each level, which must stay exact)", "use 1, 2, 4, 8, ...")

    if variant == "linear":
        groups = [1] * levels
    elif variant == "group":
        groups = [max_groups] * levels
    elif layout == "authors":
        groups = authors_groups(levels, max_groups)
    else:
        groups = [max(max_groups >> l, 1) for l in range(levels)]
    if layout == "authors":
        return _authors_widths(map_dim, expand_dim, levels, groups, _SKIP[variant], out_dim, source)

    flag, sym, what = INPUTS[source]
    if map_dim % groups[0]:
        raise CompactConfigError(
            flag, f"{sym}={map_dim} is not divisible by the g_max={groups[0]} groups of "
            f"the first level (--define-transform {variant} splits {what} into g_max chunks)",
            f"choose {sym} a multiple of {groups[0]} or lower --define-max-groups")
    if expand_dim % groups[-1]:
        raise CompactConfigError(
            "--define-expand-dim", f"k={expand_dim} is not divisible by the {groups[-1]} groups of "
            f"the last level (level {levels - 1} of --define-transform {variant} outputs k features "
            "in equal groups)",
            f"choose k a multiple of {groups[-1]}, or lower --define-max-groups / raise --define-levels")

    specs, prev = [], map_dim
    skip = _SKIP[variant]
    for l, g in enumerate(groups):
        if l == levels - 1:
            width = expand_dim
        else:
            raw = map_dim + ((expand_dim - map_dim) * (l + 1)) // levels
            width = -(-raw // g) * g  # round up to a multiple of this level's groups
        level_skip = "none" if l == 0 else skip
        in_dim = prev + (map_dim if level_skip != "none" else 0)
        specs.append(LevelSpec(in_dim, width, g, level_skip))
        prev = width
    return specs




def _authors_widths(n: int, k: int, levels: int, groups: List[int], skip: str, out_dim: Optional[int],
                    source: str) -> List[LevelSpec]:
    if out_dim is None or out_dim < 1:
        raise ValueError("the authors' layout needs the model dimension out_dim")
    if levels < 2:
        raise CompactConfigError("--define-levels", f"N={levels}: the authors' layout has at least 2 levels "
                                 "(expansion levels, then one that outputs d)",
                                 "use --define-levels >= 2, or --define-widths linear for a single level")
    flag, sym, what = INPUTS[source]
    if n % max(groups):
        raise CompactConfigError(flag, f"{sym}={n} is not divisible by the {max(groups)} groups of "
                                 f"the widest-grouped level (the mixer splits {what} into that many chunks)",
                                 f"choose {sym} a multiple of {max(groups)} or lower --define-max-groups")
    if out_dim % groups[-1]:
        raise CompactConfigError("--define-max-groups", f"the last level's {groups[-1]} groups do not divide d={out_dim}",
                                 "lower --define-max-groups")
    raw = [n + (k - n) * (i + 1) / (levels - 1) for i in range(levels - 1)]  # linspace(n, k, N)[1:]
    specs, prev = [], n
    for l, g in enumerate(groups):
        if l == levels - 1:
            width = out_dim
        else:
            m = max(g, groups[l + 1], 8)
            width = -(-int(raw[l]) // m) * m
        level_skip = "none" if l == 0 else skip
        specs.append(LevelSpec(prev + (n if level_skip != "none" else 0), width, g, level_skip))
        prev = width
    return specs
