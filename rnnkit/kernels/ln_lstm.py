"""The fast time loop of the layer-normalised LSTM (``LSTM(..., layer_norm=True)``, the equations
in :mod:`rnnkit.functional.variants`), on the plan of :mod:`rnnkit.kernels.sequence`:
feature-major buffers allocated once per sequence, the input projection and its layer norm for
all steps before the loop, per step ``W_hh @ h`` on BLAS then one fused kernel
(:mod:`rnnkit.kernels._numba_ln`), the batch split into parts with their own time loops.

Kept for backward: the gate activations (overwritten by their gradients), the normalised input
and recurrent projections and cell states with their inverse standard deviations, the hidden and
cell states. The gains' gradients are per-part (rows, columns) accumulators summed after the loop;
the weights' and biases' gradients are products and sums over all L*N columns. Other options
(peepholes, coupled gates, cell clip, hard-sigmoid gates, recurrent dropout, zoneout) keep the
NumPy reference loop.
"""
from __future__ import annotations

import numpy as np

from ..functional.layernorm import EPS, LayerNormCache
from ..functional.variants import Variant, VariantLSTMCache
from ..threads import batch_parts, run_parts
from . import _numba_ln as K
from ..products import matmul, matmul_into
from .sequence import _state_block, _steps_view


def supports(v: Variant) -> bool:
    """Whether these kernels compute the variant ``v``: the LSTM with layer norm alone."""
    return (v.family == "lstm" and v.layer_norm and not v.peepholes and not v.coupled_gates
            and v.cell_clip is None and v.gate == "sigmoid")


