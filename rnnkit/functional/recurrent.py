"""The time loop: one direction of one layer, forward and backward through time.

A cell family resolves once, through :data:`CELLS`, to its step and step-backward functions;
this module composes them over time. The input projection ``x W_ih^T + b_ih`` for every step
is one matrix product before the loop, and the weight gradients are one matrix product each
after the backward loop; the loop itself does only ``h W_hh^T`` and the gate arithmetic.

Variable-length batches follow PyTorch's packed-sequence semantics: a boolean ``mask`` of
shape ``(L, N, 1)`` marks valid steps; at a padded step the state is carried unchanged, the
output is zero and no gradient flows into the step. A reverse direction runs on each sequence
reversed within its own length (:func:`reverse_index`), so it starts at each sequence's end.

This module is the reference implementation and imports nothing above it. A faster loop with
the same contract (``loop(ops, x, state0, W_ih, W_hh, b_ih, b_hh, mask) -> (y, state, h_prev,
steps)``, where ``steps`` has its own ``layer_backward``) is passed in by the caller:
:mod:`rnnkit.nn.recurrent` chooses it, once, from one mapping.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple

import numpy as np

from .activations import hard_sigmoid, hard_sigmoid_grad
from .gru import (gru_reset_before_step, gru_reset_before_step_backward, gru_reset_before_weight_hh_grad, gru_step,
                  gru_step_backward)
from .lstm import lstm_step, lstm_step_backward
from .noise import StepNoise, zone_at
from .rnn import rnn_relu_step, rnn_relu_step_backward, rnn_tanh_step, rnn_tanh_step_backward
from ..products import matmul


def outer_weight_hh_grad(dhh, h_prev, steps):
    """``dW_hh = dhh^T h_prev``: every row block of ``W_hh`` multiplies the state entering the step."""
    return matmul(dhh.T, h_prev)  # (G*H, M) @ (M, H)


@dataclass(frozen=True)
class CellOps:
    """What the time loop needs to know about a cell family."""

    name: str
    n_gates: int       # blocks of H rows stacked in W_ih / W_hh
    n_states: int      # 1 for (h,), 2 for (h, c)
    step: Callable
    step_backward: Callable
    fused: bool = True  # the fast kernels implement it (the hard-sigmoid variants run on NumPy)
    # (dhh (M, G*H), h_prev (M, H), step caches) -> dW_hh; only the reset-before GRU needs its own
    weight_hh_grad: Callable = outer_weight_hh_grad


CELLS: dict[str, CellOps] = {
    "rnn_tanh": CellOps("rnn_tanh", 1, 1, rnn_tanh_step, rnn_tanh_step_backward),
    "rnn_relu": CellOps("rnn_relu", 1, 1, rnn_relu_step, rnn_relu_step_backward),
    "lstm": CellOps("lstm", 4, 2, lstm_step, lstm_step_backward),
    "gru": CellOps("gru", 3, 1, gru_step, gru_step_backward),
    # gates squashed by the piecewise-linear hard sigmoid instead of the logistic function
    "lstm_hard": CellOps("lstm_hard", 4, 2, partial(lstm_step, gate=hard_sigmoid),
                         partial(lstm_step_backward, gate_grad=hard_sigmoid_grad), fused=False),
    "gru_hard": CellOps("gru_hard", 3, 1, partial(gru_step, gate=hard_sigmoid),
                        partial(gru_step_backward, gate_grad=hard_sigmoid_grad), fused=False),
    # the reset gate applied before the recurrent product (GRU(reset_after=False), Keras / ONNX)
    "gru_reset_before": CellOps("gru_reset_before", 3, 1, gru_reset_before_step, gru_reset_before_step_backward,
                                fused=False, weight_hh_grad=gru_reset_before_weight_hh_grad),
    "gru_reset_before_hard": CellOps(
        "gru_reset_before_hard", 3, 1, partial(gru_reset_before_step, gate=hard_sigmoid),
        partial(gru_reset_before_step_backward, gate_grad=hard_sigmoid_grad), fused=False,
        weight_hh_grad=gru_reset_before_weight_hh_grad),
}


GATE_NAMES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ()}
SQUASHED = {"i", "f", "o", "r", "z"}   # gates in (0, 1); the others (g, n) are tanh, in (-1, 1)


def step_gates(ops: CellOps, step_cache) -> dict:
    """The gate activations of one step, ``{name: (N, H)}`` (LSTM i, f, g, o; GRU r, z, n; none for RNN)."""
    names = GATE_NAMES[ops.name.split("_")[0]]
    if not names:
        return {}
    a = step_cache.gates
    H = a.shape[-1] // len(names)
    return {name: a[..., k * H:(k + 1) * H] for k, name in enumerate(names)}


class LayerCache(NamedTuple):
    x: np.ndarray            # (L, N, H_in) input in processing order
    h_prev: np.ndarray       # (L, N, H) state entering each step
    steps: list              # per-step caches from ops.step
    mask: np.ndarray | None  # (L, N, 1) bool, processing order
    rev: np.ndarray | None   # (L, N) time index for per-sequence reversal, or None
    noise: StepNoise | None = None  # recurrent dropout / zoneout masks, processing order


def length_mask(lengths: np.ndarray, seq_len: int) -> np.ndarray:
    """``(L, N, 1)`` boolean mask, true where ``t < lengths[n]``."""
    return (np.arange(seq_len)[:, None] < lengths[None, :])[:, :, None]


def reverse_index(lengths: np.ndarray, seq_len: int) -> np.ndarray:
    """``(L, N)`` time indices reversing each sequence within its length; padding stays at the end."""
    t = np.arange(seq_len)[:, None]
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def reverse_time(x: np.ndarray, rev: np.ndarray | None) -> np.ndarray:
    """Reverse ``(L, N, ...)`` along time: whole sequences if ``rev`` is None, else per sequence."""
    if rev is None:
        return x[::-1]
    return x[rev, np.arange(x.shape[1])[None, :]]


def reverse_noise(noise: StepNoise | None, rev) -> StepNoise | None:
    """The step noise of a reverse direction: zoneout masks (natural time order) reversed like its input."""
    if noise is None or noise.zone is None:
        return noise
    return noise._replace(zone=tuple(reverse_time(z, rev) if isinstance(z, np.ndarray) else z for z in noise.zone))


def sequence_forward(ops: CellOps, x_proj, state0, W_hh, b_hh=None, mask=None, noise=None):
    """Run ``ops.step`` over ``x_proj`` (L, N, G*H). Returns ``(y, state, h_prev, step_caches)``.

    ``noise`` (a :class:`~rnnkit.functional.noise.StepNoise`) adds recurrent dropout (the step
    sees ``h_{t-1} * m`` in its recurrent product, and ``h_prev`` holds that) and zoneout
    (``s_t = s~_t + d_t (s_{t-1} - s~_t)`` for each zoned-out state)."""
    L, N = x_proj.shape[:2]
    H = W_hh.shape[1]
    y = np.empty((L, N, H), dtype=x_proj.dtype)       # (L, N, H)
    h_prev = np.empty((L, N, H), dtype=x_proj.dtype)  # (L, N, H): what each recurrent product saw
    caches = [None] * L
    state = tuple(state0)
    rec, zone = (None, None) if noise is None else (noise.rec, noise.zone)
    for t in range(L):
        if rec is None:
            h_prev[t] = state[0]
            new, caches[t] = ops.step(x_proj[t], state, W_hh, b_hh)
        else:
            h_prev[t] = h_in = state[0] * rec
            new, caches[t] = ops.step(x_proj[t], state, W_hh, b_hh, h_rec=h_in)
        if zone is not None:
            new = tuple(a if d is None else a + d * (s - a) for a, s, d in zip(new, state, zone_at(zone, t)))
        if mask is not None:
            m = mask[t]
            new = tuple(np.where(m, a, b) for a, b in zip(new, state))
            np.multiply(new[0], m, out=y[t])
        else:
            y[t] = new[0]
        state = new
    return y, state, h_prev, caches


def sequence_backward(ops: CellOps, dy, dstate, caches, W_hh, mask=None, record=None, noise=None):
    """Backward through time. ``dy`` (L, N, H), ``dstate`` gradients w.r.t. the final state.

    Returns ``(dx_proj, dhh, dstate0)`` with ``dx_proj``/``dhh`` of shape (L, N, G*H). With
    ``record`` (an (L, N, H) array) it also stores the total gradient of the loss with respect
    to each step's hidden output, dL/dh_t, through the output and through every later step.
    ``noise``: the masks the forward pass used (zoneout: the step gets ``(1 - d_t) g`` and the
    previous state ``d_t g`` more).
    """
    L, N, H = dy.shape
    GH = W_hh.shape[0]
    dx_proj = np.empty((L, N, GH), dtype=dy.dtype)
    dhh = np.empty((L, N, GH), dtype=dy.dtype)
    if mask is not None:
        dy = dy * mask  # outputs at padded steps are constant zeros
    rec, zone = (None, None) if noise is None else (noise.rec, noise.zone)
    d = tuple(dstate)
    for t in range(L - 1, -1, -1):
        d = (d[0] + dy[t],) + d[1:]
        if record is not None:
            record[t] = d[0]
        g = d if mask is None else tuple(x * mask[t] for x in d)    # nothing flows into a padded step
        g_step = g
        if zone is not None:
            z_t = zone_at(zone, t)
            g_step = tuple(x if z is None else x * (1 - z) for x, z in zip(g, z_t))
        if rec is None:
            dx_proj[t], dhh[t], dprev = ops.step_backward(g_step, caches[t], W_hh)
        else:
            dx_proj[t], dhh[t], dprev = ops.step_backward(g_step, caches[t], W_hh, rec_mask=rec)
        if zone is not None:
            dprev = tuple(p if z is None else p + z * x for p, x, z in zip(dprev, g, z_t))
        d = dprev if mask is None else tuple(np.where(mask[t], p, x) for p, x in zip(dprev, d))
    return dx_proj, dhh, d


def reference_loop(ops: CellOps, x, state0, W_ih, W_hh, b_ih=None, b_hh=None, mask=None, noise=None):
    """The NumPy time loop (natural order): ``(y, state, h_prev, step caches)``. ``noise``
    (a :class:`~rnnkit.functional.noise.StepNoise`) adds recurrent dropout and zoneout."""
    x_proj = matmul(x.reshape(-1, x.shape[-1]), W_ih.T).reshape(x.shape[:-1] + (-1,))  # (L, N, H_in) @ (H_in, G*H) -> (L, N, G*H)
    if b_ih is not None:
        x_proj += b_ih
    return sequence_forward(ops, x_proj, state0, W_hh, b_hh, mask, noise)


def layer_forward(ops: CellOps, x, state0, W_ih, W_hh, b_ih=None, b_hh=None, mask=None, reverse=False, rev=None,
                  loop=None, noise=None):
    """One direction of one layer over a whole sequence.

    x: (L, N, H_in); state0: tuple of (N, H). Returns ``(y, state, cache)``, ``y`` (L, N, H)
    in natural time order. ``loop`` runs the time loop (default: :func:`reference_loop`).
    ``noise`` (:class:`~rnnkit.functional.noise.StepNoise`, zoneout masks in natural time order)
    runs on :func:`reference_loop`: the fused kernels have no per-step hook.
    """
    if reverse:
        x, noise = reverse_time(x, rev), reverse_noise(noise, rev)
    if noise is None:
        y, state, h_prev, steps = (loop or reference_loop)(ops, x, state0, W_ih, W_hh, b_ih, b_hh, mask)
    else:
        y, state, h_prev, steps = reference_loop(ops, x, state0, W_ih, W_hh, b_ih, b_hh, mask, noise)
    if reverse:
        y = reverse_time(y, rev)
    return y, state, LayerCache(x, h_prev, steps, mask, rev if reverse else None, noise)


def layer_backward(ops: CellOps, dy, dstate, cache: LayerCache, W_ih, W_hh, reverse=False, record=False, skip=(),
                   into=None):
    """Gradients of one direction of one layer.

    Returns ``(dx, dstate0, grads)`` where ``grads`` has keys ``W_ih, W_hh, b_ih, b_hh``, less the
    weight-gradient products named in ``skip`` (frozen weights: not computed at all); ``"state0"``
    in ``skip`` lets a loop leave out the gradient reaching the initial state (``dstate0`` may
    then be empty: the caller has no use for it, as a module whose state was not given); with
    ``record=True`` also ``grads["h"]``, dL/dh_t (L, N, H) in natural time order (this runs the
    reference loop, which reads the fast path's buffers just as well). ``into`` (optional: arrays
    by the names ``"W_ih"``, ``"W_hh"``) lets the fast loops add those gradients into the given
    arrays instead of returning them (:func:`rnnkit.kernels.sequence.layer_backward`); a name
    still in ``grads`` was not added.
    """
    if reverse:
        dy = reverse_time(dy, cache.rev)
    if not record and hasattr(cache.steps, "layer_backward"):   # a fast loop's buffers: its own backward
        dx, dstate0, grads = cache.steps.layer_backward(ops, dy, dstate, cache.x, W_ih, W_hh, skip, into)
        return (reverse_time(dx, cache.rev) if reverse else dx), dstate0, grads
    dh = np.empty(dy.shape, dy.dtype) if record else None
    dx_proj, dhh, dstate0 = sequence_backward(ops, dy, dstate, cache.steps, W_hh, cache.mask, record=dh,
                                              noise=cache.noise)
    L, N, GH = dx_proj.shape
    flat_dxp = dx_proj.reshape(L * N, GH)
    flat_dhh = dhh.reshape(L * N, GH)
    grads = {"b_ih": flat_dxp.sum(axis=0), "b_hh": flat_dhh.sum(axis=0)}
    if "W_hh" not in skip:
        grads["W_hh"] = ops.weight_hh_grad(flat_dhh, cache.h_prev.reshape(L * N, -1), cache.steps)  # (G*H, H)
    return input_backward(dx_proj, W_ih, cache, grads, reverse, dh, skip), dstate0, grads


def input_backward(dx_proj, W_ih, cache, grads: dict, reverse=False, dh=None, skip=()):
    """The end of a layer's backward, from the gradient of the input projection ``dx_proj``
    (L, N, G*H): ``grads["W_ih"]`` (one product over all steps; not computed when ``"W_ih"`` is in
    ``skip``), ``grads["h"]`` from the recorded ``dh`` when given, and the returned input
    gradient, both in natural time order. ``cache`` has the input ``x`` and the reversal ``rev``
    in processing order."""
    L, N, GH = dx_proj.shape
    flat = dx_proj.reshape(L * N, GH)       # a view, also of a fused loop's feature-major buffer
    if "W_ih" not in skip:
        grads["W_ih"] = matmul(flat.T, cache.x.reshape(L * N, -1))   # (G*H, L*N) @ (L*N, H_in)
    dx = matmul(flat, W_ih).reshape(L, N, -1)    # (L*N, G*H) @ (G*H, H_in): one product (a stacked one
    #                                         over a strided view is not BLAS's: 100x slower)
    if reverse:
        dx = reverse_time(dx, cache.rev)
    if dh is not None:
        grads["h"] = reverse_time(dh, cache.rev) if reverse else dh
    return dx
