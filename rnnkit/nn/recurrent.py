"""Multi-layer, optionally bidirectional RNN / LSTM / GRU layers with hand-written BPTT.

Parameter names and layouts are PyTorch's, so ``torch.nn.LSTM(...).state_dict()`` (as NumPy
arrays) loads unchanged and gives the same outputs and gradients.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import kernels
from ..products import contiguous
from .._validate import (_shown, as_float_array, check_bool, check_dtype, check_finite, check_lengths,
                         check_positive_int, check_probability, check_seed, check_shape)
from ..functional.activations import hard_sigmoid, hard_sigmoid_grad, sigmoid, sigmoid_grad
from ..functional.lstmp import lstmp_layer_backward, lstmp_layer_forward
from ..functional.recompute import segmented_layer_backward, segmented_layer_forward
from ..functional.tokens import TokenInput
from ..functional.recurrent import CELLS, layer_backward, layer_forward, length_mask, reference_loop, reverse_index
from ..functional.variants import bind, variant_layer_backward, variant_layer_forward
from .module import Module
from .recurrent_options import StepStream, apply_masks, check_variant, draw_masks, set_options


# The one place that maps a backend to its time-loop implementation (same contract for both).
TIME_LOOPS = {"numpy": lambda: reference_loop, "numba": lambda: kernels.fast_sequence().layer_forward}


def time_loop(ops):
    """The time loop for a cell family: the selected backend's (``RNNKIT_KERNELS``), or the
    reference for variants the fused kernels do not implement (``ops.fused`` false)."""
    return TIME_LOOPS[kernels.backend()]() if ops.fused else reference_loop


def variant_time_loop(v):
    """The fused time loop for a gate variant the kernels compute (the layer-norm LSTM alone) when
    the fast backend is selected, else None: the reference loop."""
    if v is None or kernels.fast_sequence() is None:
        return None
    from ..kernels import ln_lstm

    return ln_lstm.layer_forward if ln_lstm.supports(v) else None


def _root(a):
    """The array ``a`` is a view of (itself when it owns its data)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


