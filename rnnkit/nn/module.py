"""The module base: parameters and gradients in two dicts with PyTorch's names, nothing else.

Submodules assigned as attributes are registered in order, and their parameters appear in
:meth:`Module.state_dict` under dotted names (``rnn.weight_ih_l0``), exactly as in PyTorch.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .._validate import resolve_dtype
from ..threads import apply_environment


class Module:
    """Base class. Subclasses fill ``self.params`` (name -> ndarray) in ``__init__``;
    ``self.grads`` gets a zero array of the same shape per parameter."""

    def __init__(self, dtype=np.float32, seed=None):
        apply_environment()                        # RNNKIT_NUM_THREADS, once, before the first product
        object.__setattr__(self, "_modules", {})
        self.dtype = resolve_dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True
        self._cache = None

    def __setattr__(self, name, value):
        if isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    # -- parameters -----------------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        value = np.ascontiguousarray(value, dtype=self.dtype)
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(name, parameter, gradient)`` for this module and its submodules."""
        for name, p in self.params.items():
            yield prefix + name, p, self.grads[name]
        for mname, m in self._modules.items():
            yield from m.named_parameters(prefix + mname + ".")

    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.named_parameters())

    def zero_grad(self) -> None:
        for _, _, g in self.named_parameters():
            g.fill(0)

    def state_dict(self, format: str = "numpy") -> dict:
        """``{name: copy of parameter}`` with PyTorch's names and layouts: NumPy arrays, or with
        ``format="torch"`` tensors that a ``torch.nn`` module's ``load_state_dict`` takes."""
        if format not in ("numpy", "torch"):
            raise ValueError(f"state_dict format: expected 'numpy' or 'torch', got {format!r}")
        out = {name: p.copy() for name, p, _ in self.named_parameters()}
        if format == "torch":
            from .._optional import require

            torch = require("torch", "torch", "state_dict(format='torch')")
            out = {k: torch.from_numpy(v) for k, v in out.items()}
        return out

    def grad_dict(self) -> dict[str, np.ndarray]:
        """``{name: gradient}`` (views, not copies) over this module and its submodules."""
        return {name: g for name, _, g in self.named_parameters()}

    def load_state_dict(self, state: dict, allow_nonfinite: bool = False) -> None:
        """Copy ``state`` into the parameters in place (references held by optimizers stay valid).

        Accepts NumPy arrays or anything ``np.asarray`` understands (CPU torch tensors).
        Missing, extra or mis-shaped entries raise ``ValueError`` naming every offender, and so do
        NaN or infinite values unless ``allow_nonfinite``.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state_dict: expected a dict of arrays, got {type(state).__name__}")
        own = {name: p for name, p, _ in self.named_parameters()}
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        problems = []
        if missing:
            problems.append(f"missing keys {missing}")
        if extra:
            problems.append(f"unexpected keys {extra}")
        arrays = {}
        for name in own.keys() & state.keys():
            arr = np.asarray(state[name].detach() if hasattr(state[name], "detach") else state[name])
            if not np.issubdtype(arr.dtype, np.floating):
                problems.append(f"{name}: expected a floating array, got dtype {arr.dtype}")
            elif arr.shape != own[name].shape:
                problems.append(f"{name}: expected shape {own[name].shape}, got {arr.shape}")
            elif not allow_nonfinite and not np.isfinite(arr).all():
                bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
                problems.append(f"{name}: expected finite values, got {bad} NaN or infinite")
            arrays[name] = arr
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for name, arr in arrays.items():
            own[name][...] = arr

    # -- modes ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        self.training = mode
        for m in self._modules.values():
            m.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # -- forward / backward ---------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def clear_cache(self) -> None:
        """Drop the caches of the last forward (after inference, to free memory)."""
        self._cache = None
        for m in self._modules.values():
            m.clear_cache()

    def _take_cache(self):
        """Return the last forward's cache and clear it, so a second backward is an error."""
        cache = self._cache
        if cache is None:
            raise ValueError(
                f"{type(self).__name__}.backward: no forward pass to differentiate; "
                "call forward() first (each forward allows exactly one backward)"
            )
        self._cache = None
        return cache

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""
