r"""Gate variants of the LSTM and GRU (issue 15): layer normalisation, peepholes, coupled input and
forget gates, cell clipping. One direction of one layer, forward and backward through time.

**LSTM** (PyTorch's gate order i, f, g, o; every option independent of the others):

.. math::
    \begin{aligned}
    a_t &= \mathrm{LN}_{ih}(W_{ih} x_t) + b_{ih} + \mathrm{LN}_{hh}(W_{hh} h_{t-1}) + b_{hh} \\
    i_t &= \sigma(a^i_t + p_i \odot c_{t-1}) \quad(\text{coupled: } i_t = 1 - f_t) &
    f_t &= \sigma(a^f_t + p_f \odot c_{t-1}) \\
    g_t &= \tanh(a^g_t) &
    c_t &= \mathrm{clip}(f_t \odot c_{t-1} + i_t \odot g_t,\ -\kappa, \kappa) \\
    o_t &= \sigma(a^o_t + p_o \odot c_t) &
    h_t &= o_t \odot \tanh(\mathrm{LN}_c(c_t))
    \end{aligned}

* ``layer_norm`` (Ba, Kiros & Hinton 2016, "Layer Normalization", sec. 3.1 and eq. 20-22):
  :math:`\mathrm{LN}_{ih}`, :math:`\mathrm{LN}_{hh}` and :math:`\mathrm{LN}_c` each have a gain
  (init 1) and a bias (init 0) per unit (:mod:`rnnkit.functional.layernorm`). The input and
  recurrent projections are normalised separately, as in the paper, but **per gate block** (each
  of i, f, g, o over its own H units) rather than over all 4H: the blocks feed different
  nonlinearities and carry different biases (a forget-gate bias of +1 would otherwise be moved
  by the other gates' statistics), and the GRU's n block is multiplied by the reset gate while
  r, z are not. TensorFlow's ``LayerNormBasicLSTMCell`` normalises per gate too. The biases
  ``b_ih`` and ``b_hh`` are kept, after the normalisation (the paper's :math:`b`).
  The input normalisation does not depend on the state, so it runs once for the whole sequence
  before the time loop, like the input projection itself.
* ``peepholes`` (Gers & Schmidhuber 2000, "Recurrent nets that time and count"): diagonal
  weights from the cell, ``peephole_weight`` laid out as ONNX's ``P``: :math:`[p_i, p_o, p_f]`,
  3H (2H, :math:`[p_o, p_f]`, with coupled gates).
* ``coupled_gates`` (Greff et al. 2017, "LSTM: A Search Space Odyssey", CIFG; ONNX's
  ``input_forget=1``): :math:`i_t = 1 - f_t`. The weights have **three** blocks, f, g, o (3H
  rows), so no parameter is left unused.
* ``cell_clip`` :math:`\kappa` (TensorFlow's ``LSTMCell(cell_clip=)``): the cell state is clipped
  to :math:`[-\kappa, \kappa]`. Its derivative is 1 where :math:`|\tilde c| \le \kappa` and 0
  where the clip acted (strictly outside): a clipped unit passes no gradient to
  :math:`f, i, g, c_{t-1}`.

**GRU** (``layer_norm`` only; PyTorch's form, gate order r, z, n):

.. math::
    \begin{aligned}
    \tilde a_t &= \mathrm{LN}_{ih}(W_{ih} x_t) + b_{ih},\qquad \tilde b_t = \mathrm{LN}_{hh}(W_{hh} h_{t-1}) + b_{hh} \\
    r_t, z_t &= \sigma(\tilde a^{r,z}_t + \tilde b^{r,z}_t),\qquad
    n_t = \tanh(\tilde a^n_t + r_t \odot \tilde b^n_t),\qquad h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}
    \end{aligned}

so the reset gate multiplies the *normalised* recurrent n block plus its bias, :math:`r \odot
(\mathrm{LN}(W_{hn} h)^n + b_{hn})`, where PyTorch's GRU has :math:`r \odot (W_{hn} h + b_{hn})`.

The time loop is the reference one (:func:`~rnnkit.functional.recurrent.sequence_forward` /
``sequence_backward``, with its packed-sequence masks, recurrent dropout and zoneout): the steps
here are bound to their extra parameters with :func:`bind`, and their backward adds the extra
parameters' gradients into a dict the layer's backward creates (``acc``), micrograd's ``+=``.
``dhh`` is the gradient of the *raw* recurrent product :math:`W_{hh} h_{t-1}`, so ``dW_hh =
dhh^T h_prev`` as for every cell. The layer-normalised LSTM alone (no other option) also has a
fused loop (:mod:`rnnkit.kernels.ln_lstm`), which the module passes in as ``loop``; the others run
only here.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np

from .activations import GATES
from .gru import gru_gates, gru_gates_backward
from .layernorm import LayerNormCache, layer_norm, layer_norm_backward
from .recurrent import CellOps, input_backward, reverse_noise, reverse_time, sequence_backward, sequence_forward
from ..products import matmul


@dataclass(frozen=True)
class Variant:
    """Which options a cell has on (``family`` ``'lstm'`` or ``'gru'``; ``gate`` a key of ``GATES``)."""

    family: str
    layer_norm: bool = False
    peepholes: bool = False
    coupled_gates: bool = False
    cell_clip: float | None = None
    gate: str = "sigmoid"

    @property
    def n_gates(self) -> int:
        return 3 if self.family == "gru" or self.coupled_gates else 4

    def param_shapes(self, H) -> dict:
        """The extra parameters of one layer and direction, ``{local name: shape}`` (the module adds
        the ``_l{k}`` / ``_reverse`` suffixes)."""
        out = {}
        if self.layer_norm:
            for part, size in (("ih", self.n_gates * H), ("hh", self.n_gates * H)) + \
                              ((("c", H),) if self.family == "lstm" else ()):
                out[f"ln_{part}_weight"] = (size,)
                out[f"ln_{part}_bias"] = (size,)
        if self.peepholes:
            out["peephole_weight"] = ((2 if self.coupled_gates else 3) * H,)
        return out

    @staticmethod
    def initial(name, shape, dtype):
        """Layer-norm gains start at 1; their biases and the peepholes at 0."""
        return np.ones(shape, dtype) if name.endswith("_weight") and name.startswith("ln_") else np.zeros(shape, dtype)


class VariantLSTMCache(NamedTuple):
    h_prev: np.ndarray               # (N, H)
    c_prev: np.ndarray               # (N, H)
    gates: np.ndarray                # (N, 4H) i, f, g, o (i = 1 - f with coupled gates)
    tanh_c: np.ndarray               # (N, H) tanh(LN(c)) or tanh(c)
    c: np.ndarray                    # (N, H) the (clipped) cell state
    inside: np.ndarray | None        # (N, H) bool, |c~| <= clip (None: no clip)
    ln_h: LayerNormCache | None      # recurrent projection's normalisation
    ln_c: LayerNormCache | None      # cell state's normalisation


class VariantGRUCache(NamedTuple):
    h_prev: np.ndarray               # (N, H)
    gates: np.ndarray                # (N, 3H) r, z, n
    hn: np.ndarray                   # (N, H) LN(W_hh h)_n + b_hn, what r multiplies
    ln_h: LayerNormCache


def _peepholes(v: Variant, p, H):
    """``(p_i or None, p_o, p_f)`` views of ``peephole_weight`` (ONNX order i, o, f), or Nones."""
    if not v.peepholes:
        return None, None, None
    w = p["peephole_weight"]
    if v.coupled_gates:
        return None, w[:H], w[H:]
    return w[:H], w[H : 2 * H], w[2 * H :]


def lstm_variant_step(x_proj, state, W_hh, b_hh=None, h_rec=None, *, v: Variant, p):
    """``x_proj`` (N, G*H) = ``LN_ih(W_ih x) + b_ih``; ``state = (h_prev, c_prev)``. Returns ``((h, c), cache)``."""
    h_prev, c_prev = state
    N, H = c_prev.shape
    gate = GATES[v.gate][0]
    a = matmul(h_prev if h_rec is None else h_rec, W_hh.T)     # (N, H) @ (H, G*H) -> (N, G*H)
    ln_h = None
    if v.layer_norm:
        a, ln_h = layer_norm(a, p["ln_hh_weight"], p["ln_hh_bias"], v.n_gates)
    a += x_proj
    if b_hh is not None:
        a += b_hh
    k = 0 if v.coupled_gates else H                       # where the f block starts
    p_i, p_o, p_f = _peepholes(v, p, H)
    gates = np.empty((N, 4 * H), a.dtype)                 # i, f, g, o
    i, f, g, o = (gates[:, j * H : (j + 1) * H] for j in range(4))
    gate(a[:, k : k + H] if p_f is None else a[:, k : k + H] + p_f * c_prev, out=f)
    if v.coupled_gates:
        np.subtract(1.0, f, out=i)
    else:
        gate(a[:, :H] if p_i is None else a[:, :H] + p_i * c_prev, out=i)
    np.tanh(a[:, k + H : k + 2 * H], out=g)
    c = f * c_prev + i * g                                # (N, H)
    inside = None
    if v.cell_clip is not None:
        inside = np.abs(c) <= v.cell_clip
        np.clip(c, -v.cell_clip, v.cell_clip, out=c)
    gate(a[:, k + 2 * H :] if p_o is None else a[:, k + 2 * H :] + p_o * c, out=o)
    ln_c = None
    if v.layer_norm:
        cn, ln_c = layer_norm(c, p["ln_c_weight"], p["ln_c_bias"])
        tanh_c = np.tanh(cn)
    else:
        tanh_c = np.tanh(c)
    h = o * tanh_c
    return (h, c), VariantLSTMCache(h_prev, c_prev, gates, tanh_c, c, inside, ln_h, ln_c)


def lstm_variant_step_backward(dstate, cache: VariantLSTMCache, W_hh, rec_mask=None, *, v: Variant, p, acc):
    """``dstate = (dh, dc)``; returns ``(da (N, G*H), dhh (N, G*H), (dh_prev, dc_prev))`` and adds the
    extra parameters' gradients into ``acc``."""
    dh, dc = dstate
    N, H = dh.shape
    gate_grad = GATES[v.gate][1]
    i, f, g, o = (cache.gates[:, j * H : (j + 1) * H] for j in range(4))
    t = cache.tanh_c
    k = 0 if v.coupled_gates else H
    p_i, p_o, p_f = _peepholes(v, p, H)
    da = np.empty((N, v.n_gates * H), dh.dtype)
    da_o = da[:, k + 2 * H :]
    np.multiply(dh * t, gate_grad(o), out=da_o)
    dcn = dh * o * (1.0 - t * t)                          # gradient of LN(c) (or of c)
    if v.layer_norm:
        dcn, dgain, dbias = layer_norm_backward(dcn, cache.ln_c, p["ln_c_weight"])
        acc["ln_c_weight"] += dgain
        acc["ln_c_bias"] += dbias
    dc = dc + dcn                                         # (N, H) total gradient into c
    if p_o is not None:
        dc += da_o * p_o
    if cache.inside is not None:
        dc *= cache.inside                                # no gradient through a clipped unit
    di = dc * g
    df = dc * cache.c_prev
    if v.coupled_gates:
        df -= di                                          # i = 1 - f
    else:
        np.multiply(di, gate_grad(i), out=da[:, :H])
    da_f = da[:, k : k + H]
    np.multiply(df, gate_grad(f), out=da_f)
    np.multiply(dc * i, 1.0 - g * g, out=da[:, k + H : k + 2 * H])
    dc_prev = dc * f
    if v.peepholes:
        dp = acc["peephole_weight"]
        j = 0 if v.coupled_gates else H                   # [p_i,] p_o, p_f
        dp[j : j + H] += (da_o * cache.c).sum(axis=0)
        dp[j + H :] += (da_f * cache.c_prev).sum(axis=0)
        dc_prev += da_f * p_f
        if p_i is not None:
            dp[:H] += (da[:, :H] * cache.c_prev).sum(axis=0)
            dc_prev += da[:, :H] * p_i
    dhh = da
    if v.layer_norm:
        dhh, dgain, dbias = layer_norm_backward(da, cache.ln_h, p["ln_hh_weight"])
        acc["ln_hh_weight"] += dgain
        acc["ln_hh_bias"] += dbias
    dh_prev = matmul(dhh, W_hh)                                  # (N, G*H) @ (G*H, H) -> (N, H)
    if rec_mask is not None:
        dh_prev *= rec_mask
    return da, dhh, (dh_prev, dc_prev)


