"""Linear, Embedding, Dropout and InputNoise: the small modules the task models compose."""
from __future__ import annotations

import numpy as np

from .._validate import (as_float_array, check_bool, check_dtype, check_ndarray, check_positive_int,
                         check_probability, check_seed, check_shape)
from ..functional.tokens import TableGrad, TokenInput
from ..products import matmul
from .module import Module


class Linear(Module):
    r"""Affine map :math:`y = x W^T + b` over the last axis.

    Args: ``in_features``, ``out_features``, ``bias=True``, ``dtype``, ``seed``.
    Shapes: ``x`` (\*, H_in) -> ``y`` (\*, H_out). Parameters ``weight`` (H_out, H_in), ``bias`` (H_out,),
    initialised like PyTorch: U(-1/sqrt(H_in), 1/sqrt(H_in)).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, seed=None):
        in_features = check_positive_int(in_features, "in_features")
        out_features = check_positive_int(out_features, "out_features")
        bias = check_bool(bias, "bias")
        super().__init__(check_dtype(dtype), check_seed(seed))
        self.in_features, self.out_features = in_features, out_features
        k = 1.0 / np.sqrt(self.in_features)
        self.add_param("weight", self.rng.uniform(-k, k, (self.out_features, self.in_features)))
        if bias:
            self.add_param("bias", self.rng.uniform(-k, k, (self.out_features,)))

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={'bias' in self.params}"

    def forward_cached(self, x):
        x = as_float_array(x, "Linear input", self.dtype)
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"Linear input: expected last dimension {self.in_features}, got shape {x.shape}")
        # one (prod(*), H_in) @ (H_in, H_out) product: a 3-D operand would make NumPy loop over
        # its first axis with one small product each
        y = matmul(x.reshape(-1, self.in_features), self.params["weight"].T).reshape(x.shape[:-1] + (self.out_features,))
        if "bias" in self.params:
            y += self.params["bias"]
        return y, x

    def backward_cached(self, dy, x):
        flat_dy = dy.reshape(-1, self.out_features)
        if self.requires_grad("weight"):                                     # frozen: no product at all
            self.grads["weight"] += matmul(flat_dy.T, x.reshape(-1, self.in_features))  # (H_out, H_in)
        if "bias" in self.params:
            self.accumulate("bias", flat_dy.sum(axis=0))
        return matmul(flat_dy, self.params["weight"]).reshape(x.shape)  # (*, H_out) @ (H_out, H_in) -> (*, H_in)

    def forward(self, x):
        y, self._cache = self.forward_cached(x)
        return y

    def backward(self, dy):
        x = self._take_cache()
        # O(1) checks only: the models' heads call this every step. A float64 gradient of a float32
        # layer (a loss against float64 targets) is taken in the layer's dtype, as it always was.
        dy = as_float_array(check_ndarray(dy, "Linear.backward dy"), "Linear.backward dy").astype(self.dtype, copy=False)
        check_shape(dy, x.shape[:-1] + (self.out_features,), "Linear.backward dy")
        return self.backward_cached(dy, x)


class Embedding(Module):
    """Lookup table: integer indices (\\*) -> vectors (\\*, embedding_dim). ``weight`` ~ N(0, 1) as in PyTorch."""

    def __init__(self, num_embeddings, embedding_dim, dtype=np.float32, seed=None):
        num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        super().__init__(check_dtype(dtype), check_seed(seed))
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.add_param("weight", self.rng.standard_normal((self.num_embeddings, self.embedding_dim)))

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"

    def forward_cached(self, idx, lookup=True):
        idx = np.asarray(idx)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"Embedding input: expected integer indices, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            raise ValueError(
                f"Embedding input: expected indices in [0, {self.num_embeddings - 1}], "
                f"got min {int(idx.min())}, max {int(idx.max())}"
            )
        return (self.params["weight"][idx] if lookup else None), idx

    def tokens(self, idx) -> TokenInput:
        """The lookup left to the layer that reads it: ``idx`` checked and cached as :meth:`forward`
        does, and returned with the table as a :class:`~rnnkit.functional.tokens.TokenInput`
        (:class:`~rnnkit.models.CharLM` hands it to its recurrent layers, which fold it into their
        input projection). :meth:`backward` then takes the layer's gradient, dense or already
        summed per row (:class:`~rnnkit.functional.tokens.TableGrad`)."""
        _, self._cache = self.forward_cached(idx, lookup=False)
        return TokenInput(self._cache, self.params["weight"])

    def backward_cached(self, dy, idx):
        if isinstance(dy, TableGrad):                    # summed per row by the layer already
            if self.requires_grad("weight"):
                self.grads["weight"] += dy.grad
            return None
        # Rows of dy summed per index: a stable sort groups equal indices (in their original
        # order), np.add.reduceat sums each group. 15x faster than np.add.at here (3.3 ms ->
        # 0.2 ms for 2,500 rows of 64).
        flat, g = idx.reshape(-1), dy.reshape(-1, self.embedding_dim)
        if flat.size and self.requires_grad("weight"):
            order = np.argsort(flat, kind="stable")
            ids = flat[order]
            starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
            self.grads["weight"][ids[starts]] += np.add.reduceat(g[order], starts, axis=0)
        return None

    def forward(self, idx):
        y, self._cache = self.forward_cached(idx)
        return y

    def backward(self, dy):
        idx = self._take_cache()
        if not isinstance(dy, TableGrad):
            dy = as_float_array(check_ndarray(dy, "Embedding.backward dy"), "Embedding.backward dy")
            dy = dy.astype(self.dtype, copy=False)
            check_shape(dy, idx.shape + (self.embedding_dim,), "Embedding.backward dy")
        return self.backward_cached(dy, idx)


class _TrainingNoise(Module):
    """Noise that only training sees: ``forward_cached`` returns ``(y, m)`` with ``y = x * m + c``
    for a factor ``m`` (broadcast against ``x``) and an offset ``c`` drawn for this call, or
    ``(x, None)`` where it is the identity (eval mode); so the gradient is ``dy * m``."""

    def backward_cached(self, dy, m):
        return dy if m is None else dy * m

    def forward(self, x):
        y, m = self.forward_cached(x)
        self._cache = (m, np.shape(x))      # a tuple: a None factor is still a forward to take
        return y

    def backward(self, dy):
        m, shape = self._take_cache()
        name = f"{type(self).__name__}.backward dy"
        check_ndarray(dy, name)
        if dy.shape != shape:                                         # O(1): the shape forward saw
            check_shape(dy, shape, name)
        return self.backward_cached(dy, m)


class Dropout(_TrainingNoise):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the rest by
    ``1 / (1 - p)``; identity in eval mode. Reproducible from ``seed``."""

    def __init__(self, p=0.5, dtype=np.float32, seed=None):
        super().__init__(check_dtype(dtype), check_seed(seed))
        self.p = check_probability(p, "Dropout p")

    def extra_repr(self):
        return f"p={self.p}"

    def forward_cached(self, x):
        check_ndarray(x, "Dropout input")                             # O(1): no pass over x
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"Dropout input: expected a floating-point array, got dtype {x.dtype}")
        if not self.training or self.p == 0.0:
            return x, None
        keep = (self.rng.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * keep, keep


class InputNoise(_TrainingNoise):
    r"""Training-time augmentation of input sequences by jittering and scaling (Um et al. 2017,
    "Data augmentation of wearable sensor data for Parkinson's disease monitoring using
    convolutional neural networks"; additive input noise as a regulariser: Bishop 1995, "Training
    with noise is equivalent to Tikhonov regularization"):

    .. math::
        \tilde x_{t,n,d} = s_{n,d}\, x_{t,n,d} + \sigma_j\, \epsilon_{t,n,d}, \qquad
        s_{n,d} = 1 + \sigma_s\, \eta_{n,d}, \qquad \epsilon, \eta \sim \mathcal N(0, 1)

    drawn anew at every call: the jitter per step, sequence and feature, the scale once per sequence
    and feature (every step of a sequence shares it). Backward:
    :math:`\partial L/\partial x_{t,n,d} = s_{n,d}\, \partial L/\partial \tilde x_{t,n,d}`. Identity in
    eval mode. Meant for standardised features, where :math:`\sigma` is in units of a feature's std.

    Args: ``jitter`` :math:`\sigma_j \ge 0`, ``scale`` :math:`\sigma_s \ge 0`, ``dtype``, ``seed``.
    Shapes: ``x`` (L, N, D) -> (L, N, D).
    """

    def __init__(self, jitter=0.0, scale=0.0, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        for name, v in (("jitter", jitter), ("scale", scale)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not 0.0 <= v < np.inf:
                raise ValueError(f"InputNoise {name}: expected a finite number >= 0, got {v!r}")
        self.jitter, self.scale = float(jitter), float(scale)

    def extra_repr(self):
        return f"jitter={self.jitter}, scale={self.scale}"

    def forward_cached(self, x):
        if not self.training or (self.jitter == 0.0 and self.scale == 0.0):
            return x, None
        if x.ndim != 3:
            raise ValueError(f"InputNoise: expected x of shape (L, N, D), got {x.shape}")
        L, N, D = x.shape
        s = (1.0 + self.scale * self.rng.standard_normal((1, N, D))).astype(x.dtype)       # (1, N, D)
        noise = (self.jitter * self.rng.standard_normal((L, N, D))).astype(x.dtype)     # (L, N, D)
        return x * s + noise, s