class RNNBase(Module):
    r"""Shared machinery; use :class:`RNN`, :class:`LSTM` or :class:`GRU`.

    Forward: ``y, state = m(x, state=None, lengths=None)``

    * ``x``: (L, N, H_in), or (N, L, H_in) with ``batch_first=True``.
    * ``state``: (D * num_layers, N, H) initial hidden state (LSTM: a tuple ``(h_0, c_0)``);
      zeros when omitted. With an LSTM ``proj_size`` P > 0, ``h`` has P units (``c`` keeps H)
      and so do the outputs.
    * ``lengths``: optional (N,) integers in [1, L]; gives PyTorch's packed-sequence result.
    * ``y``: (L, N, D * H) top layer outputs for every step (zero past each sequence's length),
      read-only: the fused LSTM hands out the state buffer that backward reads, without a copy,
      and every path does the same so that one rule holds (``y.copy()`` to write into it; PyTorch
      refuses a backward through a saved output changed in place, rnnkit refuses the write).
    * ``state``: (D * num_layers, N, H) final states, row ``layer * D + direction``
      (LSTM: ``(h_n, c_n)``). For a bidirectional layer ``h_n`` is *not* ``y[-1]``: the reverse
      direction ends at t = 0.

    Backward: ``dx = m.backward(dy, dstate=None)`` accumulates parameter gradients into
    ``m.grads`` and returns the gradient of ``x``. When forward was given a ``state``, it
    returns ``(dx, dstate_0)`` instead (LSTM: ``(dx, (dh_0, dc_0))``). ``dstate`` is the
    gradient w.r.t. the returned final state (LSTM: a tuple, either entry may be None).

    ``dropout`` acts between layers, on every unit of every step of a layer's output (PyTorch's),
    so it needs ``num_layers > 1`` (with one layer it warns, as PyTorch does).

    Keyword options (defaults: PyTorch's layer, unchanged and as fast):

    * ``recurrent_init``: ``'default'`` (PyTorch's U(-1/sqrt(H), 1/sqrt(H))), ``'orthogonal'``
      (each whole (G*H, H) ``weight_hh`` as ``torch.nn.init.orthogonal_``: columns orthonormal,
      :math:`W_{hh}^T W_{hh} = I`; Saxe et al. 2014; Keras's ``Orthogonal`` on its transposed
      kernel) or ``'identity'`` (the IRNN, Le et al. 2015: :math:`W_{hh} = I` and both biases 0;
      RNN only: a gated cell's stacked weight has no single identity).
    * ``forget_bias`` (LSTM): the forget gate's bias, all of it in ``bias_ih``'s f block and 0 in
      ``bias_hh``'s (:func:`~rnnkit.functional.init.set_forget_bias`; Jozefowicz et al. 2015).
    * ``recurrent_dropout=p`` (Gal & Ghahramani 2016, Keras's): one mask :math:`m` (N, H) per
      sequence, layer and direction on the state where it enters the recurrent product,
      :math:`(h_{t-1} \odot m) W_{hh}^T`, :math:`m \in \{0, 1/(1-p)\}`; ``c`` and the GRU's carried
      :math:`z \odot h_{t-1}` are not masked.
    * ``input_dropout=p``: one mask (N, H_in) per sequence, layer and direction on the layer's
      input, the same at every step (Gal & Ghahramani's input mask; Keras's ``dropout``).
    * ``zoneout=z`` or ``(z_h, z_c)`` (Krueger et al. 2017): :math:`s_t = d_t \odot s_{t-1} +
      (1 - d_t) \odot \tilde s_t` with a fresh :math:`d_t \sim` Bernoulli(z) per unit and step, for
      ``h`` (and ``c``, LSTM only); in evaluation :math:`d_t = z`, the expectation.
    * ``weight_dropout=p`` (DropConnect on the recurrent weights, Wan et al. 2013, as in AWD-LSTM,
      Merity et al. 2018): the forward uses :math:`W_{hh} \odot M / (1-p)`, one mask :math:`M`
      per forward call, layer and direction; the gradient reaches ``weight_hh`` through the mask.

    The four regularisers are on in training mode only (``m.eval()`` turns all off, zoneout to its
    expectation), draw their masks from ``m.rng`` (reproducible from the seed, saved in
    checkpoints) at the start of each forward call (:meth:`draw_masks`), respect ``lengths`` and
    combine freely. Recurrent dropout and zoneout run on the NumPy time loop; input and weight
    dropout only change what the (fast) loop is given. They are not implemented with
    ``proj_size`` (recurrent dropout and zoneout).

    Gate variants (:mod:`rnnkit.functional.variants` has the equations; they run on the NumPy time
    loop, except the layer-norm LSTM alone, which has fused kernels (:mod:`rnnkit.kernels.ln_lstm`,
    same numbers); they compose with each other, the regularisers, ``bidirectional``, ``num_layers``
    and ``lengths``; not with ``proj_size`` or ``recompute``):

    * ``layer_norm`` (LSTM, GRU; Ba, Kiros & Hinton 2016): :math:`\mathrm{LN}(W_{ih} x)` and
      :math:`\mathrm{LN}(W_{hh} h)` normalised separately, per gate block, plus ``b_ih``, ``b_hh``;
      the LSTM's output is :math:`o \odot \tanh(\mathrm{LN}(c))`; the GRU's reset gate multiplies
      :math:`\mathrm{LN}(W_{hh} h)^n + b_{hn}`. Parameters ``ln_ih_weight_l{k}``, ``ln_ih_bias_l{k}``,
      ``ln_hh_...``, ``ln_c_...`` (gains init 1, biases 0).
    * ``peepholes`` (LSTM; Gers & Schmidhuber 2000): :math:`i = \sigma(\cdot + p_i c_{t-1})`,
      :math:`f = \sigma(\cdot + p_f c_{t-1})`, :math:`o = \sigma(\cdot + p_o c_t)`;
      ``peephole_weight_l{k}`` is ONNX's ``P`` layout :math:`[p_i, p_o, p_f]` (init 0).
    * ``coupled_gates`` (LSTM; CIFG, ONNX ``input_forget=1``): :math:`i = 1 - f`; the weights and
      biases have three blocks, f, g, o (3H rows).
    * ``cell_clip=k`` (LSTM; TensorFlow's ``cell_clip``): :math:`c_t` clipped to :math:`[-k, k]`, zero
      gradient through a clipped unit.
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, seed=None, proj_size=0, *,
                 recurrent_init="default", forget_bias=None, recurrent_dropout=0.0, input_dropout=0.0, zoneout=0.0,
                 weight_dropout=0.0, recompute=0, layer_norm=False, peepholes=False, coupled_gates=False,
                 cell_clip=None):
        super().__init__(check_dtype(dtype), check_seed(seed))
        if mode not in CELLS:
            raise ValueError(f"mode: expected one of {sorted(CELLS)}, got {mode!r}")
        self.mode = mode
        self.ops = CELLS[mode]
        # diagnostics: when set, backward keeps dL/dh_t per (layer, direction) in ``hidden_grads``
        self.record_hidden_grads = False
        self.hidden_grads: dict = {}
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.num_layers = check_positive_int(num_layers, "num_layers")
        self.bias = check_bool(bias, "bias")
        self.batch_first = check_bool(batch_first, "batch_first")
        self.dropout = check_probability(dropout, "dropout")
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(f"dropout acts between recurrent layers, so a non-zero dropout expects num_layers > 1, "
                          f"got dropout={self.dropout} and num_layers=1", UserWarning, stacklevel=3)
        self.bidirectional = check_bool(bidirectional, "bidirectional")
        self.num_directions = 2 if self.bidirectional else 1
        self.suffixes = ("", "_reverse")[: self.num_directions]
        if not isinstance(proj_size, (int, np.integer)) or isinstance(proj_size, bool) or proj_size < 0:
            raise ValueError(f"proj_size: expected an integer >= 0, got {proj_size!r}")
        if proj_size and not mode.startswith("lstm"):
            raise ValueError(f"proj_size: only an LSTM projects its hidden state, got proj_size={proj_size} for "
                             f"{type(self).__name__}")
        if proj_size >= self.hidden_size:
            raise ValueError(f"proj_size: expected a size below hidden_size={self.hidden_size}, got {proj_size}")
        self.proj_size = int(proj_size)
        self.output_size = self.proj_size or self.hidden_size    # units of h and of each direction's output
        self.variant = v = check_variant(self, layer_norm, peepholes, coupled_gates, cell_clip, self.proj_size)
        self.layer_norm, self.peepholes = bool(v and v.layer_norm), bool(v and v.peepholes)
        self.coupled_gates, self.cell_clip = bool(v and v.coupled_gates), v and v.cell_clip
        if v is not None:
            self.ops = bind(self.variant, {})   # its n_gates / n_states; forward binds the parameters
        # the projected LSTM's gate function and its derivative (its loop is lstmp's, not the registry's)
        self._gate = (hard_sigmoid, hard_sigmoid_grad) if mode.endswith("_hard") else (sigmoid, sigmoid_grad)
        G, H, P = self.ops.n_gates, self.hidden_size, self.output_size
        k = 1.0 / np.sqrt(H)
        for layer in range(self.num_layers):
            h_in = self.input_size if layer == 0 else P * self.num_directions
            for sfx in self.suffixes:
                self.add_param(f"weight_ih_l{layer}{sfx}", self.rng.uniform(-k, k, (G * H, h_in)))
                self.add_param(f"weight_hh_l{layer}{sfx}", self.rng.uniform(-k, k, (G * H, P)))
                if self.bias:
                    self.add_param(f"bias_ih_l{layer}{sfx}", self.rng.uniform(-k, k, (G * H,)))
                    self.add_param(f"bias_hh_l{layer}{sfx}", self.rng.uniform(-k, k, (G * H,)))
                if self.proj_size:
                    self.add_param(f"weight_hr_l{layer}{sfx}", self.rng.uniform(-k, k, (P, H)))
                for name, shape in (self.variant.param_shapes(H) if self.variant else {}).items():
                    self.add_param(f"{name}_l{layer}{sfx}", self.variant.initial(name, shape, self.dtype))
        set_options(self, recurrent_init, forget_bias, recurrent_dropout, input_dropout, zoneout, weight_dropout)
        self.recompute = _check_recompute(recompute, self)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.mode.startswith("rnn_"):
            s += f", nonlinearity={self.mode[4:]!r}"
        if self.mode.endswith("_hard"):
            s += ", gate='hard_sigmoid'"
        if self.mode.startswith("gru_reset_before"):
            s += ", reset_after=False"
        for name in ("bias", "batch_first", "dropout", "bidirectional"):
            s += f", {name}={getattr(self, name)}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        for name in ("layer_norm", "peepholes", "coupled_gates", "cell_clip"):
            if getattr(self, name):
                s += f", {name}={getattr(self, name)}"
        for name, off in (("recurrent_init", "default"), ("forget_bias", None), ("recurrent_dropout", 0.0),
                          ("input_dropout", 0.0), ("zoneout", 0.0), ("weight_dropout", 0.0), ("recompute", 0)):
            if getattr(self, name) != off:
                s += f", {name}={getattr(self, name)!r}"
        return s + f", dtype={self.dtype}"

    # -- checks ---------------------------------------------------------------------
    def _check_input(self, x, finite=True):
        x = as_float_array(x, f"{type(self).__name__} input", self.dtype)
        axes = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__} input: expected a 3-D array {axes}, got shape {x.shape}")
        if x.shape[2] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} input: expected last dimension H_in={self.input_size}, got shape {x.shape}")
        if 0 in x.shape[:2]:
            raise ValueError(f"{type(self).__name__} input: expected non-empty {axes}, got shape {x.shape}")
        if finite:
            check_finite(x, f"{type(self).__name__} input")
        return x

    def _split_state(self, state, N, what="state"):
        """Return a tuple of ``ops.n_states`` arrays (D*layers, N, H), validated (or zeros); with a
        projection ``h`` has ``proj_size`` units."""
        rows, n = self.num_layers * self.num_directions, self.ops.n_states
        sizes = (self.output_size, self.hidden_size)[:n]
        if state is None:
            return tuple(np.zeros((rows, N, H), self.dtype) for H in sizes)
        if n == 2:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(f"{type(self).__name__} {what}: expected a tuple (h, c), got {_shown(state)}")
            names = ("h", "c")
        else:
            if isinstance(state, (tuple, list)):
                raise TypeError(f"{type(self).__name__} {what}: expected one array h, got a {type(state).__name__}")
            state, names = (state,), ("h",)
        out = []
        for s, nm, H in zip(state, names, sizes):
            s = as_float_array(s, f"{what} {nm}", self.dtype)
            check_shape(s, (rows, N, H), f"{type(self).__name__} {what} {nm} (D*num_layers, N, "
                                         f"{'P' if H != self.hidden_size else 'H'})")
            check_finite(s, f"{what} {nm}")
            out.append(s)
        return tuple(out)

    def _pack_state(self, arrays):
        return (arrays[0], arrays[1]) if self.ops.n_states == 2 else arrays[0]

    def variant_params(self, layer, sfx) -> dict:
        """The gate variant's extra parameters of layer ``layer``, direction suffix ``sfx`` ('' or
        '_reverse'), by their local names (``ln_ih_weight``, ...)."""
        return {name: self.params[f"{name}_l{layer}{sfx}"] for name in self.variant.param_shapes(self.hidden_size)}

    def draw_masks(self, L, N) -> list | None:
        """The masks a forward call over ``L`` steps of ``N`` sequences uses, drawn from
        ``self.rng`` (:func:`rnnkit.nn.recurrent_options.draw_masks`): a ``LayerMasks`` per layer and
        direction, or None when no option is on. Forward draws them first, so restoring
        ``self.rng``'s state before a call replays them."""
        return draw_masks(self, L, N)

    # -- forward --------------------------------------------------------------------
    def takes_tokens(self) -> bool:
        """Whether :meth:`forward` folds a :class:`~rnnkit.functional.tokens.TokenInput` into the first
        layer's input projection rather than expanding it: the plain cells on the fast time loop,
        one direction, time-major, no regularisation option, no recording, no recomputation."""
        return (self.variant is None and not self.proj_size and not self.recompute and self.num_directions == 1
                and not self.batch_first and not self._regularised and not self.record_hidden_grads
                and getattr(time_loop(self.ops), "takes_tokens", False))

    def forward(self, x, state=None, lengths=None):
        if isinstance(x, TokenInput) and not (x.folds() and self.takes_tokens()):
            x = x.dense()
        if not isinstance(x, TokenInput):                 # a TokenInput's ids were checked by its embedding
            x = self._check_input(x, finite=lengths is None)
            if self.batch_first:
                x = x.transpose(1, 0, 2)
        L, N, _ = x.shape
        given_state = state is not None
        state0 = self._split_state(state, N)
        mask = rev = None
        if lengths is not None:
            lengths = check_lengths(lengths, N, L)
            if not isinstance(x, TokenInput) and not np.isfinite(x).all():
                # NaN padding (pandas') past a sequence's length is never read, as with PyTorch's packed
                # sequences: checked on the valid steps only, then zeroed so no product touches it
                valid = (np.arange(L)[:, None] < lengths[None, :])[:, :, None]
                x = np.where(valid, x, 0).astype(x.dtype, copy=False)
                check_finite(x, f"{type(self).__name__} input (within lengths)")
            if lengths.min() < L:
                mask = length_mask(lengths, L)
            if self.bidirectional:
                rev = reverse_index(lengths, L)
        D = self.num_directions
        final = tuple(np.empty_like(s) for s in state0)
        caches, drop_masks, w_hh = [], [], []
        noise = self.draw_masks(L, N)
        inp = x if isinstance(x, TokenInput) else np.ascontiguousarray(x)
        for layer in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(self.suffixes):
                row = layer * D + d
                p = self.params
                x_in, W_hh, step_noise = inp, p[f"weight_hh_l{layer}{sfx}"], None
                if noise is not None:
                    x_in, W_hh, step_noise = apply_masks(noise[row], inp, W_hh)
                w_hh.append(W_hh)
                args = (x_in, tuple(s[row] for s in state0), p[f"weight_ih_l{layer}{sfx}"], W_hh)
                bias = (p.get(f"bias_ih_l{layer}{sfx}"), p.get(f"bias_hh_l{layer}{sfx}"))
                if self.variant is not None:
                    y, st, cache = variant_layer_forward(self.variant, self.variant_params(layer, sfx), *args,
                                                         *bias, mask=mask, reverse=d == 1, rev=rev, noise=step_noise,
                                                         loop=variant_time_loop(self.variant))
                elif self.proj_size:
                    y, st, cache = lstmp_layer_forward(*args, p[f"weight_hr_l{layer}{sfx}"], *bias, mask=mask,
                                                       reverse=d == 1, rev=rev, gate=self._gate[0])
                elif self.recompute:
                    k = self.recompute if self.recompute != "sqrt" else max(1, math.ceil(math.sqrt(L)))
                    y, st, cache = segmented_layer_forward(self.ops, *args, *bias, mask=mask, reverse=d == 1, rev=rev,
                                                           loop=time_loop(self.ops), k=k)
                else:
                    y, st, cache = layer_forward(self.ops, *args, *bias, mask=mask, reverse=d == 1, rev=rev,
                                                 loop=time_loop(self.ops), noise=step_noise)
                for f, s in zip(final, st):
                    f[row] = s
                outs.append(y)
                caches.append(cache)
            out = outs[0] if D == 1 else np.concatenate(outs, axis=2)  # (L, N, D*H)
            keep = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                keep = (self.rng.random(out.shape) >= self.dropout).astype(self.dtype)
                keep /= self.dtype.type(1.0 - self.dropout)
                out = out * keep
            drop_masks.append(keep)
            inp = out
        if (not self.recompute and inp.strides[-1] != inp.itemsize
                and np.may_share_memory(inp, _root(caches[-1].h_prev))):
            # the fast path's output is a view of its state buffer, which backward reads. Kept by
            # features (the GRU's and the RNN's), it is copied into rows, by tiles (products.contiguous:
            # 3.5x faster than NumPy's copy); kept in rows (the fused LSTM's), it is handed out as it
            # is: a copy was 60-110 us of the step at H=128 (benchmarks/NOTES.md, attempt 71)
            flat = inp.reshape(-1, inp.shape[-1])
            out = contiguous(flat)
            inp = (flat.copy() if out is flat else out).reshape(inp.shape)     # (flat itself when H = 1)
        self._cache = (caches, drop_masks, given_state, (L, N), mask, noise, w_hh)
        # read-only, whatever the path, so that no write to it can reach what backward reads (as
        # PyTorch refuses a backward through a tensor saved for it and changed in place)
        y = (inp.transpose(1, 0, 2) if self.batch_first else inp).view()
        y.flags.writeable = False
        return y, self._pack_state(final)

    def stream(self, batch_size=1, state=None):
        """A :class:`~rnnkit.nn.stream.Stream` for step-by-step inference (unidirectional layers).
        The regularisers are off in inference; zoneout's expectation and the gate variants, which the
        stream's kernels do not compute, step through :meth:`forward` one step at a time instead
        (same interface)."""
        batch_size = check_positive_int(batch_size, "batch_size")
        if any(self._zone) or self.variant is not None:
            return StepStream(self, batch_size, state)
        from .stream import Stream

        return Stream(self, batch_size, state)

    # -- backward -------------------------------------------------------------------
    def backward(self, dy, dstate=None):
        if self._cache is None:
            self._take_cache()                  # the one-line "no forward pass" error
        L, N = self._cache[3]
        D, H = self.num_directions, self.output_size
        dy = as_float_array(dy, f"{type(self).__name__}.backward dy", self.dtype)
        want = (N, L, D * H) if self.batch_first else (L, N, D * H)
        check_shape(dy, want, f"{type(self).__name__}.backward dy")
        check_finite(dy, f"{type(self).__name__}.backward dy (the gradient handed to the module)")
        if self.batch_first:
            dy = dy.transpose(1, 0, 2)
        dfinal = self._split_dstate(dstate, N)
        # taken only now: a dy or dstate refused above leaves the forward to differentiate
        caches, drop_masks, given_state, _, mask, noise, w_hh = self._take_cache()
        dstate0 = tuple(np.zeros_like(s) for s in dfinal)
        d_out = dy
        for layer in range(self.num_layers - 1, -1, -1):
            if drop_masks[layer] is not None:
                d_out = d_out * drop_masks[layer]
            d_in = None
            for d, sfx in enumerate(self.suffixes):
                row = layer * D + d
                p = self.params
                skip = self.frozen_products(layer, sfx)
                args = (d_out[:, :, d * H:(d + 1) * H], tuple(s[row] for s in dfinal), caches[row],
                        p[f"weight_ih_l{layer}{sfx}"], w_hh[row])
                if self.variant is not None:
                    dx, ds0, g = variant_layer_backward(self.variant, self.variant_params(layer, sfx), *args,
                                                        reverse=d == 1, record=self.record_hidden_grads)
                    for name in self.variant.param_shapes(H):
                        self.accumulate(f"{name}_l{layer}{sfx}", g[name])
                elif self.proj_size:
                    dx, ds0, g = lstmp_layer_backward(*args, p[f"weight_hr_l{layer}{sfx}"], reverse=d == 1,
                                                      record=self.record_hidden_grads, gate_grad=self._gate[1])
                    self.accumulate(f"weight_hr_l{layer}{sfx}", g["W_hr"])
                elif self.recompute:
                    if self.record_hidden_grads:
                        raise ValueError("recompute: recording dL/dh_t needs every step's cache; use recompute=0")
                    dx, ds0, g = segmented_layer_backward(self.ops, *args, reverse=d == 1, loop=time_loop(self.ops),
                                                          skip=skip)
                else:               # a state not given: its gradient is thrown away, so not computed
                    # the weight gradients added straight into grads where nothing changes them first
                    into = None if noise is not None else {
                        key: self.grads[f"{name}_l{layer}{sfx}"] for key, name in (("W_ih", "weight_ih"),
                                                                                   ("W_hh", "weight_hh"))
                        if f"{name}_l{layer}{sfx}" not in self.frozen}
                    dx, ds0, g = layer_backward(self.ops, *args, reverse=d == 1, record=self.record_hidden_grads,
                                                skip=skip + (() if given_state else ("state0",)), into=into)
                if self.record_hidden_grads:
                    self.hidden_grads[(layer, d)] = g["h"]
                masks = None if noise is None else noise[row]
                if masks is not None and masks.input is not None:
                    dx = dx * masks.input
                self.accumulate(f"weight_ih_l{layer}{sfx}", g.get("W_ih"))
                if masks is not None and masks.weight is not None and "W_hh" in g:
                    g["W_hh"] = g["W_hh"] * masks.weight   # through W_hh * M / (1 - p)
                self.accumulate(f"weight_hh_l{layer}{sfx}", g.get("W_hh"))
                if self.bias:
                    self.accumulate(f"bias_ih_l{layer}{sfx}", g["b_ih"])
                    self.accumulate(f"bias_hh_l{layer}{sfx}", g["b_hh"])
                for acc, s in zip(dstate0, ds0):
                    acc[row] = s
                d_in = dx if d_in is None else d_in + dx
            d_out = d_in
        dx = d_out.transpose(1, 0, 2) if self.batch_first else d_out
        if given_state:
            return dx, self._pack_state(dstate0)
        return dx

    def frozen_products(self, layer, sfx) -> tuple:
        """The weight-gradient products of one layer and direction not to compute (frozen weights)."""
        return tuple(k for k in ("W_ih", "W_hh") if f"weight_{k[2:]}_l{layer}{sfx}" in self.frozen)

    def _split_dstate(self, dstate, N):
        if dstate is None:
            return self._split_state(None, N)
        if self.ops.n_states == 2:
            if not isinstance(dstate, (tuple, list)) or len(dstate) != 2:
                raise TypeError(f"{type(self).__name__}.backward dstate: expected a tuple (dh_n, dc_n), "
                                f"got {type(dstate).__name__}")
            zeros = self._split_state(None, N)
            parts = [z if s is None else s for s, z in zip(dstate, zeros)]
            return self._split_state(tuple(parts), N, "backward dstate")
        return self._split_state(dstate, N, "backward dstate")