def gru_variant_step(x_proj, state, W_hh, b_hh=None, h_rec=None, *, v: Variant, p):
    """``x_proj`` (N, 3H) = ``LN_ih(W_ih x) + b_ih``; ``state = (h_prev,)``. Returns ``((h,), cache)``."""
    (h_prev,) = state
    H = h_prev.shape[1]
    hr = matmul(h_prev if h_rec is None else h_rec, W_hh.T)     # (N, H) @ (H, 3H) -> (N, 3H)
    hh, ln_h = layer_norm(hr, p["ln_hh_weight"], p["ln_hh_bias"], 3)
    if b_hh is not None:
        hh += b_hh
    h, gates = gru_gates(x_proj, hh, h_prev, GATES[v.gate][0])
    return (h,), VariantGRUCache(h_prev, gates, hh[:, 2 * H :], ln_h)


def gru_variant_step_backward(dstate, cache: VariantGRUCache, W_hh, rec_mask=None, *, v: Variant, p, acc):
    """Returns ``(dx_proj, dhh, (dh_prev,))``; adds ``b_hh``'s and the normalisation's gradients into ``acc``."""
    (dh,) = dstate
    H = dh.shape[1]
    dx, dpost = gru_gates_backward(dh, cache, GATES[v.gate][1])   # dpost: of LN(W_hh h) + b_hh
    acc["b_hh"] += dpost.sum(axis=0)
    dhh, dgain, dbias = layer_norm_backward(dpost, cache.ln_h, p["ln_hh_weight"])
    acc["ln_hh_weight"] += dgain
    acc["ln_hh_bias"] += dbias
    dh_rec = matmul(dhh, W_hh)                                   # (N, 3H) @ (3H, H) -> (N, H)
    if rec_mask is not None:
        dh_rec *= rec_mask
    return dx, dhh, (dh * cache.gates[:, H : 2 * H] + dh_rec,)


