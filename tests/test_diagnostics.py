"""Diagnostics against independent computations: PyTorch autograd through a hand-written cell loop,
finite differences on the hidden states, and matrices with a known spectrum. Also the hard-sigmoid
gate variant (finite differences and PyTorch) and gates returned by cells."""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import diagnostics, kernels
from rnnkit.models import SequenceModel

from .helpers import numeric_grad, sample_indices

F = torch.nn.functional


def torch_gates(cell, x_t, h, W_ih, W_hh, b_ih, b_hh, gate=torch.sigmoid):
    """PyTorch's step formulas written out; returns (h', c' or None, {gate: activation})."""
    xi = x_t @ W_ih.T + b_ih
    hh = h[0] @ W_hh.T + b_hh
    H = h[0].shape[1]
    if cell == "lstm":
        a = xi + hh
        i, f, g, o = gate(a[:, :H]), gate(a[:, H:2 * H]), torch.tanh(a[:, 2 * H:3 * H]), gate(a[:, 3 * H:])
        c = f * h[1] + i * g
        return (o * torch.tanh(c), c), {"i": i, "f": f, "g": g, "o": o}
    if cell == "gru":
        r = gate(xi[:, :H] + hh[:, :H])
        z = gate(xi[:, H:2 * H] + hh[:, H:2 * H])
        n = torch.tanh(xi[:, 2 * H:] + r * hh[:, 2 * H:])
        return ((1 - z) * n + z * h[0],), {"r": r, "z": z, "n": n}
    return (torch.tanh(xi + hh),), {}


