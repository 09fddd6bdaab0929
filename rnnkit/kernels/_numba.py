"""Fused gate arithmetic, compiled with Numba: each element of a step is read and written once.
The matrix products stay in NumPy (BLAS); these kernels replace the dozen elementwise NumPy
passes around them. Two families:

* Batch-rows forward kernels (``lstm_forward_step`` ...), used by ``Stream`` at batch 1: ``hh``
  (N, G*H) the step's ``h_prev W_hh^T``; ``xp`` (N, G*H) the projection with every foldable bias,
  overwritten with the gate activations; ``valid`` (N,) bool, False for a padded step whose
  state is carried. They loop over features innermost.
* Feature-major forward and backward kernels (``*_fm``), the training path's time loop; their
  layout is described above them. They loop over the batch innermost.

Backward kernels write the pre-activation gradients over the activations they read (each
element's gates are read before they are written) and take the recurrent gradient in two parts,
``dmat`` (from the product with W_hh) and ``ddir`` (carried gradients at padded steps, and the
GRU's ``z * dh``), plus the output gradient.
"""
import math

import numpy as np
from numba import njit

# float32 constants keep float32 arithmetic in float32 (they widen exactly in float64 kernels)
ZERO, ONE, HALF = np.float32(0.0), np.float32(1.0), np.float32(0.5)

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


@njit(cache=True, nogil=True, error_model="numpy")
def rnn_forward_step(hh, xp, h_prev, valid, relu, h_out, y_out, precise):
    N, H = hh.shape
    for n in range(N):
        a, b = xp[n], hh[n]
        if relu:
            for j in range(H):
                p = a[j] + b[j]
                a[j] = p if p > ZERO else ZERO
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


