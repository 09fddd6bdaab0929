"""Real sequence datasets that ship inside registry packages: nothing is downloaded at run time.

Each loader returns NumPy arrays. They need the ``datasets`` extra
(``pip install -e '.[datasets]'``: scikit-learn, statsmodels, aeon); a missing package raises an
``ImportError`` naming the extra.

Forecasting (1-D float64 series, oldest first):

* :func:`sunspots`: yearly mean sunspot numbers 1700-2008, 309 values (statsmodels; SIDC).
* :func:`co2`: Mauna Loa atmospheric CO2 in ppm, weekly 1958-2001, 2,284 weeks (statsmodels;
  Scripps); the 59 missing weeks are filled by linear interpolation; ``monthly=True`` averages
  to 526 months.
* :func:`airline`: monthly international airline passengers in thousands, 1949-1960, 144 values
  (aeon; Box & Jenkins).

Classification (``ClassificationData``: ``x`` (L, N, D) time-major and zero-padded, ``lengths``
(N,), ``y`` (N,) class ids, ``classes`` their names):

* :func:`japanese_vowels`: nine male speakers saying /ae/; 12 LPC cepstral coefficients per
  frame, 7-29 frames; 270 train / 370 test, the UCI split (Kudo, Toyama & Shimbo 1999) (aeon).
* :func:`basic_motions`: 6-channel accelerometer and gyroscope from a smart watch, 100 steps,
  4 activities, 40 train / 40 test (aeon, UEA archive).
* :func:`digits_rows`: scikit-learn's 1,797 8x8 handwritten digits read row by row (8 steps of
  8 pixels scaled to [0, 1]); no official split, so a seeded stratified 2/3-1/3 split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXTRA = "pip install -e '.[datasets]'"


def _need(module: str, package: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ImportError(f"this dataset needs {package}, part of the datasets extra: {EXTRA}") from None


# -- forecasting -------------------------------------------------------------------------------


def sunspots() -> np.ndarray:
    """Yearly sunspot numbers, 1700-2008 (309 values)."""
    sm = _need("statsmodels.api", "statsmodels")
    return sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(np.float64)


def co2(monthly: bool = True) -> np.ndarray:
    """Mauna Loa CO2 (ppm), weekly from March 1958 to December 2001, gaps interpolated; monthly means by default."""
    sm = _need("statsmodels.api", "statsmodels")
    s = sm.datasets.co2.load_pandas().data["co2"].interpolate(limit_direction="both")
    if monthly:
        s = s.resample("MS").mean()
    return s.to_numpy(np.float64)


def airline() -> np.ndarray:
    """Monthly airline passengers (thousands), 1949-1960 (144 values)."""
    ds = _need("aeon.datasets", "aeon")
    return np.asarray(ds.load_airline(), dtype=np.float64)


FORECAST_DATASETS = {"sunspots": sunspots, "co2": co2, "airline": airline}
SEASON = {"sunspots": 11, "co2": 12, "airline": 12}      # the seasonal-naive period (sunspot cycle ~11 y)


# -- classification ---------------------------------------------------------------------------


@dataclass
class ClassificationData:
    x: np.ndarray            # (L, N, D) float32, zero-padded past each length
    lengths: np.ndarray      # (N,)
    y: np.ndarray            # (N,) int64
    classes: list            # class names, indexed by y

    def __len__(self):
        return self.x.shape[1]

    def take(self, idx) -> "ClassificationData":
        return ClassificationData(self.x[:, idx], self.lengths[idx], self.y[idx], self.classes)


def _pack(series: list, labels, classes=None) -> ClassificationData:
    """A list of (D, L_i) arrays -> padded time-major ClassificationData."""
    lengths = np.array([s.shape[1] for s in series])
    D = series[0].shape[0]
    x = np.zeros((lengths.max(), len(series), D), np.float32)
    for j, s in enumerate(series):
        x[: s.shape[1], j] = s.T
    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist())) if classes is None else classes
    y = np.array([classes.index(v) for v in labels.tolist()], np.int64)
    return ClassificationData(x, lengths, y, [str(c) for c in classes])


def _japanese_vowels_raw(split):
    ds = _need("aeon.datasets", "aeon")
    _check_split(split)
    X, y = ds.load_japanese_vowels(split=split)
    return [np.asarray(s, np.float64) for s in X], y, [str(k) for k in range(1, 10)]


def _basic_motions_raw(split):
    ds = _need("aeon.datasets", "aeon")
    _check_split(split)
    X, y = ds.load_basic_motions(split=split)
    return list(np.asarray(X, np.float64)), y, ["badminton", "running", "standing", "walking"]


def _digits_raw(split, seed=0):
    datasets = _need("sklearn.datasets", "scikit-learn")
    _check_split(split)
    d = datasets.load_digits()
    rng = np.random.default_rng(seed)
    test = np.zeros(len(d.target), bool)
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(d.target == c))
        test[idx[: len(idx) // 3]] = True
    keep = test if split == "test" else ~test
    images = d.images[keep] / 16.0                       # (N, 8, 8): rows are time steps
    return list(images.transpose(0, 2, 1)), d.target[keep], list(range(10))


def japanese_vowels(split: str = "train") -> ClassificationData:
    """270 train / 370 test utterances, 12 coefficients, 7-29 frames, 9 speaker classes."""
    return _pack(*_japanese_vowels_raw(split))


def basic_motions(split: str = "train") -> ClassificationData:
    """40 train / 40 test recordings, 6 channels x 100 steps, 4 activities."""
    return _pack(*_basic_motions_raw(split))


def digits_rows(split: str = "train", seed: int = 0) -> ClassificationData:
    """Handwritten digits row by row: 1,201 train / 596 test (seeded, stratified)."""
    return _pack(*_digits_raw(split, seed))


def labelled_sequences(name: str, split: str = "train"):
    """``(xs, labels)`` of a built-in classification set with its values as shipped: a list of
    (L_i, D) float64 arrays and the label of each as a string."""
    if name not in _RAW:
        raise ValueError(f"dataset: expected one of {', '.join(_RAW)}, got {name!r}")
    series, y, _ = _RAW[name](split)
    return [np.ascontiguousarray(s.T) for s in series], np.array([str(v) for v in np.asarray(y).tolist()])


CLASSIFICATION_DATASETS = {"japanese-vowels": japanese_vowels, "digits": digits_rows, "basic-motions": basic_motions}
_RAW = {"japanese-vowels": _japanese_vowels_raw, "digits": _digits_raw, "basic-motions": _basic_motions_raw}


def _check_split(split):
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
