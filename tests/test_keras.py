"""Keras 3 interop: modules built by ``from_keras`` give Keras's own outputs and final states (Keras on
the torch backend, float32, to 1e-5) for SimpleRNN, LSTM and GRU (both ``reset_after`` values),
unidirectional and Bidirectional, from layers, ``get_weights()`` arrays, ``.keras`` and
``.weights.h5`` files; ``to_keras`` goes back; what is refused is refused in one line."""
import os
import sys

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"
keras = pytest.importorskip("keras")

import rnnkit  # noqa: E402
from rnnkit.errors import UserError  # noqa: E402
from rnnkit.keras import from_keras, to_keras  # noqa: E402

# Keras 3.15's own NumPy 2 conversions warn on every weight read; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

N, L, H_IN, H = 3, 6, 4, 5
CASES = [("SimpleRNN", {}), ("SimpleRNN", {"activation": "relu"}), ("LSTM", {}),
         ("LSTM", {"recurrent_activation": "hard_sigmoid"}), ("GRU", {}), ("GRU", {"reset_after": False}),
         ("GRU", {"reset_after": False, "recurrent_activation": "hard_sigmoid"})]


def keras_layer(kind, bidirectional=False, seed=0, **kw):
    """A built Keras layer returning (y, *states), every weight (biases too) random."""
    layer = getattr(keras.layers, kind)(H, return_sequences=True, return_state=True, **kw)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer)
    layer.build((None, None, H_IN))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(np.float32) for w in layer.get_weights()])
    return layer


def keras_run(layer, x, **kw):
    """``(y, [states in Keras's order])`` as NumPy arrays."""
    out = [keras.ops.convert_to_numpy(o) for o in layer(x, **kw)]
    return out[0], out[1:]


def keras_order(state, D):
    """rnnkit's final state -> Keras's list: [h, (c)] per direction, forward first."""
    parts = state if isinstance(state, tuple) else (state,)
    return [p[d] for d in range(D) for p in parts]


def assert_same(module, layer, x, D, **kw):
    y, st = module(x, **kw)
    ky, kst = keras_run(layer, x)
    np.testing.assert_allclose(y, ky, rtol=1e-5, atol=1e-5)
    assert len(kst) == len(keras_order(st, D))
    for a, b in zip(keras_order(st, D), kst):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind,kw", CASES, ids=lambda v: "-".join(f"{k}={w}" for k, w in v.items()) or "default"
                         if isinstance(v, dict) else v)
def test_outputs_and_final_states_equal_keras(kind, kw, bidirectional):
    layer = keras_layer(kind, bidirectional, **kw)
    x = np.random.default_rng(1).standard_normal((N, L, H_IN)).astype(np.float32)
    m = from_keras(layer)
    assert type(m).__name__ == {"SimpleRNN": "RNN"}.get(kind, kind) and m.bidirectional == bidirectional
    if kind == "GRU":
        assert m.reset_after == kw.get("reset_after", True)
    assert_same(m, layer, x, 2 if bidirectional else 1)
    if not kw:      # Keras's default options: the bare arrays give the same module
        assert_same(from_keras(layer.get_weights()), layer, x, 2 if bidirectional else 1)


def test_initial_state_mask_and_no_bias():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, L, H_IN)).astype(np.float32)
    layer = keras_layer("LSTM")
    h0, c0 = (rng.standard_normal((N, H)).astype(np.float32) for _ in range(2))
    y, (h, c) = from_keras(layer)(x, (h0[None], c0[None]))
    ky, (kh, kc) = keras_run(layer, x, initial_state=[h0, c0])
    for a, b in ((y, ky), (h[0], kh), (c[0], kc)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

    lengths = np.array([6, 3, 1])            # a Keras mask is rnnkit's lengths
    mask = np.arange(L)[None, :] < lengths[:, None]
    layer = keras_layer("GRU", bidirectional=True, reset_after=False)
    y, h = from_keras(layer)(x, lengths=lengths)
    ky, (kf, kb) = keras_run(layer, x, mask=mask)
    np.testing.assert_allclose(y, ky, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, np.stack([kf, kb]), rtol=1e-5, atol=1e-5)

    layer = keras_layer("GRU", bidirectional=True, use_bias=False)
    m = from_keras(layer)
    assert not m.bias
    assert_same(m, layer, x, 2)


def small_model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((L, H_IN)),
                             keras.layers.Bidirectional(keras.layers.GRU(H, return_sequences=True), name="bi"),
                             keras.layers.LSTM(3, name="top")])


