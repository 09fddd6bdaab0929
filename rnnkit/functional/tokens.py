"""A recurrent layer's input given as token ids into an embedding table.

``x[t, n] = table[ids[t, n]]``. When a layer's input is an embedding of a vocabulary smaller
than the number of (step, sequence) positions, the input projection ``W_ih x_t`` takes only
``V`` distinct values: the fast time loop (``kernels/sequence.py``) computes ``W_ih @ table^T``
(G*H, V) once and gathers its columns, instead of the (G*H, H_in) @ (H_in, L*N) product; and in
backward it sums the projection's gradient per token first (G*H, V), so the weight gradient
and the table's gradient are products over V columns instead of L*N. The results are the same
sums in another order (exact to float rounding).

:class:`~rnnkit.models.CharLM` hands its recurrent layers a :class:`TokenInput`; the layers fall
back to the dense input (:meth:`TokenInput.dense`) wherever the fold does not apply.
"""
from __future__ import annotations

import numpy as np


class TokenInput:
    """Plain classes, not tuples: nothing may take one for a tuple of arrays."""

    __slots__ = ("ids", "table")

    def __init__(self, ids: np.ndarray, table: np.ndarray):
        self.ids = ids          # (L, N) integer ids, already checked against the table
        self.table = table      # (V, H_in) embedding table

    @property
    def shape(self):
        return self.ids.shape + (self.table.shape[1],)

    @property
    def dtype(self):
        return self.table.dtype

    def dense(self) -> np.ndarray:
        """The input as an (L, N, H_in) array."""
        return self.table[self.ids]

    def folds(self) -> bool:
        """Whether the fold saves work: fewer table rows than positions."""
        return self.table.shape[0] < self.ids.size


class TableGrad:
    """The gradient with respect to a :class:`TokenInput`, already summed per table row."""

    __slots__ = ("grad",)

    def __init__(self, grad: np.ndarray):
        self.grad = grad        # (V, H_in)
