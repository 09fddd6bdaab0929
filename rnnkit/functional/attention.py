r"""Attention over encoder states, forward and backward, for one decoder query per sequence.

Shapes: query ``q`` (N, Hq); keys ``K`` (S, N, Hk), time-major like every sequence in rnnkit,
which are also the values; ``mask`` (S, N) bool, true at valid encoder steps. Scores ``e``
(S, N) by one of:

* ``dot`` (Luong): :math:`e_s = k_s \cdot q` (needs Hq = Hk);
* ``general`` (Luong): :math:`e_s = k_s \cdot W q`, ``W`` (Hk, Hq);
* ``concat`` (Luong): :math:`e_s = v \cdot \tanh(W [q; k_s])`, ``W`` (A, Hq + Hk), ``v`` (A,);
* ``additive`` (Bahdanau): :math:`e_s = v \cdot \tanh(W_q q + W_k k_s + b)`.

Weights :math:`\alpha = \mathrm{softmax}_s(e)` over the valid steps only (a masked step gets
exactly 0; a row with no valid step is an error), context :math:`c = \sum_s \alpha_s k_s`.
``concat`` is ``additive`` without the bias, with ``W_q`` and ``W_k`` side by side in one
matrix; both run through the same code.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

KINDS = ("additive", "dot", "general", "concat")


class AttentionCache(NamedTuple):
    kind: str
    q: np.ndarray          # (N, Hq)
    K: np.ndarray          # (S, N, Hk)
    alpha: np.ndarray      # (S, N)
    extra: tuple           # per kind: general (u,), additive/concat (a,)


def masked_softmax(e: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Softmax over axis 0 of ``e`` (S, N) with masked entries exactly zero."""
    if mask is not None:
        if not mask.any(axis=0).all():
            bad = int(np.flatnonzero(~mask.any(axis=0))[0])
            raise ValueError(f"attention mask: expected at least one valid encoder step per sequence, "
                             f"sequence {bad} has none")
        e = np.where(mask, e, -np.inf)
    e = e - e.max(axis=0, keepdims=True)
    a = np.exp(e)
    return a / a.sum(axis=0, keepdims=True)


def _additive_parts(kind, params, Hq):
    if kind == "concat":
        W = params["weight"]
        return W[:, :Hq], W[:, Hq:], None, params["v"]
    return params["weight_q"], params["weight_k"], params.get("bias"), params["v"]


def attention_forward(kind, q, K, params, mask=None):
    """Returns ``(context (N, Hk), alpha (S, N), cache)``."""
    if kind == "dot":
        e = np.einsum("snh,nh->sn", K, q)
        extra = ()
    elif kind == "general":
        u = q @ params["weight"].T                          # (N, Hq) @ (Hq, Hk) -> (N, Hk)
        e = np.einsum("snh,nh->sn", K, u)
        extra = (u,)
    elif kind in ("additive", "concat"):
        Wq, Wk, b, v = _additive_parts(kind, params, q.shape[1])
        pre = K @ Wk.T + (q @ Wq.T)[None]                   # (S, N, A)
        if b is not None:
            pre += b
        a = np.tanh(pre)
        e = a @ v                                           # (S, N)
        extra = (a,)
    else:
        raise ValueError(f"attention kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    alpha = masked_softmax(e, mask)
    context = np.einsum("sn,snh->nh", alpha, K)
    return context, alpha, AttentionCache(kind, q, K, alpha, extra)


def attention_backward(dcontext, cache: AttentionCache, params, dalpha=None):
    """Gradients for ``dcontext`` (N, Hk) (and optionally ``dalpha`` (S, N), e.g. from an
    attention penalty). Returns ``(dq, dK, grads)`` with ``grads`` keyed like ``params``."""
    kind, q, K, alpha, extra = cache
    da = np.einsum("snh,nh->sn", K, dcontext)              # d loss / d alpha
    if dalpha is not None:
        da = da + dalpha
    dK = alpha[:, :, None] * dcontext[None]                 # through the weighted sum
    de = alpha * (da - (alpha * da).sum(axis=0, keepdims=True))   # softmax backward; 0 where masked
    grads = {}
    if kind == "dot":
        dq = np.einsum("sn,snh->nh", de, K)
        dK += de[:, :, None] * q[None]
    elif kind == "general":
        (u,) = extra
        du = np.einsum("sn,snh->nh", de, K)                 # (N, Hk)
        dK += de[:, :, None] * u[None]
        dq = du @ params["weight"]                          # (N, Hk) @ (Hk, Hq)
        grads["weight"] = du.T @ q
    else:
        (a,) = extra
        Wq, Wk, b, v = _additive_parts(kind, params, q.shape[1])
        grads["v"] = np.einsum("sn,sna->a", de, a)
        dpre = de[:, :, None] * v * (1.0 - a * a)           # (S, N, A)
        dpre_q = dpre.sum(axis=0)                           # (N, A)
        dK += dpre @ Wk                                     # (S, N, A) @ (A, Hk)
        dq = dpre_q @ Wq
        S, N, A = dpre.shape
        dWk = dpre.reshape(S * N, A).T @ K.reshape(S * N, -1)
        dWq = dpre_q.T @ q
        if kind == "concat":
            grads["weight"] = np.concatenate([dWq, dWk], axis=1)
        else:
            grads["weight_q"], grads["weight_k"] = dWq, dWk
            if b is not None:
                grads["bias"] = dpre_q.sum(axis=0)
    return dq, dK, grads
