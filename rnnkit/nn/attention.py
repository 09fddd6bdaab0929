"""``Attention``: additive (Bahdanau) or multiplicative (Luong dot / general / concat) attention
of one query per sequence over time-major encoder states, on :mod:`rnnkit.functional.attention`.

``context, weights = att(q, keys, mask=None)``; ``dq, dkeys = att.backward(dcontext)``. A
decoder that attends at every output step uses ``forward_cached`` / ``backward_cached`` with an
explicit cache per step; parameter gradients accumulate in ``att.grads`` either way.
"""
from __future__ import annotations

import numpy as np

from .._validate import as_float_array, check_dtype, check_finite, check_positive_int, check_seed, check_shape
from ..functional.attention import KINDS, attention_backward, attention_forward
from .module import Module


class Attention(Module):
    """``kind``: 'additive' (Bahdanau: ``v . tanh(W_q q + W_k k + b)``), 'dot', 'general' or
    'concat' (Luong). ``attn_size`` is the hidden width A of the additive / concat scorer
    (default: ``key_size``). Parameters: additive ``weight_q`` (A, Hq), ``weight_k`` (A, Hk),
    ``bias`` (A,), ``v`` (A,); general ``weight`` (Hk, Hq); concat ``weight`` (A, Hq + Hk), ``v`` (A,)."""

    def __init__(self, query_size, key_size, kind="additive", attn_size=None, dtype=np.float32, seed=None):
        query_size = check_positive_int(query_size, "query_size")
        key_size = check_positive_int(key_size, "key_size")
        # None or 0: key_size (as rnnkit.torch_twins.TorchAttention reads it)
        attn_size = key_size if attn_size is None or attn_size == 0 else check_positive_int(attn_size, "attn_size")
        super().__init__(check_dtype(dtype), check_seed(seed))
        if kind not in KINDS:
            raise ValueError(f"attention kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        if kind == "dot" and query_size != key_size:
            raise ValueError(f"dot attention: expected query_size == key_size, got {query_size} and {key_size}")
        self.kind, self.query_size, self.key_size = kind, query_size, key_size
        A = attn_size
        u = lambda shape, fan_in: self.rng.uniform(-1, 1, shape) / np.sqrt(fan_in)  # noqa: E731
        if kind == "additive":
            self.add_param("weight_q", u((A, query_size), query_size))
            self.add_param("weight_k", u((A, key_size), key_size))
            self.add_param("bias", np.zeros(A))
            self.add_param("v", u((A,), A))
        elif kind == "general":
            self.add_param("weight", u((key_size, query_size), query_size))
        elif kind == "concat":
            self.add_param("weight", u((A, query_size + key_size), query_size + key_size))
            self.add_param("v", u((A,), A))

    def extra_repr(self):
        return f"{self.query_size}, {self.key_size}, kind={self.kind!r}"

    def _check(self, q, keys, mask):
        q = as_float_array(q, "Attention query", self.dtype)
        keys = as_float_array(keys, "Attention keys", self.dtype)
        check_shape(q, (None, self.query_size), "Attention query (N, Hq)")
        check_shape(keys, (None, q.shape[0], self.key_size), "Attention keys (S, N, Hk)")
        check_finite(q, "Attention query")
        check_finite(keys, "Attention keys")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype != bool:
                raise TypeError(f"Attention mask: expected a boolean array, got dtype {mask.dtype}")
            check_shape(mask, keys.shape[:2], "Attention mask (S, N)")
        return q, keys, mask

    def forward_cached(self, q, keys, mask=None):
        q, keys, mask = self._check(q, keys, mask)
        return attention_forward(self.kind, q, keys, self.params, mask)

    def backward_cached(self, dcontext, cache):
        dcontext = as_float_array(dcontext, "Attention.backward dcontext", self.dtype)
        check_shape(dcontext, (cache.q.shape[0], self.key_size), "Attention.backward dcontext (N, Hk)")
        dq, dK, grads = attention_backward(dcontext, cache, self.params)
        for k, g in grads.items():
            self.accumulate(k, g)                    # frozen parameters' gradients stay zero
        return dq, dK

    def forward(self, q, keys, mask=None):
        context, alpha, self._cache = self.forward_cached(q, keys, mask)
        return context, alpha

    def backward(self, dcontext):
        """Gradient w.r.t. the context -> ``(dq, dkeys)``."""
        return self.backward_cached(dcontext, self._take_cache())
