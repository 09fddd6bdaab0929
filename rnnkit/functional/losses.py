r"""Losses with their gradients: forward returns ``(loss, cache)``, backward returns the input gradient.

Cross-entropy over time: ``logits`` (\*, C) and integer ``targets`` (\*); positions where
``targets == ignore_index`` or ``mask`` is false contribute nothing. ``reduction='mean'``
divides by the number of counted positions (PyTorch's convention), ``'sum'`` does not.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validate import as_float_array
from ..rows import softmax_grad_rows, softmax_rows


class CECache(NamedTuple):
    probs: np.ndarray    # (*, C) softmax
    targets: np.ndarray  # (*,) with ignored positions set to 0
    weight: np.ndarray   # (*,) 1 for counted positions, 0 otherwise (already divided for 'mean')


def _shifted_exp(logits: np.ndarray, axis: int = -1):
    """``(shifted, e, total)``: the logits less their max, their exponential and its sum: the
    numerically stable pieces of softmax (``e / total``) and log-softmax
    (``shifted - log(total)``). An infinite logit gives NaN here without NumPy's warning: a
    non-finite loss is reported by whoever trains (the Trainer, in one line)."""
    with np.errstate(invalid="ignore"):
        shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return shifted, e, e.sum(axis=axis, keepdims=True)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable ``log softmax`` (subtracts the max before exponentiating)."""
    shifted, _, total = _shifted_exp(logits, axis)
    return shifted - np.log(total)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    _, e, total = _shifted_exp(logits, axis)
    return e / total


def _check_reduction(reduction):
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")


def cross_entropy(logits, targets, mask=None, ignore_index: int = -100, reduction: str = "mean"):
    """Softmax cross-entropy. Returns ``(loss, cache)``; the loss is a Python float."""
    _check_reduction(reduction)
    logits = as_float_array(logits, "cross_entropy logits")
    targets = np.asarray(targets)
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"cross_entropy targets: expected integer class indices, got dtype {targets.dtype}")
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"cross_entropy: expected targets of shape {logits.shape[:-1]} to match logits "
                         f"{logits.shape} (without the class axis), got {targets.shape}")
    C = logits.shape[-1]
    keep = targets != ignore_index
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != targets.shape:
            raise ValueError(f"cross_entropy mask: expected shape {targets.shape}, got {mask.shape}")
        keep &= mask
    bad = keep & ((targets < 0) | (targets >= C))
    if bad.any():
        raise ValueError(f"cross_entropy targets: expected class indices in [0, {C - 1}] "
                         f"(or ignore_index={ignore_index}), got {int(targets[bad][0])}")
    safe_t = np.where(keep, targets, 0)
    fast = softmax_rows(logits, safe_t)   # the same operations, the rows shared by the threads
    if fast is not None:
        probs, picked = fast
    else:
        # softmax and the picked log-probabilities from one exponential pass (log_softmax and
        # then exp(logp) took two, and a second full subtraction: 1.7 against 1.0 ms at (50, 50, 65))
        shifted, probs, total = _shifted_exp(logits)
        probs /= total
        picked = np.take_along_axis(shifted, safe_t[..., None], axis=-1)[..., 0] - np.log(total[..., 0])
    count = int(keep.sum())
    weight = keep.astype(logits.dtype)
    if reduction == "mean":
        if count == 0:
            raise ValueError("cross_entropy: every position is masked or ignored; nothing to average")
        weight /= count
    loss = float(-(picked * weight).sum())
    return loss, CECache(probs, safe_t, weight)


def cross_entropy_backward(cache: CECache, dloss: float = 1.0) -> np.ndarray:
    """Gradient of the loss w.r.t. the logits: ``(softmax - onehot) * weight``."""
    wd = cache.weight * dloss
    d = softmax_grad_rows(cache.probs, cache.targets, wd)
    if d is not None:
        return d
    d = cache.probs.copy()
    np.put_along_axis(d, cache.targets[..., None], np.take_along_axis(d, cache.targets[..., None], -1) - 1.0, -1)
    d *= wd[..., None]
    return d


class MSECache(NamedTuple):
    diff: np.ndarray
    scale: float


def mse(pred, target, mask=None, reduction: str = "mean"):
    """Mean (or summed) squared error; ``mask`` (broadcastable to ``pred``) drops positions."""
    _check_reduction(reduction)
    pred = as_float_array(pred, "mse prediction")
    target = as_float_array(target, "mse target")
    if not np.isfinite(target).all():      # bad data, not divergence (the Trainer's reading of NonFiniteError)
        bad = int(target.size - np.count_nonzero(np.isfinite(target)))
        raise ValueError(f"mse target (the regression targets): expected finite values, got {bad} NaN or inf")
    if pred.shape != target.shape:
        raise ValueError(f"mse: expected target of shape {pred.shape} (the prediction's), got {target.shape}")
    diff = pred - target
    if mask is not None:
        m = np.broadcast_to(np.asarray(mask, dtype=pred.dtype), pred.shape)
        diff = diff * m
        count = float(m.sum())
    else:
        count = float(diff.size)
    scale = 1.0 / count if reduction == "mean" else 1.0
    return float((diff * diff).sum() * scale), MSECache(diff, scale)


def mse_backward(cache: MSECache, dloss: float = 1.0) -> np.ndarray:
    return cache.diff * (2.0 * cache.scale * dloss)
