"""Which structural options built a saved DeFINE unit, read from the shapes of its state dict.

A checkpoint stores the configuration it was trained with, but one written before a flag existed
(``--define-reduce``, ``--define-widths``, ``--define-level-norm``) does not name it, and fairseq
fills the missing key with today's default when it rebuilds the model. The tensors themselves
tell the layout apart: the authors' reduce block reads ``k + n`` features (``reduce.weight [d, k+n]``),
``linear`` has no ``reduce_norm``, the two width plans give different ``[g, in/g, out/g]`` level
weights, per-group and shared level norms differ in their first dimension wherever a level has
more than one group (with one group they compute the same function). So the unit can be rebuilt
as it was trained, instead of failing on a size mismatch or loading into the wrong layout.
"""
import itertools
from typing import Callable, Dict, List, Mapping, Tuple

import torch

from .define_plan import LAYOUTS
from .hierarchical_group_transform import NORMS

REDUCE_STEPS = ("norm", "linear", "authors")

# the structural options, each with its choices (and the flag a user passes)
STRUCTURAL: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "reduce": (REDUCE_STEPS, "--define-reduce"),
    "widths": (LAYOUTS, "--define-widths"),
    "level_norm": (NORMS, "--define-level-norm"),
}

Shapes = Dict[str, Tuple[int, ...]]


def saved_shapes(state_dict: Mapping[str, torch.Tensor], prefix: str) -> Shapes:
    """``{name without prefix: shape}`` of the tensors under ``prefix`` (the unit's own entries)."""
    return {k[len(prefix):]: tuple(v.shape) for k, v in state_dict.items()
            if k.startswith(prefix) and torch.is_tensor(v)}


def module_shapes(module: torch.nn.Module) -> Shapes:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def matching_options(build: Callable[..., torch.nn.Module], options: dict, saved: Shapes) -> List[dict]:
    """Every combination of the structural options (the others as in ``options``) whose module,
    built by ``build(**options)`` on the meta device (no memory, no init cost), has exactly the
    ``saved`` names and shapes. The configured combination comes first when it matches."""
    found = []
    names = list(STRUCTURAL)
    configured = tuple(options[n] for n in names)
    combos = [configured] + [c for c in itertools.product(*(STRUCTURAL[n][0] for n in names)) if c != configured]
    for combo in combos:
        trial = dict(options, **dict(zip(names, combo)))
        try:
            with torch.device("meta"):
                shapes = module_shapes(build(**trial))
        except ValueError:  # e.g. the authors' widths need more levels: that layout cannot have built it
            continue
        if shapes == saved:
            found.append(trial)
    return found


def describe(options: dict) -> str:
    """``--define-reduce norm --define-widths linear --define-level-norm group``"""
    return " ".join(f"{STRUCTURAL[n][1]} {options[n]}" for n in STRUCTURAL)