def torch_loop(cell, m, x, lengths=None, gate=torch.sigmoid):
    """Run a 1-layer model's recurrence in PyTorch, keeping every step's hidden output as a leaf of
    the graph (retain_grad), with packed-sequence semantics for ``lengths``."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in m.rnn.params.items()}
    L, N, _ = x.shape
    H = m.rnn.hidden_size
    state = (torch.zeros(N, H, dtype=torch.float64),) * (2 if cell == "lstm" else 1)
    hs, gates = [], []
    for t in range(L):
        new, g = torch_gates(cell, torch.tensor(x[t]), state, p["weight_ih_l0"], p["weight_hh_l0"],
                             p["bias_ih_l0"], p["bias_hh_l0"], gate)
        if lengths is not None:
            keep = torch.tensor(t < np.asarray(lengths))[:, None]
            new = tuple(torch.where(keep, a, b) for a, b in zip(new, state))
        new[0].retain_grad()
        hs.append(new[0])
        gates.append(g)
        state = new
    return hs, gates


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("lengths", [None, [7, 3, 5]])
def test_gradient_flow_matches_autograd_on_every_hidden_state(cell, lengths):
    m = SequenceModel(2, 5, 1, "regression", cell=cell, dtype=np.float64, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 3, 2)), rng.standard_normal((3, 1))
    flow = diagnostics.gradient_flow(m, (x, y, lengths), reduce=None)
    assert list(flow) == ["rnn.l0"] and flow["rnn.l0"].shape == (7, 3)

    hs, _ = torch_loop(cell, m, x, lengths)
    last = torch.stack([hs[(l - 1) if lengths else 6][j] for j, l in enumerate(lengths or [7] * 3)])
    out = last @ torch.tensor(m.head.params["weight"]).T + torch.tensor(m.head.params["bias"])
    torch.mean((out - torch.tensor(y)) ** 2).backward()
    want = np.stack([h.grad.norm(dim=1).numpy() for h in hs])
    np.testing.assert_allclose(flow["rnn.l0"], want, rtol=1e-10, atol=1e-14)
    mean = diagnostics.gradient_flow(m, (x, y, lengths))["rnn.l0"]
    np.testing.assert_allclose(mean, want.mean(axis=1), rtol=1e-10)


def test_gradient_flow_against_finite_differences_on_hidden_states():
    """Perturb h_t of a 2-layer bidirectional GRU by adding eps * e_k to step t's output of a layer
    (through a hand-run loop of cells) and difference the loss."""
    m = SequenceModel(2, 3, 1, "regression", cell="gru", dtype=np.float64, seed=2)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((5, 2, 2)), rng.standard_normal((2, 1))
    flow = diagnostics.gradient_flow(m, (x, y, None), reduce=None)["rnn.l0"]   # (5, 2)
    cell = rnnkit.GRUCell(2, 3, dtype=np.float64)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in m.rnn.params.items()})

    def loss(t_pert, j, k, eps):
        h = np.zeros((2, 3))
        for t in range(5):
            h = cell(x[t], h)
            if t == t_pert:
                h = h.copy()
                h[j, k] += eps
        cell.clear_cache()
        out = m.head(h)
        m.clear_cache()
        return float(np.mean((out - y) ** 2))

    for t in range(5):
        for j in range(2):
            g = np.array([(loss(t, j, k, 1e-6) - loss(t, j, k, -1e-6)) / 2e-6 for k in range(3)])
            assert np.linalg.norm(g) == pytest.approx(flow[t, j], rel=1e-6, abs=1e-10)


def test_gradient_flow_keys_for_stacked_bidirectional_and_leaves_grads_alone():
    m = SequenceModel(2, 4, 3, "classification", cell="lstm", num_layers=2, dtype=np.float64, seed=0)
    m.rnn = rnnkit.LSTM(2, 4, 2, bidirectional=True, dtype=np.float64, seed=0)
    m.head = rnnkit.Linear(8, 3, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4, 2)), np.array([0, 1, 2, 1])
    before = {k: g.copy() for k, _, g in m.named_parameters()}
    flow = diagnostics.gradient_flow(m, (x, y, None))
    assert sorted(flow) == ["rnn.l0", "rnn.l0_reverse", "rnn.l1", "rnn.l1_reverse"]
    for k, _, g in m.named_parameters():
        np.testing.assert_array_equal(g, before[k])
    # the forward direction of the top layer only feeds the last step: its gradient is largest there
    assert flow["rnn.l1"][-1] > 0 and np.all(np.isfinite(flow["rnn.l1_reverse"]))
    with pytest.raises(ValueError, match="RNN/LSTM/GRU layers"):
        diagnostics.gradient_flow(rnnkit.Linear(2, 2), (x, y, None))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_jacobian_norms_match_autograd(cell):
    m = SequenceModel(3, 4, 1, "regression", cell=cell, dtype=np.float64, seed=5)
    x = np.random.default_rng(1).standard_normal((6, 2, 3))
    norms = diagnostics.jacobian_norms(m.rnn, x, sample=1)
    assert norms.shape == (6,) and norms[-1] == pytest.approx(1.0)
    p = {k: torch.tensor(v) for k, v in m.rnn.params.items()}
    xs = torch.tensor(x[:, 1:2])
    states = [(torch.zeros(1, 4, dtype=torch.float64),) * (2 if cell == "lstm" else 1)]
    for t in range(6):
        states.append(torch_gates(cell, xs[t], states[-1], p["weight_ih_l0"], p["weight_hh_l0"],
                                  p["bias_ih_l0"], p["bias_hh_l0"])[0])
    for t in range(6):
        rest = states[t + 1][1:]

        def run(h, t=t, rest=rest):
            s = (h,) + rest
            for u in range(t + 1, 6):
                s = torch_gates(cell, xs[u], s, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"],
                                p["bias_hh_l0"])[0]
            return s[0]

        J = torch.autograd.functional.jacobian(run, states[t + 1][0])[0, :, 0, :].numpy()
        assert norms[t] == pytest.approx(np.linalg.norm(J, 2), rel=1e-9)


def test_jacobian_norms_bad_arguments():
    m = rnnkit.GRU(2, 3, dtype=np.float64)
    x = np.zeros((4, 2, 2))
    with pytest.raises(ValueError, match="layer/direction out of range"):
        diagnostics.jacobian_norms(m, x, layer=1)
    with pytest.raises(ValueError, match="sample < N"):
        diagnostics.jacobian_norms(m, x, sample=2)
    with pytest.raises(TypeError, match="expected an RNN/LSTM/GRU layer"):
        diagnostics.jacobian_norms(rnnkit.Linear(2, 2), x)


def test_recurrent_spectrum_of_a_scaled_orthogonal_matrix():
    m = rnnkit.LSTM(3, 5, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    blocks = []
    for gain in (0.5, 1.0, 2.0, 3.0):
        q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
        blocks.append(gain * q)
    m.params["weight_hh_l0"][...] = np.concatenate(blocks)
    rows = diagnostics.recurrent_spectrum(m)
    assert [r["gate"] for r in rows] == ["i", "f", "g", "o"]
    for r, gain in zip(rows, (0.5, 1.0, 2.0, 3.0)):
        assert r["spectral_radius"] == pytest.approx(gain) and r["max_singular"] == pytest.approx(gain)
    rnn = rnnkit.RNN(2, 4, 2, bidirectional=True)
    assert len(diagnostics.recurrent_spectrum(rnn)) == 4


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_gate_statistics_match_gates_computed_in_torch(cell, backend):
    m = SequenceModel(2, 6, 1, "regression", cell=cell, dtype=np.float64, seed=3)
    m.rnn.params["weight_ih_l0"] *= 8      # push some gates into saturation
    x = np.random.default_rng(2).standard_normal((9, 4, 2))
    lengths = [9, 4, 6, 1]
    with kernels.use(backend):
        rows = diagnostics.gate_statistics(m, x, lengths=lengths)
    _, gates = torch_loop(cell, m, x, lengths)
    names = ("i", "f", "g", "o") if cell == "lstm" else ("r", "z", "n")
    assert [r["gate"] for r in rows] == list(names)
    valid = np.arange(9)[:, None] < np.array(lengths)[None, :]
    for r in rows:
        a = np.concatenate([gates[t][r["gate"]].detach().numpy()[valid[t]].ravel() for t in range(9)])
        sat = np.abs(a) > 0.95 if r["gate"] in "gn" else (a < 0.05) | (a > 0.95)
        assert r["mean"] == pytest.approx(a.mean(), rel=1e-10)
        assert r["saturated"] == pytest.approx(sat.mean())
    assert any(r["saturated"] > 0.1 for r in rows)
    with pytest.raises(ValueError, match="no gates"):
        diagnostics.gate_statistics(rnnkit.RNN(2, 3), x)


def test_check_gradients_reports_nonfinite_and_large_norms():
    m = SequenceModel(2, 4, 1, "regression", cell="rnn", dtype=np.float64, seed=0)
    m.zero_grad()
    m.rnn.grads["weight_hh_l0"][0, 0] = 3.0
    rep = diagnostics.check_gradients(m, threshold=10)
    assert rep.ok and rep.norm == pytest.approx(3.0) and "fine" in str(rep)
    m.rnn.grads["weight_hh_l0"][0, 1] = 40.0
    rep = diagnostics.check_gradients(m, threshold=10)
    assert rep.exploding and "global norm" in str(rep) and "rnn.weight_hh_l0" in str(rep)
    m.head.grads["bias"][0] = np.nan
    rep = diagnostics.check_gradients(m)
    assert rep.exploding and rep.nonfinite == ["head.bias"] and "NaN/inf in head.bias" in str(rep)
    with pytest.raises(ValueError, match="threshold"):
        diagnostics.check_gradients(m, threshold=0)


@pytest.mark.parametrize("cell", ["LSTMCell", "GRUCell"])
def test_cells_return_gates_on_request(cell):
    c = getattr(rnnkit, cell)(3, 4, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3))
    fam = "lstm" if cell == "LSTMCell" else "gru"
    state = (np.zeros((2, 4)),) * 2 if fam == "lstm" else np.zeros((2, 4))
    new, gates = c(x, state, return_gates=True)
    p = {k: torch.tensor(v) for k, v in c.params.items()}
    st = tuple(torch.tensor(s) for s in state) if fam == "lstm" else (torch.tensor(state),)
    want_new, want = torch_gates(fam, torch.tensor(x), st, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    assert list(gates) == list(want)
    for k in want:
        np.testing.assert_allclose(gates[k], want[k].numpy(), rtol=1e-12)
    np.testing.assert_allclose(new[0] if fam == "lstm" else new, want_new[0].numpy(), rtol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_hard_sigmoid_gates_against_torch_and_finite_differences(cell, backend):
    m = SequenceModel(2, 4, 1, "regression", cell=cell, dtype=np.float64, seed=4, gate="hard_sigmoid")
    assert "hard_sigmoid" in repr(m.rnn)
    rng = np.random.default_rng(1)
    x, y = 2 * rng.standard_normal((6, 3, 2)), rng.standard_normal((3, 1))
    with kernels.use(backend):
        m.zero_grad()
        loss, _, _ = m.train_step((x, y, None))
    hs, _ = torch_loop(cell, m, x, gate=F.hardsigmoid)
    out = hs[-1] @ torch.tensor(m.head.params["weight"]).T + torch.tensor(m.head.params["bias"])
    assert loss == pytest.approx(torch.mean((out - torch.tensor(y)) ** 2).item())

    def f():
        out = m.forward(x)
        m.clear_cache()
        return float(np.mean((out - y) ** 2))

    for name, p in m.rnn.params.items():
        for idx in sample_indices(p.shape, 8, rng):
            assert m.rnn.grads[name][idx] == pytest.approx(numeric_grad(f, p, idx), rel=1e-6, abs=1e-9), name
    with pytest.raises(ValueError, match="gate: expected 'sigmoid' or 'hard_sigmoid'"):
        rnnkit.LSTM(2, 3, gate="relu")
