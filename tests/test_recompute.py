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
