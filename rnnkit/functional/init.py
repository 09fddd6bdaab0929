"""Initialisers. Each returns a new array drawn from ``rng``; :func:`init_recurrent` applies a
scheme to every recurrent layer of a module in place, gate block by gate block."""
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
    """Saxe et al. (2014): a (semi-)orthogonal matrix from the QR of a Gaussian, sign-corrected."""
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q[:rows, :cols]


def identity(shape, gain: float = 1.0) -> np.ndarray:
    """Le, Jaitly & Hinton (2015), the IRNN: recurrent weights start as ``gain * I``."""
    return gain * np.eye(*shape)


SCHEMES = ("default", "xavier", "orthogonal", "identity")


def init_recurrent(module, scheme: str = "default", forget_bias: float | None = None, gain: float = 1.0,
                   rng=None) -> None:
    """Re-initialise a recurrent layer or cell in place.

    ``scheme`` sets the recurrent matrices ``weight_hh*`` per gate block: 'default' (PyTorch's
    uniform), 'xavier', 'orthogonal' or 'identity' (biases zeroed, as in the IRNN). Input
    matrices get Xavier for 'xavier'/'orthogonal'/'identity'. ``forget_bias`` (LSTM only) sets
    the forget-gate block of ``bias_ih`` to that value and of ``bias_hh`` to 0 (Jozefowicz et al., 2015).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: expected one of {SCHEMES}, got {scheme!r}")
    rng = module.rng if rng is None else rng
    H, G = module.hidden_size, module.ops.n_gates
    for name, p in module.params.items():
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
    if forget_bias is not None:
        if not module.mode.startswith("lstm"):
            raise ValueError(f"forget_bias: only LSTMs have a forget gate, this module is {module.mode!r}")
        for name, p in module.params.items():
            if name.startswith("bias_ih"):
                p[H:2 * H] = forget_bias
            elif name.startswith("bias_hh"):
                p[H:2 * H] = 0.0