def _check_recompute(recompute, m):
    """``recompute``: 0 (off), a segment length k >= 1, or ``"sqrt"`` (k = ceil(sqrt(L)) per call)."""
    if recompute == "sqrt":
        pass
    elif not isinstance(recompute, (int, np.integer)) or isinstance(recompute, bool) or recompute < 0:
        raise ValueError(f"recompute: expected 0 (off), a segment length >= 1 or 'sqrt', got {recompute!r}")
    if recompute and (m.proj_size or m.recurrent_dropout or any(m._zone) or m.variant is not None):
        raise ValueError("recompute: not with proj_size, recurrent_dropout or zoneout, nor with the gate variants "
                         "(layer_norm, peepholes, coupled_gates, cell_clip): their loops keep every step")
    return recompute if recompute == "sqrt" else int(recompute)


class RNN(RNNBase):
    r"""Elman RNN: :math:`h_t = \tanh(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})`
    (or ReLU with ``nonlinearity='relu'``). See :class:`RNNBase` for shapes, backward and the
    keyword ``options`` (``recurrent_init`` -- ``'identity'`` with ReLU is the IRNN --,
    ``recurrent_dropout``, ``input_dropout``, ``zoneout``, ``weight_dropout``)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float32, seed=None, **options):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, seed, **options)


class LSTM(RNNBase):
    r"""Long short-term memory, PyTorch's formulation (gates i, f, g, o stacked in that order):

    .. math::
        i, f, o = \sigma(\cdot),\ g = \tanh(\cdot),\ c_t = f \odot c_{t-1} + i \odot g,\ h_t = o \odot \tanh(c_t)

    The state is a tuple ``(h, c)``, each (D * num_layers, N, H). See :class:`RNNBase`.

    ``proj_size=P`` (0 < P < H) projects the hidden state, as PyTorch's ``proj_size`` (LSTMP, Sak
    et al. 2014): :math:`h_t = W_{hr} (o \odot \tanh(c_t))` with ``weight_hr_l{k}`` (P, H), so
    ``h``, the outputs and the recurrent input have P units and ``c`` keeps H. It runs on the NumPy
    time loop (:mod:`rnnkit.functional.lstmp`).

    Keyword ``options`` (:class:`RNNBase`): ``forget_bias``, ``recurrent_init``,
    ``recurrent_dropout``, ``input_dropout``, ``zoneout`` (a float, or ``(z_h, z_c)``: ``c`` gets
    its own probability), ``weight_dropout``, and the gate variants ``layer_norm``, ``peepholes``,
    ``coupled_gates``, ``cell_clip`` (equations there and in :mod:`rnnkit.functional.variants`)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, seed=None, gate="sigmoid", proj_size=0,
                 **options):
        super().__init__(_gated("lstm", gate), input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, proj_size=proj_size, **options)


