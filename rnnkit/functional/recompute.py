"""Gradient checkpointing through time: one direction of one layer in O(L / k + k) kept steps.

The forward pass runs the sequence in segments of ``k`` steps and keeps only the state entering
each segment, dropping the segment's per-step caches (gate activations, ``h_{t-1}``: what BPTT
needs). The backward pass walks the segments from the last: it recomputes a segment's forward
pass from its saved state (now keeping the caches), backpropagates through it, and hands the
state gradient to the segment before. Gradients are exactly those of the unsegmented pass (the
same arithmetic, run twice); time is about one extra forward pass. With ``k = sqrt(L)`` the
caches held at once go from L steps to about 2 sqrt(L).

Same contract as :func:`rnnkit.functional.recurrent.layer_forward` / ``layer_backward`` (natural
time order in and out, packed-sequence masks, per-sequence reversal for a reverse direction), and
the same ``loop`` argument, so it runs on the fused kernels as well as on the reference loop.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .recurrent import CellOps, layer_backward, layer_forward, reverse_time


class SegmentedCache(NamedTuple):
    x: np.ndarray            # (L, N, H_in) input in processing order
    starts: list             # the state entering each segment (tuples of (N, H))
    k: int                   # steps per segment
    mask: np.ndarray | None  # (L, N, 1) processing order
    rev: np.ndarray | None   # per-sequence reversal of a reverse direction, or None
    bias: tuple              # (b_ih, b_hh) for the recomputation


def segmented_layer_forward(ops: CellOps, x, state0, W_ih, W_hh, b_ih=None, b_hh=None, mask=None, reverse=False,
                            rev=None, loop=None, k=64):
    """Like ``layer_forward``; keeps the states at segment starts only. Returns ``(y, state, cache)``."""
    if reverse:
        x = reverse_time(x, rev)
    L = x.shape[0]
    y, starts, state = None, [], tuple(state0)
    for s in range(0, L, k):
        seg = slice(s, min(s + k, L))
        starts.append(tuple(np.array(a, copy=True) for a in state))
        ys, state, _ = layer_forward(ops, x[seg], state, W_ih, W_hh, b_ih, b_hh,
                                     mask=None if mask is None else mask[seg], loop=loop)
        if y is None:
            y = np.empty((L,) + ys.shape[1:], ys.dtype)
        y[seg] = ys                                     # a copy: the fast loop's output is its buffer
        state = tuple(np.array(a, copy=True) for a in state)
    if reverse:
        y = reverse_time(y, rev)
    return y, state, SegmentedCache(x, starts, k, mask, rev if reverse else None, (b_ih, b_hh))


def segmented_layer_backward(ops: CellOps, dy, dstate, cache: SegmentedCache, W_ih, W_hh, reverse=False, loop=None,
                             skip=()):
    """Like ``layer_backward`` (``grads``: ``W_ih, W_hh, b_ih, b_hh`` less ``skip``), recomputing each segment."""
    if reverse:
        dy = reverse_time(dy, cache.rev)
    L, k = cache.x.shape[0], cache.k
    dx = np.empty(cache.x.shape, dy.dtype)
    grads, d = None, tuple(dstate)
    for i in range(len(cache.starts) - 1, -1, -1):
        seg = slice(i * k, min((i + 1) * k, L))
        m = None if cache.mask is None else cache.mask[seg]
        _, _, seg_cache = layer_forward(ops, cache.x[seg], cache.starts[i], W_ih, W_hh, *cache.bias, mask=m,
                                        loop=loop)
        dx[seg], d, g = layer_backward(ops, dy[seg], d, seg_cache, W_ih, W_hh, skip=skip)
        grads = g if grads is None else {name: grads[name] + g[name] for name in grads}
    if reverse:
        dx = reverse_time(dx, cache.rev)
    return dx, d, grads
