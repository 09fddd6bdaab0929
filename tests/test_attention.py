"""Attention: float64 finite differences for every kind, equivalence with a PyTorch reference
written here, masking (exact zeros, fully masked rows), and bad input."""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.functional.attention import masked_softmax

from .helpers import numeric_grad, sample_indices

KINDS = ["additive", "dot", "general", "concat"]


def torch_attention(kind, q, K, p, mask):
    """The formulas of each kind, in PyTorch."""
    if kind == "dot":
        e = torch.einsum("snh,nh->sn", K, q)
    elif kind == "general":
        e = torch.einsum("snh,nh->sn", K, q @ p["weight"].T)
    else:
        if kind == "concat":
            qq = q[None].expand(K.shape[0], -1, -1)
            pre = torch.cat([qq, K], dim=-1) @ p["weight"].T
        else:
            pre = K @ p["weight_k"].T + (q @ p["weight_q"].T)[None] + p["bias"]
        e = torch.tanh(pre) @ p["v"]
    if mask is not None:
        e = e.masked_fill(~torch.tensor(mask), float("-inf"))
    alpha = torch.softmax(e, dim=0)
    return torch.einsum("sn,snh->nh", alpha, K), alpha


def problem(kind, seed=0, S=5, N=3, Hq=4, Hk=4):
    rng = np.random.default_rng(seed)
    att = rnnkit.Attention(Hq, Hk, kind=kind, attn_size=6, dtype=np.float64, seed=seed)
    if "bias" in att.params:
        att.params["bias"][...] = rng.standard_normal(6)
    q, K = rng.standard_normal((N, Hq)), rng.standard_normal((S, N, Hk))
    mask = np.arange(S)[:, None] < np.array([5, 2, 4])[None, :]
    G = rng.standard_normal((N, Hk))
    return att, q, K, mask, G


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_torch(kind, masked):
    att, q, K, mask, G = problem(kind, Hk=4 if kind == "dot" else 3)
    mask = mask if masked else None
    ctx, alpha = att(q, K, mask)
    dq, dK = att.backward(G)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in att.params.items()}
    tq, tK = torch.tensor(q, requires_grad=True), torch.tensor(K, requires_grad=True)
    tctx, talpha = torch_attention(kind, tq, tK, tp, mask)
    (tctx * torch.tensor(G)).sum().backward()
    np.testing.assert_allclose(ctx, tctx.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(alpha, talpha.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dq, tq.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dK, tK.grad.numpy(), rtol=1e-10, atol=1e-13)
    for k, v in tp.items():
        np.testing.assert_allclose(att.grads[k], v.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("kind", KINDS)
def test_attention_finite_differences(kind):
    att, q, K, mask, G = problem(kind, seed=2, Hk=4 if kind == "dot" else 5)
    att.zero_grad()
    att(q, K, mask)
    dq, dK = att.backward(G)

    def loss():
        c, _ = att(q, K, mask)
        att.clear_cache()
        return float((G * c).sum())

    rng = np.random.default_rng(0)
    checks = [("q", q, dq), ("keys", K, dK)] + [(k, p, att.grads[k]) for k, p in att.params.items()]
    for name, arr, grad in checks:
        for idx in sample_indices(arr.shape, 8, rng):
            assert grad[idx] == pytest.approx(numeric_grad(loss, arr, idx), rel=1e-6, abs=1e-9), (name, idx)


def test_masked_steps_get_exactly_zero_weight_and_no_gradient():
    att, q, K, mask, G = problem("additive")
    _, alpha = att(q, K, mask)
    assert np.all(alpha[~mask] == 0.0) and np.allclose(alpha.sum(0), 1.0)
    _, dK = att.backward(G)
    assert np.all(dK[~mask] == 0.0)
    K2 = K.copy()
    K2[~mask] = 1e6                                      # garbage in padding changes nothing
    c1, _ = att(q, K, mask)
    att.clear_cache()
    c2, _ = att(q, K2, mask)
    np.testing.assert_array_equal(c1, c2)


def test_fully_masked_row_is_an_error_not_nan():
    with pytest.raises(ValueError, match="sequence 1 has none"):
        masked_softmax(np.zeros((3, 2)), np.array([[True, False]] * 3))
    att, q, K, mask, _ = problem("general", Hk=3)
    mask[:, 2] = False
    with pytest.raises(ValueError, match="at least one valid encoder step"):
        att(q, K, mask)


def test_attention_bad_input():
    att = rnnkit.Attention(4, 3, kind="general")
    q, K = np.zeros((2, 4), np.float32), np.zeros((5, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"Attention keys \(S, N, Hk\): expected shape \(\*, 2, 3\), got \(5, 3, 3\)"):
        att(q, np.zeros((5, 3, 3), np.float32))
    with pytest.raises(TypeError, match="expected a boolean array"):
        att(q, K, mask=np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"Attention mask \(S, N\)"):
        att(q, K, mask=np.ones((4, 2), bool))
    with pytest.raises(ValueError, match="dot attention: expected query_size == key_size"):
        rnnkit.Attention(4, 3, kind="dot")
    with pytest.raises(ValueError, match="attention kind: expected one of"):
        rnnkit.Attention(4, 3, kind="cosine")
    with pytest.raises(ValueError, match="no forward pass to differentiate"):
        rnnkit.Attention(4, 3).backward(np.zeros((2, 3), np.float32))
