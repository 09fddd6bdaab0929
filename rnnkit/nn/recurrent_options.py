"""The recurrent layers' initialisation and regularisation options (issue 15): validation and
initialisation at construction, the masks a forward call draws, and a step-by-step stream for the
options :class:`~rnnkit.nn.stream.Stream` does not implement, and the checks of the gate variants
(layer_norm, peepholes, coupled_gates, cell_clip; :mod:`rnnkit.functional.variants`). The equations
and references are in :class:`~rnnkit.nn.recurrent.RNNBase`'s docstring, :mod:`rnnkit.functional.noise`
and :mod:`rnnkit.functional.variants`."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._validate import check_bool, check_probability
from ..functional.init import forget_bias_blocks, identity, orthogonal, set_forget_bias
from ..functional.noise import StepNoise
from ..functional.variants import Variant

RECURRENT_INITS = ("default", "orthogonal", "identity")


class LayerMasks(NamedTuple):
    """The regularisation masks of one direction of one layer for one forward call (None: off)."""

    input: np.ndarray | None   # (N, H_in) input dropout, 0 or 1/(1-p), the same at every step
    weight: np.ndarray | None  # (G*H, H) DropConnect on weight_hh, 0 or 1/(1-p)
    step: StepNoise | None     # recurrent dropout (N, H) and zoneout masks (L, N, H) in natural time order


def set_options(m, recurrent_init, forget_bias, recurrent_dropout, input_dropout, zoneout, weight_dropout):
    """Validate and record the initialisation and regularisation options; apply the first two."""
    name = type(m).__name__
    if recurrent_init not in RECURRENT_INITS:
        raise ValueError(f"recurrent_init: expected one of {RECURRENT_INITS}, got {recurrent_init!r}")
    if recurrent_init == "identity" and not m.mode.startswith("rnn_"):
        raise ValueError(f"recurrent_init='identity' is the IRNN's, for RNN layers: {name}'s weight_hh stacks "
                         f"{m.ops.n_gates} gate blocks and has no single identity; use 'orthogonal'")
    m.recurrent_init = recurrent_init
    if forget_bias is not None:
        forget_bias_blocks(m)
        if not isinstance(forget_bias, (int, float, np.floating)) or isinstance(forget_bias, bool) or \
                not math.isfinite(forget_bias):
            raise ValueError(f"forget_bias: expected a finite number, got {forget_bias!r}")
        forget_bias = float(forget_bias)
    m.forget_bias = forget_bias
    m.recurrent_dropout = check_probability(recurrent_dropout, "recurrent_dropout")
    m.input_dropout = check_probability(input_dropout, "input_dropout")
    m.weight_dropout = check_probability(weight_dropout, "weight_dropout")
    m.zoneout = _zoneout(m, zoneout)
    if m.proj_size and (m.recurrent_dropout or any(m._zone)):
        raise ValueError(f"{name}: recurrent_dropout and zoneout are not implemented with proj_size (the "
                         f"projected LSTM has its own time loop); input_dropout and weight_dropout are")
    m._regularised = bool(m.recurrent_dropout or m.input_dropout or m.weight_dropout or any(m._zone))
    _initialise(m, recurrent_init, forget_bias)


def _initialise(m, recurrent_init, forget_bias):
    """Apply ``recurrent_init`` to every ``weight_hh`` (drawing from ``m.rng`` after PyTorch's
    uniform draws) and set the forget bias."""
    for layer in range(m.num_layers):
        for sfx in m.suffixes:
            W = m.params[f"weight_hh_l{layer}{sfx}"]
            if recurrent_init == "orthogonal":
                W[...] = orthogonal(W.shape, m.rng)
            elif recurrent_init == "identity":
                W[...] = identity(W.shape)
                for b in (f"bias_ih_l{layer}{sfx}", f"bias_hh_l{layer}{sfx}"):
                    if b in m.params:
                        m.params[b][...] = 0.0
    if forget_bias is not None:
        set_forget_bias(m, forget_bias)


def _zoneout(m, zoneout):
    """``z`` or ``(z_h, z_c)`` -> the value kept in ``m.zoneout`` (a float when both agree);
    sets ``m._zone``, one probability per state."""
    lstm = m.ops.n_states == 2
    if isinstance(zoneout, (tuple, list)):
        if len(zoneout) != 2 or not lstm:
            raise ValueError(f"zoneout: expected a probability, or a pair (z_h, z_c) for an LSTM, got {zoneout!r}")
        zh, zc = (check_probability(z, "zoneout") for z in zoneout)
    else:
        zh = zc = check_probability(zoneout, "zoneout")
    m._zone = (zh, zc) if lstm else (zh,)
    return zh if zh == zc else (zh, zc)


def draw_masks(m, L, N) -> list | None:
    """The masks a forward call over ``L`` steps of ``N`` sequences uses: a
    :class:`LayerMasks` per layer and direction (row ``layer * D + direction``), or None
    when no regularisation option is on. Forward draws them first, from ``m.rng``, so
    restoring ``m.rng``'s state before a call replays them (tests do, to compare with
    another implementation or to take finite differences). In evaluation only zoneout
    remains, as its expectation (floats instead of masks)."""
    if not m._regularised:
        return None
    if not m.training:
        if not any(m._zone):
            return None
        zone = tuple(z or None for z in m._zone)
        return [LayerMasks(None, None, StepNoise(None, zone))] * (m.num_layers * m.num_directions)
    G, H, P, D = m.ops.n_gates, m.hidden_size, m.output_size, m.num_directions
    sizes = (P, H)[: m.ops.n_states]
    out = []
    for layer in range(m.num_layers):
        h_in = m.input_size if layer == 0 else P * D
        for _ in range(D):
            inp = _keep(m, (N, h_in), m.input_dropout)
            weight = _keep(m, (G * H, P), m.weight_dropout)
            rec = _keep(m, (N, P), m.recurrent_dropout)
            zone = None
            if any(m._zone):   # d = 1 keeps the previous value
                zone = tuple((m.rng.random((L, N, n)) < z).astype(m.dtype) if z else None
                             for z, n in zip(m._zone, sizes))
            step = None if rec is None and zone is None else StepNoise(rec, zone)
            out.append(LayerMasks(inp, weight, step))
    return out


def _keep(m, shape, p):
    """A dropout mask: 0 with probability ``p``, else ``1 / (1 - p)``; None when ``p`` is 0."""
    if not p:
        return None
    keep = (m.rng.random(shape) >= p).astype(m.dtype)
    keep /= m.dtype.type(1.0 - p)
    return keep


def apply_masks(masks: LayerMasks, inp, W_hh):
    """The input and recurrent weight one direction sees, and its time-loop noise."""
    if masks.input is not None:
        inp = inp * masks.input             # (L, N, H_in) * (N, H_in): the same mask at every step
    if masks.weight is not None:
        W_hh = W_hh * masks.weight          # (G*H, H) DropConnect
    return inp, W_hh, masks.step


class StepStream:
    """Step-by-step inference through the layer's own :meth:`~rnnkit.nn.recurrent.RNNBase.forward` in evaluation mode,
    one step a call (``step``, ``reset``, ``state`` as :class:`~rnnkit.nn.stream.Stream`): for
    options the stream's kernels do not implement (zoneout, the gate variants)."""

    def __init__(self, rnn, batch_size=1, state=None):
        if rnn.bidirectional:
            raise ValueError("stream: a bidirectional layer needs the whole sequence; streaming works with "
                             "bidirectional=False only")
        self.rnn, self.N = rnn, int(batch_size)
        self.reset(state)

    def reset(self, state=None):
        """Zero the state, or set it (as the layer takes it)."""
        self._state = self.rnn._pack_state(self.rnn._split_state(state, self.N))

    @property
    def state(self):
        return self._state

    def step(self, x):
        """``x`` (N, H_in) -> ``y`` (N, H), the top layer's new hidden state."""
        was_training = self.rnn.training
        self.rnn.training = False
        try:
            x = np.asarray(x)
            y, self._state = self.rnn(x[:, None] if self.rnn.batch_first else x[None], self._state)
        finally:
            self.rnn.training = was_training
            self.rnn.clear_cache()
        return y[:, 0] if self.rnn.batch_first else y[0]


