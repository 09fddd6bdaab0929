r"""Regularisation inside the time loop: recurrent dropout and zoneout, forward and backward.

Both compose the cell's own step functions (:data:`rnnkit.functional.recurrent.CELLS`), so every
cell family, gate function and the packed-sequence masking get them without a new step.

**Recurrent dropout** (Gal & Ghahramani 2016, "A Theoretically Grounded Application of Dropout in
Recurrent Neural Networks"; Keras's ``recurrent_dropout``): one mask :math:`m` (N, H) per
sequence, the same at every step, on the state where it enters the recurrent product,

.. math::
    \text{pre}_t = x_t W_{ih}^T + b_{ih} + (h_{t-1} \odot m) W_{hh}^T + b_{hh},
    \qquad m_{nj} \in \{0, 1/(1-p)\}

The cell state and the GRU's carried term :math:`z \odot h_{t-1}` keep the unmasked
:math:`h_{t-1}`. The steps take it as ``h_rec`` and their backward as ``rec_mask``.

**Zoneout** (Krueger et al. 2017, "Zoneout: Regularizing RNNs by Randomly Preserving Hidden
Activations"): each unit of each state keeps its previous value with probability :math:`z`,

.. math::
    s_t = d_t \odot s_{t-1} + (1 - d_t) \odot \tilde s_t,\qquad d_t \sim \mathrm{Bernoulli}(z)

with a fresh mask :math:`d_t` every step (training) or :math:`d_t = z` (evaluation: the
expectation, as in the paper). :math:`\tilde s_t` is the cell's step; :math:`s` is ``h`` (and
``c`` for the LSTM, with its own :math:`z_c`). The output is the zoned-out ``h``. Backward:
the step receives :math:`(1 - d_t) \odot g` and the previous state gets :math:`d_t \odot g` more.

At a padded step (``mask`` false) the state is carried, the output is zero and nothing flows
into the step, exactly as in :func:`rnnkit.functional.recurrent.sequence_forward`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class StepNoise(NamedTuple):
    """The masks one direction of one layer uses inside its time loop (processing order)."""

    rec: np.ndarray | None  # (N, H) recurrent-dropout mask on h_{t-1} in the recurrent product, 0 or 1/(1-p)
    zone: tuple | None      # per state (h, or h and c): (L, N, H) masks d_t (1 = keep the previous value),
                            # a float z (evaluation: the expectation), or None (that state is not zoned out)


def _zone_at(zone, t):
    return tuple(z[t] if isinstance(z, np.ndarray) else z for z in zone)


def noisy_sequence_forward(ops, x_proj, state0, W_hh, b_hh, mask, noise: StepNoise):
    """:func:`~rnnkit.functional.recurrent.sequence_forward` with ``noise``. Returns ``(y, state,
    h_rec, step_caches)``; ``h_rec`` (L, N, H) is the state each recurrent product saw (what
    ``W_hh``'s gradient multiplies)."""
    L, N = x_proj.shape[:2]
    H = W_hh.shape[1]
    y = np.empty((L, N, H), dtype=x_proj.dtype)       # (L, N, H)
    h_rec = np.empty((L, N, H), dtype=x_proj.dtype)   # (L, N, H)
    caches = [None] * L
    state = tuple(state0)
    for t in range(L):
        h_in = None if noise.rec is None else state[0] * noise.rec   # (N, H)
        h_rec[t] = state[0] if h_in is None else h_in
        new, caches[t] = ops.step(x_proj[t], state, W_hh, b_hh, h_rec=h_in)
        if noise.zone is not None:                                   # s_t = s~_t + d_t (s_{t-1} - s~_t)
            new = tuple(a if d is None else a + d * (s - a) for a, s, d in zip(new, state, _zone_at(noise.zone, t)))
        if mask is not None:
            m = mask[t]
            new = tuple(np.where(m, a, b) for a, b in zip(new, state))
            np.multiply(new[0], m, out=y[t])
        else:
            y[t] = new[0]
        state = new
    return y, state, h_rec, caches


def noisy_sequence_backward(ops, dy, dstate, caches, W_hh, mask, noise: StepNoise, record=None):
    """:func:`~rnnkit.functional.recurrent.sequence_backward` through :func:`noisy_sequence_forward`.
    Returns ``(dx_proj, dhh, dstate0)``."""
    L, N, H = dy.shape
    GH = W_hh.shape[0]
    dx_proj = np.empty((L, N, GH), dtype=dy.dtype)
    dhh = np.empty((L, N, GH), dtype=dy.dtype)
    if mask is not None:
        dy = dy * mask  # outputs at padded steps are constant zeros
    d = tuple(dstate)
    for t in range(L - 1, -1, -1):
        d = (d[0] + dy[t],) + d[1:]
        if record is not None:
            record[t] = d[0]
        g = d if mask is None else tuple(x * mask[t] for x in d)    # nothing flows into a padded step
        g_step = g
        if noise.zone is not None:
            zone = _zone_at(noise.zone, t)
            g_step = tuple(x if z is None else x * (1 - z) for x, z in zip(g, zone))
        dx_proj[t], dhh[t], dprev = ops.step_backward(g_step, caches[t], W_hh, rec_mask=noise.rec)
        if noise.zone is not None:
            dprev = tuple(p if z is None else p + z * x for p, x, z in zip(dprev, g, zone))
        d = dprev if mask is None else tuple(np.where(mask[t], p, x) for p, x in zip(dprev, d))
    return dx_proj, dhh, d
