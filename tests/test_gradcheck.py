"""Float64 central differences against the hand-written backward: every parameter tensor, the input
and the initial state(s), for every cell, 1-3 layers, both directions, batch-first or not, with and
without lengths."""
import itertools

import numpy as np
import pytest

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
