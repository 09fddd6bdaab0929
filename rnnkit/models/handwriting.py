r"""``HandwritingModel``: handwriting generation after Graves (2013, sec. 4): recurrent layers read
the pen's previous point and a mixture density output predicts the next one.

.. math::

    h_t = \mathrm{LSTM}(x_{t-1}, h_{t-1}), \qquad \hat y_t = W h_t + b \in \mathbb R^{1 + 6M},
    \qquad \mathcal L = -\sum_t \log \Pr(x_t \mid \hat y_t)

where :math:`x_t = (dx, dy, \text{pen up})` and :math:`x_0` is the start token ``(0, 0, 1)`` (the
pen is up before the first stroke), so every point of a sequence, the first included, is
predicted and counted. :math:`\Pr(x_t \mid \hat y_t)` is the bivariate Gaussian mixture and
Bernoulli of :mod:`rnnkit.functional.mdn` (Graves's eqs. 18-26); its backward is written there.
Unlike Graves's 3-layer network this one has no skip connections from the input to every layer
(the recurrent stack is :func:`~rnnkit.models.common.make_rnn`'s).

Batches are what :class:`~rnnkit.data.labelled.LabelledSequences` gives: ``x`` (L, N, 3) padded,
labels (unused here) and ``lengths`` (N,). The loss is the mean over the valid points of the
batch, in nats; :meth:`metrics` reports it as ``nll_per_point``.
"""
from __future__ import annotations

import numpy as np

from ..data.handwriting import START
from ..functional.mdn import mdn_loss, mdn_loss_backward, mdn_sample, mdn_size
from ..nn import Linear
from .base import TaskModel, register
from .common import canonical_cell, child_seeds, first, make_rnn


@register("handwriting")
class HandwritingModel(TaskModel):
    """Args: ``hidden_size``, ``num_layers``, ``n_components`` (M, the mixture's components; Graves
    used 20), ``cell`` ('lstm' as Graves; 'gru', 'rnn_tanh', 'rnn_relu'), ``dropout`` (between layers),
    ``sample_length`` (points :meth:`sample` draws by default: the training set's median length,
    recorded by the app). Shapes: ``x`` (L, N, 3) -> mixture outputs (L, N, 1 + 6M)."""

    def __init__(self, hidden_size=128, num_layers=1, n_components=10, cell="lstm", dropout=0.0, sample_length=100,
                 dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        for name, v in (("hidden_size", hidden_size), ("num_layers", num_layers), ("n_components", n_components),
                        ("sample_length", sample_length)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        s = child_seeds(seed, 2)
        self.config = dict(kind="handwriting", hidden_size=int(hidden_size), num_layers=int(num_layers),
                           n_components=int(n_components), cell=canonical_cell(cell), dropout=float(dropout),
                           sample_length=int(sample_length))
        self.rnn = make_rnn(cell, 3, hidden_size, num_layers, dropout=dropout, dtype=dtype, seed=s[0])
        self.head = Linear(hidden_size, mdn_size(n_components), dtype=dtype, seed=s[1])

    def inputs(self, x) -> np.ndarray:
        """(L, N, 3) points -> (L, N, 3) what step t reads: the start token, then point t - 1."""
        start = np.broadcast_to(START.astype(self.dtype), (1,) + x.shape[1:])
        return np.concatenate([start, x[:-1]], axis=0)

    def forward(self, x, lengths=None, state=None):
        """Points ``x`` (L, N, 3) -> (mixture outputs (L, N, 1 + 6M), final state)."""
        h, state = self.rnn(self.inputs(x), state, lengths=lengths)      # (L, N, H)
        return self.head(h), state

    def backward(self, dout):
        first(self.rnn.backward(self.head.backward(dout)))

    @staticmethod
    def _mask(x, lengths):
        L, N = x.shape[:2]
        return None if lengths is None else np.arange(L)[:, None] < np.asarray(lengths)[None, :]   # (L, N)

    def train_step(self, batch, state=None):
        x, _, lengths = self.unpack(batch, "x, y, lengths")
        out, _ = self.forward(x, lengths)
        mask = self._mask(x, lengths)
        loss, cache = mdn_loss(out, x, mask)
        self.backward(mdn_loss_backward(cache))
        return loss, None, int(x.shape[0] * x.shape[1] if mask is None else mask.sum())

    def evaluate(self, batch, state=None):
        x, _, lengths = self.unpack(batch, "x, y, lengths")
        out, _ = self.forward(x, lengths)
        self.clear_cache()
        mask = self._mask(x, lengths)
        loss, _ = mdn_loss(out, x, mask, reduction="sum")
        return loss, None, int(x.shape[0] * x.shape[1] if mask is None else mask.sum())

    def metrics(self, mean_loss, sums=None):
        return {"nll_per_point": mean_loss}

    def sample(self, n=1, length=None, bias=0.0, rng=None) -> np.ndarray:
        """Draw ``n`` sequences of ``length`` points (default ``sample_length``) -> (length, n, 3),
        one step at a time through the layer's :class:`~rnnkit.nn.stream.Stream`, each point fed
        back as the next input. ``bias`` is Graves's sampling bias (:func:`~rnnkit.functional.mdn.mdn_sample`)."""
        length = self.config["sample_length"] if length is None else length
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n: expected an integer >= 1, got {n!r}")
        if not isinstance(length, (int, np.integer)) or length < 1:
            raise ValueError(f"length: expected an integer >= 1, got {length!r}")
        rng = np.random.default_rng(rng)
        with self.evaluating():
            stream = self.rnn.stream(n)
            W, b = self.head.params["weight"].T, self.head.params["bias"]
            point = np.broadcast_to(START.astype(self.dtype), (n, 3)).copy()
            out = np.empty((length, n, 3))
            for t in range(length):
                out[t] = mdn_sample(stream.step(point) @ W + b, rng, bias)    # (n, H) @ (H, 1+6M)
                point[...] = out[t]
        return out
