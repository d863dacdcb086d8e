"""AWD-LSTM regularisers: exact semantics of each piece."""
import torch
from torch import nn

from fairseq_compactemb.modules.awd_regularization import (
    LockedDropout,
    WeightDropLSTM,
    add_penalty_gradient,
    word_dropout_mask,
)


def test_penalty_gradient_equals_gradient_of_loss_plus_weighted_penalty():
    torch.manual_seed(0)
    lin = nn.Linear(5, 3)
    x = torch.randn(4, 5)

    def run(inject):
        lin.zero_grad()
        h = lin(x)
        penalty = 2.0 * h.pow(2).mean() + (h[1:] - h[:-1]).pow(2).mean()
        out = add_penalty_gradient(h, penalty, 7.0) if inject else h
        loss = out.sin().sum() + (0 if inject else 7.0 * penalty)
        loss.backward()
        return out.detach(), [p.grad.clone() for p in lin.parameters()]

    out_a, grads_a = run(True)
    out_b, grads_b = run(False)
    assert torch.equal(out_a, out_b)  # forward value untouched
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b)


def test_locked_dropout_uses_one_mask_over_time():
    torch.manual_seed(0)
    drop = LockedDropout(0.5).train()
    y = drop(torch.ones(3, 7, 11))
    assert torch.equal(y, y[:, :1].expand_as(y))
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(drop.eval()(torch.ones(3, 7, 11)), torch.ones(3, 7, 11))


def test_weight_drop_lstm_drops_only_recurrent_connections():
    torch.manual_seed(0)
    layer = WeightDropLSTM(4, 6, p=1.0)
    x = torch.randn(2, 5, 4)
    ref = nn.LSTM(4, 6, batch_first=True)
    ref.load_state_dict(layer.lstm.state_dict())
    torch.testing.assert_close(layer.eval()(x)[0], ref(x)[0])  # eval: a plain LSTM
    with torch.no_grad():
        ref.weight_hh_l0.zero_()  # p = 1 drops every recurrent weight, nothing else
    torch.testing.assert_close(layer.train()(x)[0], ref(x)[0])
    layer(x)[0].sum().backward()
    assert layer.lstm.weight_hh_l0.grad is not None and layer.lstm.weight_ih_l0.grad.abs().sum() > 0


def test_word_dropout_drops_all_occurrences_of_a_word_together():
    torch.manual_seed(0)
    tokens = torch.randint(0, 6, (8, 20))
    mask = word_dropout_mask(tokens, 6, 0.5, torch.float32).squeeze(-1)
    for w in range(6):
        values = mask[tokens == w].unique()
        assert values.numel() <= 1 and values.item() in (0.0, 2.0) if values.numel() else True
