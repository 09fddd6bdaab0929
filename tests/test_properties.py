"""Property-based tests (Hypothesis) of rnnkit.RNN / LSTM / GRU: random sizes, cells, layers,
directions, layouts, dtypes and length vectors, checked against invariants instead of fixed cases.

* output, final-state and gradient shapes and dtypes are PyTorch's;
* padding is inert: padded outputs are exactly zero, and new inputs at padded steps change no valid
  output, no final state, no parameter gradient and no valid input gradient (padded ones are zero);
* a sequence inside a padded batch gives what it gives alone, cut to its own length;
* float64 backward equals central differences (input, initial state, random parameter entries);
* the numba and numpy time loops agree (float64 to 1e-10, float32 to 1e-5);
* forward and backward leave the arrays handed to them unchanged.

Sizes: L 1..6, N 1..4, H_in 1..4, H 1..5, 1..2 layers, 1..2 directions; lengths in [1, L] with at
least one full-length sequence. Each property runs under both kernel backends where that matters.
Two bugs these properties found are pinned by regression tests at the end: the numba backward
wrote into the caller's ``dstate`` when N == 1 or H == 1, and the NumPy float32 LSTM with H == 1
and N >= 2 was wrong where NumPy's in-place ``negative`` is broken (the sigmoid no longer uses it).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit import kernels

from .helpers import CELLS, assert_close, make_pair, numeric_grad, random_problem, rnnkit_run, sample_indices

BACKENDS = ["numpy", "numba"]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Case:
    """One drawn configuration; arrays come from ``seed`` through ``helpers.random_problem``."""

    cell: str
    L: int
    N: int
    input_size: int
    hidden: int
    layers: int
    bidirectional: bool
    batch_first: bool
    bias: bool
    dtype: type
    lengths: tuple | None
    with_state: bool
    seed: int

    @property
    def D(self) -> int:
        return 2 if self.bidirectional else 1

    def module(self):
        cls, _, kw = CELLS[self.cell]
        return cls(self.input_size, self.hidden, self.layers, bias=self.bias, batch_first=self.batch_first,
                   bidirectional=self.bidirectional, dtype=self.dtype, seed=self.seed % 1000, **kw)

    def problem(self):
        """``(x, state or None, G, Gs)``: input, initial states (tuple), weights of the loss on y and on
        the final states; loss = sum(G * y) + sum(Gs * finals)."""
        return random_problem(self.cell, self.L, self.N, self.input_size, self.hidden, self.layers,
                              self.bidirectional, self.batch_first, self.lengths, self.with_state, self.dtype,
                              self.seed)

    def steps(self, a):
        """A time-major view (L, N, ...) of an array in the module's layout (writes go through)."""
        return a.swapaxes(0, 1) if self.batch_first else a

    def layout(self, a):
        """A time-major array (L, N, ...) in the module's layout."""
        return np.ascontiguousarray(a.swapaxes(0, 1)) if self.batch_first else np.ascontiguousarray(a)


@st.composite
def cases(draw, dtypes=(np.float32, np.float64), max_L=6, max_N=4, max_in=4, max_h=5, padded=None):
    """A :class:`Case`. ``padded`` True forces a lengths vector, False forbids one, None draws."""
    L, N = draw(st.integers(1, max_L)), draw(st.integers(1, max_N))
    use_lengths = draw(st.booleans()) if padded is None else padded
    lengths = None
    if use_lengths:
        lengths = draw(st.lists(st.integers(1, L), min_size=N, max_size=N))
        lengths[draw(st.integers(0, N - 1))] = L            # at least one full-length sequence
        lengths = tuple(lengths)
    return Case(cell=draw(st.sampled_from(sorted(CELLS))), L=L, N=N, input_size=draw(st.integers(1, max_in)),
                hidden=draw(st.integers(1, max_h)), layers=draw(st.integers(1, 2)),
                bidirectional=draw(st.booleans()), batch_first=draw(st.booleans()), bias=draw(st.booleans()),
                dtype=draw(st.sampled_from(dtypes)), lengths=lengths, with_state=draw(st.booleans()),
                seed=draw(st.integers(0, 2**32 - 1)))


def run(case, m, x, state, G, Gs):
    """Forward + backward of ``loss = sum(G * y) + sum(Gs * finals)``: helpers.rnnkit_run's dict.
    ``Gs`` is handed over as a copy: the numba backward writes into it (see the known-bug tests)."""
    lengths = None if case.lengths is None else list(case.lengths)
    return rnnkit_run(m, case.cell, x, state, lengths, G, tuple(g.copy() for g in Gs))


