"""The *expand* step of DeFINE: a hierarchical group transformation (HGT) and its ablations.

DeFINE (Mehta et al., ICLR 2020, "DeFINE: Deep Factorized Input Token Embeddings for Neural
Sequence Modeling", Section 3) follows a Map-Expand-Reduce principle: a token is *mapped* to a
small vector ``e`` of size ``n`` (a ``V x n`` table), *expanded* to size ``k`` by a deep,
cheap transformation, and *reduced* to the model dimension ``d`` by a linear layer. This file
holds the expand step, ``[*, n] -> [*, k]``, in the five forms of the paper's WikiText-103
ablation (Linear, Group, HGT, DeFINE without mixer, DeFINE). The map and reduce steps are in
``define_embedding.py``.

Level plan (shared by every variant)
------------------------------------
There are ``N`` levels (``--define-levels``). Level ``l = 0 .. N-1`` outputs ``w_l`` features,
spaced linearly from ``n`` to ``k`` (the paper lets the dimensions grow linearly towards ``k``)::

    w_l = n + floor((k - n) * (l + 1) / N),   so  w_{N-1} = k,

so level 0 already widens (``n -> w_0``) and ``N = 1`` is a single ``n -> k`` layer.
Each level is a *group linear transform* with ``g_l`` groups: its input is cut into ``g_l``
equal contiguous chunks, chunk ``j`` goes through its own ``(in/g_l) x (w_l/g_l)`` weight and
the ``g_l`` outputs are concatenated (a block-diagonal dense matrix, computed here as one
``torch.bmm`` over a ``[g, in/g, out/g]`` weight). Each group's output then goes through its
own LayerNorm (affine, ``w_l/g_l`` features) and activation (``--define-activation``: gelu,
relu or prelu; prelu has one learned slope per group, 0.25 at start as in ``nn.PReLU``).

**Rounding (our choice; the paper gives no rule).** ``w_l`` must be a multiple of ``g_l``.
Intermediate widths (``l < N-1``) are rounded *up* to the next multiple of ``g_l``; because
the group counts are powers of two that halve, this also makes ``w_l`` a multiple of every
later level's groups, which the mixer needs. The last width is ``k`` itself and is never
rounded: ``k`` not divisible by the last level's groups is a configuration error naming
``--define-expand-dim``. Example: ``n=8, k=64, N=3, g_max=4`` -> groups ``4, 2, 1``, raw
widths ``26, 45, 64`` -> ``28, 46, 64``. ``k < n`` is allowed (the widths then shrink).

Variants (``--define-transform``)
---------------------------------
``linear``  (paper: "Linear", Fig. 2a): ``N`` dense layers ``n -> w_0 -> ... -> k``
    (``g_l = 1``), each with LayerNorm + activation. No skip connection.
``group``   (paper: "Group"/GLT, Fig. 2b): ``N`` group linear layers, all with ``g_max``
    groups. No skip connection, so group ``j`` of every level only ever sees chunk ``j`` of
    ``e`` (the weakness the paper's HGT fixes).
``hgt``     (paper: "HGT", Section "Hierarchical group transformation", Fig. 2c): level ``l``
    has ``g_l = max(g_max / 2^l, 1)`` groups (``g_max`` at the first level, halved at each
    level down to 1), so later levels mix what earlier groups kept apart. No skip connection.
``define_no_mixer`` (paper: "DeFINE without mixer"): HGT plus the skip connection to the map
    layer, levels ``l >= 1`` take ``concat(e, y_{l-1})`` (``n + w_{l-1}`` features) and cut
    this *whole* vector into ``g_l`` contiguous chunks. **Our reading**: the paper removes only
    the split/mix step, so the skip is the plain concatenation; as a consequence the first
    groups of a level see (mostly) ``e`` and the last ones only ``y_{l-1}``.
``define``  (paper: "DeFINE", Section "DeFINE unit", Fig. 3): HGT plus the skip connection
    through the split and mixer layers: for ``l >= 1``, ``e`` and ``y_{l-1}`` are each split
    into ``g_l`` chunks and group ``j`` of level ``l`` gets ``concat(e_j, y_{l-1, j})`` (chunk
    ``j`` of the map output first), so every group sees part of the token embedding and part
    of the previous level. See :func:`mix`. With ``g_l = 1`` this is the same as the plain
    concatenation of ``define_no_mixer``; the two variants differ only where ``g_l > 1``.

Level 0 always takes ``e`` alone. The group variants need ``n`` divisible by ``g_max`` (the
first level cuts ``e`` into ``g_max`` chunks; the mixer then cuts it into ``g_l | g_max``),
otherwise a configuration error names ``--define-map-dim``. ``g_max`` must be a power of two
(``--define-max-groups``) so that halving stays exact; ``linear`` ignores it.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .errors import CompactConfigError

from .define_plan import ACTIVATIONS, LAYOUTS, VARIANTS, LevelSpec, plan_levels  # noqa: F401 (re-exported)


class GroupLinear(nn.Module):
    """``[*, in_dim] -> [*, out_dim]``: chunk ``j`` of the input (``in_dim/g`` contiguous
    features) times its own ``weight[j]`` (``[in_dim/g, out_dim/g]``) plus ``bias[j]`` gives
    chunk ``j`` of the output. Equivalent to a dense layer with a block-diagonal matrix, at
    ``1/g`` of its parameters and multiply-adds; ``groups=1`` is an ordinary linear layer.
    """

    def __init__(self, in_dim: int, out_dim: int, groups: int):
        super().__init__()
        if in_dim % groups or out_dim % groups:  # internal: plan_levels guarantees this
            raise ValueError(f"in_dim={in_dim} and out_dim={out_dim} must be divisible by groups={groups}")
        self.in_dim, self.out_dim, self.groups = in_dim, out_dim, groups
        self.weight = nn.Parameter(torch.empty(groups, in_dim // groups, out_dim // groups))
        self.bias = nn.Parameter(torch.empty(groups, out_dim // groups))
        # nn.Linear's default init, with the fan-in of one group
        bound = (in_dim // groups) ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward_grouped(self, x: torch.Tensor) -> torch.Tensor:
        """``[*, in_dim] -> [*, g, out_dim/g]`` (the per-group view the LayerNorm needs)."""
        lead = x.shape[:-1]
        # [M, g, in/g] -> [g, M, in/g]: one batched matmul over the groups, no python loop
        xg = x.reshape(-1, self.groups, self.in_dim // self.groups).transpose(0, 1)
        y = torch.bmm(xg, self.weight).transpose(0, 1) + self.bias
        return y.reshape(*lead, self.groups, self.out_dim // self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_grouped(x).flatten(-2)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, groups={self.groups}"


NORMS = ("group", "shared")
INITS = ("uniform", "xavier")


class GroupTransformLayer(nn.Module):
    """One level: :class:`GroupLinear`, then per group a LayerNorm and the activation, then
    dropout (``dropout``, 0 by default).

    ``[*, in_dim] -> [*, out_dim]``. Group ``j`` is normalised over its own ``out_dim/g``
    features. ``norm="group"`` (ours): each group has its own scale/shift (``norm_weight[j]``,
    ``norm_bias[j]``); ``norm="shared"`` (the authors' code): one scale/shift of ``out_dim/g``
    features shared by all groups. With ``groups=1`` both are exactly ``nn.LayerNorm(out_dim)``.
    ``init="uniform"``: PyTorch's Linear default (uniform, fan-in of one group) on weights and
    biases; ``"xavier"`` (the authors'): Xavier-uniform weights (torch's rule on the
    ``[g, in/g, out/g]`` tensor for ``g > 1``, on the ``[in, out]`` matrix for ``g = 1``), zero biases.
    """

    def __init__(self, in_dim: int, out_dim: int, groups: int, activation: str = "gelu",
                 norm: str = "group", init: str = "uniform", dropout: float = 0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise CompactConfigError("--define-activation", f"unknown activation {activation!r}",
                                     f"choose one of {', '.join(ACTIVATIONS)}")
        if norm not in NORMS:
            raise CompactConfigError("--define-level-norm", f"unknown choice {norm!r}", f"choose one of {', '.join(NORMS)}")
        if init not in INITS:
            raise CompactConfigError("--define-init", f"unknown choice {init!r}", f"choose one of {', '.join(INITS)}")
        self.linear = GroupLinear(in_dim, out_dim, groups)
        if init == "xavier":
            nn.init.xavier_uniform_(self.linear.weight if groups > 1 else self.linear.weight[0])
            nn.init.zeros_(self.linear.bias)
        rows = groups if norm == "group" else 1
        self.norm_weight = nn.Parameter(torch.ones(rows, out_dim // groups))
        self.norm_bias = nn.Parameter(torch.zeros(rows, out_dim // groups))
        self.activation, self.norm = activation, norm
        # prelu: one slope per group (each group has "its own" activation)
        self.prelu_weight = nn.Parameter(torch.full((groups, 1), 0.25)) if activation == "prelu" else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear.forward_grouped(x)  # [*, g, out/g]
        y = F.layer_norm(y, y.shape[-1:]) * self.norm_weight + self.norm_bias
        if self.activation == "gelu":
            y = F.gelu(y)
        elif self.activation == "relu":
            y = F.relu(y)
        else:
            y = torch.where(y >= 0, y, self.prelu_weight * y)
        y = y.flatten(-2)
        return y if self.dropout is None else self.dropout(y)

    def extra_repr(self) -> str:
        return f"activation={self.activation}, norm={self.norm}"


def mix(e: torch.Tensor, y: torch.Tensor, groups: int) -> torch.Tensor:
    """DeFINE's split + mixer layers: ``e [*, n]``, ``y [*, w]`` -> ``[*, n + w]`` whose chunk
    ``j`` (of ``g`` equal chunks) is ``concat(e_j, y_j)``, the ``j``-th chunks of ``e`` and ``y``.

    E.g. ``n=4, w=6, g=2``: ``[e0 e1 y0 y1 y2 | e2 e3 y3 y4 y5]``.
    """
    lead = e.shape[:-1]
    parts = (e.reshape(*lead, groups, -1), y.reshape(*lead, groups, -1))
    return torch.cat(parts, dim=-1).flatten(-2)


class HierarchicalGroupTransform(nn.Module):
    """DeFINE's expand step ``e [*, n] -> [*, k]`` in one of the ablation variants.

    Args:
        map_dim: n, size of the map-layer vectors.
        expand_dim: k, output size.
        levels: N >= 1.
        max_groups: g_max, groups of the first level (a power of two).
        variant: ``linear``, ``group``, ``hgt``, ``define_no_mixer`` or ``define``.
        activation: ``gelu``, ``relu`` or ``prelu``.
        layout: ``linear`` (ours) or ``authors`` widths and groups (:mod:`.define_plan`);
            ``authors`` needs ``out_dim`` (d: its last level outputs d instead of k).
        norm, init, dropout: of every level (:class:`GroupTransformLayer`).

    ``self.plan`` lists the :class:`LevelSpec` of every level; ``self.levels[l]`` is level ``l``.
    """

    def __init__(self, map_dim: int, expand_dim: int, levels: int = 3, max_groups: int = 4,
                 variant: str = "define", activation: str = "gelu", layout: str = "linear",
                 out_dim: Optional[int] = None, norm: str = "group", init: str = "uniform", dropout: float = 0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise CompactConfigError("--define-activation", f"unknown activation {activation!r}",
                                     f"choose one of {', '.join(ACTIVATIONS)}")
        self.map_dim, self.expand_dim, self.variant = map_dim, expand_dim, variant
        self.plan = plan_levels(map_dim, expand_dim, levels, max_groups, variant, layout, out_dim)
        self.levels = nn.ModuleList(
            GroupTransformLayer(s.in_dim, s.out_dim, s.groups, activation, norm, init, dropout) for s in self.plan
        )

    @property
    def widths(self) -> Tuple[int, ...]:
        return tuple(s.out_dim for s in self.plan)

    @property
    def groups(self) -> Tuple[int, ...]:
        return tuple(s.groups for s in self.plan)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        y = e
        for spec, level in zip(self.plan, self.levels):
            if spec.skip == "concat":
                y = torch.cat([e, y], dim=-1)
            elif spec.skip == "mix":
                y = mix(e, y, spec.groups)
            y = level(y)
        return y

    def extra_repr(self) -> str:
        return (f"variant={self.variant}, n={self.map_dim}, k={self.expand_dim}, "
                f"widths={list(self.widths)}, groups={list(self.groups)}")
