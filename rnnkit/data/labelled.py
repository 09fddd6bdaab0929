"""Labelled sequences for classification: the batches the Trainer reads, label ids, feature
standardisation fitted on the training set, and a seeded train/validation split.

Sequences are a list of (L_i, D) float arrays (as the readers in :mod:`rnnkit.data.readers`
return them); batches are time-major and zero-padded: x (L, N, D), with (N,) lengths.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError, where


def pad_sequences(xs, idx=None):
    """Sequences ``xs[i]`` for ``i`` in ``idx`` (default all) -> (x (L_max, n, D) float32 zero-padded,
    lengths (n,) int64), L_max the longest of them."""
    idx = range(len(xs)) if idx is None else idx
    lengths = np.array([len(xs[i]) for i in idx], np.int64)
    x = np.zeros((lengths.max(), len(lengths), xs[0].shape[1]), np.float32)   # (L, n, D)
    for j, i in enumerate(idx):
        x[: lengths[j], j] = xs[i]
    return x, lengths


class LabelledSequences:
    """Sequences with one class id each, cut into shuffled batches for the Trainer.

    Args:
        xs: list of N (L_i, D) float arrays, L_i >= 1, one D for all.
        y: (N,) int class ids.
        batch_size: sequences per batch (the last batch of an epoch may be smaller).
        shuffle: draw each epoch's order from ``np.random.default_rng([seed, epoch])``; else file order.

    ``batch(i, epoch)`` is a pure function of its arguments, so a resumed run sees the same batches.
    """

    def __init__(self, xs, y, batch_size=32, shuffle=True, seed=0):
        if len(xs) == 0:
            raise UserError("sequences: expected at least one, got none")
        dims = {np.shape(x)[1:] for x in xs}
        if len(dims) != 1 or len(next(iter(dims))) != 1 or min(len(x) for x in xs) < 1:
            raise UserError(f"sequences: expected (L_i, D) arrays with L_i >= 1 and one D, got trailing shapes {sorted(dims)}")
        y = np.asarray(y)
        if y.shape != (len(xs),) or y.dtype.kind not in "iu":
            raise UserError(f"labels: expected ({len(xs)},) integer class ids, got shape {y.shape} and dtype {y.dtype}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UserError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        self.xs, self.y = list(xs), y.astype(np.int64)
        self.batch_size, self.shuffle, self.seed = int(batch_size), shuffle, seed
        self._order = (None, None)  # (epoch, permutation) of the last epoch asked for

    @property
    def n_features(self) -> int:
        return self.xs[0].shape[1]

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.xs) // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """(N,) the sequence indices in the order epoch ``epoch`` visits them."""
        if not self.shuffle:
            return np.arange(len(self.xs))
        if self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.xs)))
        return self._order[1]

    def batch(self, i: int, epoch: int = 0):
        """Batch ``i`` of epoch ``epoch``: x (L, n, D) float32 zero-padded, y (n,) int64, lengths (n,) int64."""
        if not 0 <= i < len(self):
            raise IndexError(f"batch: expected an index in [0, {len(self)}), got {i}")
        idx = self.order(epoch)[i * self.batch_size: (i + 1) * self.batch_size]
        x, lengths = pad_sequences(self.xs, idx)
        return x, self.y[idx], lengths

    def __iter__(self):
        """The batches of epoch 0."""
        return (self.batch(i, 0) for i in range(len(self)))

    def x_padded(self):
        """The whole set in its own order: x (L_max, N, D) float32, lengths (N,) int64."""
        return pad_sequences(self.xs)


def encode_labels(y_raw, classes=None, path=None):
    """Labels (ints or strings) -> (y (N,) int64 ids into ``classes``, ``classes`` list of str).

    Without ``classes`` (the training set) they are the distinct labels, sorted (numerically when
    the labels are integers), as strings. With ``classes`` (a test set), a label outside them is an
    error naming ``path``.
    """
    y_raw = np.asarray(y_raw)
    if y_raw.ndim != 1 or len(y_raw) == 0:
        raise UserError(f"{where(path or 'labels')}: expected one label per sequence, got shape {y_raw.shape}")
    if classes is None:
        distinct = np.unique(y_raw)                           # numeric order for numbers
        classes = [str(c) for c in distinct]
    index = {c: k for k, c in enumerate(classes)}
    labels = [str(v) for v in y_raw.tolist()]
    empty = [i for i, lab in enumerate(labels) if not lab.strip()]
    if empty:
        raise UserError(f"{where(path or 'labels')}: sequence {empty[0]}: expected a label, got {labels[empty[0]]!r} "
                        f"({len(empty)} such sequence{'s' * (len(empty) != 1)})")
    unseen = [i for i, lab in enumerate(labels) if lab not in index]
    if unseen:
        i = unseen[0]
        shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
        raise UserError(f"{where(path or 'labels')}: sequence {i}: expected a label seen in training ({shown}), "
                        f"got {labels[i]!r} ({len(unseen)} such sequences)")
    return np.array([index[lab] for lab in labels], np.int64), list(classes)


class Standardizer:
    """Per-feature ``(x - mean) / std``, fitted on the steps of the training sequences only.

    ``mean`` and ``std`` are (D,) float64; a constant feature gets std 1.
    """

    def __init__(self, mean, std):
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape or not np.all(self.std > 0):
            raise UserError(f"standardizer: expected (D,) mean and positive (D,) std, "
                            f"got shapes {self.mean.shape} and {self.std.shape}")

    @classmethod
    def fit(cls, xs) -> "Standardizer":
        """Mean and std over every step of every (L_i, D) sequence (two passes, float64)."""
        n = sum(len(x) for x in xs)
        mean = sum(np.asarray(x, np.float64).sum(0) for x in xs) / n                  # (D,)
        var = sum(((np.asarray(x, np.float64) - mean) ** 2).sum(0) for x in xs) / n  # (D,)
        std = np.sqrt(var)
        return cls(mean, np.where(std > 0, std, 1.0))

    def transform(self, xs) -> list:
        """List of (L_i, D) -> list of (L_i, D) float32 standardised."""
        return [((np.asarray(x, np.float64) - self.mean) / self.std).astype(np.float32) for x in xs]

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        return cls(d["mean"], d["std"])


def check_features(xs, n_features: int, path) -> None:
    """An error naming ``path`` unless every (L_i, D) sequence has D == ``n_features`` (the training set's)."""
    got = sorted({np.shape(x)[1] for x in xs} - {n_features})
    if got:
        raise UserError(f"{path}: expected {n_features} features per step (as in the training file), got {got[0]}")


def split(n: int, fraction: float, seed=0, y=None):
    """Seeded split of ``range(n)`` -> (train, valid) sorted index arrays, ``valid`` about
    ``fraction * n`` long. With labels ``y``, stratified: each class gives about ``fraction`` of its
    sequences, and keeps at least one in training."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"validation fraction: expected a number in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if y is None else [np.flatnonzero(np.asarray(y) == c) for c in np.unique(y)]
    valid = []
    for g in groups:
        k = min(int(round(fraction * len(g))), len(g) - 1)
        valid.append(rng.permutation(g)[:k])
    valid = np.sort(np.concatenate(valid)).astype(np.int64)
    if len(valid) == 0:
        raise UserError(f"validation fraction: {fraction} of {n} sequences leaves no validation set; "
                        f"give a larger fraction or a validation file")
    return np.setdiff1d(np.arange(n), valid), valid
