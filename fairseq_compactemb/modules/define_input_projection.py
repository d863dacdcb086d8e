"""The input projection of the authors' DeFINE unit (``--define-input-proj P``).

The DeFINE unit of the authors' DeLighT release (``DExTraUnit``, read for this project) does
not feed the map output ``e`` (``n`` features) to its levels: it first projects it to ``P``
features (``P = d/2`` in their embedding) by a dense block, Linear -> LayerNorm (gain 1) ->
activation -> dropout, Xavier weights and zero bias, and that projection is what every level's
skip link and the output block's concatenation carry. The paper's figure shows the map output
there, which is what ``P = 0`` (our default) builds.
"""
import torch
import torch.nn.functional as F
from torch import nn


def prelu_free(x: torch.Tensor) -> torch.Tensor:
    """The authors' dense blocks have no per-group PReLU slope: a fixed 0.25."""
    return torch.where(x >= 0, x, 0.25 * x)


ACTIVATION_FNS = {"gelu": F.gelu, "relu": F.relu, "prelu": prelu_free}


class InputProjection(nn.Module):
    """``[*, n] -> [*, P]``: Linear, LayerNorm over the ``P`` features, activation, dropout.

    Args:
        in_dim: n.  out_dim: P.  activation: ``gelu``, ``relu`` or ``prelu`` (a fixed 0.25 slope).
        dropout: after the activation (the authors' ``--define-dropout``), 0 for none.
    """

    def __init__(self, in_dim: int, out_dim: int, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.norm = nn.LayerNorm(out_dim)
        self.activation = activation
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        y = ACTIVATION_FNS[self.activation](self.norm(self.linear(e)))
        return y if self.dropout is None else self.dropout(y)

    def extra_repr(self) -> str:
        return f"activation={self.activation}"
