"""Bad arguments to the layers (Linear, Embedding, Dropout, the cells, Attention, the recurrent
layers, their streams, to_keras): one ValueError / TypeError naming the argument, what was expected
and what arrived, instead of a NumPy traceback, a silently coerced value or a wrong result."""
import numpy as np
import pytest

import rnnkit
import rnnkit.keras
from rnnkit.errors import UserError

F32 = np.float32


# -- 1. backward's dy shape ---------------------------------------------------------------
def test_embedding_backward_dy_shape():
    e = rnnkit.Embedding(10, 4)
    e(np.array([[1, 2]]))
    with pytest.raises(ValueError, match=r"Embedding.backward dy: expected shape \(1, 2, 4\), got \(3, 4\)"):
        e.backward(np.ones((3, 4), F32))


def test_embedding_backward_good_dy_still_accumulates():
    e = rnnkit.Embedding(10, 4)
    e(np.array([[1, 2, 1]]))
    e.backward(np.ones((1, 3, 4), F32))
    np.testing.assert_array_equal(e.grads["weight"][1], 2.0)
    np.testing.assert_array_equal(e.grads["weight"][2], 1.0)


@pytest.mark.parametrize("dy,exc,match", [
    (np.ones((3, 3), F32), ValueError, r"Linear.backward dy: expected shape \(2, 3\), got \(3, 3\)"),
    ([[1.0, 2.0, 3.0]] * 2, TypeError, "Linear.backward dy: expected a NumPy array, got list"),
])
def test_linear_backward_bad_dy(dy, exc, match):
    lin = rnnkit.Linear(4, 3)
    lin(np.zeros((2, 4), F32))
    with pytest.raises(exc, match=match):
        lin.backward(dy)


@pytest.mark.parametrize("dy,exc,match", [
    (np.ones((3, 3), F32), ValueError, r"Dropout.backward dy: expected shape \(2, 3\), got \(3, 3\)"),
    ([[1.0] * 3] * 2, TypeError, "Dropout.backward dy: expected a NumPy array, got list"),
])
@pytest.mark.parametrize("training", [True, False])
def test_dropout_backward_bad_dy(dy, exc, match, training):
    d = rnnkit.Dropout(0.5).train(training)
    d(np.ones((2, 3), F32))
    with pytest.raises(exc, match=match):
        d.backward(dy)


# -- 2. Dropout's input ---------------------------------------------------------------------
def test_dropout_int_input_refused():
    with pytest.raises(TypeError, match="Dropout input: expected a floating-point array, got dtype int64"):
        rnnkit.Dropout(0.5)(np.ones(4, np.int64))


def test_dropout_list_and_torch_input_refused():
    with pytest.raises(TypeError, match="Dropout input: expected a NumPy array, got list"):
        rnnkit.Dropout(0.5)([1.0, 2.0])
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"Dropout input: expected a NumPy array, got torch.Tensor"):
        rnnkit.Dropout(0.5)(torch.ones(4))


