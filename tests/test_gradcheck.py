"""Float64 central differences against the hand-written backward: every parameter tensor, the input
and the initial state(s), for every cell, 1-3 layers, both directions, batch-first or not, with and
without lengths."""
import itertools

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels

from .helpers import CELLS, numeric_grad, sample_indices

MODES = list(itertools.product(sorted(CELLS), [1, 2, 3], [False, True], [False, True], [None, [4, 2, 1]]))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("cell,layers,bidirectional,batch_first,lengths", MODES,
                         ids=lambda v: "len" if isinstance(v, list) else str(v))
def test_finite_differences(backend, cell, layers, bidirectional, batch_first, lengths):
    ours_cls, _, kw = CELLS[cell]
    m = ours_cls(3, 3, layers, batch_first=batch_first, bidirectional=bidirectional, dtype=np.float64, seed=layers,
                 **kw)
    rng = np.random.default_rng(layers + 10 * bidirectional)
    L, N, D = 4, 3, 2 if bidirectional else 1
    x = rng.standard_normal((N, L, 3) if batch_first else (L, N, 3))
    states = [0.5 * rng.standard_normal((layers * D, N, 3)) for _ in range(2 if cell == "lstm" else 1)]
    G = rng.standard_normal((N, L, 3 * D) if batch_first else (L, N, 3 * D))
    Gs = [rng.standard_normal(s.shape) for s in states]

    def state_arg():
        return tuple(states) if cell == "lstm" else states[0]

    def loss():
        y, final = m(x, state_arg(), lengths=lengths)
        finals = final if cell == "lstm" else (final,)
        return float((G * y).sum() + sum((g * f).sum() for g, f in zip(Gs, finals)))

    with kernels.use(backend):
        m.zero_grad()
        m(x, state_arg(), lengths=lengths)
        dx, dstate = m.backward(G, tuple(Gs) if cell == "lstm" else Gs[0])
        dstates = dstate if cell == "lstm" else (dstate,)
        checks = [(name, p, m.grads[name]) for name, p in m.params.items()]
        checks += [("x", x, dx)] + [(f"state{i}", s, d) for i, (s, d) in enumerate(zip(states, dstates))]
        for name, arr, grad in checks:
            for idx in sample_indices(arr.shape, 6, rng):
                num = numeric_grad(loss, arr, idx)
                assert grad[idx] == pytest.approx(num, rel=1e-6, abs=1e-8), (name, idx)
        m.clear_cache()


@pytest.mark.parametrize("gate", ["sigmoid", "hard_sigmoid"])
@pytest.mark.parametrize("layers,bidirectional,lengths", [(1, False, None), (2, True, [4, 2, 1]), (2, False, [4, 1, 3])])
def test_finite_differences_lstm_with_projection(gate, layers, bidirectional, lengths):
    from rnnkit import LSTM

    m = LSTM(3, 5, layers, bidirectional=bidirectional, proj_size=2, gate=gate, dtype=np.float64, seed=layers)
    rng = np.random.default_rng(layers)
    L, N, D = 4, 3, 2 if bidirectional else 1
    x = rng.standard_normal((L, N, 3))
    states = [0.5 * rng.standard_normal((layers * D, N, 2)), 0.5 * rng.standard_normal((layers * D, N, 5))]
    G = rng.standard_normal((L, N, 2 * D))
    Gs = [rng.standard_normal(s.shape) for s in states]

    def loss():
        y, final = m(x, tuple(states), lengths=lengths)
        return float((G * y).sum() + sum((g * f).sum() for g, f in zip(Gs, final)))

    m.zero_grad()
    m(x, tuple(states), lengths=lengths)
    dx, dstates = m.backward(G, tuple(Gs))
    checks = [(name, p, m.grads[name]) for name, p in m.params.items()]
    checks += [("x", x, dx)] + [(f"state{i}", s, d) for i, (s, d) in enumerate(zip(states, dstates))]
    assert any(name.startswith("weight_hr") for name, _, _ in checks)
    for name, arr, grad in checks:
        for idx in sample_indices(arr.shape, 6, rng):
            num = numeric_grad(loss, arr, idx)
            assert grad[idx] == pytest.approx(num, rel=1e-6, abs=1e-8), (name, idx)
    m.clear_cache()


def test_padded_steps_contribute_nothing():
    """Changing x past a sequence's length changes no output, state or gradient."""
    for cell, (cls, _, kw) in CELLS.items():
        m = cls(3, 4, 2, bidirectional=True, dtype=np.float64, seed=0, **kw)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((5, 3, 3))
        lengths = [5, 2, 3]
        G = rng.standard_normal((5, 3, 8))
        y1, s1 = m(x, lengths=lengths)
        dx1 = m.backward(G)
        g1 = {k: v.copy() for k, v in m.grads.items()}
        x2 = x.copy()
        x2[2:, 1] = 100.0
        x2[3:, 2] = -7.0
        m.zero_grad()
        y2, s2 = m(x2, lengths=lengths)
        dx2 = m.backward(G)
        np.testing.assert_array_equal(y1, y2)
        assert (y1[2:, 1] == 0).all() and (y1[3:, 2] == 0).all(), cell
        for a, b in zip(s1 if cell == "lstm" else (s1,), s2 if cell == "lstm" else (s2,)):
            np.testing.assert_array_equal(a, b)
        assert (dx1[2:, 1] == 0).all() and (dx1[3:, 2] == 0).all()
        np.testing.assert_allclose(dx1, dx2, rtol=1e-12)
        for k in g1:
            np.testing.assert_allclose(g1[k], m.grads[k], rtol=1e-12, err_msg=k)


