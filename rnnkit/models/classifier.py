r"""``SequenceClassifier``: recurrent layers, a pooling over time, a linear head, cross-entropy.

Pooling over the valid steps of each sequence (``lengths``):

* ``"last"``: the hidden state at each sequence's last valid step (for a bidirectional layer,
  the forward half at the last step and the reverse half at the first, where it ends);
* ``"mean"``: the mean of the valid steps' outputs;
* ``"attention"``: :math:`\alpha = \mathrm{softmax}_t(w \cdot y_t + b)` over the valid steps,
  pooled :math:`\sum_t \alpha_t y_t`; padded steps get exactly zero weight;
* ``"max"``: :math:`p_k = \max_{t < \ell} y_{t,k}` over the valid steps, unit by unit (the max
  pooling over a bidirectional layer of Conneau et al. 2017, "Supervised learning of universal
  sentence representations", InfoSent's BiLSTM-max); its gradient goes to the step that held the
  maximum, :math:`\partial L/\partial y_{t,k} = [t = \arg\max_t y_{t,k}]\, \partial L/\partial p_k`
  (the first such step on a tie, as ``argmax`` picks; padded steps never win);
* ``"positions"``: no pooling over time: every step's output in order, concatenated,
  :math:`p = [y_1; y_2; \dots; y_L] \in \mathbb{R}^{L W}`, so the head
  :math:`z = A p + c = \sum_t A_t y_t + c` weighs each position with its own matrix :math:`A_t`
  and :math:`\partial L/\partial y_t = A_t^\top \partial L/\partial z`. For fixed-length windows
  whose label depends on where things are (a splice junction sits between bases 30 and 31 of
  StatLog's 60-base windows): the bidirectional LSTM with a dense readout of all positions of
  DanQ (Quang & Xie 2016, "DanQ: a hybrid convolutional and recurrent deep neural network for
  quantifying the function of DNA sequences"). The model is built for one sequence length
  ``length`` (:math:`L`); sequences of any other length are refused in one line.

``head_dropout`` :math:`q` drops the pooled features before the head in training (inverted dropout,
Srivastava et al. 2014, "Dropout: a simple way to prevent neural networks from overfitting"):
:math:`\tilde p = p \odot m / (1 - q)`, :math:`m_k \sim \mathrm{Bernoulli}(1 - q)` drawn anew
for every sequence, and :math:`\partial L/\partial p = m \odot \partial L/\partial \tilde p / (1 - q)`;
identity in evaluation. DanQ drops its flattened recurrent outputs with :math:`q = 0.5`.

``input_jitter`` :math:`\sigma_j` and ``input_scale`` :math:`\sigma_s` augment the (standardised)
input sequences in training: :math:`\tilde x_t = s \odot x_t + \sigma_j \epsilon_t` with one scale
:math:`s = 1 + \sigma_s \eta` per sequence and feature (:class:`~rnnkit.nn.InputNoise`, where the
references are); identity in evaluation.

``conv_channels`` :math:`(C_1, \dots, C_B)` and ``conv_kernels`` :math:`(K_1, \dots, K_B)` add a fully
convolutional branch beside the recurrent layers (:class:`~rnnkit.nn.ConvBranch`: LSTM-FCN, Karim
et al. 2017, "LSTM fully convolutional networks for time series classification", and MLSTM-FCN,
Karim et al. 2019, with blocks of 128, 256, 128 filters of widths 8, 5, 3): convolution, batch
normalisation over the valid steps and ReLU per block, then the mean over the valid steps. Its
:math:`C_B` features are concatenated after the pooled recurrent features,
:math:`p = [p_{rnn}; p_{fcn}]`, before head dropout and the head; the gradient splits the same way.

``recurrent_dropout``, ``input_dropout`` (on each recurrent layer's input, the features
included: one mask per sequence for every step), ``zoneout``, ``weight_dropout``,
``forget_bias`` and ``recurrent_init`` are the recurrent layer's options
(:class:`~rnnkit.nn.recurrent.RNNBase`, where their equations and references are).

Forward and backward of the pooling are written out here; the recurrent part is the engine's.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_positive_int
from ..errors import UserError
from ..functional.losses import cross_entropy, cross_entropy_backward, softmax
from ..nn import ConvBranch, Dropout, InputNoise, Linear
from .base import TaskModel, register
from .common import canonical_cell, child_seeds, first, make_rnn, rnn_options_config

POOLING = ("last", "mean", "attention", "max", "positions")


@register("classifier")
class SequenceClassifier(TaskModel):
    def __init__(self, input_size, hidden_size, n_classes, cell="lstm", num_layers=1, bidirectional=False,
                 pooling="last", dropout=0.0, classes=None, scaler=None, length=None, head_dropout=0.0,
                 input_jitter=0.0, input_scale=0.0, conv_channels=None, conv_kernels=None, dtype=np.float32,
                 seed=None, **options):
        super().__init__(dtype, seed)
        check_positive_int(n_classes, "n_classes", minimum=2)
        if pooling not in POOLING:
            raise ValueError(f"pooling: expected one of {', '.join(POOLING)}, got {pooling!r}")
        if (pooling == "positions") != (length is not None) or (length is not None and int(length) < 1):
            raise ValueError(f"length: expected the sequence length (a positive integer) with pooling='positions' "
                             f"and None otherwise, got {length!r} with pooling={pooling!r}")
        augment = bool(input_jitter or input_scale)
        if (conv_channels is None) != (conv_kernels is None):
            raise ValueError(f"conv_channels, conv_kernels: expected both (the branch's filters and kernel sizes) or "
                             f"neither, got {conv_channels!r} and {conv_kernels!r}")
        # the first seeds are those of before, whatever is added after them
        s = child_seeds(seed, 6 if conv_channels is not None else 5 if augment else 4)
        self.pooling = pooling
        if classes is not None and len(classes) != n_classes:
            raise ValueError(f"classes: expected {n_classes} class names, got {len(classes)}")
        self.rnn = make_rnn(cell, input_size, hidden_size, num_layers, bidirectional=bidirectional,
                            dropout=dropout, dtype=dtype, seed=s[0], **options)
        self.config = dict(kind="classifier", input_size=input_size, hidden_size=hidden_size, n_classes=n_classes,
                           cell=canonical_cell(cell), num_layers=num_layers, bidirectional=bidirectional, pooling=pooling,
                           dropout=dropout, classes=classes, scaler=scaler, **rnn_options_config(self.rnn, options))
        width = hidden_size * (2 if bidirectional else 1)
        if pooling == "positions":                              # recorded only here: older configs load unchanged
            self.length = self.config["length"] = int(length)
            width *= self.length                                # the head reads L * W features
        self.rnn_width, self.fcn = width, None
        if conv_channels is not None:                           # recorded only when used
            self.fcn = ConvBranch(input_size, conv_channels, conv_kernels, dtype=dtype, seed=s[5])
            self.config.update(conv_channels=self.fcn.channels, conv_kernels=self.fcn.kernels)
            width += self.fcn.out_features                      # the head reads [p_rnn; p_fcn]
        if pooling == "attention":
            self.score = Linear(self.rnn_width, 1, dtype=dtype, seed=s[1])
        self.head = Linear(width, n_classes, dtype=dtype, seed=s[2])
        self.drop = None
        if head_dropout:                                        # recorded only when used, like length
            self.drop = Dropout(head_dropout, dtype=dtype, seed=s[3])
            self.config["head_dropout"] = head_dropout
        self.noise = None
        if augment:                                             # recorded only when used
            self.noise = InputNoise(input_jitter, input_scale, dtype=dtype, seed=s[4])
            self.config.update(input_jitter=input_jitter, input_scale=input_scale)

    def forward(self, x, lengths=None):
        """``x`` (L, N, D) -> logits (N, n_classes)."""
        if self.noise is not None:
            x = self.noise(x)                                   # (L, N, D), identity in evaluation
        y, _ = self.rnn(x, lengths=lengths)                     # (L, N, W)
        L, N, W = y.shape
        lengths = np.full(N, L) if lengths is None else np.asarray(lengths)
        mask = (np.arange(L)[:, None] < lengths[None, :]).astype(self.dtype)[:, :, None]   # (L, N, 1)
        if self.pooling == "last":
            H = self.rnn.hidden_size
            pooled = y[lengths - 1, np.arange(N)].copy()
            if self.rnn.bidirectional:
                pooled[:, H:] = y[0, :, H:]                     # the reverse direction ends at t = 0
            aux = lengths
        elif self.pooling == "mean":
            pooled = (y * mask).sum(0) / lengths[:, None].astype(self.dtype)
            aux = (mask, lengths)
        elif self.pooling == "attention":
            e = self.score(y)[:, :, 0]                          # (L, N)
            e = np.where(mask[:, :, 0] > 0, e, -np.inf)
            e = e - e.max(0, keepdims=True)
            a = np.exp(e)
            a /= a.sum(0, keepdims=True)                        # (L, N), zero at padded steps
            pooled = (a[:, :, None] * y).sum(0)
            aux = (a, y)
        elif self.pooling == "positions":
            self._check_length(L, lengths)
            pooled = y.transpose(1, 0, 2).reshape(N, L * W)     # (N, L*W): step t's outputs at t*W .. t*W+W-1
            aux = None
        else:                                                   # max
            masked = np.where(mask > 0, y, -np.inf)             # (L, N, W)
            arg = masked.argmax(0)                              # (N, W): the step holding each maximum
            pooled = np.take_along_axis(y, arg[None], 0)[0]     # (N, W)
            aux = arg
        self._pool = (self.pooling, aux, y.shape)
        if self.fcn is not None:
            pooled = np.concatenate([pooled, self.fcn(x, lengths)], axis=1)    # (N, W' + C_B)
        return self.head(pooled if self.drop is None else self.drop(pooled))

    def backward(self, dlogits):
        kind, aux, (L, N, W) = self._pool
        dpooled = self.head.backward(dlogits)                   # (N, W)
        if self.drop is not None:
            dpooled = self.drop.backward(dpooled)
        dx_fcn = None
        if self.fcn is not None:
            dx_fcn = self.fcn.backward(dpooled[:, self.rnn_width:])
            dpooled = dpooled[:, :self.rnn_width]
        if kind == "last":
            lengths = aux
            dy = np.zeros((L, N, W), self.dtype)
            H = self.rnn.hidden_size
            if self.rnn.bidirectional:
                dy[lengths - 1, np.arange(N), :H] = dpooled[:, :H]
                dy[0, :, H:] += dpooled[:, H:]
            else:
                dy[lengths - 1, np.arange(N)] = dpooled
        elif kind == "mean":
            mask, lengths = aux
            dy = mask * (dpooled / lengths[:, None].astype(self.dtype))[None]
        elif kind == "attention":
            a, y = aux
            dy = a[:, :, None] * dpooled[None]                  # through the weighted sum
            da = (y * dpooled[None]).sum(-1)                    # (L, N)
            de = a * (da - (a * da).sum(0, keepdims=True))      # softmax backward; zero at padded steps
            dy += self.score.backward(de[:, :, None].astype(self.dtype))
        elif kind == "positions":                               # each step gets its own block of the head's input
            dy = dpooled.reshape(N, L, W).transpose(1, 0, 2)    # (L, N, W)
        else:                                                   # max: route to the winning step
            dy = np.zeros((L, N, W), self.dtype)
            np.put_along_axis(dy, aux[None], dpooled[None], 0)
        dx = first(self.rnn.backward(dy.astype(self.dtype, copy=False)))
        if dx_fcn is not None:
            dx = dx + dx_fcn
        return dx if self.noise is None else self.noise.backward(dx)

    def _check_length(self, L, lengths):
        """Positions pooling reads exactly ``self.length`` valid steps of every sequence."""
        if L != self.length or (lengths != self.length).any():
            got = sorted({int(v) for v in lengths})
            raise UserError(f"pooling 'positions': expected every sequence to have {self.length} steps (the length "
                            f"the model was built for), got {', '.join(map(str, got[:5]))}"
                            f"{' ...' if len(got) > 5 else ''}")

    def attention_weights(self, x, lengths=None) -> np.ndarray:
        """(L, N) pooling weights (attention pooling only)."""
        if self.pooling != "attention":
            raise ValueError(f"attention_weights: this classifier pools by {self.pooling!r}, not attention")
        self.forward(x, lengths)
        a = self._pool[1][0].copy()
        self.clear_cache()
        return a

    def train_step(self, batch, state=None):
        x, y, lengths = self.unpack(batch, "x, y, lengths")
        out = self.forward(x, lengths)
        loss, cache = cross_entropy(out, y)
        self.backward(cross_entropy_backward(cache))
        return loss, None, x.shape[1]

    def evaluate(self, batch, state=None):
        """Summed cross-entropy and the number right, without gradients."""
        x, y, lengths = self.unpack(batch, "x, y, lengths")
        out = self.forward(x, lengths)
        self.clear_cache()
        loss, _ = cross_entropy(out, y, reduction="sum")
        return loss, None, x.shape[1], {"correct": int((out.argmax(-1) == y).sum()), "n": x.shape[1]}

    def metrics(self, mean_loss, sums=None):
        return {"accuracy": sums["correct"] / sums["n"]} if sums and sums.get("n") else {}

    def predict_sequences(self, xs, chunk=512) -> list:
        """Class names (or ids, without ``classes``) for raw (L_i, D) sequences: the training
        standardisation (``scaler`` in the config) is applied first."""
        return self.class_names(self._probabilities(xs, chunk, "predict_sequences").argmax(-1))

    def class_names(self, ids) -> list:
        """Class ids -> the names in the config (the ids themselves without ``classes``)."""
        classes = self.config["classes"]
        return [classes[i] for i in ids] if classes is not None else [int(i) for i in ids]

    def probabilities(self, xs, chunk=512) -> np.ndarray:
        """(N, n_classes) softmax probabilities for raw (L_i, D) sequences, in eval mode, the
        training standardisation applied first."""
        return self._probabilities(xs, chunk, "probabilities")

    def _check_sequences(self, xs, where) -> list:
        """``xs`` as a list of (L_i, input_size) numeric arrays, L_i >= 1, or one line naming the first bad one."""
        if isinstance(xs, np.ndarray) and xs.ndim == 2:
            raise ValueError(f"{where}: xs: expected a list of (L, {self.config['input_size']}) sequences, got one "
                             f"array of shape {xs.shape}; wrap one sequence as [x]")
        xs = list(xs)
        if not xs:
            raise ValueError(f"{where}: xs: expected at least one sequence, got none")
        D = self.config["input_size"]
        for i, x in enumerate(xs):
            a = np.asarray(x)
            if a.ndim != 2:
                raise ValueError(f"{where}: xs[{i}]: expected shape (L, {D}), got {a.shape}")
            if a.shape[1] != D:
                raise ValueError(f"{where}: xs[{i}]: expected {D} features per step, got shape {a.shape}")
            if a.shape[0] < 1:
                raise ValueError(f"{where}: xs[{i}]: expected at least one step, got shape {a.shape}")
            if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                raise TypeError(f"{where}: xs[{i}]: expected numbers, got dtype {a.dtype}")
            if not np.isfinite(a).all():
                raise ValueError(f"{where}: xs[{i}]: expected finite values, got NaN or inf")
        return xs

    def _probabilities(self, xs, chunk, where) -> np.ndarray:
        from ..data.labelled import Standardizer, pad_sequences

        xs = self._check_sequences(xs, where)
        chunk = check_positive_int(chunk, "chunk")
        if self.config["scaler"] is not None:
            xs = Standardizer.from_dict(self.config["scaler"]).transform(xs)
        out = []
        with self.evaluating():
            for s in range(0, len(xs), chunk):
                x, lengths = pad_sequences(xs[s:s + chunk])
                out.append(softmax(self.forward(x.astype(self.dtype), lengths).astype(np.float64)))   # (n, C)
                self.clear_cache()
        return np.concatenate(out)

    def predict(self, x, lengths=None, chunk=512) -> np.ndarray:
        """Class ids (N,) for a padded time-major batch ``x`` (L, N, D) as the network reads it, in
        eval mode (no dropout). ``x`` must already be standardised as the training data was: this
        is the network alone. For the user's raw sequences use :meth:`predict_sequences` (class
        names) or :meth:`probabilities`, which apply the run's standardisation first."""
        out = []
        with self.evaluating():
            for s in range(0, x.shape[1], chunk):
                out.append(self.forward(x[:, s:s + chunk], None if lengths is None else lengths[s:s + chunk]).argmax(-1))
                self.clear_cache()
        return np.concatenate(out)