# -- 3. constructor sizes, stream batch size ------------------------------------------------
@pytest.mark.parametrize("make,exc,match", [
    (lambda: rnnkit.Linear(0, 3), ValueError, "in_features: expected an integer >= 1, got 0"),
    (lambda: rnnkit.Linear(4, -2), ValueError, "out_features: expected an integer >= 1, got -2"),
    (lambda: rnnkit.Linear(4.7, 3), TypeError, "in_features: expected an integer >= 1, got 4.7"),
    (lambda: rnnkit.Linear("4", 3), TypeError, "in_features: expected an integer >= 1, got '4'"),
    (lambda: rnnkit.Linear(4, 3, bias="no"), ValueError, "bias: expected True or False, got 'no'"),
    (lambda: rnnkit.Embedding(-3, 4), ValueError, "num_embeddings: expected an integer >= 1, got -3"),
    (lambda: rnnkit.Embedding(0, 4), ValueError, "num_embeddings: expected an integer >= 1, got 0"),
    (lambda: rnnkit.Embedding(10, 2.5), TypeError, "embedding_dim: expected an integer >= 1, got 2.5"),
    (lambda: rnnkit.Attention(8, 8, attn_size=-4), ValueError, "attn_size: expected an integer >= 1, got -4"),
    (lambda: rnnkit.Attention(0, 8), ValueError, "query_size: expected an integer >= 1, got 0"),
    (lambda: rnnkit.Attention(8, "8"), TypeError, "key_size: expected an integer >= 1, got '8'"),
])
def test_bad_sizes(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_attention_default_attn_size_still_key_size():
    att = rnnkit.Attention(6, 8)
    assert att.params["weight_k"].shape == (8, 8)


@pytest.mark.parametrize("zoneout", [0.0, 0.3])   # Stream and StepStream
@pytest.mark.parametrize("batch,exc", [(-1, ValueError), (0, ValueError), ("2", TypeError), (1.5, TypeError)])
def test_stream_bad_batch_size(zoneout, batch, exc):
    m = rnnkit.LSTM(4, 8, zoneout=zoneout)
    with pytest.raises(exc, match=f"batch_size: expected an integer >= 1, got {batch!r}"):
        m.stream(batch)


# -- 4. bools, seed, dtype ------------------------------------------------------------------
@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
@pytest.mark.parametrize("opt", ["bidirectional", "batch_first", "bias"])
def test_recurrent_non_bool_options(cls, opt):
    with pytest.raises(ValueError, match=f"{opt}: expected True or False, got 'no'"):
        cls(4, 8, **{opt: "no"})
    with pytest.raises(ValueError, match=f"{opt}: expected True or False, got 'False'"):
        cls(4, 8, **{opt: "False"})


def test_recurrent_bools_still_accepted():
    m = rnnkit.LSTM(4, 8, bidirectional=np.bool_(True), batch_first=1, bias=0)
    assert m.bidirectional is True and m.batch_first is True and m.bias is False


def test_train_mode_non_bool():
    m = rnnkit.LSTM(4, 8)
    with pytest.raises(ValueError, match="mode: expected True or False, got 'no'"):
        m.train("no")
    assert m.training is True
    m.train(False)
    assert m.training is False


def test_cell_bias_non_bool():
    with pytest.raises(ValueError, match="bias: expected True or False, got 'no'"):
        rnnkit.GRUCell(4, 8, bias="no")


@pytest.mark.parametrize("make", [
    lambda **kw: rnnkit.LSTM(4, 8, **kw), lambda **kw: rnnkit.Linear(4, 3, **kw),
    lambda **kw: rnnkit.Embedding(5, 3, **kw), lambda **kw: rnnkit.Dropout(0.5, **kw),
    lambda **kw: rnnkit.LSTMCell(4, 8, **kw), lambda **kw: rnnkit.Attention(4, 4, **kw),
])
def test_bad_seed_and_dtype(make):
    with pytest.raises(ValueError, match="seed: expected None or an integer >= 0, got 'abc'"):
        make(seed="abc")
    with pytest.raises(ValueError, match="seed: expected None or an integer >= 0, got -1"):
        make(seed=-1)
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got 'foo'"):
        make(dtype="foo")
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got int32"):
        make(dtype=np.int32)


def test_good_seeds_still_accepted():
    a = rnnkit.LSTM(4, 8, seed=np.random.default_rng(3))
    b = rnnkit.LSTM(4, 8, seed=3)
    np.testing.assert_array_equal(a.params["weight_ih_l0"], b.params["weight_ih_l0"])
    rnnkit.LSTM(4, 8, seed=np.int64(7))
    rnnkit.LSTM(4, 8, seed=[1, 2])
    rnnkit.LSTM(4, 8, seed=np.random.SeedSequence(5))
    assert rnnkit.LSTM(4, 8, dtype="float64").dtype == np.float64


# -- 5. cells: non-finite state / dstate, as the recurrent layers -----------------------------
@pytest.mark.parametrize("cls", [rnnkit.GRUCell, rnnkit.RNNCell])
def test_cell_nan_state(cls):
    c = cls(4, 8)
    x = np.zeros((2, 4), F32)
    with pytest.raises(ValueError, match=f"{cls.__name__} state: expected finite values, got 1 NaN"):
        h = np.zeros((2, 8), F32)
        h[0, 0] = np.nan
        c(x, h)
    c(x)
    with pytest.raises(ValueError, match=f"{cls.__name__} backward dstate: expected finite values"):
        c.backward(np.full((2, 8), np.inf, F32))


def test_lstm_cell_nan_state():
    c = rnnkit.LSTMCell(4, 8)
    x = np.zeros((2, 4), F32)
    with pytest.raises(ValueError, match="LSTMCell state: expected finite values"):
        c(x, (np.zeros((2, 8), F32), np.full((2, 8), np.nan, F32)))


def test_cell_float64_dstate_refused():
    c = rnnkit.GRUCell(4, 8)
    c(np.zeros((2, 4), F32))
    with pytest.raises(TypeError, match="expected dtype float32.*got float64"):
        c.backward(np.ones((2, 8)))


def test_linear_takes_a_float64_gradient_in_its_dtype():
    """A float32 model's loss against float64 targets hands its head a float64 gradient: taken in
    float32, as before (the heads' checks are O(1): they run every step)."""
    lin = rnnkit.Linear(2, 3)
    lin(np.zeros((2, 2), F32))
    lin.backward(np.ones((2, 3)))
    assert lin.grads["weight"].dtype == F32
    m = rnnkit.SequenceModel(3, 4, 1, "regression")
    m.train_step((np.zeros((5, 2, 3), F32), np.ones((2, 1)), None))      # float64 targets


# -- 6. a stream's later steps --------------------------------------------------------------
def test_stream_later_list_step_one_line():
    m = rnnkit.LSTM(4, 8)
    s = m.stream(1)
    s.step(np.zeros((1, 4), F32))
    with pytest.raises(TypeError, match="Stream.step x: expected a NumPy array .* got list"):
        s.step([[0.0, 0.0, 0.0, 0.0]])


# -- 7. to_keras refuses what Keras lacks ---------------------------------------------------
@pytest.mark.parametrize("module,match", [
    (lambda: rnnkit.LSTM(3, 4, zoneout=0.5), "to_keras: zoneout=0.5 has no Keras counterpart"),
    (lambda: rnnkit.GRU(3, 4, zoneout=0.2), "to_keras: zoneout=0.2 has no Keras counterpart"),
    (lambda: rnnkit.LSTM(3, 4, proj_size=2), "to_keras: proj_size=2 has no Keras counterpart"),
])
def test_to_keras_refuses_missing_options(module, match):
    with pytest.raises(UserError, match=match):   # before Keras is imported: no Keras needed
        rnnkit.keras.to_keras(module())