# -- Feature-major kernels: the training path's time loop ----------------------------------------
# Every buffer is (rows, columns) with one row per feature and the columns running over time and
# batch, column t*N + n for step t and sequence n. In this layout the per-step products are
# W_hh @ h_t, with the weight as BLAS's tall left operand, which OpenBLAS runs 1.3-2.8x faster
# here than h_t @ W_hh^T (benchmarks/NOTES.md, attempt 8). The loops run over n innermost,
# contiguous, so they vectorise as the batch-rows kernels above do over features.
#
# * ``hh`` (G*H, N): W_hh @ h_t of the current step (scratch);
# * ``A`` (G*H, L*N): the input projection x W_ih^T without biases, overwritten at step t's
#   columns by the gate activations (forward) and then by their gradients (backward);
# * ``bias`` (G*H,): the biases folded into the projection (b_ih, plus b_hh where it can be);
# * ``Hb``, ``Cb`` (H, (L+1)*N): states; step t reads column block t and writes block t+1;
# * ``v`` (n,) bool: step t's validity of the kernel's columns; False marks a padded step, whose
#   state is carried.
#
# A kernel call handles one step of some rows: the fast loop passes each thread's part of the
# hidden units (their rows of every buffer, ``_parallel.py``), the layer-norm loop's batch split
# (``RNNKIT_LOOP_PARTS``) the n columns starting at ``col`` (= t*N + the part's first sequence);
# ``stride`` = N between a step's block and the next.
#
# These kernels allow FMA contraction (``fastmath={"contract"}``, no other fast-math flag): the
# rational tanh is two Horner chains of multiply-adds, and fused they run the forward kernel
# 20-25% faster (benchmarks/NOTES.md, attempt 25). Results differ from unfused arithmetic in the
# last bits and are the same from run to run on one machine.


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def lstm_forward_fm(hh, A, bias, Hb, Cb, tc, v, col, stride, precise):
    """``tc`` (N,) scratch: tanh(c) is not kept; backward recomputes it from the kept c."""
    # Rows are sliced to step t's columns first: indexing a[n] from 0 lets LLVM vectorise the
    # loops; a[col + n] with a runtime offset did not (3.5x slower, measured).
    G, N = hh.shape
    H = G // 4
    nxt = col + stride
    for k in range(G):
        a, b, bk = A[k, col:col + N], hh[k], bias[k]
        if 2 * H <= k < 3 * H:
            if precise:
                for n in range(N):
                    a[n] = math.tanh(a[n] + b[n] + bk)
            else:
                for n in range(N):
                    a[n] = _tanh_fast(a[n] + b[n] + bk)
        elif precise:
            for n in range(N):
                a[n] = _sig_exact(a[n] + b[n] + bk)
        else:
            for n in range(N):
                a[n] = _sig_fast(a[n] + b[n] + bk)
    for j in range(H):
        ai, af, ag, ao = A[j, col:col + N], A[H + j, col:col + N], A[2 * H + j, col:col + N], A[3 * H + j, col:col + N]
        cp, cn, hp, hn = Cb[j, col:col + N], Cb[j, nxt:nxt + N], Hb[j, col:col + N], Hb[j, nxt:nxt + N]
        for n in range(N):
            c = af[n] * cp[n] + ai[n] * ag[n]
            tc[n] = c
            cn[n] = c if v[n] else cp[n]
        if precise:
            for n in range(N):
                tc[n] = math.tanh(tc[n])
        else:
            for n in range(N):
                tc[n] = _tanh_fast(tc[n])
        for n in range(N):
            hn[n] = ao[n] * tc[n] if v[n] else hp[n]


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def lstm_backward_fm(dmat, ddir, DY, dc_next, A, Cb, v, col, stride, ddir_out, dc_out, th, precise):
    """Step t backward: the gate gradients are written over the activations in ``A``. The
    recurrent gradient arrives in two parts, ``dmat`` (W_hh^T da of step t+1) and ``ddir`` (carried
    over padded steps); at a padded step the output gradient in ``DY`` is ignored. ``th`` (N,)
    scratch receives tanh(c_t), recomputed with the forward's function from the kept c_t (at a
    valid step the kept state is the new c), so it equals the forward's value bit for bit."""
    H, N = dmat.shape
    nxt = col + stride
    for j in range(H):
        ai, af, ag, ao = A[j, col:col + N], A[H + j, col:col + N], A[2 * H + j, col:col + N], A[3 * H + j, col:col + N]
        cp, cn, dy = Cb[j, col:col + N], Cb[j, nxt:nxt + N], DY[j, col:col + N]
        dm, dd, dcn, ddo, dco = dmat[j], ddir[j], dc_next[j], ddir_out[j], dc_out[j]
        if precise:
            for n in range(N):
                th[n] = math.tanh(cn[n])
        else:
            for n in range(N):
                th[n] = _tanh_fast(cn[n])
        for n in range(N):
            ok = v[n]
            carried = dm[n] + dd[n]
            dh = carried + dy[n]
            i, f, g, o, tc = ai[n], af[n], ag[n], ao[n], th[n]
            dc = dcn[n] + dh * o * (ONE - tc * tc)
            ai[n] = dc * g * i * (ONE - i) if ok else ZERO
            af[n] = dc * cp[n] * f * (ONE - f) if ok else ZERO
            ag[n] = dc * i * (ONE - g * g) if ok else ZERO
            ao[n] = dh * tc * o * (ONE - o) if ok else ZERO
            dco[n] = dc * f if ok else dcn[n]
            ddo[n] = ZERO if ok else carried


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def gru_forward_fm(hh, A, bias, b_hn, Hb, HN, v, col, stride, precise):
    G, N = hh.shape
    H = G // 3
    nxt = col + stride
    for k in range(2 * H):
        a, b, bk = A[k, col:col + N], hh[k], bias[k]
        if precise:
            for n in range(N):
                a[n] = _sig_exact(a[n] + b[n] + bk)
        else:
            for n in range(N):
                a[n] = _sig_fast(a[n] + b[n] + bk)
    for j in range(H):
        az, an, b, hnj = A[H + j, col:col + N], A[2 * H + j, col:col + N], hh[2 * H + j], HN[j, col:col + N]
        ar, hp, hnew = A[j, col:col + N], Hb[j, col:col + N], Hb[j, nxt:nxt + N]
        bn, bi = b_hn[j], bias[2 * H + j]
        for n in range(N):
            hv = b[n] + bn
            hnj[n] = hv
            an[n] = an[n] + bi + ar[n] * hv
        if precise:
            for n in range(N):
                an[n] = math.tanh(an[n])
        else:
            for n in range(N):
                an[n] = _tanh_fast(an[n])
        for n in range(N):
            nn = an[n]
            hnew[n] = nn + az[n] * (hp[n] - nn) if v[n] else hp[n]   # (1 - z) n + z h_prev