def _numpy_negative_in_place_is_broken() -> bool:
    """NumPy 2.3.5 (AVX2 here) negates an in-place float32 view of stride 4 wrongly: ``a[4]`` becomes
    ``-a[1]``. rnnkit's sigmoid used to run ``np.negative(x, out=x)`` on the LSTM's o-gate column."""
    a = np.arange(8, dtype=np.float32)
    v = a[::4]
    np.negative(v, out=v)
    return a[4] != -4.0


# -- shapes ----------------------------------------------------------------------------------------


@SETTINGS
@given(case=cases())
def test_shapes_and_dtypes_are_pytorchs(case):
    ours, theirs = make_pair(case.cell, case.input_size, case.hidden, case.layers, case.bidirectional,
                             case.batch_first, case.bias, case.dtype, seed=case.seed % 1000)
    x, state, G, Gs = case.problem()
    a = run(case, ours, x, state, G, Gs)
    xt = torch.tensor(x)
    inp = xt
    if case.lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(case.lengths), batch_first=case.batch_first,
                                                      enforce_sorted=False)
    st_t = None if state is None else tuple(torch.tensor(s) for s in state)
    with torch.no_grad():
        y, final = theirs(inp, None if st_t is None else (st_t if case.cell == "lstm" else st_t[0]))
    if case.lengths is not None:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=case.batch_first, total_length=case.L)
    finals = final if case.cell == "lstm" else (final,)
    assert a["y"].shape == tuple(y.shape) and a["y"].dtype == case.dtype
    assert [f.shape for f in a["finals"]] == [tuple(f.shape) for f in finals]
    assert all(f.dtype == case.dtype for f in a["finals"])
    assert a["dx"].shape == x.shape and a["dx"].dtype == case.dtype
    if state is not None:
        assert [s.shape for s in a["dstate"]] == [s.shape for s in state]
    assert {k: g.shape for k, g in a["grads"].items()} == {k: tuple(p.shape) for k, p in theirs.named_parameters()}


