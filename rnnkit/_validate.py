"""Input checks shared by every module: one clear error instead of a NumPy traceback.

Each function raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError``
(wrong shape, range or value) with a message that names what was expected and what arrived.
"""
from __future__ import annotations

import numpy as np


def as_float_array(x, name: str, dtype=None) -> np.ndarray:
    """Return ``x`` as a floating ndarray; reject ints, bools, objects and (if given) other dtypes."""
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic objects
            raise TypeError(f"{name}: expected an array of floats, got {type(x).__name__}") from exc
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point array (float32 or float64), got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name}: expected dtype {np.dtype(dtype)} (the module's dtype), got {x.dtype}; "
            f"convert with .astype(np.{np.dtype(dtype)}) or build the module with dtype=np.{x.dtype}"
        )
    return x


class NonFiniteError(ValueError):
    """NaN or infinite values where finite ones were expected (the Trainer reports it as divergence)."""


def check_finite(x: np.ndarray, name: str) -> None:
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise NonFiniteError(f"{name}: expected finite values, got {bad} NaN or inf entr{'y' if bad == 1 else 'ies'}")


def check_shape(x: np.ndarray, expected: tuple, name: str) -> None:
    """``expected`` may hold ``None`` for a free axis."""
    ok = x.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, x.shape))
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")


def check_lengths(lengths, batch: int, max_len: int) -> np.ndarray:
    """Validate a per-sequence length vector: integers in [1, max_len], one per batch row."""
    arr = np.asarray(lengths)
    if arr.ndim != 1 or arr.shape[0] != batch:
        raise ValueError(f"lengths: expected one length per sequence, shape ({batch},), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"lengths: expected integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 1 or arr.max() > max_len):
        raise ValueError(
            f"lengths: expected values in [1, {max_len}] (the sequence length), "
            f"got min {int(arr.min())}, max {int(arr.max())}"
        )
    return arr


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def check_probability(value, name: str) -> float:
    if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {value!r}")
    return float(value)


def resolve_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def comma_list(text) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: the items of a comma-separated setting, blanks dropped."""
    return [q.strip() for q in str(text).split(",") if q.strip()]


def some_names(names, k: int = 8) -> str:
    """The first ``k`` of ``names`` for an error message, with ``...`` when there are more."""
    names = list(names)
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")
