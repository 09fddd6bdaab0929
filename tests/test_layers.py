"""Linear, Embedding, Dropout against torch; module registration and state dicts."""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.models import CharLM


def test_linear_matches_torch():
    lin = rnnkit.Linear(4, 3, dtype=np.float64, seed=0)
    t = torch.nn.Linear(4, 3, dtype=torch.float64)
    lin.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 2, 4))
    G = np.random.default_rng(1).standard_normal((5, 2, 3))
    xt = torch.tensor(x, requires_grad=True)
    (t(xt) * torch.tensor(G)).sum().backward()
    np.testing.assert_allclose(lin(x), t(xt).detach().numpy(), rtol=1e-12)
    dx = lin.backward(G)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(lin.grads["weight"], t.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(lin.grads["bias"], t.bias.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="expected last dimension 4"):
        lin(np.zeros((2, 5)))


def test_embedding_gradient_accumulates_repeats():
    e = rnnkit.Embedding(5, 3, dtype=np.float64, seed=0)
    idx = np.array([[1, 1], [4, 0]])
    y = e(idx)
    np.testing.assert_array_equal(y[0, 0], e.params["weight"][1])
    e.backward(np.ones((2, 2, 3)))
    np.testing.assert_array_equal(e.grads["weight"][:, 0], [1, 2, 0, 0, 1])
    with pytest.raises(ValueError, match=r"indices in \[0, 4\], got min 0, max 5"):
        e(np.array([0, 5]))
    with pytest.raises(TypeError, match="integer indices"):
        e(np.array([0.5]))


def test_dropout_train_eval_and_seed():
    d = rnnkit.Dropout(0.5, seed=1)
    x = np.ones((200, 10), np.float32)
    y = d(x)
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), y)
    np.testing.assert_array_equal(rnnkit.Dropout(0.5, seed=1)(x), y)
    d.eval()
    np.testing.assert_array_equal(d(x), x)
    with pytest.raises(ValueError, match="probability"):
        rnnkit.Dropout(1.5)


def test_composite_state_dict_uses_dotted_names():
    m = CharLM(10, 4, 6, 2, "gru", seed=0)
    names = list(m.state_dict())
    assert names[0] == "embed.weight" and "rnn.weight_hh_l1" in names and names[-1] == "head.bias"
    m2 = CharLM(10, 4, 6, 2, "gru", seed=1)
    m2.load_state_dict(m.state_dict())
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(m2.state_dict()[k], v)
    m.eval()
    assert not m.rnn.training and not m.drop.training


def test_charlm_gradients_match_finite_differences():
    m = CharLM(6, 3, 4, 2, "lstm", dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 6, (5, 2)), rng.integers(0, 6, (5, 2))
    m.zero_grad()
    m.train_step((x, y))
    grads = m.grad_dict()
    params = {n: p for n, p, _ in m.named_parameters()}

    def loss():
        out, _, _ = m.evaluate((x, y))
        return out / y.size

    for name in ("embed.weight", "rnn.weight_hh_l1", "head.weight", "rnn.bias_ih_l0"):
        p = params[name]
        for idx in [np.unravel_index(i, p.shape) for i in rng.choice(p.size, 4, replace=False)]:
            old = p[idx]
            p[idx] = old + 1e-6
            fp = loss()
            p[idx] = old - 1e-6
            fm = loss()
            p[idx] = old
            assert grads[name][idx] == pytest.approx((fp - fm) / 2e-6, rel=1e-6, abs=1e-9), name


def test_input_noise_gradient_finite_differences_and_torch():
    """InputNoise in training: y = s * x + sigma_j * eps, s = 1 + sigma_s * eta per (sequence, feature).
    dx from backward against float64 central differences (the generator replayed, so every forward
    draws the same noise) and against torch autograd on the same equation with the same draws."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 4))                                  # (L, N, D)
    G = rng.standard_normal((5, 3, 4))
    m = rnnkit.InputNoise(jitter=0.3, scale=0.2, dtype=np.float64, seed=4)
    state = m.rng.bit_generator.state

    def run(v):
        m.rng.bit_generator.state = state
        return m.forward(v)

    y = run(x)
    dx = m.backward(G)
    m.rng.bit_generator.state = state
    scale = 1.0 + 0.2 * m.rng.standard_normal((3, 4))                  # the draws, in the module's order
    eps = 0.3 * m.rng.standard_normal((5, 3, 4))
    np.testing.assert_allclose(y, x * scale[None] + eps, rtol=0, atol=1e-15)
    assert not np.allclose(scale, 1.0) and np.abs(eps).max() > 0
    num = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += 1e-6
        xm[idx] -= 1e-6
        num[idx] = ((G * run(xp)).sum() - (G * run(xm)).sum()) / 2e-6
        m.clear_cache()
    np.testing.assert_allclose(dx, num, rtol=1e-7, atol=1e-9)
    xt = torch.tensor(x, requires_grad=True)
    (torch.tensor(G) * (xt * torch.tensor(scale)[None] + torch.tensor(eps))).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_input_noise_eval_seed_and_bad_input():
    x = np.random.default_rng(1).standard_normal((4, 2, 3)).astype(np.float32)
    a, b = rnnkit.InputNoise(0.1, 0.1, seed=3), rnnkit.InputNoise(0.1, 0.1, seed=3)
    ya = a(x)
    assert ya.dtype == np.float32 and not np.array_equal(ya, x)
    np.testing.assert_array_equal(ya, b(x))                             # same seed, same noise
    assert not np.array_equal(a(x), ya)                                 # fresh noise at every call
    a.eval()
    assert a(x) is x and a.backward(x) is x                             # identity in evaluation
    assert rnnkit.InputNoise(0.0, 0.0)(x) is x
    only_scale = rnnkit.InputNoise(0.0, 0.5, seed=0)(x)
    ratio = only_scale / x                                              # one factor per (sequence, feature)
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[0], ratio.shape), rtol=1e-5)
    for bad in (-0.1, float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match="InputNoise jitter: expected a finite number >= 0, got"):
            rnnkit.InputNoise(jitter=bad)
    with pytest.raises(ValueError, match=r"expected x of shape \(L, N, D\), got \(4, 2\)"):
        rnnkit.InputNoise(0.1)(x[:, :, 0])


def test_evaluating_restores_the_mode_even_when_the_block_raises():
    from rnnkit.nn import Dropout, InputNoise

    for m in (Dropout(0.5), InputNoise(0.1)):
        m.train()
        with m.evaluating():
            assert not m.training
        assert m.training
        m.eval()
        with pytest.raises(RuntimeError):
            with m.evaluating():
                raise RuntimeError("inside")
        assert not m.training
        m.train()
        with pytest.raises(RuntimeError):
            with m.evaluating():
                raise RuntimeError("inside")
        assert m.training