STEPS = {"lstm": (lstm_variant_step, lstm_variant_step_backward, 2),
         "gru": (gru_variant_step, gru_variant_step_backward, 1)}


def accumulator(v: Variant, p) -> dict:
    """Zero gradients for the extra parameters ``p`` (and the GRU's ``b_hh``, which sits after the
    normalisation), which the step-backward adds into."""
    acc = {name: np.zeros_like(a) for name, a in p.items()}
    if v.family == "gru":
        acc["b_hh"] = np.zeros_like(p["ln_hh_bias"])
    return acc


def bind(v: Variant, p, acc=None) -> CellOps:
    """A :class:`CellOps` whose step and step-backward are the variant's, bound to its extra
    parameters ``p`` (local names) and, for backward, to the gradient accumulator ``acc`` (a fresh
    :func:`accumulator` when None: gradients that nobody reads, for a backward run only for its
    state gradients, as the Jacobian diagnostics do)."""
    if acc is None and p:
        acc = accumulator(v, p)
    step, back, n_states = STEPS[v.family]
    return CellOps(v.family, v.n_gates, n_states, partial(step, v=v, p=p), partial(back, v=v, p=p, acc=acc),
                   fused=False)


class VariantLayerCache(NamedTuple):
    x: np.ndarray                    # (L, N, H_in) input in processing order
    h_prev: np.ndarray               # (L, N, H) state each recurrent product saw
    steps: list                      # per-step caches
    mask: np.ndarray | None          # (L, N, 1) processing order
    rev: np.ndarray | None           # per-sequence reversal of a reverse direction, or None
    noise: object                    # StepNoise or None
    ln_x: LayerNormCache | None      # the input projection's normalisation (L, N, G, H)


