"""Initialisers. Each returns a new array drawn from ``rng``; :func:`init_recurrent` applies a
scheme to every recurrent layer of a module in place, gate block by gate block, and
:func:`set_forget_bias` sets an LSTM's forget-gate biases and nothing else."""
from __future__ import annotations

import numpy as np


def uniform(shape, bound: float, rng) -> np.ndarray:
    """PyTorch's default for recurrent layers: U(-bound, bound) with bound = 1/sqrt(H)."""
    return rng.uniform(-bound, bound, shape)


def xavier_uniform(shape, rng, gain: float = 1.0) -> np.ndarray:
    """Glorot & Bengio (2010): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_out, fan_in = shape
    a = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape)


def orthogonal(shape, rng, gain: float = 1.0) -> np.ndarray:
    """Saxe et al. (2014): a (semi-)orthogonal matrix from the QR of a Gaussian, sign-corrected:
    :func:`orthogonalise` of a standard normal ``shape`` matrix drawn from ``rng``."""
    return orthogonalise(rng.standard_normal(shape), gain)


def orthogonalise(a: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """``torch.nn.init.orthogonal_``'s construction from its normal matrix ``a`` (rows, cols):
    the QR of ``a`` (of ``a^T`` when rows < cols), ``Q`` times the signs of ``R``'s diagonal (which
    makes the factorisation unique), transposed back. For rows >= cols the columns are orthonormal
    (``W^T W = I``), otherwise the rows. Keras's ``Orthogonal`` is the same construction for its
    transposed (cols, rows) kernel, so a Keras recurrent kernel is this matrix's transpose."""
    rows, cols = a.shape
    flat = a.T if rows < cols else a                    # (max, min)
    q, r = np.linalg.qr(flat)                           # reduced: q (max, min)
    q = q * np.sign(np.diag(r))
    return gain * (q.T if rows < cols else q)


def identity(shape, gain: float = 1.0) -> np.ndarray:
    """Le, Jaitly & Hinton (2015), the IRNN: recurrent weights start as ``gain * I``."""
    return gain * np.eye(*shape)


SCHEMES = ("default", "xavier", "orthogonal", "identity")


def init_recurrent(module, scheme: str | None = None, forget_bias: float | None = None, gain: float = 1.0,
                   rng=None) -> None:
    """Re-initialise a recurrent layer or cell in place.

    ``scheme`` sets the recurrent matrices ``weight_hh*`` per gate block: 'default' (PyTorch's
    uniform), 'xavier', 'orthogonal' or 'identity' (biases zeroed, as in the IRNN). Input
    matrices get Xavier for 'xavier'/'orthogonal'/'identity'. ``None`` (the default) leaves
    every weight as it is. ``forget_bias`` (LSTM only) then applies :func:`set_forget_bias`.
    (The layers' own ``recurrent_init`` / ``forget_bias`` options do this at construction, for
    the whole (G*H, H) matrix as PyTorch's ``orthogonal_`` does.)
    """
    if scheme is not None and scheme not in SCHEMES:
        raise ValueError(f"scheme: expected one of {SCHEMES}, got {scheme!r}")
    if forget_bias is not None:
        forget_bias_blocks(module)                     # refuse before changing anything
    if scheme is not None:
        _init_blocks(module, scheme, gain, module.rng if rng is None else rng)
    if forget_bias is not None:
        set_forget_bias(module, forget_bias)


def _init_blocks(module, scheme, gain, rng):
    H, G = module.hidden_size, module.ops.n_gates
    for name, p in module.params.items():
        if name.startswith(("ln_", "peephole_")):      # gate variants' gains, biases, peepholes keep theirs
            continue
        if scheme == "default":
            p[...] = uniform(p.shape, 1.0 / np.sqrt(H), rng)
            continue
        if name.startswith("bias"):
            p[...] = 0.0
        elif name.startswith("weight_hh"):
            for g in range(G):
                block = (H, H)
                p[g * H:(g + 1) * H] = identity(block, gain) if scheme == "identity" else (
                    orthogonal(block, rng, gain) if scheme == "orthogonal" else xavier_uniform(block, rng, gain))
        else:
            for g in range(G):
                p[g * H:(g + 1) * H] = xavier_uniform((H, p.shape[1]), rng)


def forget_bias_blocks(module) -> slice:
    """The rows of an LSTM's biases that feed the forget gate (gate order i, f, g, o); anything
    else is refused in one line."""
    if not module.mode.startswith("lstm"):
        raise ValueError(f"forget_bias: only LSTMs have a forget gate, this module is {module.mode!r}")
    if not any(name.startswith("bias_ih") for name in module.params):
        raise ValueError("forget_bias: this LSTM has no biases (bias=False)")
    H = module.hidden_size
    if getattr(getattr(module, "variant", None), "coupled_gates", False):
        return slice(0, H)                             # coupled gates: blocks f, g, o
    return slice(H, 2 * H)


def set_forget_bias(module, value: float) -> None:
    r"""Set the forget gate's bias of every layer and direction of an LSTM, touching nothing else.

    The gate sees the sum :math:`b_{if} + b_{hf}`; the value goes to ``bias_ih``'s f block and
    ``bias_hh``'s f block becomes 0, so the forget gate's bias is exactly ``value`` (Gers et al.
    2000, Jozefowicz et al. 2015; Keras's ``unit_forget_bias=True`` is ``value=1.0``). The
    snippet PyTorch users often copy fills the f block of *both* biases, giving ``2 * value``:
    pass twice the value to reproduce it (the split does not matter: both biases enter every
    equation only through their sum and get the same gradient).
    """
    f = forget_bias_blocks(module)
    for name, p in module.params.items():
        if name.startswith("bias_ih"):
            p[f] = value
        elif name.startswith("bias_hh"):
            p[f] = 0.0
