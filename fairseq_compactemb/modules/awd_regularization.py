"""The regularisers of AWD-LSTM (Merity et al. 2018), written for any input embedding.

* :class:`LockedDropout` - variational dropout: one mask per sequence, shared over time.
* :class:`WeightDropLSTM` - one LSTM layer whose hidden-to-hidden matrix gets DropConnect.
* :func:`word_dropout_mask` - "embedding dropout": drop whole word types (all occurrences of a
  word in the batch), the compact-embedding equivalent of dropping rows of the ``V x d`` table.
* :func:`add_penalty_gradient` - activation (AR) and temporal activation (TAR) regularisation
  added to the gradient without changing the reported loss (AWD-LSTM also logs the raw loss).
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


class LockedDropout(nn.Module):
    """``[B, T, D] -> [B, T, D]`` dropout with one ``[B, 1, D]`` mask for all time steps (more
    leading dimensions ``[*, T, D]`` get one mask per ``T`` positions). A ``[M, D]`` input has no
    time axis: one mask per row, i.e. ordinary dropout."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.dim() < 3:
            return F.dropout(x, self.p, training=True)
        mask = x.new_empty(*x.shape[:-2], 1, x.shape[-1]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


class WeightDropLSTM(nn.Module):
    """A single-layer ``nn.LSTM`` (batch first) with DropConnect ``p`` on ``weight_hh``.

    The mask is drawn once per forward (per batch) and applied to the recurrent matrix, so all
    time steps see the same dropped connections; the fused LSTM kernel is kept by running the
    module with the masked weight via ``torch.func.functional_call``.
    """

    def __init__(self, input_size: int, hidden_size: int, p: float):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.p = p

    def forward(self, x, state=None):
        if not self.training or self.p == 0:
            return self.lstm(x, state)
        params = dict(self.lstm.named_parameters())
        params["weight_hh_l0"] = F.dropout(params["weight_hh_l0"], self.p, training=True)
        return functional_call(self.lstm, params, (x, state))


def word_dropout_mask(tokens: torch.Tensor, vocab_size: int, p: float, dtype) -> torch.Tensor:
    """``[B, T] -> [B, T, 1]`` scale: 0 for every occurrence of a dropped word type, else 1/(1-p)."""
    keep = torch.empty(vocab_size, device=tokens.device).bernoulli_(1 - p) / (1 - p)
    return keep[tokens].to(dtype).unsqueeze(-1)


class _PenaltyGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, penalty, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_x):
        return grad_x, grad_x.new_full((), ctx.weight), None


def add_penalty_gradient(x: torch.Tensor, penalty: torch.Tensor, weight: float) -> torch.Tensor:
    """Return ``x`` unchanged; on backward, also backpropagate ``weight * penalty``.

    fairseq criterions return a loss SUMMED over target tokens and the trainer divides the
    gradient by the token count, so passing ``weight = number of target tokens`` adds the
    penalty with coefficient 1 to the per-token mean loss, exactly as AWD-LSTM's
    ``loss = raw_loss + AR + TAR`` - for any criterion, without touching the logged loss.
    (Under fp16 loss scaling the penalty would not be scaled: see awd_lstm_lm.)
    """
    return _PenaltyGradient.apply(x, penalty, weight)
