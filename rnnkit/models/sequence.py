"""A recurrent model for the generated tasks: recurrent layers, then a linear head on the last
valid step (``regression`` / ``classification``) or on every step (``sequence``)."""
from __future__ import annotations

import numpy as np

from ..functional.init import init_recurrent
from ..functional.losses import cross_entropy, cross_entropy_backward, mse, mse_backward
from ..nn import Linear
from .base import TaskModel, register
from .common import canonical_cell, child_seeds, first, make_rnn


@register("sequence")
class SequenceModel(TaskModel):
    """``x`` (L, N, H_in) -> outputs (N, n_out) or (L, N, n_out) for ``task='sequence'``.

    ``cell`` is 'rnn' (tanh), 'rnn-relu', 'lstm' or 'gru'; ``gate`` 'sigmoid' or 'hard_sigmoid'
    (LSTM / GRU). ``init`` re-initialises the recurrent weights ('default', 'xavier',
    'orthogonal', 'identity': the IRNN with 'rnn-relu'); ``recurrent_gain`` scales them (an
    exploding-gradient set-up uses a large one); ``forget_bias`` sets the LSTM forget-gate bias.
    ``layer_norm`` (LSTM, GRU), ``peepholes`` and ``coupled_gates`` (LSTM) are the layer's gate
    variants (:mod:`rnnkit.functional.variants`).
    """

    def __init__(self, input_size, hidden_size, n_out, task, cell="lstm", num_layers=1, init="default",
                 recurrent_gain=1.0, forget_bias=None, gate="sigmoid", bidirectional=False, dtype=np.float32,
                 seed=None, layer_norm=False, peepholes=False, coupled_gates=False):
        super().__init__(dtype, seed)
        if task not in ("regression", "classification", "sequence"):
            raise ValueError(f"task: expected regression, classification or sequence, got {task!r}")
        s = child_seeds(seed, 2)
        self.task = task
        self.config = dict(kind="sequence", input_size=input_size, hidden_size=hidden_size, n_out=n_out,
                           task=task, cell=canonical_cell(cell), num_layers=num_layers, init=init,
                           recurrent_gain=recurrent_gain, forget_bias=forget_bias, gate=gate,
                           bidirectional=bidirectional, layer_norm=layer_norm, peepholes=peepholes,
                           coupled_gates=coupled_gates)
        kw = {k: v for k, v in (("layer_norm", layer_norm), ("peepholes", peepholes),
                                ("coupled_gates", coupled_gates)) if v}
        if gate != "sigmoid":
            if cell not in ("lstm", "gru"):
                raise ValueError(f"gate: only LSTM and GRU cells have gates, got gate={gate!r} with cell={cell!r}")
            kw["gate"] = gate
        self.rnn = make_rnn(cell, input_size, hidden_size, num_layers, bidirectional=bidirectional, dtype=dtype,
                            seed=s[0], **kw)
        if init != "default" or forget_bias is not None:
            init_recurrent(self.rnn, None if init == "default" else init, forget_bias=forget_bias)
        if recurrent_gain != 1.0:
            for name, p in self.rnn.params.items():
                if name.startswith("weight_hh"):
                    p *= recurrent_gain
        self.head = Linear(hidden_size * (2 if bidirectional else 1), n_out, dtype=dtype, seed=s[1])
        self.bptt = 0          # truncated-BPTT window for train_step; 0 = full BPTT

    def forward(self, x, lengths=None):
        y, _ = self.rnn(x, lengths=lengths)                       # (L, N, H)
        if self.task == "sequence":
            self._last = None
            return self.head(y)                                   # (L, N, n_out)
        L, N, _ = y.shape
        t = np.full(N, L - 1) if lengths is None else np.asarray(lengths) - 1
        self._last = (t, y.shape)
        return self.head(y[t, np.arange(N)])                      # (N, n_out)

    def backward(self, dout):
        dh = self.head.backward(dout)
        if self._last is None:
            dy = dh
        else:
            t, shape = self._last
            dy = np.zeros(shape, self.dtype)
            dy[t, np.arange(shape[1])] = dh
        return first(self.rnn.backward(dy))

    def loss(self, out, y):
        if self.task == "regression":
            return mse(out, y)
        return cross_entropy(out, y)

    def loss_backward(self, cache):
        return mse_backward(cache) if self.task == "regression" else cross_entropy_backward(cache)

    def train_step(self, batch, state=None):
        x, y, lengths = self.unpack(batch, "x, y, lengths")
        if self.bptt and x.shape[0] > self.bptt:
            return self._train_truncated(x, y, lengths)
        out = self.forward(x, lengths)
        loss, cache = self.loss(out, y)
        self.backward(self.loss_backward(cache))
        return loss, None, x.shape[1]

    def _train_truncated(self, x, y, lengths):
        """Truncated BPTT over windows of ``self.bptt`` steps: the state is carried from window to
        window as a value, the gradient stops at each window's start. Windows without a loss
        (all but the last for a prediction after the sequence) run forward only and keep nothing."""
        if lengths is not None:
            raise ValueError("bptt: truncated BPTT needs equal-length sequences (lengths=None); "
                             "use full BPTT (bptt=0) for variable-length batches")
        L, N = x.shape[:2]
        k, state = self.bptt, None
        if self.task != "sequence":
            for s in range(0, L - k, k):
                _, state = self.rnn(x[s:min(s + k, L - k)], state)
                self.rnn.clear_cache()
            y_win, _ = self.rnn(x[L - k:], state)
            out = self.head(y_win[-1])
            loss, cache = self.loss(out, y)
            dy = np.zeros_like(y_win)
            dy[-1] = self.head.backward(self.loss_backward(cache))
            self.rnn.backward(dy)
            return loss, None, N
        count = max(int((y != -100).sum()), 1)
        total = 0.0
        for s in range(0, L, k):
            y_win, state = self.rnn(x[s:s + k], state)
            out = self.head(y_win)
            loss, cache = cross_entropy(out, y[s:s + k], reduction="sum")
            total += loss
            self.rnn.backward(self.head.backward(cross_entropy_backward(cache, 1.0 / count)))
        return total / count, None, N

    def evaluate(self, batch, state=None):
        x, y, lengths = self.unpack(batch, "x, y, lengths")
        out = self.forward(x, lengths)
        self.clear_cache()
        loss, _ = self.loss(out, y)
        return loss * x.shape[1], None, x.shape[1]

    def accuracy(self, batch) -> float:
        """Fraction of correct argmax predictions (classification / sequence tasks)."""
        x, y, lengths = self.unpack(batch, "x, y, lengths")
        out = self.forward(x, lengths)
        self.clear_cache()
        pred = out.argmax(-1)
        keep = y != -100
        return float((pred[keep] == y[keep]).mean())

    def metrics(self, mean_loss, sums=None):
        if sums and sums.get("n"):
            return {"accuracy": sums["correct"] / sums["n"]}
        return {}