class LNSteps:
    """Buffers of one direction of one layer, indexable per step like the reference's list of
    :class:`~rnnkit.functional.variants.VariantLSTMCache` (views), so the recording backward and the
    diagnostics read them alike."""

    def __init__(self, p, N, A, NH, IH, HC, IC, XH, IX, Hb, Cb, valid):
        self.p, self.N, self.A, self.NH, self.IH, self.HC, self.IC = p, N, A, NH, IH, HC, IC
        self.XH, self.IX, self.Hb, self.Cb, self.valid = XH, IX, Hb, Cb, valid

    def __len__(self):
        return self.A.shape[1] // self.N

    def _at(self, buf, t):
        return buf[:, t * self.N:(t + 1) * self.N].T   # (N, rows) view of step t

    def __getitem__(self, t):
        N, GH, H = self.N, self.NH.shape[0], self.HC.shape[0]
        hat_c = self._at(self.HC, t)
        ln_h = LayerNormCache(self._at(self.NH, t).reshape(N, GH // H, H), self._at(self.IH, t)[..., None])
        ln_c = LayerNormCache(hat_c.reshape(N, 1, H), self.IC[t * N:(t + 1) * N, None, None])
        tanh_c = np.tanh(hat_c * self.p["ln_c_weight"] + self.p["ln_c_bias"])
        return VariantLSTMCache(self._at(self.Hb, t), self._at(self.Cb, t), self._at(self.A, t), tanh_c,
                                self._at(self.Cb, t + 1), None, ln_h, ln_c)

    @property
    def ln_x(self) -> LayerNormCache:
        """The input projection's normalisation, (L, N, G, H) and (L, N, G, 1) views."""
        L, G = len(self), self.IX.shape[0]
        return LayerNormCache(self.XH.T.reshape(L, self.N, G, -1), self.IX.T.reshape(L, self.N, G, 1))

    def layer_backward(self, dy, dstate, W_hh):
        return layer_backward(self, dy, dstate, W_hh)


def layer_forward(v, p, x, state0, W_ih, W_hh, b_ih=None, b_hh=None, mask=None):
    """One direction of one layer (natural order, no reversal): ``(y, state, h_prev, steps)`` as
    :func:`rnnkit.kernels.sequence.layer_forward`; ``p`` the layer norm's parameters by local name."""
    L, N, I = x.shape
    GH, H = W_hh.shape
    G, dt, M = GH // H, x.dtype, L * N
    consts = np.array([1.0 / H, EPS], dt)
    zeros = np.zeros(GH, dt)
    A, XH, IX = np.empty((GH, M), dt), np.empty((GH, M), dt), np.empty((G, M), dt)
    matmul_into(W_ih, x.reshape(M, I).T, A)                     # (G*H, H_in) @ (H_in, L*N)
    b_ih = zeros if b_ih is None else b_ih
    run_parts(lambda lo, hi: K.ln_input_fm(A, XH, IX, p["ln_ih_weight"], p["ln_ih_bias"], b_ih, consts,
                                           np.empty(hi - lo, dt), lo, hi - lo), batch_parts(M))
    NH, IH = np.empty((GH, M), dt), np.empty((G, M), dt)
    HC, IC = np.empty((H, M), dt), np.empty(M, dt)
    valid = np.ones((L, N), np.bool_) if mask is None else np.ascontiguousarray(mask[:, :, 0])
    precise = dt == np.float64
    Hb, Cb = np.empty((H, (L + 1) * N), dt), np.empty((H, (L + 1) * N), dt)
    Hb[:, :N], Cb[:, :N] = state0[0].T, state0[1].T
    b_hh = zeros if b_hh is None else b_hh

    def loop(lo, hi):
        n = hi - lo
        hh, mu = np.empty((GH, n), dt), np.empty((4, n), dt)
        for t in range(L):
            col = t * N + lo
            matmul_into(W_hh, Hb[:, col:col + n], hh)           # (4H, H) @ (H, n)
            K.ln_lstm_forward_fm(hh, A, NH, IH, HC, IC, Hb, Cb, p["ln_hh_weight"], p["ln_hh_bias"], b_hh,
                                 p["ln_c_weight"], p["ln_c_bias"], consts, mu, valid[t, lo:hi], col, N, precise)
    run_parts(loop, batch_parts(N))
    steps = LNSteps(p, N, A, NH, IH, HC, IC, XH, IX, Hb, Cb, valid)
    y = Hb[:, N:].T.reshape(L, N, H)
    if mask is not None:
        y = y * mask                                          # outputs at padded steps are zero
    return y, (_state_block(Hb, L, N).copy(), _state_block(Cb, L, N).copy()), _steps_view(Hb, L, N), steps


def layer_backward(steps: LNSteps, dy, dstate, W_hh):
    """``(dx_proj (L, N, G*H), dstate0, grads)``: ``dx_proj`` the gradient of ``W_ih x`` (a view of
    the spent buffers, for :func:`~rnnkit.functional.recurrent.input_backward`), ``grads`` every
    gradient but ``W_ih``'s. One backward per forward: the gradients overwrite the cache."""
    L, N, H = dy.shape
    GH, dt, p = W_hh.shape[0], dy.dtype, steps.p
    A, NH, valid = steps.A, steps.NH, steps.valid
    consts = np.array([1.0 / H, EPS], dt)
    DY = np.ascontiguousarray(dy.reshape(L * N, H).T)         # (H, L*N)
    W_hhT = np.ascontiguousarray(W_hh.T)                      # (H, G*H)
    precise = dt == np.float64
    dmat, ddir, dc0 = np.zeros((H, N), dt), np.empty((H, N), dt), np.empty((H, N), dt)
    accs = []

    def loop(lo, hi):
        n = hi - lo
        dm, dm2, dd2, dc2 = np.zeros((H, n), dt), np.empty((H, n), dt), np.empty((H, n), dt), np.empty((H, n), dt)
        dd = np.array(dstate[0][lo:hi].T, dtype=dt, order="C")
        dc = np.array(dstate[1][lo:hi].T, dtype=dt, order="C")
        DCN, s1, s2 = np.empty((H, n), dt), np.empty(n, dt), np.empty(n, dt)
        acc = (np.zeros((GH, n), dt), np.zeros((H, n), dt), np.zeros((H, n), dt))
        for t in range(L - 1, -1, -1):
            col = t * N + lo
            K.ln_lstm_backward_fm(dm, dd, DY, dc, A, steps.Cb, NH, steps.IH, steps.HC, steps.IC, p["ln_hh_weight"],
                                  p["ln_c_weight"], p["ln_c_bias"], consts, valid[t, lo:hi], col, dd2, dc2, DCN,
                                  s1, s2, *acc, precise)
            matmul_into(W_hhT, NH[:, col:col + n], dm2)         # (H, G*H) @ (G*H, n)
            dm, dm2, dd, dd2, dc, dc2 = dm2, dm, dd2, dd, dc2, dc
        dmat[:, lo:hi], ddir[:, lo:hi], dc0[:, lo:hi] = dm, dd, dc
        accs.append(acc)
    run_parts(loop, batch_parts(N))
    db = A.sum(axis=1)                                       # every bias sits after the normalisations
    grads = {"b_ih": db, "b_hh": db.copy(), "ln_hh_bias": db.copy(),
             "W_hh": matmul(NH, steps.Hb[:, : L * N].T),      # (G*H, L*N) @ (L*N, H)
             "ln_hh_weight": sum(a[0].sum(axis=1) for a in accs),
             "ln_c_weight": sum(a[1].sum(axis=1) for a in accs),
             "ln_c_bias": sum(a[2].sum(axis=1) for a in accs),
             "ln_ih_weight": np.einsum("ij,ij->i", A, steps.XH), "ln_ih_bias": db.copy()}
    M = L * N
    run_parts(lambda lo, hi: K.ln_input_back_fm(A, steps.XH, steps.IX, p["ln_ih_weight"], consts, np.empty(hi - lo, dt),
                                                np.empty(hi - lo, dt), lo, hi - lo), batch_parts(M))
    return A.T.reshape(L, N, GH), (np.ascontiguousarray((dmat + ddir).T), np.ascontiguousarray(dc0.T)), grads
