"""Bad input raises ValueError or TypeError naming what was expected and what arrived."""
import numpy as np
import pytest
import torch

import rnnkit


@pytest.fixture
def lstm():
    return rnnkit.LSTM(3, 4, num_layers=2, seed=0)


X = np.zeros((5, 2, 3), np.float32)


@pytest.mark.parametrize("x,exc,match", [
    (np.zeros((5, 3), np.float32), ValueError, r"expected a 3-D array \(L, N, H_in\), got shape \(5, 3\)"),
    (np.zeros((5, 2, 7), np.float32), ValueError, r"H_in=3, got shape \(5, 2, 7\)"),
    (np.zeros((5, 2, 3), np.int64), TypeError, "floating-point.*got dtype int64"),
    (np.zeros((5, 2, 3), np.float64), TypeError, "expected dtype float32.*got float64"),
    (np.full((5, 2, 3), np.nan, np.float32), ValueError, "finite values, got 30 NaN or inf"),
    (np.zeros((0, 2, 3), np.float32), ValueError, "non-empty"),
    ("text", TypeError, "floating-point"),
])
def test_bad_x(lstm, x, exc, match):
    with pytest.raises(exc, match=match):
        lstm(x)


@pytest.mark.parametrize("state,exc,match", [
    (np.zeros((2, 2, 4), np.float32), TypeError, r"expected a tuple \(h, c\)"),
    ((np.zeros((1, 2, 4), np.float32), np.zeros((2, 2, 4), np.float32)), ValueError,
     r"expected shape \(2, 2, 4\), got \(1, 2, 4\)"),
    ((np.zeros((2, 2, 4), np.float32), np.zeros((2, 3, 4), np.float32)), ValueError, r"got \(2, 3, 4\)"),
    ((np.zeros((2, 2, 4), np.float32), np.zeros((2, 2), np.float32)), ValueError, r"got \(2, 2\)"),
    ((np.zeros((2, 2, 4), np.int32), np.zeros((2, 2, 4), np.float32)), TypeError, "dtype int32"),
    ((np.full((2, 2, 4), np.inf, np.float32), np.zeros((2, 2, 4), np.float32)), ValueError, "NaN or inf"),
])
def test_bad_state(lstm, state, exc, match):
    with pytest.raises(exc, match=match):
        lstm(X, state)


def test_gru_state_must_be_one_array():
    with pytest.raises(TypeError, match="expected one array h"):
        rnnkit.GRU(3, 4)(X, (np.zeros((1, 2, 4), np.float32),))


@pytest.mark.parametrize("lengths,exc,match", [
    ([5], ValueError, r"one length per sequence, shape \(2,\), got shape \(1,\)"),
    ([5, 6], ValueError, r"values in \[1, 5\].*max 6"),
    ([0, 3], ValueError, r"values in \[1, 5\].*min 0"),
    ([2.5, 3], TypeError, "integers"),
    ([[1, 2]], ValueError, "one length per sequence"),
])
def test_bad_lengths(lstm, lengths, exc, match):
    with pytest.raises(exc, match=match):
        lstm(X, lengths=lengths)


def test_backward_before_forward_and_twice(lstm):
    with pytest.raises(ValueError, match="no forward pass"):
        lstm.backward(np.zeros((5, 2, 4), np.float32))
    y, _ = lstm(X)
    lstm.backward(np.ones_like(y))
    with pytest.raises(ValueError, match="no forward pass"):
        lstm.backward(np.ones_like(y))


def test_backward_bad_dy_and_dstate(lstm):
    lstm(X)
    with pytest.raises(ValueError, match=r"expected shape \(5, 2, 4\), got \(5, 2, 8\)"):
        lstm.backward(np.zeros((5, 2, 8), np.float32))
    lstm(X)
    with pytest.raises(ValueError, match=r"backward dstate h.*got \(2, 2, 3\)"):
        lstm.backward(np.zeros((5, 2, 4), np.float32), (np.zeros((2, 2, 3), np.float32), None))


