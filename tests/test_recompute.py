"""Gradient checkpointing through time: segmented forward / backward give the unsegmented pass's
outputs, final states and gradients, on both time loops, with lengths and reversal."""
import numpy as np
import pytest

from rnnkit import kernels
from rnnkit.functional.recompute import segmented_layer_backward, segmented_layer_forward
from rnnkit.functional.recurrent import CELLS, layer_backward, layer_forward, length_mask, reverse_index
from rnnkit.nn.recurrent import time_loop


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("k", [1, 5, 23, 40])
def test_segments_give_the_unsegmented_pass(backend, mode, reverse, k):
    rng = np.random.default_rng(k)
    ops = CELLS[mode]
    G, H, D, L, N = ops.n_gates, 5, 3, 23, 4
    W_ih, W_hh = rng.standard_normal((G * H, D)), 0.5 * rng.standard_normal((G * H, H))
    b_ih, b_hh = rng.standard_normal(G * H), rng.standard_normal(G * H)
    x = rng.standard_normal((L, N, D))
    lengths = np.array([23, 5, 17, 1])
    mask, rev = length_mask(lengths, L), reverse_index(lengths, L)
    s0 = tuple(rng.standard_normal((N, H)) for _ in range(ops.n_states))
    dy = rng.standard_normal((L, N, H))
    ds = tuple(rng.standard_normal((N, H)) for _ in range(ops.n_states))
    with kernels.use(backend):
        loop = time_loop(ops)
        y, st, c = layer_forward(ops, x, s0, W_ih, W_hh, b_ih, b_hh, mask=mask, reverse=reverse, rev=rev, loop=loop)
        y, st = y.copy(), tuple(a.copy() for a in st)
        dx, d0, g = layer_backward(ops, dy, ds, c, W_ih, W_hh, reverse=reverse)
        dx, d0, g = dx.copy(), tuple(a.copy() for a in d0), {n: v.copy() for n, v in g.items()}
        y2, st2, c2 = segmented_layer_forward(ops, x, s0, W_ih, W_hh, b_ih, b_hh, mask=mask, reverse=reverse,
                                              rev=rev, loop=loop, k=k)
        assert len(c2.starts) == -(-L // k)
        dx2, d02, g2 = segmented_layer_backward(ops, dy, ds, c2, W_ih, W_hh, reverse=reverse, loop=loop)
    close = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y2, y, **close)
    np.testing.assert_allclose(dx2, dx, **close)
    for a, b in zip(st2 + d02, st + d0):
        np.testing.assert_allclose(a, b, **close)
    for name in g:
        np.testing.assert_allclose(g2[name], g[name], **close, err_msg=name)


@pytest.mark.parametrize("cls,kw", [("LSTM", {"num_layers": 2, "bidirectional": True}), ("GRU", {"batch_first": True}),
                                    ("RNN", {"num_layers": 2, "input_dropout": 0.3, "weight_dropout": 0.2})])
@pytest.mark.parametrize("recompute", [3, "sqrt"])
def test_the_module_option_gives_the_same_outputs_and_gradients(cls, kw, recompute):
    import rnnkit

    a = getattr(rnnkit, cls)(3, 4, dtype=np.float64, seed=2, **kw)
    b = getattr(rnnkit, cls)(3, 4, dtype=np.float64, seed=2, recompute=recompute, **kw)
    assert f"recompute={recompute!r}" in repr(b)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 11, 3) if kw.get("batch_first") else (11, 5, 3))
    lengths = [11, 3, 7, 1, 10]
    outs = []
    for m in (a, b):
        m.rng = np.random.default_rng(9)                   # the same dropout masks for both
        m.zero_grad()
        y, _ = m(x, lengths=lengths)
        dx = m.backward(np.cos(y))
        outs.append((y, dx, {k: v.copy() for k, v in m.grads.items()}))
    (ya, dxa, ga), (yb, dxb, gb) = outs
    np.testing.assert_allclose(yb, ya, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dxb, dxa, rtol=1e-12, atol=1e-12)
    for k in ga:
        np.testing.assert_allclose(gb[k], ga[k], rtol=1e-11, atol=1e-12, err_msg=k)


def test_bad_recompute_values():
    import rnnkit

    with pytest.raises(ValueError, match="expected 0 \\(off\\), a segment length >= 1 or 'sqrt', got -1"):
        rnnkit.LSTM(3, 4, recompute=-1)
    with pytest.raises(ValueError, match="not with proj_size, recurrent_dropout or zoneout"):
        rnnkit.LSTM(3, 4, recompute=4, zoneout=0.1)
