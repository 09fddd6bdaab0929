"""Order-k Markov chains over a symbol stream: the baseline a sequence model of DNA (or any text)
has to beat, in bits per symbol.

An order-k chain predicts each symbol from the k before it, with probabilities counted on a
training stream and smoothed by adding ``alpha`` to every count (``alpha = 1/2``, the
Krichevsky-Trofimov estimator, by default):

    p(s | c) = (n(c, s) + alpha) / (n(c) + alpha * A),    A the alphabet size.

Order 0 is the symbol frequencies. Scored on a test stream that continues the training one (the
last part of a genome), the first k test symbols take their context from the end of training.
"""
from __future__ import annotations

import numpy as np


def encode(text: str, alphabet: str) -> np.ndarray:
    """(len(text),) int64 indices of each character in ``alphabet``; a character outside it is a ValueError."""
    table = np.full(256, -1, np.int64)
    for i, ch in enumerate(alphabet):
        table[ord(ch)] = i
    codes = np.frombuffer(text.encode("latin-1"), np.uint8)
    ids = table[codes]
    if (ids < 0).any():
        bad = text[int(np.flatnonzero(ids < 0)[0])]
        raise ValueError(f"expected only the symbols {alphabet!r}, got {bad!r}")
    return ids


def contexts(ids: np.ndarray, order: int, A: int) -> np.ndarray:
    """(len(ids) - order,) the index of the ``order`` symbols before each position from ``order`` on,
    read as a base-A number (oldest symbol most significant)."""
    n = len(ids) - order
    ctx = np.zeros(n, np.int64)
    for j in range(order):
        ctx = ctx * A + ids[j: j + n]
    return ctx


def markov_bits(train: np.ndarray, test: np.ndarray, order: int, A: int, alpha: float = 0.5) -> float:
    """Bits per symbol of ``test`` under the order-``order`` chain counted on ``train`` (int ids in
    [0, A)), add-``alpha`` smoothing; ``test`` is taken to continue ``train``."""
    if order < 0 or alpha <= 0:
        raise ValueError(f"expected order >= 0 and alpha > 0, got order {order}, alpha {alpha}")
    counts = np.bincount(contexts(train, order, A) * A + train[order:], minlength=A ** (order + 1))
    counts = counts.reshape(A ** order, A).astype(np.float64)                     # (contexts, A)
    stream = np.concatenate([train[len(train) - order:], test]) if order else test
    ctx = contexts(stream, order, A)                                              # (len(test),)
    p = (counts[ctx, test] + alpha) / (counts[ctx].sum(1) + alpha * A)
    return float(-np.log2(p).mean())


def markov_table(train: np.ndarray, test: np.ndarray, orders, A: int, alpha: float = 0.5) -> dict:
    """``{order: bits per symbol}`` for each order."""
    return {k: markov_bits(train, test, k, A, alpha) for k in orders}
