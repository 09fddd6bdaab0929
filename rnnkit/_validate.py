"""Input checks shared by every module: one clear error instead of a NumPy traceback.

Each function raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError``
(wrong shape, range or value) with a message that names what was expected and what arrived.
"""
from __future__ import annotations

import numpy as np

from .kernels import compiled


def as_float_array(x, name: str, dtype=None) -> np.ndarray:
    """Return ``x`` as a floating ndarray; reject ints, bools, objects and (if given) other dtypes."""
    given = type(x).__name__
    if not isinstance(x, np.ndarray):
        if x is None:
            raise TypeError(f"{name}: expected an array of floats, got None")
        try:
            x = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic objects
            raise TypeError(f"{name}: expected an array of floats, got {given}") from exc
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point array (float32 or float64), got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        fix = (f"np.asarray(x, np.{np.dtype(dtype)})" if given != "ndarray" else f"x.astype(np.{np.dtype(dtype)})")
        other = (f" or build the module with dtype=np.{x.dtype}" if x.dtype in (np.float32, np.float64) else "")
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)} (the module's dtype), got {x.dtype}"
                        f"{f' (from a {given})' if given != 'ndarray' else ''}; convert with {fix}{other}")
    return x


def _shown(value) -> str:
    """What a state argument was, for a message: ``a tuple of 1``, ``ndarray``."""
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__


class NonFiniteError(ValueError):
    """NaN or infinite values where finite ones were expected (the Trainer reports it as divergence)."""


_EXPONENT = {np.dtype(np.float32): (np.uint32, np.uint32(0x7F800000)),
             np.dtype(np.float64): (np.uint64, np.uint64(0x7FF0000000000000))}


def _all_finite(x) -> bool:
    """``np.isfinite(x).all()``, by the compiled check (``kernels._numba.all_finite``) for a large
    C-contiguous float32 or float64 array when the compiled backend is in use."""
    kind = _EXPONENT.get(x.dtype) if type(x) is np.ndarray and x.size >= 4096 and x.flags.c_contiguous else None
    if kind is not None:                 # (a subclass, np.matrix or a masked array, keeps its own isfinite)
        numba_kernels = compiled("_numba")
        if numba_kernels is not None:
            return bool(numba_kernels.all_finite(x.reshape(-1).view(kind[0]), kind[1]))
    return bool(np.isfinite(x).all())


def check_finite(x: np.ndarray, name: str) -> None:
    if not _all_finite(x):
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


def is_count(value, minimum: int = 0) -> bool:
    """Whether ``value`` is an integer (not a bool) >= ``minimum``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= minimum


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
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


def check_nonneg_number(value, name: str) -> float:
    """A finite real number >= 0 (bools, strings, NaN and inf refused)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok:
        raise TypeError(f"{name}: expected a finite number >= 0, got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


def check_token_ids(ids, vocab_size: int, name: str, ndim: int = 2, hint: str = "") -> np.ndarray:
    """An integer array of ``ndim`` axes with every id in ``[0, vocab_size)``; ``hint`` follows a
    wrong-shape message (e.g. how to make one sequence a batch)."""
    arr = np.asarray(ids)
    if arr.ndim != ndim:
        want = {1: "(L,)", 2: "(L, N)"}.get(ndim, f"{ndim}-D")
        raise ValueError(f"{name}: expected token ids of shape {want}, got shape {arr.shape}"
                         + (f"; {hint}" if hint else ""))
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: expected integer token ids, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(f"{name}: expected ids in [0, {vocab_size}), "
                         f"got min {int(arr.min())}, max {int(arr.max())}")
    return arr


def check_text_list(texts, name: str) -> list:
    """A list (any iterable but ``str``) of strings, returned as a list; a bare ``str`` is refused
    (each of its characters would be read as one text)."""
    if isinstance(texts, str):
        raise TypeError(f"{name}: expected a list of texts, got a str; wrap one text as [{texts[:20]!r}]")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{name}: expected a list of texts, got {type(texts).__name__}") from None
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name}: expected a list of texts, got {type(texts[bad]).__name__} at index {bad}")
    return texts


def check_token_lists(seqs, name: str, what: str = "sources") -> list:
    """A list (any iterable but ``str``) of token lists, returned as a list; a bare ``str`` or a
    flat list of ``str`` (one sequence) is refused."""
    one, unit = ("sentence", "words") if what == "sentences" else ("source", "tokens")
    expected = f"{name}: expected a list of {what} (lists of {unit})"
    if isinstance(seqs, str):
        example = seqs.split() if what == "sentences" else list(seqs)
        raise TypeError(f"{expected}, got a str; wrap one {one} as [{example[:3]!r}]")
    try:
        seqs = list(seqs)
    except TypeError:
        raise TypeError(f"{expected}, got {type(seqs).__name__}") from None
    if any(isinstance(s, str) for s in seqs):
        raise TypeError(f"{expected}, got a list of str; wrap one {one} as [{seqs[:2]!r}]")
    return seqs


def is_real(v) -> bool:
    """A finite real number (NumPy scalars included; bools, strings, NaN and inf are not)."""
    import math
    import numbers

    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)


def check_bool(value, name: str) -> bool:
    """``value`` as a bool; anything but True / False (or 0 / 1) refused: ``bool('no')`` is True."""
    ok = isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating)) and value in (True, False)
    if not ok:
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def check_seed(seed, name: str = "seed"):
    """``seed`` as ``np.random.default_rng`` takes it: None, an integer >= 0, a sequence of them, or a
    ``Generator`` / ``BitGenerator`` / ``SeedSequence``; anything else refused in one line naming ``name``."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        if seed >= 0:
            return seed
    elif isinstance(seed, (list, tuple, np.ndarray)):
        arr = np.asarray(seed)
        if arr.size and np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0:
            return seed
    raise ValueError(f"{name}: expected None or an integer >= 0, got {seed!r}")


def check_dtype(dtype) -> np.dtype:
    """:func:`resolve_dtype` with one line, naming ``dtype``, also for a name NumPy does not know."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    return resolve_dtype(dt)


def check_ndarray(x, name: str) -> np.ndarray:
    """An O(1) check that ``x`` is a NumPy array (for per-call checks on a hot path)."""
    if not isinstance(x, np.ndarray):
        cls = type(x)
        kind = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__.split('.')[0]}.{cls.__name__}"
        raise TypeError(f"{name}: expected a NumPy array, got {kind}")
    return x