@njit(cache=True, nogil=True, fastmath={"contract"})
def gru_backward_fm(dmat, ddir, DY, A, HN, Hb, v, col, DS, DHN, ddir_out):
    """As lstm_backward_fm. The gradient of W_hh h + b_hh differs from the projection's only in
    its n block (r * dn): that block alone is kept, in ``DHN`` (H, L*N), and the whole step's
    (G*H, N) goes to the scratch ``DS`` for the product with W_hh^T."""
    H, N = dmat.shape
    for j in range(H):
        ar, az, an = A[j, col:col + N], A[H + j, col:col + N], A[2 * H + j, col:col + N]
        er, ez, en, kn = DS[j], DS[H + j], DS[2 * H + j], DHN[j, col:col + N]
        hn, hp, dy = HN[j, col:col + N], Hb[j, col:col + N], DY[j, col:col + N]
        dm, dd, ddo = dmat[j], ddir[j], ddir_out[j]
        for n in range(N):
            ok = v[n]
            carried = dm[n] + dd[n]
            dh = carried + dy[n]
            r, z, nn = ar[n], az[n], an[n]
            dn = dh * (ONE - z) * (ONE - nn * nn) if ok else ZERO
            dr = dn * hn[n] * r * (ONE - r)
            dz = dh * (hp[n] - nn) * z * (ONE - z) if ok else ZERO
            ar[n], az[n], an[n] = dr, dz, dn
            er[n], ez[n], en[n] = dr, dz, dn * r
            kn[n] = dn * r
            ddo[n] = dh * z if ok else carried


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def rnn_forward_fm(hh, A, bias, Hb, v, col, stride, relu, precise):
    H, N = hh.shape
    nxt = col + stride
    for j in range(H):
        a, b, bj, hp, hnew = A[j, col:col + N], hh[j], bias[j], Hb[j, col:col + N], Hb[j, nxt:nxt + N]
        if relu:
            for n in range(N):
                p = a[n] + b[n] + bj
                a[n] = p if p > ZERO else ZERO
        elif precise:
            for n in range(N):
                a[n] = math.tanh(a[n] + b[n] + bj)
        else:
            for n in range(N):
                a[n] = _tanh_fast(a[n] + b[n] + bj)
        for n in range(N):
            hnew[n] = a[n] if v[n] else hp[n]


@njit(cache=True, nogil=True, fastmath={"contract"})
def rnn_backward_fm(dmat, ddir, DY, A, v, col, relu, ddir_out):
    H, N = dmat.shape
    for j in range(H):
        a, dy, dm, dd, ddo = A[j, col:col + N], DY[j, col:col + N], dmat[j], ddir[j], ddir_out[j]
        for n in range(N):
            ok = v[n]
            carried = dm[n] + dd[n]
            dh = carried + dy[n]
            h = a[n]
            g = (dh if h > ZERO else ZERO) if relu else dh * (ONE - h * h)
            a[n] = g if ok else ZERO
            ddo[n] = ZERO if ok else carried


@njit(cache=True, nogil=True, error_model="numpy")
def adam_step(p, g, m, v, b1, a1, b2, a2, c2, eps, step):
    """One Adam update of C-contiguous arrays in one pass (:meth:`rnnkit.optim.Adam.update`):
    ``m = m b1 + a1 g``, ``v = v b2 + a2 g^2``, ``p -= step m / (sqrt(v) / c2 + eps)`` (``a1 = 1 -
    b1``, ``a2 = 1 - b2``, rounded to the dtype from double, as NumPy rounds them), the NumPy
    version's operations in its order and its dtype, so both give the same bits; NumPy's made
    eight passes over every parameter."""
    pf, gf, mf, vf = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
    for i in range(pf.shape[0]):
        gi = gf[i]
        mi = mf[i] * b1 + a1 * gi
        vi = vf[i] * b2 + a2 * (gi * gi)
        mf[i], vf[i] = mi, vi
        pf[i] = pf[i] - step * mi / (np.sqrt(vi) / c2 + eps)


@njit(cache=True, nogil=True)
def all_finite(bits, exponent):
    """Whether no element of a float array, given as its unsigned integers ``bits`` (1-D), has every
    bit of ``exponent`` (its type's exponent field) set: no NaN and no infinity. The largest masked
    exponent is an integer reduction, which the compiler turns into vectors (a float sum would stay
    one element at a time): about 5 us against NumPy's 10-20 for ``isfinite(x).all()`` at 1.3 MB."""
    top = bits.dtype.type(0)
    for i in range(bits.shape[0]):
        top = max(top, bits[i] & exponent)
    return top != exponent


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def sum_squares(x):
    """The sum of the squares of a 1-D float array's elements, each squared in float64 (exact for
    float32) and summed in float64 in whatever order the compiler vectorizes (``reassoc``):
    gradient clipping's norm without the float64 copy of every gradient. NaN and infinities
    propagate as in any order."""
    s = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        s += v * v
    return s
