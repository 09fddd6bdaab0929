"""``Stream``: step-by-step inference through a unidirectional RNN / LSTM / GRU, for live signals
and sampling. ``s = lstm.stream(batch_size=1)``; ``y_t = s.step(x_t)`` for each arriving input.

Nothing is kept for a backward pass, the inputs are not re-validated after the first step, and
every buffer is allocated once: each layer's step is two matrix products into preallocated
arrays and one fused kernel for the gates (the Numba kernels of the training path; the NumPy step
functions when Numba is not available). A product large enough to gain from it (a batch of
streams: sampling many sequences at once) is split over rnnkit's threads as the training path's
are (:func:`rnnkit.products.rows_matmul_into`); a single stream's stay on one thread, where a
split would cost more than it saves. :meth:`step` returns a new array each step.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from .._validate import as_float_array, check_finite, check_shape
from ..products import rows_matmul_into


class Stream:
    def __init__(self, rnn, batch_size=1, state=None):
        if rnn.bidirectional:
            raise ValueError("stream: a bidirectional layer needs the whole sequence; streaming works with "
                             "bidirectional=False only")
        if getattr(rnn, "proj_size", 0):
            raise ValueError(f"stream: an LSTM with proj_size={rnn.proj_size} is not streamed; call it one step at a "
                             f"time instead: y, state = lstm(x_t[None], state)")
        if getattr(rnn, "variant", None) is not None:
            raise ValueError("stream: the gate variants (layer_norm, peepholes, coupled_gates, cell_clip) have no "
                             "stream kernels; use rnn.stream(), which steps them through the layer's forward")
        self._fast = rnn.ops.fused and kernels.fast_sequence() is not None
        self.rnn, self.N = rnn, int(batch_size)
        H, dt, G = rnn.hidden_size, rnn.dtype, rnn.ops.n_gates
        self.kind = rnn.mode.split("_")[0]
        self.layers = []
        p = rnn.params
        for layer in range(rnn.num_layers):
            W_ih, W_hh = p[f"weight_ih_l{layer}"], p[f"weight_hh_l{layer}"]
            b_ih = p.get(f"bias_ih_l{layer}", np.zeros(G * H, dt))
            b_hh = p.get(f"bias_hh_l{layer}", np.zeros(G * H, dt))
            fold = b_ih.copy()                  # added to the projection; the reference steps add b_hh
            if self._fast:                      # themselves, the kernels take its foldable part here
                if self.kind == "gru":
                    fold[: 2 * H] += b_hh[: 2 * H]  # b_hn stays inside the reset gate's product
                else:
                    fold += b_hh
            self.layers.append({
                "W_ihT": np.ascontiguousarray(W_ih.T), "W_hhT": np.ascontiguousarray(W_hh.T), "W_hh": W_hh,
                "fold": fold, "b_hn": b_hh[2 * H:].copy() if self.kind == "gru" else None, "b_hh": b_hh,
                "xp": np.empty((self.N, G * H), dt), "hh": np.empty((self.N, G * H), dt),
                "scratch": np.empty((self.N, H), dt),
            })
        self.valid = np.ones(self.N, np.bool_)
        self.precise = dt == np.float64
        self.reset(state)
        self._checked = False

    def reset(self, state=None):
        """Zero the state, or set it: ``state`` as the layer takes it ((L, N, H), or a tuple for an LSTM)."""
        H, L = self.rnn.hidden_size, self.rnn.num_layers
        n = self.rnn.ops.n_states
        if state is None:
            parts = [np.zeros((L, self.N, H), self.rnn.dtype) for _ in range(n)]
        else:
            parts = list(self.rnn._split_state(state, self.N))
        self.h = [np.ascontiguousarray(parts[0][k]) for k in range(L)]
        self.c = [np.ascontiguousarray(parts[1][k]) for k in range(L)] if n == 2 else None

    @property
    def state(self):
        """The current state, shaped as the layer returns it."""
        h = np.stack(self.h)
        return (h, np.stack(self.c)) if self.c is not None else h

    def step(self, x):
        """``x`` (N, H_in) -> ``y`` (N, H), the top layer's new hidden state: a new array each step
        (the state itself lives on in the stream, so a kept output never changes under the next step).
        The first input is checked fully (shape, dtype, finite values); later ones by shape and dtype."""
        if not self._checked:                   # validate the first input fully, then trust the stream
            x = as_float_array(x, "Stream.step x", self.rnn.dtype)
            check_shape(x, (self.N, self.rnn.input_size), "Stream.step x (N, H_in)")
            check_finite(x, "Stream.step x")
            self._checked = True
        elif not isinstance(x, np.ndarray):   # O(1), so a list fails in one line too
            raise TypeError(f"Stream.step x: expected a NumPy array (N, H_in) of dtype {self.rnn.dtype}, "
                            f"got {type(x).__name__}")
        elif x.shape != (self.N, self.rnn.input_size) or x.dtype != self.rnn.dtype:
            raise ValueError(f"Stream.step x: expected shape {(self.N, self.rnn.input_size)} and dtype "
                             f"{self.rnn.dtype}, got {x.shape} {x.dtype}")
        K = kernels.fast_sequence().K if self._fast else None
        inp = x
        for k, Ld in enumerate(self.layers):
            xp, hh = Ld["xp"], Ld["hh"]
            rows_matmul_into(inp, Ld["W_ihT"], xp)
            xp += Ld["fold"]
            h = self.h[k]
            if K is None:
                inp = self._numpy_step(k, Ld, xp)
                continue
            rows_matmul_into(h, Ld["W_hhT"], hh)
            if self.kind == "lstm":
                c = self.c[k]
                K.lstm_forward_step(hh, xp, c, h, self.valid, c, Ld["scratch"], h, h, self.precise)
            elif self.kind == "gru":
                K.gru_forward_step(hh, xp, Ld["b_hn"], h, self.valid, Ld["scratch"], h, h, self.precise)
            else:
                K.rnn_forward_step(hh, xp, h, self.valid, self.rnn.mode == "rnn_relu", h, h, self.precise)
            inp = h
        return inp.copy()

    def _numpy_step(self, k, Ld, xp):
        """The reference step functions (no Numba, or a gate variant the kernels do not cover)."""
        state = (self.h[k], self.c[k]) if self.c is not None else (self.h[k],)
        new, _ = self.rnn.ops.step(xp, state, Ld["W_hh"], Ld["b_hh"])
        self.h[k][...] = new[0]
        if self.c is not None:
            self.c[k][...] = new[1]
        return self.h[k]