@pytest.mark.parametrize("gate", ["sigmoid", "hard_sigmoid"])
@pytest.mark.parametrize("layers,bidirectional,lengths,with_state",
                         [(1, False, None, False), (2, True, [4, 2, 1], True), (1, True, None, True),
                          (2, False, [3, 4, 2], False)])
def test_gru_reset_before_finite_differences(gate, layers, bidirectional, lengths, with_state):
    """GRU(reset_after=False): every parameter, the input and the initial state."""
    m = rnnkit.GRU(3, 3, layers, bidirectional=bidirectional, dtype=np.float64, seed=layers, gate=gate,
                   reset_after=False)
    assert m.ops.name.startswith("gru_reset_before") and "reset_after=False" in repr(m)
    rng = np.random.default_rng(7 + layers)
    L, N, D = 4, 3, 2 if bidirectional else 1
    x = rng.standard_normal((L, N, 3))
    h0 = 0.5 * rng.standard_normal((layers * D, N, 3))
    G, Gh = rng.standard_normal((L, N, 3 * D)), rng.standard_normal((layers * D, N, 3))

    def loss():
        y, h = m(x, h0 if with_state else None, lengths=lengths)
        return float((G * y).sum() + (Gh * h).sum())

    m(x, h0 if with_state else None, lengths=lengths)
    out = m.backward(G, Gh)
    dx, dh0 = out if with_state else (out, None)
    checks = [(name, p, m.grads[name]) for name, p in m.params.items()] + [("x", x, dx)]
    if with_state:
        checks.append(("h0", h0, dh0))
    for name, arr, grad in checks:
        for idx in sample_indices(arr.shape, 6, rng):
            assert grad[idx] == pytest.approx(numeric_grad(loss, arr, idx), rel=1e-6, abs=1e-8), (name, idx)
    m.clear_cache()


def test_gru_reset_before_against_torch_autograd():
    """The same equations written with torch operations (float64): outputs and every gradient; and
    the layer equals a loop over GRUCell(reset_after=False) with the same weights."""
    import torch

    m = rnnkit.GRU(3, 4, dtype=np.float64, seed=3, reset_after=False)
    rng = np.random.default_rng(3)
    x, h0, G = rng.standard_normal((5, 2, 3)), rng.standard_normal((1, 2, 4)), rng.standard_normal((5, 2, 4))
    y, h = m(x, h0)
    dx, dh0 = m.backward(G, np.zeros_like(h0))
    p = {k: torch.tensor(v, requires_grad=True) for k, v in m.params.items()}
    xt, ht = torch.tensor(x, requires_grad=True), torch.tensor(h0[0], requires_grad=True)
    W_ir, W_iz, W_in = p["weight_ih_l0"].chunk(3)
    W_hr, W_hz, W_hn = p["weight_hh_l0"].chunk(3)
    b_ir, b_iz, b_in = p["bias_ih_l0"].chunk(3)
    b_hr, b_hz, b_hn = p["bias_hh_l0"].chunk(3)
    hs, hh = [], ht
    for t in range(5):
        r = torch.sigmoid(xt[t] @ W_ir.T + b_ir + hh @ W_hr.T + b_hr)
        z = torch.sigmoid(xt[t] @ W_iz.T + b_iz + hh @ W_hz.T + b_hz)
        n = torch.tanh(xt[t] @ W_in.T + b_in + (r * hh) @ W_hn.T + b_hn)
        hh = (1 - z) * n + z * hh
        hs.append(hh)
    yt = torch.stack(hs)
    (yt * torch.tensor(G)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0[0], ht.grad.numpy(), rtol=1e-10, atol=1e-12)
    for k in m.params:
        np.testing.assert_allclose(m.grads[k], p[k].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)

    cell = rnnkit.GRUCell(3, 4, dtype=np.float64, reset_after=False)
    assert "reset_after=False" in repr(cell)
    cell.load_state_dict({k[:-3]: v for k, v in m.params.items()})
    hc, caches = h0[0], []
    for t in range(5):
        hc, c = cell.forward_cached(x[t], hc)
        caches.append(c)
        np.testing.assert_allclose(hc, y[t], rtol=1e-13)
    d = np.zeros_like(hc)
    for t in range(4, -1, -1):
        _, d = cell.backward_cached(d + G[t], caches[t])
    for k in cell.params:
        np.testing.assert_allclose(cell.grads[k], m.grads[k + "_l0"], rtol=1e-10, err_msg=k)
    np.testing.assert_allclose(d, dh0[0], rtol=1e-10)
    with pytest.raises(ValueError, match="reset_after: expected True or False"):
        rnnkit.GRU(3, 4, reset_after="no")
