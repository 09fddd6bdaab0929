r"""Fused kernels of the layer-normalised LSTM (:mod:`rnnkit.functional.variants`), in the
feature-major layout of :mod:`rnnkit.kernels._numba` (one row per feature, column ``t*N + n``;
a call handles the ``N`` columns of one part of one step starting at ``col``, ``stride`` apart
from the next step's).

Layer norm over a block of H rows, per column (Ba, Kiros & Hinton 2016, eq. 4), as
:mod:`rnnkit.functional.layernorm` computes it:

.. math::
    \mu = \tfrac{1}{H}\textstyle\sum_j a_j,\quad 1/\sigma = 1/\sqrt{\tfrac{1}{H}\sum_j (a_j - \mu)^2 + \epsilon},
    \quad \hat a_j = (a_j - \mu)/\sigma,\qquad
    \frac{\partial L}{\partial a} = \frac{1}{\sigma}\Big(g - \overline{g} - \hat a\,\overline{g \hat a}\Big),\ g = \gamma \odot dy

The statistics are sums over rows (features, the outer loop) into per-column scratch vectors, so
every inner loop runs over contiguous columns and vectorises. ``consts`` is ``[1/H, eps]`` in the
buffers' dtype, so float32 arithmetic stays float32.
"""
import math

from numba import njit

from ._numba import ONE, ZERO, _sig_exact, _sig_fast, _tanh_fast


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _ln_stats(src, scol, r0, H, N, mu, inv, ih, eps):
    """Mean ``mu`` (N,) and 1/sigma ``inv`` (N,) of rows r0..r0+H of ``src`` at columns scol.."""
    for n in range(N):
        mu[n] = ZERO
        inv[n] = ZERO
    for k in range(r0, r0 + H):
        s = src[k, scol:scol + N]
        for n in range(N):
            mu[n] += s[n]
    for n in range(N):
        mu[n] *= ih
    for k in range(r0, r0 + H):
        s = src[k, scol:scol + N]
        for n in range(N):
            d = s[n] - mu[n]
            inv[n] += d * d
    for n in range(N):
        inv[n] = ONE / math.sqrt(inv[n] * ih + eps)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _ln_back(D, dcol, Hat, hcol, r0, H, N, inv, gain, Out, ocol, s1, s2, acc, accumulate, ih):
    """Backward of rows r0..r0+H: ``D`` (at dcol) the gradient of the normalised output, ``Hat``
    (at hcol) the normalised values, ``inv`` (N,) 1/sigma; the input's gradient goes to ``Out``
    (at ocol; it may alias ``D`` or ``Hat``). With ``accumulate``, ``acc[k, n] += D * Hat`` (the
    gain's gradient, summed over columns by the caller)."""
    for n in range(N):
        s1[n] = ZERO
        s2[n] = ZERO
    for k in range(r0, r0 + H):
        d, h, gk = D[k, dcol:dcol + N], Hat[k, hcol:hcol + N], gain[k]
        for n in range(N):
            g = d[n] * gk
            s1[n] += g
            s2[n] += g * h[n]
        if accumulate:
            a = acc[k]
            for n in range(N):
                a[n] += d[n] * h[n]
    for n in range(N):
        s1[n] *= ih
        s2[n] *= ih
    for k in range(r0, r0 + H):
        d, h, o, gk = D[k, dcol:dcol + N], Hat[k, hcol:hcol + N], Out[k, ocol:ocol + N], gain[k]
        for n in range(N):
            o[n] = ((d[n] * gk - s1[n]) - h[n] * s2[n]) * inv[n]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _tanh_affine(x, g, b, out, N, precise):
    """``out = tanh(x g + b)`` over N columns: tanh(LN(c)), by the same code in forward and backward
    (which recomputes it from the kept normalised c, bit for bit)."""
    if precise:
        for n in range(N):
            out[n] = math.tanh(x[n] * g + b)
    else:
        for n in range(N):
            out[n] = _tanh_fast(x[n] * g + b)


