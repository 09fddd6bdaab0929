"""Single-step cells for step-by-step use (decoders, streaming, hand-written loops).

PyTorch's call conventions: ``h = RNNCell(x, h)``, ``h = GRUCell(x, h)``,
``(h, c) = LSTMCell(x, (h, c))``; parameters ``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh`` in PyTorch's layouts.

Two ways to differentiate:

* ``m(x, state)`` then ``m.backward(dstate)``: one forward, one backward, cache kept on the module.
* ``new, cache = m.forward_cached(x, state)`` and ``dx, dstate_prev = m.backward_cached(dnew, cache)``:
  explicit caches for a cell run many times inside one backward (a decoder over time).
  Gradients accumulate into ``m.grads`` either way.
"""
from __future__ import annotations

import numpy as np

from .._validate import (_shown, as_float_array, check_bool, check_dtype, check_finite, check_positive_int, check_seed,
                         check_shape)
from ..functional.recurrent import CELLS, step_gates
from .module import Module
from .recurrent import _gated, _gru_mode


class _Cell(Module):
    def __init__(self, mode, input_size, hidden_size, bias=True, dtype=np.float32, seed=None):
        super().__init__(check_dtype(dtype), check_seed(seed))
        self.mode, self.ops = mode, CELLS[mode]
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.bias = check_bool(bias, "bias")
        G, H = self.ops.n_gates, self.hidden_size
        k = 1.0 / np.sqrt(H)
        self.add_param("weight_ih", self.rng.uniform(-k, k, (G * H, self.input_size)))
        self.add_param("weight_hh", self.rng.uniform(-k, k, (G * H, H)))
        if self.bias:
            self.add_param("bias_ih", self.rng.uniform(-k, k, (G * H,)))
            self.add_param("bias_hh", self.rng.uniform(-k, k, (G * H,)))

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"

    def _states(self, state, N, what):
        n, H = self.ops.n_states, self.hidden_size
        if state is None:
            return tuple(np.zeros((N, H), self.dtype) for _ in range(n))
        if n == 2 and (not isinstance(state, (tuple, list)) or len(state) != 2):
            raise TypeError(f"{type(self).__name__} {what}: expected a tuple (h, c), got {_shown(state)}")
        if n == 1 and isinstance(state, (tuple, list)):
            raise TypeError(f"{type(self).__name__} {what}: expected one array h, got a {type(state).__name__}")
        parts = tuple(state) if n == 2 else (state,)
        out = []
        for s in parts:
            s = as_float_array(s, f"{type(self).__name__} {what}", self.dtype)
            check_shape(s, (N, H), f"{type(self).__name__} {what} (N, H)")
            check_finite(s, f"{type(self).__name__} {what}")     # as RNNBase checks its state and dstate
            out.append(s)
        return tuple(out)

    def _pack(self, states):
        return states if self.ops.n_states == 2 else states[0]

    def forward_cached(self, x, state=None):
        x = as_float_array(x, f"{type(self).__name__} input", self.dtype)
        check_shape(x, (None, self.input_size), f"{type(self).__name__} input (N, H_in)")
        check_finite(x, f"{type(self).__name__} input")
        state = self._states(state, x.shape[0], "state")
        p = self.params
        x_proj = x @ p["weight_ih"].T  # (N, H_in) @ (H_in, G*H) -> (N, G*H)
        if self.bias:
            x_proj += p["bias_ih"]
        new, step_cache = self.ops.step(x_proj, state, p["weight_hh"], p.get("bias_hh"))
        return self._pack(new), (x, step_cache)

    def backward_cached(self, dstate, cache):
        x, step_cache = cache
        d = self._states(dstate, x.shape[0], "backward dstate")
        dx_proj, dhh, dprev = self.ops.step_backward(d, step_cache, self.params["weight_hh"])
        if self.requires_grad("weight_ih"):                     # frozen: no product
            self.grads["weight_ih"] += dx_proj.T @ x               # (G*H, N) @ (N, H_in)
        if self.requires_grad("weight_hh"):
            self.grads["weight_hh"] += self.ops.weight_hh_grad(dhh, step_cache.h_prev, [step_cache])  # (G*H, H)
        if self.bias:
            self.accumulate("bias_ih", dx_proj.sum(axis=0))
            self.accumulate("bias_hh", dhh.sum(axis=0))
        dx = dx_proj @ self.params["weight_ih"]  # (N, G*H) @ (G*H, H_in) -> (N, H_in)
        return dx, self._pack(dprev)

    def forward(self, x, state=None, return_gates=False):
        """The new state; with ``return_gates=True`` also ``{gate name: (N, H) activations}``
        (LSTM i, f, g, o; GRU r, z, n; empty for the Elman cell), for inspection."""
        new, self._cache = self.forward_cached(x, state)
        if return_gates:
            return new, {k: v.copy() for k, v in step_gates(self.ops, self._cache[1]).items()}
        return new

    def backward(self, dstate):
        """Gradient w.r.t. the returned state -> ``(dx, dstate_prev)``."""
        if self._cache is None:
            self._take_cache()                  # the one-line "no forward pass" error
        self._states(dstate, self._cache[0].shape[0], "backward dstate")   # refused: the forward stays
        return self.backward_cached(dstate, self._take_cache())


class RNNCell(_Cell):
    r""":math:`h' = \phi(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})`, ``nonlinearity`` 'tanh' or 'relu'.
    ``x`` (N, H_in), ``h`` (N, H) -> ``h'`` (N, H)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=np.float32, seed=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, bias, dtype, seed)


class LSTMCell(_Cell):
    """One LSTM step (gates i, f, g, o). ``x`` (N, H_in), ``(h, c)`` each (N, H) -> ``(h', c')``."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, seed=None, gate="sigmoid"):
        super().__init__(_gated("lstm", gate), input_size, hidden_size, bias, dtype, seed)


class GRUCell(_Cell):
    """One GRU step (gates r, z, n; reset applied to ``W_hn h + b_hn``, or with ``reset_after=False``
    to ``h`` before the product: ``W_hn (r * h) + b_hn``). ``x`` (N, H_in), ``h`` (N, H) -> ``h'``."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, seed=None, gate="sigmoid",
                 reset_after=True):
        super().__init__(_gated(_gru_mode(reset_after), gate), input_size, hidden_size, bias, dtype, seed)
        self.reset_after = bool(reset_after)

    def extra_repr(self):
        return super().extra_repr() + ("" if self.reset_after else ", reset_after=False")