def variant_layer_forward(v: Variant, p, x, state0, W_ih, W_hh, b_ih=None, b_hh=None, mask=None, reverse=False,
                          rev=None, noise=None, loop=None):
    """Like :func:`~rnnkit.functional.recurrent.layer_forward` for a variant cell with extra
    parameters ``p``. Returns ``(y (L, N, H), state, cache)``, ``y`` in natural time order.
    ``loop``: a fused time loop for this variant, ``loop(v, p, x, state0, W_ih, W_hh, b_ih, b_hh, mask)
    -> (y, state, h_prev, steps)`` whose ``steps`` index like the step caches and have their own
    ``layer_backward`` and ``ln_x`` (the caller passes one only where it computes ``v``); not used with ``noise``."""
    if reverse:
        x, noise = reverse_time(x, rev), reverse_noise(noise, rev)
    if loop is not None and noise is None:
        y, state, h_prev, steps = loop(v, p, x, state0, W_ih, W_hh, b_ih, b_hh, mask)
        if reverse:
            y = reverse_time(y, rev)
        return y, state, VariantLayerCache(x, h_prev, steps, mask, rev if reverse else None, None, steps.ln_x)
    x_proj = matmul(x.reshape(-1, x.shape[-1]), W_ih.T).reshape(x.shape[:-1] + (-1,))                                   # (L, N, H_in) @ (H_in, G*H) -> (L, N, G*H)
    ln_x = None
    if v.layer_norm:
        x_proj, ln_x = layer_norm(x_proj, p["ln_ih_weight"], p["ln_ih_bias"], v.n_gates)
    if b_ih is not None:
        x_proj += b_ih
    y, state, h_prev, steps = sequence_forward(bind(v, p), x_proj, state0, W_hh, b_hh, mask, noise)
    if reverse:
        y = reverse_time(y, rev)
    return y, state, VariantLayerCache(x, h_prev, steps, mask, rev if reverse else None, noise, ln_x)