@njit(cache=True, nogil=True, error_model="numpy")
def ln_input_fm(A, XH, IX, gain, lnb, b_ih, consts, mu, col, N):
    """The input projection ``A`` (G*H, L*N) at columns col..col+N (all steps, or a part of them):
    ``A = LN_ih(A) + b_ih`` per gate block, the normalised values kept in ``XH``, 1/sigma in ``IX``
    (G, L*N); ``mu`` (N,) scratch."""
    GH = A.shape[0]
    G = IX.shape[0]
    H = GH // G
    ih, eps = consts[0], consts[1]
    for b in range(G):
        inv = IX[b, col:col + N]
        _ln_stats(A, col, b * H, H, N, mu, inv, ih, eps)
        for k in range(b * H, (b + 1) * H):
            a, x, gk, bk, ck = A[k, col:col + N], XH[k, col:col + N], gain[k], lnb[k], b_ih[k]
            for n in range(N):
                h = (a[n] - mu[n]) * inv[n]
                x[n] = h
                a[n] = (h * gk + bk) + ck


@njit(cache=True, nogil=True, error_model="numpy")
def ln_input_back_fm(A, XH, IX, gain, consts, s1, s2, col, N):
    """Backward of :func:`ln_input_fm` in place at columns col..col+N: ``A`` holds the gradient of
    the normalised projection and receives that of ``W_ih x`` (the gain's gradient is the
    caller's reduction)."""
    GH = A.shape[0]
    G = IX.shape[0]
    H = GH // G
    for b in range(G):
        _ln_back(A, col, XH, col, b * H, H, N, IX[b, col:col + N], gain, A, col, s1, s2, A, False, consts[0])