# -- padding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(case=cases(padded=True), scale=st.sampled_from([0.0, 1.0, 1e3]))
def test_padded_inputs_change_nothing(backend, case, scale):
    m = case.module()
    x, state, G, Gs = case.problem()
    x2 = x.copy()
    rng = np.random.default_rng(case.seed + 1)
    for b, n in enumerate(case.lengths):
        pad = case.steps(x2)[n:, b]
        pad[...] = scale * rng.standard_normal(pad.shape)
    with kernels.use(backend):
        a = run(case, m, x, state, G, Gs)
        b = run(case, m, x2, state, G, Gs)
    y, dx = case.steps(a["y"]), case.steps(a["dx"])
    for i, n in enumerate(case.lengths):
        assert not y[n:, i].any(), f"sequence {i}: output past its length {n} is not zero"
        assert not dx[n:, i].any(), f"sequence {i}: input gradient past its length {n} is not zero"
    np.testing.assert_array_equal(a["y"], b["y"], err_msg="valid outputs")
    for k, (p, q) in enumerate(zip(a["finals"], b["finals"])):
        np.testing.assert_array_equal(p, q, err_msg=f"final state {k}")
    np.testing.assert_array_equal(a["dx"], b["dx"], err_msg="input gradient")
    if state is not None:
        for k, (p, q) in enumerate(zip(a["dstate"], b["dstate"])):
            np.testing.assert_array_equal(p, q, err_msg=f"initial state gradient {k}")
    for name in a["grads"]:
        np.testing.assert_array_equal(a["grads"][name], b["grads"][name], err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(case=cases(padded=True))
def test_sequence_in_padded_batch_equals_it_alone(backend, case):
    m = case.module()
    x, state, G, Gs = case.problem()
    with kernels.use(backend):
        batch = run(case, m, x, state, G, Gs)
        for i, n in enumerate(case.lengths):
            alone_case = replace(case, L=n, N=1, lengths=None)
            xi = alone_case.layout(case.steps(x)[:n, i:i + 1])
            Gi = alone_case.layout(case.steps(G)[:n, i:i + 1])
            si = None if state is None else tuple(s[:, i:i + 1].copy() for s in state)
            alone = run(alone_case, m, xi, si, Gi, tuple(g[:, i:i + 1].copy() for g in Gs))
            what = f"sequence {i} of lengths {case.lengths}"
            assert_close(alone["y"], alone_case.layout(case.steps(batch["y"])[:n, i:i + 1]), case.dtype,
                         f"{what}: output")
            for k, (p, q) in enumerate(zip(alone["finals"], batch["finals"])):
                assert_close(p, q[:, i:i + 1], case.dtype, f"{what}: final state {k}")
            assert_close(alone["dx"], alone_case.layout(case.steps(batch["dx"])[:n, i:i + 1]), case.dtype,
                         f"{what}: input gradient")
            if state is not None:
                for k, (p, q) in enumerate(zip(alone["dstate"], batch["dstate"])):
                    assert_close(p, q[:, i:i + 1], case.dtype, f"{what}: initial state gradient {k}")


# -- gradients -------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(case=cases(dtypes=(np.float64,), max_L=4, max_N=3, max_in=3, max_h=3))
def test_backward_matches_central_differences(backend, case):
    m = case.module()
    x, state, G, Gs = case.problem()
    rng = np.random.default_rng(case.seed + 2)
    lengths = None if case.lengths is None else list(case.lengths)

    def loss():
        st = None if state is None else (state if case.cell == "lstm" else state[0])
        y, final = m(x, st, lengths=lengths)
        m.clear_cache()
        finals = final if case.cell == "lstm" else (final,)
        return float((G * y).sum() + sum((g * f).sum() for g, f in zip(Gs, finals)))

    with kernels.use(backend):
        a = run(case, m, x, state, G, Gs)
        checks = [("x", x, a["dx"], 4)]
        if state is not None:
            checks += [(f"state {k}", s, d, 3) for k, (s, d) in enumerate(zip(state, a["dstate"]))]
        names = sorted(m.params)
        for name in rng.choice(names, size=min(4, len(names)), replace=False):
            checks.append((name, m.params[name], a["grads"][name], 1))
        for what, arr, grad, k in checks:
            for idx in sample_indices(arr.shape, k, rng):
                num = numeric_grad(loss, arr, idx)
                assert grad[idx] == pytest.approx(num, rel=1e-6, abs=1e-8), (what, idx)


@SETTINGS
@given(case=cases())
def test_numba_and_numpy_backends_agree(case):
    x, state, G, Gs = case.problem()
    out = {}
    for backend in BACKENDS:
        with kernels.use(backend):
            out[backend] = run(case, case.module(), x, state, G, Gs)
    a, b = out["numba"], out["numpy"]
    assert_close(a["y"], b["y"], case.dtype, "output")
    for k, (p, q) in enumerate(zip(a["finals"], b["finals"])):
        assert_close(p, q, case.dtype, f"final state {k}")
    assert_close(a["dx"], b["dx"], case.dtype, "input gradient")
    if state is not None:
        for k, (p, q) in enumerate(zip(a["dstate"], b["dstate"])):
            assert_close(p, q, case.dtype, f"initial state gradient {k}")
    for name in b["grads"]:
        assert_close(a["grads"][name], b["grads"][name], case.dtype, name)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(case=cases())
def test_forward_and_backward_leave_their_arguments_alone(backend, case):
    m = case.module()
    x, state, G, Gs = case.problem()
    given_arrays = [x, G, *Gs, *(state or ())]
    copies = [a.copy() for a in given_arrays]
    with kernels.use(backend):
        st = None if state is None else (state if case.cell == "lstm" else state[0])
        m(x, st, lengths=None if case.lengths is None else list(case.lengths))
        m.backward(G, Gs if case.cell == "lstm" else Gs[0])
    for k, (a, b) in enumerate(zip(given_arrays, copies)):
        np.testing.assert_array_equal(a, b, err_msg=f"argument {k} of (x, dy, dstate..., state...) was modified")


# -- regression tests for the two bugs the properties found ----------------------------------------


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("N,H", [(1, 3), (2, 1)])
def test_numba_backward_leaves_dstate_alone(cell, N, H):
    cls, _, kw = CELLS[cell]
    m = cls(2, H, dtype=np.float64, seed=0, **kw)
    rng = np.random.default_rng(0)
    x, G, dh = rng.standard_normal((3, N, 2)), rng.standard_normal((3, N, H)), rng.standard_normal((1, N, H))
    before = dh.copy()
    with kernels.use("numba"):
        m(x)
        m.backward(G, (dh, None) if cell == "lstm" else dh)
    np.testing.assert_array_equal(dh, before)


def test_numpy_lstm_float32_hidden_1_is_right_even_where_numpy_negative_is_broken():
    m = CELLS["lstm"][0](1, 1, dtype=np.float32, seed=0)
    x = np.random.default_rng(0).standard_normal((1, 2, 1)).astype(np.float32)
    with kernels.use("numpy"):
        y, _ = m(x)
        y_alone, _ = m(x[:, 1:])
    assert_close(y[:, 1:], y_alone, np.float32, "second sequence in a batch of two vs alone")