def test_state_dict_problems_are_all_named():
    m = rnnkit.GRU(3, 4)
    good = {k: v.detach().numpy() for k, v in torch.nn.GRU(3, 4).state_dict().items()}
    bad = dict(good)
    del bad["bias_hh_l0"]
    bad["weight_hh_l1"] = np.zeros((12, 4), np.float32)
    bad["weight_ih_l0"] = np.zeros((12, 5), np.float32)
    with pytest.raises(ValueError) as e:
        m.load_state_dict(bad)
    msg = str(e.value)
    assert "missing keys ['bias_hh_l0']" in msg
    assert "unexpected keys ['weight_hh_l1']" in msg
    assert "weight_ih_l0: expected shape (12, 3), got (12, 5)" in msg
    bad = dict(good, weight_hh_l0=np.zeros((12, 4), np.int64))
    with pytest.raises(ValueError, match="weight_hh_l0: expected a floating array, got dtype int64"):
        m.load_state_dict(bad)
    with pytest.raises(TypeError, match="expected a dict"):
        m.load_state_dict([1, 2])
    before = m.state_dict()
    with pytest.raises(ValueError):
        m.load_state_dict({})
    for k, v in m.state_dict().items():           # a failed load changes nothing
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("make,exc,match", [
    (lambda: rnnkit.LSTM(0, 4), ValueError, "input_size: expected an integer >= 1, got 0"),
    (lambda: rnnkit.LSTM(3, 4.5), TypeError, "hidden_size"),
    (lambda: rnnkit.LSTM(3, 4, dropout=1.0), ValueError, r"dropout: expected a probability in \[0, 1\)"),
    (lambda: rnnkit.RNN(3, 4, nonlinearity="sigmoid"), ValueError, "nonlinearity"),
    (lambda: rnnkit.GRU(3, 4, dtype=np.int32), TypeError, "dtype: expected float32 or float64"),
])
def test_bad_constructor_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_cell_bad_input():
    c = rnnkit.LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"expected shape \(\*, 3\), got \(2, 5\)"):
        c(np.zeros((2, 5), np.float32))
    with pytest.raises(TypeError, match=r"expected a tuple \(h, c\)"):
        c(np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="no forward pass"):
        c.backward((np.zeros((2, 4)), np.zeros((2, 4))))


def test_nonfinite_weights_are_refused_on_load_naming_the_parameter():
    m = rnnkit.LSTM(3, 4, num_layers=2, seed=0)
    sd = m.state_dict()
    sd["weight_hh_l1"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"weight_hh_l1: expected finite values, got 1 NaN or infinite"):
        rnnkit.LSTM(3, 4, num_layers=2, seed=1).load_state_dict(sd)
    rnnkit.LSTM(3, 4, num_layers=2, seed=1).load_state_dict(sd, allow_nonfinite=True)   # when asked for


def test_nonfinite_upstream_gradient_names_the_module():
    m = rnnkit.GRU(3, 4, seed=0)
    y, _ = m(np.ones((5, 2, 3), np.float32))
    dy = np.ones_like(y)
    dy[2, 1, 0] = np.inf
    with pytest.raises(ValueError, match=r"GRU.backward dy .*: expected finite values, got 1 NaN or inf"):
        m.backward(dy)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")     # np.matrix's own
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_check_finds_every_kind_of_non_finite_value(dtype, monkeypatch):
    """``check_finite`` (compiled for large C-contiguous arrays, NumPy's ``isfinite`` otherwise)
    finds a NaN, +inf or -inf anywhere, counts them, and passes the largest finite values and
    subnormals; strided views take the NumPy path with the same answer; an ndarray subclass (a
    masked array, ``np.matrix``) keeps its own ``isfinite``: a masked NaN is no error."""
    from rnnkit import kernels
    from rnnkit._validate import NonFiniteError, check_finite

    compiled = kernels.compiled("_numba")
    calls = []
    if compiled is not None:
        run = compiled.all_finite
        monkeypatch.setattr(compiled, "all_finite", lambda *a: calls.append(1) or run(*a))

    info = np.finfo(dtype)
    for size in (10, 4096, 50 * 50 * 128 + 3):
        x = np.linspace(-1, 1, size).astype(dtype)
        x[:3] = info.max, -info.max, info.tiny / 4
        check_finite(x, "x")
        check_finite(x[::2], "x")
        for bad in (np.nan, np.inf, -np.inf):
            for at in (0, size // 2, size - 1):
                y = x.copy()
                y[at] = bad
                with pytest.raises(NonFiniteError, match="^y: expected finite values, got 1 NaN or inf entry$"):
                    check_finite(y, "y")
                with pytest.raises(NonFiniteError):
                    check_finite(y.reshape(1, -1)[:, ::-1], "y")
        y = x.copy()
        y[[1, size - 2]] = np.nan
        with pytest.raises(NonFiniteError, match="got 2 NaN or inf entries"):
            check_finite(y, "y")
        check_finite(np.ma.masked_invalid(y), "y")
        check_finite(np.asmatrix(x.reshape(1, -1)), "x")
        with pytest.raises(NonFiniteError):
            check_finite(np.asmatrix(y.reshape(1, -1)), "y")
    assert bool(calls) == (compiled is not None)          # the large arrays took the compiled check
