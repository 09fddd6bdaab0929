r"""Temporal convolution, masked batch normalisation, and the fully convolutional branch of
LSTM-FCN built from them. The math is in :mod:`rnnkit.functional.conv`.

**Padding and lengths.** With ``lengths``, the steps past a sequence's length are taken as zero on
input and set to zero on output, so each sequence of a padded batch gets exactly the outputs it
would get alone, unpadded, with 'same' zero padding: the steps past its end play the part of the
padding zeros. Nothing of a padded step reaches a valid output, whatever the padded steps hold,
and every gradient at a padded step is zero.
"""
from __future__ import annotations

import numpy as np

from .._validate import as_float_array
from ..functional.conv import EPS, batch_norm, batch_norm_backward, conv1d, conv1d_backward, valid_mask
from .module import Module


def _check_input(x, name, channels, dtype, lengths):
    x = as_float_array(x, name, dtype)
    if x.ndim != 3 or x.shape[2] != channels:
        raise ValueError(f"{name}: expected shape (L, N, {channels}), got {x.shape}")
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (x.shape[1],) or (lengths < 1).any() or (lengths > x.shape[0]).any():
            raise ValueError(f"{name} lengths: expected {x.shape[1]} integers in [1, {x.shape[0]}], "
                             f"got {lengths.tolist()}")
    return x, valid_mask(x.shape[0], x.shape[1], lengths, x.dtype)


class Conv1d(Module):
    r"""Temporal convolution over (L, N, C) sequences with 'same' zero padding:
    :math:`y_t = b + \sum_k W_{:,:,k}\, x_{t+k-\lfloor (K-1)/2 \rfloor}` (PyTorch's ``Conv1d`` with
    ``padding='same'``, time-major).

    Args: ``in_channels``, ``out_channels``, ``kernel_size``, ``bias=True``, ``dtype``, ``seed``.
    Shapes: ``x`` (L, N, C_in), ``lengths`` (N,) or None -> ``y`` (L, N, C_out), zero past each length.
    Parameters ``weight`` (C_out, C_in, K), ``bias`` (C_out,), initialised like PyTorch:
    U(-1/sqrt(C_in K), 1/sqrt(C_in K)).
    """

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.in_channels, self.out_channels, self.kernel_size = int(in_channels), int(out_channels), int(kernel_size)
        for name, v in (("in_channels", self.in_channels), ("out_channels", self.out_channels),
                        ("kernel_size", self.kernel_size)):
            if v < 1:
                raise ValueError(f"Conv1d {name}: expected a positive integer, got {v}")
        k = 1.0 / np.sqrt(self.in_channels * self.kernel_size)
        self.add_param("weight", self.rng.uniform(-k, k, (self.out_channels, self.in_channels, self.kernel_size)))
        if bias:
            self.add_param("bias", self.rng.uniform(-k, k, (self.out_channels,)))

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, padding='same'"

    def forward(self, x, lengths=None):
        x, mask = _check_input(x, "Conv1d input", self.in_channels, self.dtype, lengths)
        y, cols = conv1d(x * mask, self.params["weight"], self.params.get("bias"))   # padded steps read as zero
        self._cache = (cols, mask)
        return y * mask                                                               # (L, N, C_out)

    def backward(self, dy):
        cols, mask = self._take_cache()
        dx, dw, db = conv1d_backward(dy * mask, cols, self.params["weight"], self.requires_grad("weight"))
        self.accumulate("weight", dw)
        if "bias" in self.params:
            self.accumulate("bias", db)
        return dx * mask


