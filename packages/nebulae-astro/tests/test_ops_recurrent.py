"""Recurrent and attention crafts (issue 6)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nebulae.astro import dock


@pytest.mark.parametrize(
    ("craft", "bidirectional", "scope"),
    [(dock.RNN, False, "RNN"), (dock.BiRNN, True, "BIRNN")],
)
def test_rnn_shapes_gradients_and_torch_agreement(craft, bidirectional, scope):
    torch.manual_seed(0)
    rnn = craft(3, 5, nlayers=2)
    assert rnn.scope == scope
    x = torch.randn(7, 2, 3, requires_grad=True)
    y, h = rnn(x)
    ndir = 2 if bidirectional else 1
    assert y.shape == (7, 2, 5 * ndir) and h.shape == (2 * ndir, 2, 5)
    ref = nn.RNN(3, 5, 2, bidirectional=bidirectional)
    ref.load_state_dict(rnn.rnn.state_dict())
    y_ref, h_ref = ref(x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(h, h_ref)
    (y.sum() + h.sum()).backward()
    for name, p in rnn.named_parameters():
        assert p.grad is not None, name
    y2, _ = rnn(x, h)
    assert not torch.allclose(y2, y)


def test_rnn_hand_computed_single_step():
    rnn = dock.RNN(1, 1)
    with torch.no_grad():
        rnn.rnn.weight_ih_l0.fill_(0.5)
        rnn.rnn.weight_hh_l0.fill_(2.0)
        rnn.rnn.bias_ih_l0.fill_(0.1)
        rnn.rnn.bias_hh_l0.fill_(0.0)
    y, h = rnn(torch.tensor([[[2.0]]]), torch.tensor([[[0.25]]]))
    # tanh(0.5*2 + 0.1 + 2*0.25)
    assert y.item() == pytest.approx(torch.tanh(torch.tensor(1.6)).item())
    assert h.item() == y.item()


@pytest.mark.parametrize(("craft", "bidirectional"), [(dock.LSTM, False), (dock.BiLSTM, True)])
def test_lstm_shapes_gradients_and_torch_agreement(craft, bidirectional):
    lstm = craft(4, 6)
    x = torch.randn(5, 3, 4)
    y, h, c = lstm(x)
    ndir = 2 if bidirectional else 1
    assert y.shape == (5, 3, 6 * ndir) and h.shape == c.shape == (ndir, 3, 6)
    ref = nn.LSTM(4, 6, bidirectional=bidirectional)
    ref.load_state_dict(lstm.rnn.state_dict())
    y_ref, (_, c_ref) = ref(x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(c, c_ref)
    (y.sum() + c.sum()).backward()
    assert all(p.grad is not None for p in lstm.parameters())


def test_lstm_missing_cell_state_starts_at_zero():
    lstm = dock.LSTM(2, 3)
    x = torch.randn(4, 1, 2)
    h0 = torch.randn(1, 1, 3)
    y_h_only, _, _ = lstm(x, h=h0)
    y_both, _, _ = lstm(x, h0, torch.zeros(1, 1, 3))
    torch.testing.assert_close(y_h_only, y_both)


def test_lstm_hand_computed_zero_weights():
    # all weights and biases 0: gates are 0.5, candidate 0, so c = 0.5 * c0 and h = 0.5 * tanh(c)
    lstm = dock.LSTM(1, 1)
    with torch.no_grad():
        for p in lstm.parameters():
            p.zero_()
    _, h, c = lstm(torch.ones(1, 1, 1), torch.zeros(1, 1, 1), torch.full((1, 1, 1), 2.0))
    assert c.item() == pytest.approx(1.0)
    assert h.item() == pytest.approx(0.5 * torch.tanh(torch.tensor(1.0)).item())


def test_recurrent_errors_name_scope_and_shapes():
    with pytest.raises(ValueError, match=r"LSTM: 'x' must be T×N×4 .* \(got \(5, 2, 3\)\)"):
        dock.LSTM(4, 6)(torch.zeros(5, 2, 3))
    with pytest.raises(ValueError, match=r"RNN: 'h' must have shape \(1, 2, 6\)"):
        dock.RNN(4, 6)(torch.zeros(5, 2, 4), torch.zeros(2, 2, 6))
    with pytest.raises(ValueError, match="BIRNN: 'hid_chs' must be an int >= 1"):
        dock.BiRNN(4, 0)


def test_mhattn_agrees_with_torch_and_passes_gradients():
    attn = dock.MHAttn(2, 8, 6, 4, p_drop=0.0)
    assert attn.scope == "MHATTN"
    q, k, v = torch.randn(3, 2, 8), torch.randn(5, 2, 6), torch.randn(5, 2, 4)
    pad = torch.tensor([[False] * 4 + [True], [False] * 5])
    y, a = attn(q, k, v, pad_mask=pad)
    assert y.shape == (3, 2, 8) and a.shape == (2, 3, 5)
    y_ref, _ = attn.attn(q, k, v, key_padding_mask=pad)
    torch.testing.assert_close(y, y_ref)
    assert torch.all(a[0, :, 4] == 0)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 3))
    y.sum().backward()
    assert all(p.grad is not None for p in attn.parameters())


def test_mhattn_hand_computed_uniform_weights_with_equal_keys():
    # identical keys -> uniform attention; the output is the projected mean of the values
    attn = dock.MHAttn(1, 2, 2, 2)
    k = torch.ones(4, 1, 2)
    v = torch.arange(8.0).view(4, 1, 2)
    y, a = attn(torch.randn(1, 1, 2), k, v)
    torch.testing.assert_close(a, torch.full((1, 1, 4), 0.25))
    mean_v = torch.tensor([[3.0, 4.0]])
    attn_mod = attn.attn
    w_v = attn_mod.in_proj_weight[4:]  # q_chs == k_chs == v_chs: torch packs the projections
    b_v = attn_mod.in_proj_bias[4:]
    expected = attn_mod.out_proj(mean_v @ w_v.T + b_v)
    torch.testing.assert_close(y[0], expected)


def test_mhattn_attn_mask_blocks_future_positions():
    attn = dock.MHAttn(2, 4, 4, 4)
    x = torch.randn(3, 1, 4)
    causal = torch.triu(torch.ones(3, 3, dtype=torch.bool), diagonal=1)
    _, a = attn(x, x, x, attn_mask=causal)
    assert torch.all(a[0][causal] == 0)


def test_mhattn_validates_heads_and_channels():
    with pytest.raises(ValueError, match=r"MHATTN: 'q_chs' \(6\) must be a multiple of 'nheads' \(4\)"):
        dock.MHAttn(4, 6, 6, 6)
    attn = dock.MHAttn(2, 4, 4, 4)
    with pytest.raises(ValueError, match="MHATTN: 'k' must have 4 channels"):
        attn(torch.zeros(2, 1, 4), torch.zeros(2, 1, 3), torch.zeros(2, 1, 4))
