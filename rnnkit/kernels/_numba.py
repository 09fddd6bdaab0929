"""Fused gate arithmetic, compiled with Numba: each element of a step is read and written once.

One forward and one backward kernel per cell family. The matrix products stay in NumPy (BLAS);
these kernels replace the dozen elementwise NumPy passes around them. Conventions shared by all:

* ``hh``: (N, G*H) the step's ``h_prev W_hh^T`` (a scratch buffer).
* ``xp``: (N, G*H) hoisted input projection with every bias that can be folded in; overwritten
  with the gate activations, so the projection buffer becomes the activation cache.
* Backward kernels may write the pre-activation gradients over the activations they read
  (``da`` may be ``a``): each element's gates are read before they are written.
* ``valid``: (N,) bool; a row with ``valid[n] == False`` is a padded step: its state is carried.
* Backward takes the recurrent gradient in two parts, ``dmat`` (from ``da @ W_hh``) and ``ddir``
  (direct paths: the GRU's ``z * dh`` and carried gradients at padded steps), plus ``dy``.
"""
import math

import numpy as np
from numba import njit

# float32 constants keep float32 arithmetic in float32 (they widen exactly in float64 kernels)
ONE, TWO = np.float32(1.0), np.float32(2.0)


@njit(cache=True, nogil=True, inline="always")
def _sig(x):
    return ONE / (ONE + math.exp(-x))


@njit(cache=True, nogil=True, inline="always")
def _tanh(x, precise):
    """libm's tanh when ``precise`` (float64: gradient checks to 1e-10); otherwise
    ``2 sigmoid(2x) - 1``, one ``exp`` (4x faster than tanhf here; error below 1e-7 absolute)."""
    if precise:
        return math.tanh(x)
    return TWO / (ONE + math.exp(-TWO * x)) - ONE


@njit(cache=True, nogil=True)
def lstm_forward_step(hh, xp, c_prev, h_prev, valid, c_out, tc_out, h_out, y_out, precise):
    N, G = hh.shape
    H = G // 4
    for n in range(N):
        ok = valid[n]
        for j in range(H):
            i = _sig(hh[n, j] + xp[n, j])
            f = _sig(hh[n, H + j] + xp[n, H + j])
            g = _tanh(hh[n, 2 * H + j] + xp[n, 2 * H + j], precise)
            o = _sig(hh[n, 3 * H + j] + xp[n, 3 * H + j])
            xp[n, j], xp[n, H + j], xp[n, 2 * H + j], xp[n, 3 * H + j] = i, f, g, o
            c = f * c_prev[n, j] + i * g
            tc = _tanh(c, precise)
            tc_out[n, j] = tc
            if ok:
                c_out[n, j] = c
                h = o * tc
                h_out[n, j] = h
                y_out[n, j] = h
            else:
                c_out[n, j] = c_prev[n, j]
                h_out[n, j] = h_prev[n, j]
                y_out[n, j] = 0.0


@njit(cache=True, nogil=True)
def lstm_backward_step(dmat, ddir, dy, dc_next, a, c_prev, tc, valid, da, ddir_out, dc_out):
    N, G = a.shape
    H = G // 4
    for n in range(N):
        ok = valid[n]
        for j in range(H):
            dh = dmat[n, j] + ddir[n, j]
            if ok:
                dh += dy[n, j]
                i, f, g, o = a[n, j], a[n, H + j], a[n, 2 * H + j], a[n, 3 * H + j]
                t = tc[n, j]
                dc = dc_next[n, j] + dh * o * (1.0 - t * t)
                da[n, j] = dc * g * i * (1.0 - i)
                da[n, H + j] = dc * c_prev[n, j] * f * (1.0 - f)
                da[n, 2 * H + j] = dc * i * (1.0 - g * g)
                da[n, 3 * H + j] = dh * t * o * (1.0 - o)
                dc_out[n, j] = dc * f
                ddir_out[n, j] = 0.0
            else:
                da[n, j] = da[n, H + j] = da[n, 2 * H + j] = da[n, 3 * H + j] = 0.0
                dc_out[n, j] = dc_next[n, j]
                ddir_out[n, j] = dh


@njit(cache=True, nogil=True)
def gru_forward_step(hh, xp, b_hn, h_prev, valid, hn_out, h_out, y_out, precise):
    N, G = hh.shape
    H = G // 3
    for n in range(N):
        ok = valid[n]
        for j in range(H):
            r = _sig(hh[n, j] + xp[n, j])
            z = _sig(hh[n, H + j] + xp[n, H + j])
            hn = hh[n, 2 * H + j] + b_hn[j]
            nn = _tanh(xp[n, 2 * H + j] + r * hn, precise)
            xp[n, j], xp[n, H + j], xp[n, 2 * H + j] = r, z, nn
            hn_out[n, j] = hn
            if ok:
                h = nn + z * (h_prev[n, j] - nn)
                h_out[n, j] = h
                y_out[n, j] = h
            else:
                h_out[n, j] = h_prev[n, j]
                y_out[n, j] = 0.0


@njit(cache=True, nogil=True)
def gru_backward_step(dmat, ddir, dy, a, hn, h_prev, valid, dx, dhh, ddir_out):
    N, G = a.shape
    H = G // 3
    for n in range(N):
        ok = valid[n]
        for j in range(H):
            dh = dmat[n, j] + ddir[n, j]
            if ok:
                dh += dy[n, j]
                r, z, nn = a[n, j], a[n, H + j], a[n, 2 * H + j]
                dn = dh * (1.0 - z) * (1.0 - nn * nn)
                dr = dn * hn[n, j] * r * (1.0 - r)
                dz = dh * (h_prev[n, j] - nn) * z * (1.0 - z)
                dx[n, j], dx[n, H + j], dx[n, 2 * H + j] = dr, dz, dn
                dhh[n, j], dhh[n, H + j], dhh[n, 2 * H + j] = dr, dz, dn * r
                ddir_out[n, j] = dh * z
            else:
                dx[n, j] = dx[n, H + j] = dx[n, 2 * H + j] = 0.0
                dhh[n, j] = dhh[n, H + j] = dhh[n, 2 * H + j] = 0.0
                ddir_out[n, j] = dh


@njit(cache=True, nogil=True)
def rnn_forward_step(hh, xp, h_prev, valid, relu, h_out, y_out, precise):
    N, H = hh.shape
    for n in range(N):
        ok = valid[n]
        for j in range(H):
            p = hh[n, j] + xp[n, j]
            h = (p if p > 0.0 else 0.0) if relu else _tanh(p, precise)
            xp[n, j] = h
            if ok:
                h_out[n, j] = h
                y_out[n, j] = h
            else:
                h_out[n, j] = h_prev[n, j]
                y_out[n, j] = 0.0


@njit(cache=True, nogil=True)
def rnn_backward_step(dmat, ddir, dy, a, valid, relu, da, ddir_out):
    N, H = a.shape
    for n in range(N):
        ok = valid[n]
        for j in range(H):
            dh = dmat[n, j] + ddir[n, j]
            if ok:
                dh += dy[n, j]
                h = a[n, j]
                da[n, j] = (dh if h > 0.0 else 0.0) if relu else dh * (1.0 - h * h)
                ddir_out[n, j] = 0.0
            else:
                da[n, j] = 0.0
                ddir_out[n, j] = dh