def variant_layer_backward(v: Variant, p, dy, dstate, cache: VariantLayerCache, W_ih, W_hh, reverse=False,
                           record=False):
    """Gradients of one direction: ``(dx, dstate0, grads)``, ``grads`` with ``W_ih, W_hh, b_ih, b_hh``,
    the extra parameters' local names, and with ``record`` ``h`` (dL/dh_t, natural order)."""
    if reverse:
        dy = reverse_time(dy, cache.rev)
    if not record and hasattr(cache.steps, "layer_backward"):   # a fused loop's buffers: its own backward
        dx_proj, dstate0, grads = cache.steps.layer_backward(dy, dstate, W_hh)
        return input_backward(dx_proj, W_ih, cache, grads, reverse), dstate0, grads
    acc = accumulator(v, p)
    dh = np.empty(dy.shape, dy.dtype) if record else None
    dx_proj, dhh, dstate0 = sequence_backward(bind(v, p, acc), dy, dstate, cache.steps, W_hh, cache.mask,
                                              record=dh, noise=cache.noise)
    L, N, GH = dx_proj.shape
    flat_dxp = dx_proj.reshape(L * N, GH)
    grads = {"b_ih": flat_dxp.sum(axis=0),
             "W_hh": matmul(dhh.reshape(L * N, GH).T, cache.h_prev.reshape(L * N, -1)),   # (G*H, L*N) @ (L*N, H)
             "b_hh": acc.pop("b_hh") if v.family == "gru" else flat_dxp.sum(axis=0)}
    if v.layer_norm:
        dx_proj, grads["ln_ih_weight"], grads["ln_ih_bias"] = layer_norm_backward(dx_proj, cache.ln_x,
                                                                                p["ln_ih_weight"])
        acc.pop("ln_ih_weight"), acc.pop("ln_ih_bias")
    grads.update(acc)
    return input_backward(dx_proj, W_ih, cache, grads, reverse, dh), dstate0, grads
