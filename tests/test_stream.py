"""Streaming inference equals the layer's forward over the same sequence, on both backends."""
import numpy as np
import pytest

import rnnkit
from rnnkit import kernels

CASES = [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {}),
         ("lstm", {"gate": "hard_sigmoid"}), ("gru", {"gate": "hard_sigmoid"}), ("gru", {"reset_after": False})]
CLS = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell,kw", CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("layers", [1, 2])
def test_stream_equals_forward(backend, dtype, cell, kw, layers):
    m = CLS[cell](3, 5, layers, dtype=dtype, seed=1, **kw)
    m.eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 2, 3)).astype(dtype)
    n = 2 if cell == "lstm" else 1
    state0 = tuple(0.3 * rng.standard_normal((layers, 2, 5)).astype(dtype) for _ in range(n))
    s0 = state0 if cell == "lstm" else state0[0]
    with kernels.use(backend):
        y, final = m(x, s0)
        m.clear_cache()
        st = m.stream(batch_size=2, state=s0)
        ys = np.stack([st.step(x[t]).copy() for t in range(7)])
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ys, y, **tol)
    if cell == "lstm":
        for a, b in zip(st.state, final):
            np.testing.assert_allclose(a, b, **tol)
    else:
        np.testing.assert_allclose(st.state, final, **tol)
    st.reset()
    assert not np.any(st.state[0] if cell == "lstm" else st.state)


def test_stream_bad_input():
    m = rnnkit.LSTM(3, 4)
    with pytest.raises(ValueError, match="bidirectional=False only"):
        rnnkit.GRU(3, 4, bidirectional=True).stream()
    s = m.stream()
    with pytest.raises(ValueError, match=r"Stream.step x \(N, H_in\): expected shape \(1, 3\), got \(1, 2\)"):
        s.step(np.zeros((1, 2), np.float32))
    with pytest.raises(TypeError, match="expected dtype float32"):
        s.step(np.zeros((1, 3)))
    s.step(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="expected shape"):
        s.step(np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_charlm_sampling_through_the_stream_matches_full_forwards(cell):
    from rnnkit.data.text import CharVocab
    from rnnkit.models import CharLM

    vocab = CharVocab.from_text("abcdefgh ")
    m = CharLM(len(vocab), 8, 16, 2, cell=cell, dtype=np.float64, seed=0)
    got = m.sample(vocab, length=30, temperature=0, prime="abc")
    ids = list(vocab.encode("abc"))
    for _ in range(30):                       # greedy by re-running the whole text each time
        logits, _ = m.forward(np.array(ids)[:, None])
        m.clear_cache()
        ids.append(1 + int(np.argmax(logits[-1, 0, 1:])))     # never the unknown character, id 0
    assert got == vocab.decode(ids[3:])
    s1 = m.sample(vocab, length=40, temperature=0.8, top_k=3, prime="ab", rng=5)
    assert s1 == m.sample(vocab, length=40, temperature=0.8, top_k=3, prime="ab", rng=5) and len(s1) == 40


def test_batched_sampling_draws_from_the_model_and_matches_greedy():
    """n samples at once: at temperature 0 every row is the one-at-a-time greedy text; otherwise
    the first character's frequencies over many rows follow the model's softmax (top-k cut)."""
    from rnnkit.data.text import CharVocab
    from rnnkit.functional.losses import softmax
    from rnnkit.models import CharLM

    vocab = CharVocab.from_text("abcdefgh ")
    m = CharLM(len(vocab), 4, 8, 2, "lstm", seed=0)
    greedy = m.sample(vocab, 15, temperature=0, prime="abc")
    assert m.sample(vocab, 15, temperature=0, prime="abc", n=3) == [greedy] * 3
    m.eval()
    logits, _ = m.forward(vocab.encode("ab")[:, None])
    m.clear_cache()
    for top_k in (0, 3):
        z = logits[-1, 0].astype(np.float64)
        z[0] = -np.inf                                         # the unknown character is never drawn
        if top_k:
            z = np.where(z >= np.sort(z)[-top_k], z, -np.inf)
        p = softmax(z / 0.7)
        rows = m.sample(vocab, 1, temperature=0.7, top_k=top_k, prime="ab", n=20000, rng=5)
        freq = np.bincount([vocab.stoi[r] for r in rows], minlength=len(vocab)) / len(rows)
        np.testing.assert_allclose(freq, p, atol=0.015)
        assert freq[p == 0].sum() == 0
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        m.sample(vocab, 5, n=0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_kept_stream_outputs_are_not_overwritten_by_later_steps(cell):
    m = CLS[cell](4, 5, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 3, 4)).astype(np.float32)
    s = m.stream(batch_size=3)
    ys = np.array([s.step(x[t]) for t in range(6)])               # no copy: each step's output is its own
    np.testing.assert_allclose(ys, m(x)[0], rtol=1e-5, atol=1e-6)


def test_a_refused_backward_leaves_the_forward_to_differentiate():
    m = rnnkit.LSTM(8, 16, seed=0)
    y, _ = m(np.zeros((5, 3, 8), np.float32))
    with pytest.raises(ValueError, match="backward dy"):
        m.backward(np.ones((5, 3, 15), np.float32))
    with pytest.raises(ValueError, match="dstate"):
        m.backward(np.ones_like(y), (np.ones((1, 3, 15), np.float32), np.ones((1, 3, 16), np.float32)))
    assert m.backward(np.ones_like(y)).shape == (5, 3, 8)
    cell = rnnkit.LSTMCell(4, 6, seed=0)
    h = cell(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError):
        cell.backward((np.ones((2, 5), np.float32), np.ones((2, 6), np.float32)))
    dx, _ = cell.backward(tuple(np.ones_like(v) for v in h))
    assert dx.shape == (2, 4)
    with pytest.raises(ValueError, match="no forward pass"):
        cell.backward(tuple(np.ones_like(v) for v in h))


def test_load_state_dict_strict_false_and_what_it_returns():
    m = rnnkit.GRU(3, 4, num_layers=2, seed=0)
    other = rnnkit.GRU(3, 4, num_layers=1, seed=1)
    sd = other.state_dict()
    with pytest.raises(ValueError, match="missing keys"):
        m.load_state_dict(sd)
    got = m.load_state_dict(dict(sd, extra=np.zeros(2)), strict=False)
    assert got.unexpected_keys == ["extra"] and "weight_ih_l1" in got.missing_keys
    np.testing.assert_array_equal(m.params["weight_ih_l0"], other.params["weight_ih_l0"])
    with pytest.raises(ValueError, match="expected shape"):
        m.load_state_dict({"weight_ih_l0": np.zeros((2, 2))}, strict=False)
    assert m.load_state_dict(m.state_dict()) == ([], [])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_nan_padding_past_the_lengths_is_never_read(cell):
    m = CLS[cell](3, 4, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 3, 3)).astype(np.float32)
    lengths = [6, 4, 2]
    y0, s0 = m(x.copy(), lengths=lengths)
    m.clear_cache()
    x[4:, 1], x[2:, 2] = np.nan, np.inf
    y, s = m(x, lengths=lengths)
    np.testing.assert_array_equal(y, y0)
    x[1, 1, 0] = np.nan                                           # inside sequence 1: refused
    with pytest.raises(ValueError, match="within lengths"):
        m(x, lengths=lengths)
    with pytest.raises(ValueError):
        m(x)


