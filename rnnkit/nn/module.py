"""The module base: parameters and gradients in two dicts with PyTorch's names, nothing else.

Submodules assigned as attributes are registered in order, and their parameters appear in
:meth:`Module.state_dict` under dotted names (``rnn.weight_ih_l0``), exactly as in PyTorch.

Sharing (issue 15): :meth:`Module.share_param` makes one module's parameter the very array of
another's, and its gradient the same gradient array, so both uses accumulate (``+=``) into one
gradient, ``dL/dW = sum over uses``. A shared array is one parameter: ``named_parameters()`` yields
it once, under the first name met (PyTorch's ``remove_duplicate=True``), so optimizers, clipping,
``state_dict`` and checkpoints count it once. Freezing: :meth:`Module.freeze` marks parameters
(a shared one by any of its names, everywhere it is used); optimizers leave them alone, clipping
leaves them out of the norm, and the layers skip their weight-gradient products.
"""
from __future__ import annotations

import contextlib
import fnmatch
from typing import Iterator, NamedTuple

import numpy as np

from .._validate import check_bool, comma_list, resolve_dtype, some_names
from ..threads import apply_environment



class LoadedKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` did not match (empty unless ``strict=False``)."""
    missing_keys: list
    unexpected_keys: list

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
        self.buffers: dict[str, np.ndarray] = {}  # state that is not trained (running statistics)
        self.frozen: set[str] = set()             # local names of frozen parameters
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

    def add_buffer(self, name: str, value) -> np.ndarray:
        """A state array that no optimizer touches but ``state_dict`` carries (PyTorch's buffers:
        a batch norm's ``running_mean``); it keeps its own dtype (``num_batches_tracked`` is int64)."""
        value = np.array(value)
        self.buffers[name] = value.astype(self.dtype) if np.issubdtype(value.dtype, np.floating) else value
        return self.buffers[name]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """``(name, buffer)`` for this module and its submodules, dotted like parameters."""
        for name, b in self.buffers.items():
            yield prefix + name, b
        for mname, m in self._modules.items():
            yield from m.named_buffers(prefix + mname + ".")

    def share_param(self, name: str, source: "Module", source_name: str | None = None) -> np.ndarray:
        """Make parameter ``name`` of this module the array ``source.params[source_name]`` itself
        (default: the same name), gradient array included: a forward through either module reads
        the same numbers, and their backward passes both add into one gradient (weight tying,
        Press & Wolf 2017; Inan et al. 2017). Shapes and dtypes must match."""
        source_name = name if source_name is None else source_name
        if source_name not in source.params:
            raise ValueError(f"share_param: expected a parameter of {type(source).__name__} "
                             f"({', '.join(source.params)}), got {source_name!r}")
        p = source.params[source_name]
        mine = self.params.get(name)
        if mine is not None and (mine.shape != p.shape or mine.dtype != p.dtype):
            raise ValueError(f"share_param {name!r}: expected shape {mine.shape} {mine.dtype}, got {p.shape} {p.dtype} "
                             f"from {type(source).__name__}.{source_name}")
        self.params[name], self.grads[name] = p, source.grads[source_name]
        (self.frozen.add if source_name in source.frozen else self.frozen.discard)(name)
        return p

    def param_slots(self, prefix: str = "") -> Iterator[tuple[str, "Module", str]]:
        """Every ``(full name, owning module, local name)``, shared arrays under each of their names."""
        for name in self.params:
            yield prefix + name, self, name
        for mname, m in self._modules.items():
            yield from m.param_slots(prefix + mname + ".")

    def named_parameters(self, prefix: str = "", remove_duplicate: bool = True
                         ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(name, parameter, gradient)`` for this module and its submodules; a shared array
        once, under its first name (``remove_duplicate=False``: under every name)."""
        seen = set()
        for name, m, local in self.param_slots(prefix):
            p = m.params[local]
            if remove_duplicate:
                if id(p) in seen:
                    continue
                seen.add(id(p))
            yield name, p, m.grads[local]

    def shared_names(self) -> dict[str, str]:
        """``{alias: name}``: every further name of a shared parameter -> the name it is listed under."""
        first, out = {}, {}
        for name, m, local in self.param_slots():
            key = id(m.params[local])
            if key in first:
                out[name] = first[key]
            else:
                first[key] = name
        return out

    # -- freezing -------------------------------------------------------------------
    def freeze(self, patterns: str = "*", frozen: bool = True) -> list[str]:
        """Freeze the parameters whose names match ``patterns`` (comma-separated shell patterns,
        ``fnmatch``: ``"embed.*"``, ``"rnn.*_l0"``); returns their names. A frozen parameter gets no
        update from any optimizer (not even weight decay), is left out of the clipping norm, and
        the layers that own it skip its weight-gradient product (its ``grads`` array stays zero);
        gradients still flow through it to the layers below: for a frozen ``W`` in ``y = x W^T``,
        ``W_{t+1} = W_t`` while ``dL/dx = dL/dy W`` is still passed on. A shared array is frozen
        everywhere it is used. A pattern that matches nothing is an error naming it. (Freezing
        the lower layers and unfreezing them step by step is ULMFiT's gradual unfreezing:
        Howard & Ruder 2018.)"""
        pats = comma_list(patterns)
        if not pats:
            raise ValueError(f"freeze: expected comma-separated name patterns such as 'embed.*', got {patterns!r}")
        slots = list(self.param_slots())
        chosen = set()
        for q in pats:
            hit = {id(m.params[local]) for name, m, local in slots if fnmatch.fnmatchcase(name, q)}
            if not hit:
                names = some_names(n for n, _, _ in self.named_parameters())
                raise ValueError(f"freeze: pattern {q!r} matches no parameter (names: {names})")
            chosen |= hit
        for _, m, local in slots:
            if id(m.params[local]) in chosen:
                (m.frozen.add if frozen else m.frozen.discard)(local)
        return [n for n, p, _ in self.named_parameters() if id(p) in chosen]

    def unfreeze(self, patterns: str = "*") -> list[str]:
        """Undo :meth:`freeze` for the parameters matching ``patterns``; returns their names."""
        return self.freeze(patterns, frozen=False)

    def requires_grad(self, name: str) -> bool:
        """Whether this module's own parameter ``name`` is trained (not frozen)."""
        return name not in self.frozen

    def frozen_names(self) -> list[str]:
        """The names (as :meth:`named_parameters` gives them) of the frozen parameters."""
        if not any(m.frozen for m in self.modules()):      # the common case, asked at every step
            return []
        frozen = {id(m.params[local]) for _, m, local in self.param_slots() if local in m.frozen}
        return [n for n, p, _ in self.named_parameters() if id(p) in frozen]

    def set_frozen(self, names) -> None:
        """Freeze exactly ``names`` (as :meth:`frozen_names` returns them) and unfreeze the rest."""
        ids = {n: id(p) for n, p, _ in self.named_parameters()}
        unknown = sorted(set(names) - set(ids))
        if unknown:
            raise ValueError(f"frozen parameters: expected names of this model's parameters, got {unknown}")
        chosen = {ids[n] for n in names}
        for _, m, local in self.param_slots():
            (m.frozen.add if id(m.params[local]) in chosen else m.frozen.discard)(local)

    def accumulate(self, name: str, grad) -> None:
        """``grads[name] += grad``, unless ``name`` is frozen or ``grad`` was not computed (None)."""
        if grad is not None and name not in self.frozen:
            self.grads[name] += grad

    def trainable_parameters(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """:meth:`named_parameters` without the frozen ones (what optimizers and clipping see)."""
        frozen = set(self.frozen_names())
        return ((n, p, g) for n, p, g in self.named_parameters() if n not in frozen)

    def modules(self) -> Iterator["Module"]:
        """This module and every submodule, depth first, in registration order."""
        yield self
        for m in self._modules.values():
            yield from m.modules()

    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.named_parameters())

    def zero_grad(self) -> None:
        for _, _, g in self.named_parameters():
            g.fill(0)

    def state_dict(self, format: str = "numpy") -> dict:
        """``{name: copy of parameter}`` with PyTorch's names and layouts (then the buffers, such as a
        batch norm's running statistics, as PyTorch lists them too): NumPy arrays, or with
        ``format="torch"`` tensors that a ``torch.nn`` module's ``load_state_dict`` takes. A shared
        parameter is one entry (its first name); with ``format="torch"`` it is listed under each
        of its names, as PyTorch lists tied parameters."""
        if format not in ("numpy", "torch"):
            raise ValueError(f"state_dict format: expected 'numpy' or 'torch', got {format!r}")
        out = {name: p.copy() for name, p, _ in self.named_parameters()}
        buffers = {name: b.copy() for name, b in self.named_buffers()}
        out.update(buffers)
        if format == "torch":
            from .._optional import require

            torch = require("torch", "torch", "state_dict(format='torch')")
            out = {k: torch.from_numpy(v) for k, v in out.items()}
            for alias, name in self.shared_names().items():    # torch lists a tied tensor under every name
                out[alias] = out[name]
            out = {name: out[name] for name in [n for n, _, _ in self.param_slots()] + list(buffers)}
        return out

    def grad_dict(self) -> dict[str, np.ndarray]:
        """``{name: gradient}`` (views, not copies) over this module and its submodules."""
        return {name: g for name, _, g in self.named_parameters()}

    def load_state_dict(self, state: dict, allow_nonfinite: bool = False, strict: bool = True):
        """Copy ``state`` into the parameters in place (references held by optimizers stay valid).

        Accepts NumPy arrays or anything ``np.asarray`` understands (CPU torch tensors).
        Missing, extra or mis-shaped entries raise ``ValueError`` naming every offender, and so do
        NaN or infinite values unless ``allow_nonfinite``; with ``strict=False`` (PyTorch's
        meaning) missing and extra names are allowed and the entries present are loaded, while a
        wrong shape or dtype is still refused. A shared parameter is written once into
        its one array, so the tie holds after loading; its further names (a PyTorch state dict of a
        tied model has them) are accepted when they hold the same values. Returns
        ``(missing_keys, unexpected_keys)``, as PyTorch does.
        """
        check_bool(strict, "strict")
        if not isinstance(state, dict):
            raise TypeError(f"state_dict: expected a dict of arrays, got {type(state).__name__}")
        own = {name: p for name, p, _ in self.named_parameters()}
        own.update(self.named_buffers())
        state, problems = self._fold_aliases(state)
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing and strict:
            problems.append(f"missing keys {missing}")
        if extra and strict:
            problems.append(f"unexpected keys {extra}")
        arrays = {}
        for name in own.keys() & state.keys():
            arr = np.asarray(_host(state[name]))
            kind = np.floating if np.issubdtype(own[name].dtype, np.floating) else np.integer
            if not np.issubdtype(arr.dtype, kind):
                expected = "a floating array" if kind is np.floating else "an integer array"
                problems.append(f"{name}: expected {expected}, got dtype {arr.dtype}")
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
        return LoadedKeys(missing, extra)

    def _fold_aliases(self, state: dict) -> tuple[dict, list]:
        """``state`` with the further names of shared parameters folded into their first name."""
        aliases = self.shared_names()
        if not aliases.keys() & state.keys():
            return state, []
        state, problems = dict(state), []
        for alias, name in aliases.items():
            if alias not in state:
                continue
            value = state.pop(alias)
            if name not in state:
                state[name] = value
            elif not np.array_equal(np.asarray(_host(value)), np.asarray(_host(state[name]))):
                problems.append(f"{alias}: expected the values of {name}, to which it is tied, got different ones")
        return state, problems

    # -- modes ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (``mode=True``) or evaluation (``False``); anything else is refused."""
        self.training = mode = check_bool(mode, "mode")
        for m in self._modules.values():
            m.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    @contextlib.contextmanager
    def evaluating(self):
        """Eval mode inside the block (no dropout, no augmentation); the mode it had is restored
        after, also when the block raises."""
        was = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was)

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


def _host(value):
    """A torch tensor's values without its autograd history; anything else as it is."""
    return value.detach() if hasattr(value, "detach") else value
