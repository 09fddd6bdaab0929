"""The embedding folded into the first layer's input projection (rnnkit/functional/tokens.py):
the same loss and gradients as the dense lookup, finite differences through the folded products,
and the dense fallback wherever the fold does not apply."""
import numpy as np
import pytest

import rnnkit
from rnnkit.functional.tokens import TableGrad, TokenInput
from rnnkit.models import CharLM

pytest.importorskip("numba")


def _batch(V, L=7, N=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (L, N)), rng.integers(0, V, (L, N))


def _step(m, batch):
    m.zero_grad()
    loss, _, _ = m.train_step(batch)
    return loss, {k: v.copy() for k, v in m.grad_dict().items()}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("tie", [False, True])
def test_folded_charlm_equals_the_dense_lookup(cell, tie, monkeypatch):
    m = CharLM(11, 16, 16, 2, cell, dtype=np.float64, seed=0, tie_weights=tie)
    batch = _batch(11)
    folded, g_fold = _step(m, batch)
    assert m.rnn.takes_tokens()
    m.forward(batch[0])
    assert isinstance(m.rnn._cache[0][0].x, TokenInput)        # the first layer got the ids, not vectors
    m.clear_cache()
    monkeypatch.setattr(TokenInput, "folds", lambda self: False)
    dense, g_dense = _step(m, batch)
    assert folded == pytest.approx(dense, rel=1e-13)
    assert g_fold.keys() == g_dense.keys()
    for k in g_fold:
        np.testing.assert_allclose(g_fold[k], g_dense[k], rtol=1e-11, atol=1e-14, err_msg=k)


def test_folded_products_match_finite_differences():
    m = CharLM(6, 4, 5, 1, "lstm", dtype=np.float64, seed=2)
    x, y = _batch(6, L=6, N=3, seed=3)
    m.zero_grad()
    m.train_step((x, y))
    grads = m.grad_dict()
    params = {n: p for n, p, _ in m.named_parameters()}
    for name in ("embed.weight", "rnn.weight_ih_l0", "rnn.bias_ih_l0"):
        p = params[name]
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + 1e-6
            fp = m.evaluate((x, y))[0]
            p[idx] = old - 1e-6
            fm = m.evaluate((x, y))[0]
            p[idx] = old
            assert grads[name][idx] == pytest.approx((fp - fm) / 2e-6 / y.size, rel=1e-6, abs=1e-9), (name, idx)


def test_layers_that_cannot_fold_take_the_dense_input():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((5, 3))
    ids = rng.integers(0, 5, (6, 4))
    for m in (rnnkit.LSTM(3, 4, bidirectional=True, dtype=np.float64, seed=0),       # two directions
              rnnkit.GRU(3, 4, input_dropout=0.2, dtype=np.float64, seed=0),          # a regulariser
              rnnkit.LSTM(3, 4, layer_norm=True, dtype=np.float64, seed=0)):          # a gate variant
        assert not m.takes_tokens()
        state = m.rng.bit_generator.state
        y_tok, _ = m(TokenInput(ids, table))
        g_tok = m.backward(np.ones_like(y_tok))
        m.rng.bit_generator.state = state
        y, _ = m(table[ids])
        np.testing.assert_array_equal(y_tok, y)
        np.testing.assert_array_equal(g_tok, m.backward(np.ones_like(y)))
    lstm = rnnkit.LSTM(3, 4, dtype=np.float64, seed=0)                                # more rows than positions
    y, _ = lstm(TokenInput(ids[:1, :2], table))
    assert not isinstance(lstm._cache[0][0].x, TokenInput)
    np.testing.assert_array_equal(y, lstm(table[ids[:1, :2]])[0])


def test_a_frozen_embedding_takes_no_gradient_from_the_fold():
    m = CharLM(11, 8, 8, 1, "lstm", dtype=np.float64, seed=0)
    m.freeze("embed.*")
    m.zero_grad()
    m.train_step(_batch(11))
    assert not m.grad_dict().get("embed.weight", np.zeros(1)).any()
    emb = rnnkit.nn.Embedding(4, 2, dtype=np.float64, seed=0)
    emb.tokens(np.array([[0, 3]]))
    emb.zero_grad()
    emb.backward(TableGrad(np.arange(8.0).reshape(4, 2)))
    np.testing.assert_array_equal(emb.grads["weight"], np.arange(8.0).reshape(4, 2))