class BatchNorm1d(Module):
    r"""Batch normalisation of each feature over the valid steps of the batch (training) or by the
    running statistics (evaluation); see :mod:`rnnkit.functional.conv` for the equations.
    Running statistics as PyTorch keeps them: :math:`\hat\mu \leftarrow (1 - m)\hat\mu + m\mu`,
    :math:`\hat\sigma^2 \leftarrow (1 - m)\hat\sigma^2 + m\, \sigma^2 M / (M - 1)` (the unbiased
    variance), momentum :math:`m = 0.1`, :math:`\epsilon = 10^{-5}`.

    Args: ``num_features``, ``eps``, ``momentum``, ``dtype``. Shapes: ``x`` (L, N, C), ``lengths`` (N,)
    or None -> (L, N, C), zero past each length. Parameters ``weight`` (γ, ones), ``bias`` (β, zeros);
    buffers ``running_mean``, ``running_var``, ``num_batches_tracked``: PyTorch's names.
    """

    def __init__(self, num_features, eps=EPS, momentum=0.1, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"BatchNorm1d momentum: expected a number in [0, 1], got {momentum!r}")
        self.add_param("weight", np.ones(self.num_features))
        self.add_param("bias", np.zeros(self.num_features))
        self.add_buffer("running_mean", np.zeros(self.num_features))
        self.add_buffer("running_var", np.ones(self.num_features))
        self.add_buffer("num_batches_tracked", np.array(0, np.int64))

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x, lengths=None):
        x, mask = _check_input(x, "BatchNorm1d input", self.num_features, self.dtype, lengths)
        p, b = self.params, self.buffers
        if self.training:
            y, cache, (mu, var, M) = batch_norm(x, p["weight"], p["bias"], mask, eps=self.eps)
            m = self.momentum
            b["running_mean"] *= 1 - m
            b["running_mean"] += m * mu
            b["running_var"] *= 1 - m
            b["running_var"] += m * var * (M / max(M - 1, 1))
            b["num_batches_tracked"] += 1
        else:
            y, cache, _ = batch_norm(x, p["weight"], p["bias"], mask, b["running_mean"], b["running_var"], self.eps)
        self._cache = cache
        return y

    def backward(self, dy):
        dx, dgamma, dbeta = batch_norm_backward(dy, self._take_cache(), self.params["weight"])
        self.accumulate("weight", dgamma)
        self.accumulate("bias", dbeta)
        return dx


class ConvBranch(Module):
    r"""The fully convolutional branch of LSTM-FCN (Karim et al. 2017, "LSTM fully convolutional
    networks for time series classification"; Wang, Yan & Oates 2017, "Time series classification
    from scratch with deep neural networks"): blocks of convolution, batch normalisation and ReLU,
    then global average pooling over the valid steps,

    .. math::
        h^{(i)} = \mathrm{ReLU}(\mathrm{BN}(\mathrm{conv}_i(h^{(i-1)}))),\qquad
        p = \frac{1}{\ell} \sum_{t < \ell} h^{(B)}_t

    Args: ``in_channels``, ``channels`` (C_1, ..., C_B), ``kernels`` (K_1, ..., K_B), ``dtype``, ``seed``.
    Shapes: ``x`` (L, N, C_in), ``lengths`` (N,) or None -> ``p`` (N, C_B). Submodules ``conv0``,
    ``bn0``, ``conv1``, ... (their state dict names).
    """

    def __init__(self, in_channels, channels, kernels, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        channels, kernels = [int(c) for c in channels], [int(k) for k in kernels]
        if not channels or len(channels) != len(kernels):
            raise ValueError(f"ConvBranch: expected as many kernel sizes as channel counts (at least one), "
                             f"got channels {channels} and kernels {kernels}")
        self.channels, self.kernels = channels, kernels
        seeds = np.random.default_rng(seed).integers(0, 2**63 - 1, size=len(channels))
        c_in = in_channels
        for i, (c, k) in enumerate(zip(channels, kernels)):
            setattr(self, f"conv{i}", Conv1d(c_in, c, k, dtype=dtype, seed=int(seeds[i])))
            setattr(self, f"bn{i}", BatchNorm1d(c, dtype=dtype))
            c_in = c
        self.out_features = c_in

    def extra_repr(self):
        return f"channels={self.channels}, kernels={self.kernels}"

    def forward(self, x, lengths=None):
        h, relus = x, []
        for i in range(len(self.channels)):
            a = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(h, lengths), lengths)   # (L, N, C_i)
            h = np.maximum(a, 0)
            relus.append(a > 0)
        L, N, _ = h.shape
        n = np.full(N, L) if lengths is None else np.asarray(lengths)
        self._cache = (relus, n, L)
        return h.sum(0) / n[:, None].astype(self.dtype)                                 # (N, C_B), h is zero past n

    def backward(self, dp):
        relus, n, L = self._take_cache()
        mask = valid_mask(L, len(n), n, self.dtype)
        dh = mask * (dp / n[:, None].astype(self.dtype))[None]                         # (L, N, C_B)
        for i in reversed(range(len(self.channels))):
            da = dh * relus[i]
            dh = getattr(self, f"conv{i}").backward(getattr(self, f"bn{i}").backward(da))
        return dh
