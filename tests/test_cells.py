"""Cells against torch.nn cells, layers against hand loops over their cell, and the reversal helpers."""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.functional.recurrent import length_mask, reverse_index, reverse_time

CELLS = {
    "rnn": (rnnkit.RNNCell, torch.nn.RNNCell, rnnkit.RNN, {}),
    "rnn_relu": (rnnkit.RNNCell, torch.nn.RNNCell, rnnkit.RNN, {"nonlinearity": "relu"}),
    "lstm": (rnnkit.LSTMCell, torch.nn.LSTMCell, rnnkit.LSTM, {}),
    "gru": (rnnkit.GRUCell, torch.nn.GRUCell, rnnkit.GRU, {}),
}


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("bias", [True, False])
def test_cell_matches_torch(name, bias):
    ours_cls, torch_cls, _, kw = CELLS[name]
    torch.manual_seed(0)
    theirs = torch_cls(3, 4, bias=bias, dtype=torch.float64, **kw)
    ours = ours_cls(3, 4, bias=bias, dtype=np.float64, **kw)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3))
    n = 2 if name == "lstm" else 1
    st = [rng.standard_normal((2, 4)) for _ in range(n)]
    G = [rng.standard_normal((2, 4)) for _ in range(n)]
    xt = torch.tensor(x, requires_grad=True)
    stt = [torch.tensor(s, requires_grad=True) for s in st]
    out_t = theirs(xt, tuple(stt) if n == 2 else stt[0])
    out_t = out_t if n == 2 else (out_t,)
    sum((o * torch.tensor(g)).sum() for o, g in zip(out_t, G)).backward()
    out = ours(x, tuple(st) if n == 2 else st[0])
    out = out if n == 2 else (out,)
    for o, ot in zip(out, out_t):
        np.testing.assert_allclose(o, ot.detach().numpy(), rtol=1e-12)
    dx, dprev = ours.backward(tuple(G) if n == 2 else G[0])
    dprev = dprev if n == 2 else (dprev,)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10)
    for d, s in zip(dprev, stt):
        np.testing.assert_allclose(d, s.grad.numpy(), rtol=1e-10)
    for k, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[k], p.grad.numpy(), rtol=1e-10, err_msg=k)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_layer_equals_hand_loop_over_cell(name):
    """Same weights: the layer's outputs and gradients equal a loop of forward_cached/backward_cached."""
    cell_cls, _, layer_cls, kw = CELLS[name]
    layer = layer_cls(3, 4, dtype=np.float64, seed=0, **kw)
    cell = cell_cls(3, 4, dtype=np.float64, **kw)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})  # weight_ih_l0 -> weight_ih
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 2, 3))
    G = rng.standard_normal((5, 2, 4))
    y, _ = layer(x)
    dx = layer.backward(G)
    lstm = name == "lstm"
    state, caches, ys = None, [], []
    for t in range(5):
        state, c = cell.forward_cached(x[t], state)
        caches.append(c)
        ys.append(state[0] if lstm else state)
    np.testing.assert_allclose(np.stack(ys), y, rtol=1e-12)
    d = (np.zeros((2, 4)), np.zeros((2, 4))) if lstm else np.zeros((2, 4))
    dxs = []
    for t in range(4, -1, -1):
        d = (d[0] + G[t], d[1]) if lstm else d + G[t]
        dxt, d = cell.backward_cached(d, caches[t])
        dxs.append(dxt)
    np.testing.assert_allclose(np.stack(dxs[::-1]), dx, rtol=1e-10)
    for k, g in cell.grads.items():
        np.testing.assert_allclose(g, layer.grads[k + "_l0"], rtol=1e-10, err_msg=k)


def test_reverse_index_keeps_padding_at_the_end():
    lengths = np.array([4, 2, 1])
    rev = reverse_index(lengths, 4)
    x = np.arange(12).reshape(4, 3)[:, :, None]
    r = reverse_time(x, rev)[:, :, 0]
    np.testing.assert_array_equal(r[:, 0], [9, 6, 3, 0])       # full sequence reversed
    np.testing.assert_array_equal(r[:, 1], [4, 1, 7, 10])      # first two reversed, padding stays
    np.testing.assert_array_equal(r[:, 2], [2, 5, 8, 11])      # length 1: unchanged
    np.testing.assert_array_equal(reverse_time(reverse_time(x, rev), rev), x)  # an involution
    np.testing.assert_array_equal(length_mask(lengths, 4)[:, :, 0].sum(0), lengths)


def test_bidirectional_final_state_is_not_last_output():
    m = rnnkit.GRU(2, 3, bidirectional=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 1, 2))
    y, h = m(x, lengths=[3])
    np.testing.assert_allclose(h[0], y[2, :, :3])   # forward direction ends at the sequence's last step
    np.testing.assert_allclose(h[1], y[0, :, 3:])   # reverse direction ends at t = 0
    assert (y[3] == 0).all()