def check_variant(m, layer_norm, peepholes, coupled_gates, cell_clip, proj_size):
    """The :class:`~rnnkit.functional.variants.Variant` the gate-variant options describe, or None
    when all are off; an option the cell does not have is refused in one line."""
    name = type(m).__name__
    for opt, val in (("layer_norm", layer_norm), ("peepholes", peepholes), ("coupled_gates", coupled_gates)):
        check_bool(val, opt)
    if cell_clip is not None:
        if not isinstance(cell_clip, (int, float, np.floating, np.integer)) or isinstance(cell_clip, bool) or \
                not math.isfinite(cell_clip) or cell_clip <= 0:
            raise ValueError(f"cell_clip: expected a positive number (or None: no clipping), got {cell_clip!r}")
        cell_clip = float(cell_clip)
    if not (layer_norm or peepholes or coupled_gates or cell_clip is not None):
        return None
    family = m.mode.split("_")[0]
    lstm_only = [o for o, on in (("peepholes", peepholes), ("coupled_gates", coupled_gates),
                                 ("cell_clip", cell_clip is not None)) if on]
    if family == "rnn" or (family == "gru" and lstm_only):
        opts = (["layer_norm"] if layer_norm and family == "rnn" else []) + lstm_only
        raise ValueError(f"{name}: {', '.join(opts)} {'is' if len(opts) == 1 else 'are'} not an option of "
                         f"{m.mode!r} cells (layer_norm: LSTM and GRU; the others: LSTM only)")
    if m.mode.startswith("gru_reset_before"):
        raise ValueError(f"{name}: layer_norm is implemented for reset_after=True (PyTorch's GRU) only")
    if proj_size:
        raise ValueError(f"{name}: layer_norm, peepholes, coupled_gates and cell_clip are not implemented with "
                         f"proj_size (the projected LSTM has its own time loop)")
    return Variant(family, bool(layer_norm), bool(peepholes), bool(coupled_gates), cell_clip,
                   "hard_sigmoid" if m.mode.endswith("_hard") else "sigmoid")
