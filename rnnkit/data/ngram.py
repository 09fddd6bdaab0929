"""Interpolated Kneser-Ney character n-grams: the count-based baseline a character language model
is judged against, in bits per character.

An order-k model predicts each symbol from the k before it (an (k+1)-gram). With ``h`` a context
of length j, ``h'`` the same context without its oldest symbol and ``V`` the alphabet size, the
probability is defined from the lowest order up (Kneser & Ney 1995; the interpolated form of
Chen & Goodman 1998, eq. 17):

    p_{-1}(w)    = 1 / V
    p_j(w | h)   = max(c_j(h w) - D_j, 0) / c_j(h)  +  D_j * N_j(h) / c_j(h) * p_{j-1}(w | h')
                   when c_j(h) = sum_w c_j(h w) > 0, and p_{j-1}(w | h') otherwise,

where ``N_j(h)`` is the number of distinct symbols seen after ``h``. At the highest order k,
``c_k(h w)`` is the count of ``h w`` in the training stream; at every lower order it is the
*continuation count*, the number of distinct symbols seen before ``h w``, ``|{v: c(v h w) > 0}|``:
a symbol that follows many contexts gets a large lower-order share, one that only ever completes
a single frequent word does not. The discount of each order is ``D_j = n1 / (n1 + 2 n2)`` with
``n1``, ``n2`` the numbers of its (j+1)-grams whose count is 1 and 2 (Ney, Essen & Kneser 1994).
Every ``p_j(. | h)`` sums to 1 over the alphabet, and no symbol of the alphabet gets probability 0.
The (k+1)-grams are those of the training stream; the lower orders' grams are their suffixes, so
the stream's first k symbols count only as context.

Counts are kept as sorted int64 keys (the (j+1)-gram read as a base-V number, oldest symbol most
significant) and looked up with ``searchsorted``, so scoring a whole test stream is a few vector
operations per order.
"""
from __future__ import annotations

import numpy as np

from .markov import contexts


class _Table:
    """Sorted keys with a value each, looked up vectorially (0 where a key is absent)."""

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        self.keys, self.values = keys, values

    @classmethod
    def count(cls, keys: np.ndarray) -> "_Table":
        uniq, n = np.unique(keys, return_counts=True)
        return cls(uniq, n.astype(np.float64))

    def __getitem__(self, query: np.ndarray) -> np.ndarray:
        if len(self.keys) == 0:
            return np.zeros(len(query))
        i = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
        return np.where(self.keys[i] == query, self.values[i], 0.0)


class KneserNey:
    """Interpolated Kneser-Ney model of order ``order`` (contexts of ``order`` symbols) over the
    int ids in ``[0, V)`` of a training stream ``ids``.

    ``probabilities(context)`` -> (V,) distribution of the next symbol; ``bits(test, history)`` ->
    bits per symbol of a stream (its first symbols take their context from ``history``)."""

    def __init__(self, ids: np.ndarray, order: int, V: int):
        ids = np.asarray(ids, np.int64)
        if order < 0 or V < 1:
            raise ValueError(f"expected order >= 0 and an alphabet of at least 1 symbol, got order {order}, V {V}")
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise ValueError(f"ids: expected symbols in [0, {V}), got {ids.min()}..{ids.max()}")
        if len(ids) <= order:
            raise ValueError(f"expected a training stream longer than the order {order}, got {len(ids)} symbols")
        self.order, self.V = order, V
        self.grams, self.ctx_total, self.ctx_types, self.discount = [], [], [], []
        top = contexts(ids, order, V) * V + ids[order:]                  # every (order+1)-gram as a number
        keys, counts = np.unique(top, return_counts=True)
        levels = [(keys, counts.astype(np.float64))]
        for j in range(order - 1, -1, -1):                               # continuation counts, order j
            suffix = keys % V ** (j + 1)                                 # drop the oldest symbol
            keys, counts = np.unique(suffix, return_counts=True)
            levels.append((keys, counts.astype(np.float64)))
        for keys, counts in reversed(levels):                            # order 0 first
            n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
            self.discount.append(float(n1 / (n1 + 2 * n2)) if n1 + 2 * n2 > 0 else 0.5)
            self.grams.append(_Table(keys, counts))
            ctx, inverse = np.unique(keys // V, return_inverse=True)
            self.ctx_total.append(_Table(ctx, np.bincount(inverse, weights=counts)))
            self.ctx_types.append(_Table(ctx, np.bincount(inverse).astype(np.float64)))

    def _probs(self, ctx: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """p(nxt | ctx) for (N,) contexts given as (N, order) id rows (oldest first), (N,) symbols."""
        p = np.full(len(nxt), 1.0 / self.V)
        key = np.zeros(len(nxt), np.int64)                               # the context of order j as a number
        for j in range(self.order + 1):
            if j:
                key = key + ctx[:, self.order - j] * self.V ** (j - 1)   # prepend the next-older symbol
            total = self.ctx_total[j][key]
            c = self.grams[j][key * self.V + nxt]
            D = self.discount[j]
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = np.maximum(c - D, 0.0) / safe + D * self.ctx_types[j][key] / safe * p
            p = np.where(seen, mixed, p)
        return p

    def probabilities(self, context) -> np.ndarray:
        """(V,) the distribution of the symbol after ``context`` (its last ``order`` ids are used)."""
        context = np.asarray(context, np.int64)
        if len(context) < self.order:
            raise ValueError(f"context: expected at least {self.order} symbols, got {len(context)}")
        ctx = np.repeat(context[len(context) - self.order:][None, :], self.V, axis=0)    # (V, order)
        return self._probs(ctx, np.arange(self.V))

    def bits(self, test: np.ndarray, history: np.ndarray, chunk: int = 1 << 18) -> float:
        """Mean -log2 p over ``test``, whose first symbols take their context from the end of
        ``history`` (the training stream it continues)."""
        test = np.asarray(test, np.int64)
        stream = np.concatenate([np.asarray(history, np.int64)[len(history) - self.order:], test])
        total = 0.0
        for a in range(0, len(test), chunk):                              # bounded memory on long tails
            b = min(a + chunk, len(test))
            ctx = np.stack([stream[a + i: b + i] for i in range(self.order)], axis=1) if self.order \
                else np.zeros((b - a, 0), np.int64)                       # (n, order), oldest first
            total += float(-np.log2(self._probs(ctx, stream[self.order + a: self.order + b])).sum())
        return total / len(test)