@njit(cache=True, nogil=True, error_model="numpy")
def ln_lstm_forward_fm(hh, A, NH, IH, HC, IC, Hb, Cb, g_hh, b_lnh, b_hh, g_c, b_c, consts, mu, v, col, stride,
                       precise):
    """Step t of one part: ``a = LN_hh(hh) + b_hh + A`` (A holds ``LN_ih(W_ih x) + b_ih``), the
    gates written over ``A``; ``c = f c_prev + i g``; ``h = o tanh(LN_c(c))``. Kept for backward:
    the normalised recurrent product in ``NH`` (G*H, L*N) and its 1/sigma in ``IH`` (G, L*N), the
    normalised cell state in ``HC`` (H, L*N) and its 1/sigma in ``IC`` (L*N,). At a padded step
    (``v`` False) the state is carried. ``mu`` (4, N) scratch."""
    GH, N = hh.shape
    H = GH // 4
    ih, eps = consts[0], consts[1]
    nxt = col + stride
    for b in range(4):
        _ln_stats(hh, 0, b * H, H, N, mu[b], IH[b, col:col + N], ih, eps)
    for k in range(GH):
        a, x, r, gk, bk, ck = A[k, col:col + N], NH[k, col:col + N], hh[k], g_hh[k], b_lnh[k], b_hh[k]
        m, s = mu[k // H], IH[k // H, col:col + N]
        for n in range(N):
            x[n] = (r[n] - m[n]) * s[n]
        if 2 * H <= k < 3 * H:
            if precise:
                for n in range(N):
                    a[n] = math.tanh(((x[n] * gk + bk) + a[n]) + ck)
            else:
                for n in range(N):
                    a[n] = _tanh_fast(((x[n] * gk + bk) + a[n]) + ck)
        elif precise:
            for n in range(N):
                a[n] = _sig_exact(((x[n] * gk + bk) + a[n]) + ck)
        else:
            for n in range(N):
                a[n] = _sig_fast(((x[n] * gk + bk) + a[n]) + ck)
    for j in range(H):
        ai, af, ag = A[j, col:col + N], A[H + j, col:col + N], A[2 * H + j, col:col + N]
        cp, cn, hc = Cb[j, col:col + N], Cb[j, nxt:nxt + N], HC[j, col:col + N]
        for n in range(N):
            c = af[n] * cp[n] + ai[n] * ag[n]
            hc[n] = c
            cn[n] = c if v[n] else cp[n]
    m, s, th = mu[0], IC[col:col + N], mu[1]
    _ln_stats(HC, col, 0, H, N, m, s, ih, eps)
    for j in range(H):
        ao, hc, hp, hn, gj, bj = A[3 * H + j, col:col + N], HC[j, col:col + N], Hb[j, col:col + N], \
            Hb[j, nxt:nxt + N], g_c[j], b_c[j]
        for n in range(N):
            hc[n] = (hc[n] - m[n]) * s[n]
        _tanh_affine(hc, gj, bj, th, N, precise)
        for n in range(N):
            hn[n] = ao[n] * th[n] if v[n] else hp[n]


@njit(cache=True, nogil=True, error_model="numpy")
def ln_lstm_backward_fm(dmat, ddir, DY, dc_next, A, Cb, NH, IH, HC, IC, g_hh, g_c, b_c, consts, v, col,
                        ddir_out, dc_out, DCN, s1, s2, acc_hh, acc_gc, acc_bc, precise):
    """Step t backward of one part. The recurrent gradient arrives as ``dmat`` (W_hh^T of step
    t+1's gradient) plus ``ddir`` (carried over padded steps). Writes the gate pre-activation
    gradients over ``A`` and the gradient of the raw product ``W_hh h`` over ``NH``; adds the
    gains' gradients into ``acc_hh`` (G*H, N), ``acc_gc`` (H, N) and LN_c's bias's into ``acc_bc``.
    ``DCN`` (H, N) scratch: the gradient of LN_c(c), then of c through it."""
    H, N = dmat.shape
    ih = consts[0]
    for j in range(H):                    # through h = o tanh(LN_c(c))
        ao, hc, dy, dm, dd, ddo = A[3 * H + j, col:col + N], HC[j, col:col + N], DY[j, col:col + N], \
            dmat[j], ddir[j], ddir_out[j]
        e, ab, gj, bj = DCN[j], acc_bc[j], g_c[j], b_c[j]
        _tanh_affine(hc, gj, bj, s1, N, precise)
        for n in range(N):
            ok = v[n]
            carried = dm[n] + dd[n]
            dh = carried + dy[n]
            o, t = ao[n], s1[n]
            e[n] = dh * o * (ONE - t * t) if ok else ZERO
            ab[n] += e[n]
            ao[n] = dh * t * (o * (ONE - o)) if ok else ZERO
            ddo[n] = ZERO if ok else carried
    _ln_back(DCN, 0, HC, col, 0, H, N, IC[col:col + N], g_c, DCN, 0, s1, s2, acc_gc, True, ih)
    for j in range(H):                    # through c = f c_prev + i g
        ai, af, ag = A[j, col:col + N], A[H + j, col:col + N], A[2 * H + j, col:col + N]
        cp, e, dcn, dco = Cb[j, col:col + N], DCN[j], dc_next[j], dc_out[j]
        for n in range(N):
            ok = v[n]
            dc = dcn[n] + e[n]
            i, f, g = ai[n], af[n], ag[n]
            ai[n] = dc * g * (i * (ONE - i)) if ok else ZERO
            af[n] = dc * cp[n] * (f * (ONE - f)) if ok else ZERO
            ag[n] = dc * i * (ONE - g * g) if ok else ZERO
            dco[n] = dc * f if ok else dcn[n]
    for b in range(4):                    # through LN_hh, per gate block
        _ln_back(A, col, NH, col, b * H, H, N, IH[b, col:col + N], g_hh, NH, col, s1, s2, acc_hh, True, ih)