def test_keras_and_weights_files(tmp_path):
    """A saved model's layers, read back from .keras and from .weights.h5 (with the model), chained
    in rnnkit, give the model's output."""
    model = small_model(3)
    x = np.random.default_rng(3).standard_normal((N, L, H_IN)).astype(np.float32)
    want = keras.ops.convert_to_numpy(model(x))
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    fresh = small_model(4)                   # same architecture, other weights
    for path, kw in ((tmp_path / "m.keras", {}), (str(tmp_path / "m.weights.h5"), {"model": fresh})):
        bi, top = from_keras(path, name="bi", **kw), from_keras(path, name="top", **kw)
        y, _ = top(bi(x)[0])
        np.testing.assert_allclose(y[:, -1], want, rtol=1e-5, atol=1e-5)
    with pytest.raises(UserError, match="has 2 recurrent layers \\['bi', 'top'\\]; name one with name="):
        from_keras(model)
    with pytest.raises(UserError, match="pass the Keras model it was saved from as model="):
        from_keras(tmp_path / "m.weights.h5")


def one_line_error(f, *args, match, **kw):
    with pytest.raises(UserError, match=match) as e:
        f(*args, **kw)
    assert "\n" not in str(e.value)


def test_refusals_are_one_line(tmp_path):
    def built(layer):
        layer.build((None, None, H_IN))
        return layer

    one_line_error(from_keras, built(keras.layers.SimpleRNN(H, activation="sigmoid")),
                   match="activation='sigmoid' is not supported; rnnkit's SimpleRNN uses 'tanh' or 'relu'")
    one_line_error(from_keras, built(keras.layers.GRU(H, activation="relu")), match="activation='relu'")
    one_line_error(from_keras, built(keras.layers.LSTM(H, recurrent_activation="tanh")),
                   match="recurrent_activation='tanh' is not supported")
    one_line_error(from_keras, built(keras.layers.Bidirectional(keras.layers.LSTM(H), merge_mode="sum")),
                   match="merge_mode='sum'")
    one_line_error(from_keras, built(keras.layers.GRU(H, go_backwards=True)), match="go_backwards=True")
    different = keras.layers.Bidirectional(keras.layers.GRU(H), backward_layer=keras.layers.GRU(
        H, reset_after=False, go_backwards=True))
    one_line_error(from_keras, built(different), match="differ in \\{'reset_after': \\(True, False\\)\\}")
    one_line_error(from_keras, built(keras.layers.Dense(3)), match="expected a Keras SimpleRNN, LSTM, GRU")
    one_line_error(from_keras, keras.layers.LSTM(H), match="has no weights yet")
    w = built(keras.layers.GRU(H, use_bias=False)).get_weights()
    one_line_error(from_keras, w, match="without a bias do not tell reset_after")
    one_line_error(from_keras, w[:1], match="got 1 arrays")
    one_line_error(from_keras, [np.zeros((4, 10)), np.zeros((5, 10))], match="2 gate blocks")
    one_line_error(from_keras, tmp_path / "none.keras", match="no such file")
    (tmp_path / "m.h5").write_bytes(b"")
    one_line_error(from_keras, tmp_path / "m.h5", match="expected a .keras file or a .weights.h5 file")
    one_line_error(to_keras, rnnkit.LSTM(3, 4, num_layers=2), match="num_layers=2")


def test_missing_keras_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(ImportError, match=r"pip install 'rnnkit\[keras\]'"):
        to_keras(rnnkit.GRU(2, 2))


@pytest.mark.parametrize("module", [
    rnnkit.RNN(H_IN, H, nonlinearity="relu", batch_first=True, seed=0),
    rnnkit.LSTM(H_IN, H, bidirectional=True, batch_first=True, seed=1),
    rnnkit.GRU(H_IN, H, batch_first=True, seed=2),
    rnnkit.GRU(H_IN, H, bidirectional=True, reset_after=False, batch_first=True, seed=3),
    rnnkit.LSTM(H_IN, H, gate="hard_sigmoid", bias=False, batch_first=True, seed=4)], ids=repr)
def test_to_keras_computes_the_same(module):
    """The Keras layer computes what the module does, and from_keras brings back the same module."""
    layer = to_keras(module)
    x = np.random.default_rng(5).standard_normal((N, L, H_IN)).astype(np.float32)
    assert_same(module, layer, x, module.num_directions)
    back = from_keras(layer)
    assert repr(back) == repr(module)
    np.testing.assert_allclose(back(x)[0], module(x)[0], rtol=1e-5, atol=1e-6)