def test_submodules_after_a_plain_import():
    import subprocess
    import sys

    code = ("import sys, rnnkit; assert 'numpy' not in sys.modules; "
            "print(rnnkit.onnx.export.__name__, rnnkit.interop.to_torch.__name__, rnnkit.data.text.CharVocab.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["export", "to_torch", "CharVocab"]
    with pytest.raises(AttributeError):
        rnnkit.data.no_such_module


def test_batched_stream_products_are_split_and_single_streams_are_not(monkeypatch):
    from rnnkit import products as P

    calls = []
    real = P.matmul_into
    monkeypatch.setattr(P, "matmul_into", lambda a, b, out: calls.append(a.shape) or real(a, b, out))
    m = rnnkit.LSTM(64, 256, seed=0)
    x = np.random.default_rng(0).standard_normal((3, 64, 64)).astype(np.float32)
    s = m.stream(batch_size=64)
    ys = np.array([s.step(x[t]) for t in range(3)])
    np.testing.assert_allclose(ys, m(x)[0], rtol=1e-5, atol=1e-6)
    assert calls and all(shape[0] == 64 for shape in calls)
    calls.clear()
    one = m.stream(batch_size=1)
    one.step(x[0, :1])
    assert calls == []


def test_torch_conversions_say_what_does_not_carry_over():
    torch = pytest.importorskip("torch")
    from rnnkit.errors import UserError
    from rnnkit.interop import from_torch, to_torch

    with pytest.raises(UserError, match=r"Embedding\(max_norm=1.0\) has no rnnkit counterpart"):
        from_torch(torch.nn.Embedding(10, 3, max_norm=1.0))
    with pytest.warns(UserWarning, match="padding_idx=0"):
        e = from_torch(torch.nn.Embedding(10, 3, padding_idx=0))
    assert e.params["weight"].shape == (10, 3)
    with pytest.warns(UserWarning, match="recurrent_dropout=0.3"):
        t = to_torch(rnnkit.LSTM(4, 5, recurrent_dropout=0.3))
    assert isinstance(t, torch.nn.LSTM)


def test_sampling_never_draws_the_unknown_character():
    """Id 0, the unknown character, is never a training target; a model that still gives it most
    of the probability does not print U+FFFD, one sample at a time or in a batch, greedy or not."""
    from rnnkit.data.text import UNK, CharVocab
    from rnnkit.models import CharLM

    vocab = CharVocab.from_text("abcdefgh ")
    m = CharLM(len(vocab), 4, 8, 1, "lstm", seed=0)
    m.head.params["bias"][0] = 50.0                             # the unknown character, by far the likeliest
    for temperature in (0, 1.0, 5.0):
        assert UNK not in m.sample(vocab, 200, temperature=temperature, prime="ab", rng=1)
        assert not any(UNK in s for s in m.sample(vocab, 50, temperature=temperature, top_k=2, n=8, rng=1))
