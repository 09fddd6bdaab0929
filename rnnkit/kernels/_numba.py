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
ONE, HALF = np.float32(1.0), np.float32(0.5)

# Rational approximation tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 7.905 (clamped outside), the
# minimax coefficients Eigen uses for float tanh; measured here: max error 3.4e-7 absolute over
# [-12, 12] (libm's tanhf: 6e-8). Pure arithmetic, so LLVM vectorises the gate loops.
_CLAMP = np.float32(7.90531110763549805)
_A1, _A3, _A5, _A7 = (np.float32(4.89352455891786e-03), np.float32(6.37261928875436e-04),
                      np.float32(1.48572235717979e-05), np.float32(5.12229709037114e-08))
_A9, _A11, _A13 = np.float32(-8.60467152213735e-11), np.float32(2.00018790482477e-13), np.float32(-2.76076847742355e-16)
_B0, _B2, _B4, _B6 = (np.float32(4.89352518554385e-03), np.float32(2.26843463243900e-03),
                      np.float32(1.18534705686654e-04), np.float32(1.19825839466702e-06))


@njit(cache=True, nogil=True, inline="always")
def _tanh_fast(x):
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = ((((((_A13 * x2 + _A11) * x2 + _A9) * x2 + _A7) * x2 + _A5) * x2 + _A3) * x2 + _A1) * x
    q = ((_B6 * x2 + _B4) * x2 + _B2) * x2 + _B0
    return p / q


@njit(cache=True, nogil=True, inline="always")
def _sig_exact(x):
    return ONE / (ONE + math.exp(-x))


@njit(cache=True, nogil=True, inline="always")
def _sig_fast(x):
    return HALF + HALF * _tanh_fast(HALF * x)


@njit(cache=True, nogil=True, inline="always")
def _carry(h_prev, h_out, y_out):
    """A padded step of a forward kernel: the state is carried, the output is zero."""
    for j in range(h_out.shape[0]):
        h_out[j] = h_prev[j]
        y_out[j] = 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def lstm_forward_step(hh, xp, c_prev, h_prev, valid, c_out, tc_out, h_out, y_out, precise):
    # One simple loop per gate block over contiguous memory, with the float32 / float64 choice
    # made outside the loops: written this way LLVM vectorises the float32 gate arithmetic
    # (3x faster than one fused loop over j with the choice inside, measured at N=50, H=64).
    N, G = hh.shape
    H = G // 4
    for n in range(N):
        a, b = xp[n], hh[n]
        if precise:
            for k in range(2 * H):
                a[k] = _sig_exact(a[k] + b[k])
            for k in range(2 * H, 3 * H):
                a[k] = math.tanh(a[k] + b[k])
            for k in range(3 * H, 4 * H):
                a[k] = _sig_exact(a[k] + b[k])
        else:
            for k in range(2 * H):
                a[k] = _sig_fast(a[k] + b[k])
            for k in range(2 * H, 3 * H):
                a[k] = _tanh_fast(a[k] + b[k])
            for k in range(3 * H, 4 * H):
                a[k] = _sig_fast(a[k] + b[k])
        cp, tc = c_prev[n], tc_out[n]
        for j in range(H):                   # the new cell state, kept in tc until the mask is applied
            tc[j] = a[H + j] * cp[j] + a[j] * a[2 * H + j]
        if valid[n]:
            for j in range(H):
                c_out[n, j] = tc[j]
        else:
            for j in range(H):
                c_out[n, j] = cp[j]          # c_out may alias c_prev: nothing has been written yet
        if precise:
            for j in range(H):
                tc[j] = math.tanh(tc[j])
        else:
            for j in range(H):
                tc[j] = _tanh_fast(tc[j])
        if valid[n]:
            for j in range(H):
                h = a[3 * H + j] * tc[j]
                h_out[n, j] = h
                y_out[n, j] = h
        else:
            _carry(h_prev[n], h_out[n], y_out[n])


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


@njit(cache=True, nogil=True, error_model="numpy")
def gru_forward_step(hh, xp, b_hn, h_prev, valid, hn_out, h_out, y_out, precise):
    # Loops per gate block with the precision choice outside them, as in lstm_forward_step.
    N, G = hh.shape
    H = G // 3
    for n in range(N):
        a, b, hn = xp[n], hh[n], hn_out[n]
        for j in range(H):
            hn[j] = b[2 * H + j] + b_hn[j]
        if precise:
            for k in range(2 * H):
                a[k] = _sig_exact(a[k] + b[k])
            for j in range(H):
                a[2 * H + j] = math.tanh(a[2 * H + j] + a[j] * hn[j])
        else:
            for k in range(2 * H):
                a[k] = _sig_fast(a[k] + b[k])
            for j in range(H):
                a[2 * H + j] = _tanh_fast(a[2 * H + j] + a[j] * hn[j])
        if valid[n]:
            for j in range(H):
                nn = a[2 * H + j]
                h = nn + a[H + j] * (h_prev[n, j] - nn)       # (1 - z) n + z h_prev
                h_out[n, j] = h
                y_out[n, j] = h
        else:
            _carry(h_prev[n], h_out[n], y_out[n])


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


@njit(cache=True, nogil=True, error_model="numpy")
def rnn_forward_step(hh, xp, h_prev, valid, relu, h_out, y_out, precise):
    N, H = hh.shape
    for n in range(N):
        a, b = xp[n], hh[n]
        if relu:
            for j in range(H):
                p = a[j] + b[j]
                a[j] = p if p > 0.0 else 0.0
        elif precise:
            for j in range(H):
                a[j] = math.tanh(a[j] + b[j])
        else:
            for j in range(H):
                a[j] = _tanh_fast(a[j] + b[j])
        if valid[n]:
            for j in range(H):
                h_out[n, j] = a[j]
                y_out[n, j] = a[j]
        else:
            _carry(h_prev[n], h_out[n], y_out[n])


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