def _gated(mode: str, gate: str) -> str:
    """The cell family for ``gate='sigmoid'`` (PyTorch's) or ``'hard_sigmoid'`` (``clip(x/6 + 1/2, 0, 1)``)."""
    if gate == "sigmoid":
        return mode
    if gate == "hard_sigmoid":
        return mode + "_hard"
    raise ValueError(f"gate: expected 'sigmoid' or 'hard_sigmoid', got {gate!r}")


class GRU(RNNBase):
    r"""Gated recurrent unit, PyTorch's formulation (gates r, z, n):

    .. math::
        n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})),\quad
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Note the reset gate multiplies ``W_hn h + b_hn``, bias included. ``reset_after=False`` applies
    it before the recurrent product instead, ``n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn)``
    (Keras's ``reset_after=False``, ONNX's ``linear_before_reset=0``; same parameter names and
    shapes; it runs on the NumPy time loop). See :class:`RNNBase`, and there the keyword
    ``options`` (``recurrent_init``, ``recurrent_dropout`` -- on ``h`` in the products, the carried
    ``z * h_{t-1}`` unmasked --, ``input_dropout``, ``zoneout``, ``weight_dropout``, and
    ``layer_norm`` with ``reset_after=True``: :mod:`rnnkit.functional.variants`)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, seed=None, gate="sigmoid", reset_after=True,
                 **options):
        super().__init__(_gated(_gru_mode(reset_after), gate), input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, dtype, seed, **options)
        self.reset_after = bool(reset_after)


def _gru_mode(reset_after) -> str:
    """``'gru'`` (PyTorch's form, ``reset_after=True``) or ``'gru_reset_before'``."""
    if reset_after not in (True, False):
        raise ValueError(f"reset_after: expected True or False, got {reset_after!r}")
    return "gru" if reset_after else "gru_reset_before"
