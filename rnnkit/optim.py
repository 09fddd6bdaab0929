"""Optimizers, gradient clipping and learning-rate schedules, each matching ``torch.optim``'s
update rule step for step.

The base class owns the parameters, ``zero_grad``, ``step``, the parameter groups and the state
dict; each optimizer writes only its per-tensor update. Parameters are updated in place, so the
arrays a module holds stay the arrays the optimizer updates. ``params`` is a module (its
``named_parameters()``: a shared parameter once) or an iterable of ``(name, param, grad)`` triples.

Parameter groups (PyTorch's ``param_groups``, in rnnkit's spelling): ``groups`` is a list of dicts,
each with ``"params"`` (a list of names, a string of comma-separated shell patterns such as
``"rnn.*,head.weight"``, or a predicate ``name -> bool``) and the settings it overrides: ``lr``
and any of the optimizer's own (``weight_decay``, ``momentum``, ``betas``, ...). A parameter takes
the first group that selects it; the rest use the constructor's settings. A group's ``lr`` is
kept as a ratio to the optimizer's ``lr``, so a schedule moves every group in proportion (what
PyTorch's schedules do when their floor is 0). ``no_decay="bias,norm"`` sets ``weight_decay = 0``
for every parameter whose name contains one of the words, in whatever group it is; ``norm`` also
covers the layer-norm gains and biases (``ln_*``) (biases and normalisation gains: Loshchilov &
Hutter 2019; the BERT and GPT recipes). A selector that
matches no parameter is an error.

Frozen parameters (``module.freeze``) are skipped at every step, weight decay included, when the
optimizer was given the module; their moments and step counts stay as they were (as PyTorch's,
whose frozen parameters have no gradient). Adam's bias correction and Adagrad's decay count each
parameter's own steps, as PyTorch's per-parameter ``step`` does.
"""
from __future__ import annotations

import fnmatch
import math
import numbers

import numpy as np

from ._validate import comma_list, is_count, is_real, some_names
from .kernels import compiled


def _triples(params):
    if hasattr(params, "trainable_parameters"):       # a module: frozen parameters left out
        params = params.trainable_parameters()
    elif hasattr(params, "named_parameters"):
        params = params.named_parameters()
    want = "a module (Adam(model, ...)) or (name, param, grad) triples"
    try:
        out = list(params)
    except TypeError:
        raise TypeError(f"params: expected {want}, got {type(params).__name__}") from None
    for t in out:
        if not (isinstance(t, tuple) and len(t) == 3):
            raise TypeError(f"params: expected {want}, got a {type(params).__name__} of {type(t).__name__}")
    return out


def _once(triples):
    """``triples``, refused when one array comes under two names (it would be stepped twice)."""
    seen = {}
    for name, p, _ in triples:
        if id(p) in seen:                      # PyTorch refuses a parameter in two groups alike
            raise ValueError(f"params: expected each parameter once, got {seen[id(p)]} and {name} as one shared "
                             f"array (pass the module: its named_parameters() lists a shared parameter once)")
        seen[id(p)] = name
    return triples


def _plain(v):
    """A checked setting as Python numbers: a NumPy float64 ``eps`` or ``betas`` array would make
    NumPy compute a float32 parameter's update in float64 (NEP 50), unlike a Python float."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if is_real(v):
        return float(v)
    if isinstance(v, (tuple, list, np.ndarray)) and np.ndim(v) == 1 and all(is_real(x) for x in v):
        return tuple(float(x) for x in v)
    return v


def _check(cond, name, value, want):
    if not cond:
        raise ValueError(f"{name}: expected {want}, got {value!r}")


def _in(v, lo, hi=math.inf, lo_open=False, hi_open=True) -> bool:
    """``v`` is a finite real number in the interval from ``lo`` to ``hi``, open where said."""
    return is_real(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


def selector(spec):
    """A group's ``"params"`` as a predicate on names: a callable as it is, a string of
    comma-separated shell patterns (``fnmatch``), or a collection of exact names."""
    if callable(spec):
        return spec
    if isinstance(spec, str):
        pats = comma_list(spec)
        return lambda name: any(fnmatch.fnmatchcase(name, q) for q in pats)
    if isinstance(spec, (list, tuple, set, frozenset)) and all(isinstance(n, str) for n in spec):
        names = set(spec)
        return names.__contains__
    raise TypeError(f"groups: expected 'params' to be names, a pattern string or a predicate, got {spec!r}")


def no_decay_selector(words):
    """``"bias,norm"`` (or ``["bias", "norm"]``) -> a predicate true for names containing any of the words; ``norm`` also
    names the layer-norm parameters, whose names start ``ln_`` (``rnn.ln_ih_weight_l0``)."""
    if isinstance(words, (list, tuple, set, frozenset)) and all(isinstance(w, str) for w in words):
        parts = [w.strip() for w in words if w.strip()]
    elif isinstance(words, str):
        parts = comma_list(words)
    else:
        parts = []
    if not parts:
        raise ValueError(f"no_decay: expected comma-separated words such as 'bias,norm', got {words!r}")
    norm = "norm" in parts
    return lambda name: any(w in name for w in parts) or (norm and name.rsplit(".", 1)[-1].startswith("ln_"))


class Optimizer:
    """Base class: ``step()`` applies :meth:`update` to every parameter that is not frozen, with
    its group's settings; ``lr`` may be changed between steps (schedules do)."""

    def __init__(self, params, lr: float, groups=None, no_decay=None, **defaults):
        _check(_in(lr, 0, lo_open=True), "lr", lr, "a positive number")
        self.module = params if hasattr(params, "frozen_names") else None
        self.params = _once(_triples(params.named_parameters() if self.module is not None else params))
        if not self.params:                     # a module with every parameter frozen still has them
            raise ValueError("params: expected at least one parameter, got none")
        self.lr = float(lr)
        self.steps = 0
        self.hyper = tuple(defaults)
        for k, v in defaults.items():
            setattr(self, k, _plain(v))
        self.check(defaults, "")
        self.overrides = self._overrides(groups, no_decay)
        self.state: dict[str, dict[str, np.ndarray]] = {name: {} for name, _, _ in self.params}

    def check(self, h: dict, where: str) -> None:
        """Validate settings ``h`` (the defaults, or a group's overrides: ``where`` names it)."""

    def _overrides(self, groups, no_decay) -> dict:
        """``{name: {setting: value}}`` for the parameters whose settings differ from the defaults."""
        names = [n for n, _, _ in self.params]
        out = {n: {} for n in names}
        taken = set()
        for i, group in enumerate(groups or ()):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"groups[{i}]: expected a dict with 'params' and settings, got {group!r}")
            settings = {k: v for k, v in group.items() if k != "params"}
            unknown = sorted(set(settings) - {"lr", *self.hyper})
            if unknown:
                raise ValueError(f"groups[{i}]: expected settings among lr, {', '.join(self.hyper)}, got {unknown}")
            self.check(settings, f"groups[{i}] ")
            settings = {k: _plain(v) for k, v in settings.items()}
            if "lr" in settings:
                lr = settings.pop("lr")
                _check(_in(lr, 0, lo_open=True), f"groups[{i}] lr", lr, "a positive number")
                settings["lr_scale"] = float(lr) / self.lr
            pick = selector(group["params"])
            chosen = [n for n in names if pick(n)]
            if not chosen:
                raise ValueError(f"groups[{i}]: 'params' {group['params']!r} selects no parameter "
                                 f"(names: {some_names(names)})")
            for n in chosen:
                if n not in taken:
                    out[n].update(settings)
                    taken.add(n)
        if no_decay:
            pick = no_decay_selector(no_decay)
            for n in names:
                if pick(n):
                    out[n]["weight_decay"] = 0.0
        return {n: o for n, o in out.items() if o}

    def settings(self, name: str) -> dict:
        """The settings parameter ``name`` is stepped with now: ``lr`` and the optimizer's own."""
        h = {k: getattr(self, k) for k in self.hyper}
        o = self.overrides.get(name, {})
        h.update({k: v for k, v in o.items() if k != "lr_scale"})
        h["lr"] = self.lr * o.get("lr_scale", 1.0)
        return h

    def frozen(self) -> set:
        return set(self.module.frozen_names()) if self.module is not None else set()

    def zero_grad(self) -> None:
        for _, _, g in self.params:
            g.fill(0)

    def step(self) -> None:
        self.steps += 1
        frozen = self.frozen()
        for name, p, g in self.params:
            if name not in frozen:
                s = self.state[name]
                t = int(s["step"]) + 1 if "step" in s else (self.steps if s else 1)  # older checkpoints: no count
                s["step"] = np.array(t)
                self.update(p, g, s, self.settings(name), t)

    def update(self, p: np.ndarray, g: np.ndarray, state: dict, h: dict, t: int) -> None:  # pragma: no cover
        """One parameter's update with settings ``h`` (``h["lr"]`` included) at its ``t``-th step."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"steps": self.steps, "lr": self.lr, "overrides": {n: dict(o) for n, o in self.overrides.items()},
                "state": {name: {k: v.copy() for k, v in s.items()} for name, s in self.state.items()}}

    def load_state_dict(self, d: dict) -> None:
        """Moments, step counts and ``lr`` from ``d``; the groups stay this optimizer's own (they
        are settings, which a resumed run may change)."""
        names = {name for name, _, _ in self.params}
        if not isinstance(d, dict) or not {"state", "steps", "lr"} <= set(d):
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"optimizer state: expected a dict with 'state', 'steps' and 'lr' (state_dict()), got {got}")
        if set(d["state"]) != names:
            raise ValueError(f"optimizer state: expected entries for {sorted(names)}, got {sorted(d['state'])}")
        shapes = {name: p.shape for name, p, _ in self.params}
        for name, s in d["state"].items():
            for k, v in s.items():
                if k != "step" and np.shape(v) != shapes[name]:
                    raise ValueError(f"optimizer state: {name} {k!r}: expected shape {shapes[name]} (the parameter's), "
                                     f"got {np.shape(v)}")
        self.steps, self.lr = int(d["steps"]), float(d["lr"])
        self.state = {name: {k: np.array(v, copy=True) for k, v in s.items()} for name, s in d["state"].items()}


class SGD(Optimizer):
    """``g += wd p``; momentum ``b = mu b + (1 - dampening) g`` (``b = g`` on the first step);
    Nesterov ``g += mu b``, else ``g = b``; ``p -= lr g``."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, groups=None,
                 no_decay=None):
        super().__init__(params, lr, groups, no_decay, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay)

    def check(self, h, where):
        m = h.get("momentum", self.momentum)
        _check(_in(m, 0, 1), where + "momentum", m, "a number in [0, 1)")
        _check(_in(h.get("dampening", 0), 0, 1, hi_open=False), where + "dampening", h.get("dampening"),
               "a number in [0, 1]")
        _check(_in(h.get("weight_decay", 0), 0), where + "weight_decay", h.get("weight_decay"), "a number >= 0")
        _check(not h.get("nesterov", self.nesterov) or (m > 0 and h.get("dampening", self.dampening) == 0),
               where + "nesterov", h.get("nesterov", self.nesterov),
               "momentum > 0 and dampening 0 with Nesterov momentum")

    def update(self, p, g, s, h, t):
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p
        if h["momentum"]:
            if "momentum" not in s:
                s["momentum"] = np.array(g, copy=True)
            else:
                s["momentum"] *= h["momentum"]
                s["momentum"] += (1 - h["dampening"]) * g
            g = g + h["momentum"] * s["momentum"] if h["nesterov"] else s["momentum"]
        p -= h["lr"] * g


def _one_pass(*arrays):
    """The compiled one-pass Adam step (``kernels._numba.adam_step``) when it takes these arrays
    (the compiled backend in use, one float dtype, all C-contiguous), else None."""
    dt = arrays[0].dtype if isinstance(arrays[0], np.ndarray) else None
    if dt not in (np.float32, np.float64):
        return None
    for a in arrays:                    # a 0-d parameter's decayed gradient is a NumPy scalar
        if not (isinstance(a, np.ndarray) and a.ndim >= 1 and a.dtype == dt and a.flags.c_contiguous):
            return None
    numba_kernels = compiled("_numba")
    return None if numba_kernels is None else numba_kernels.adam_step


class Adam(Optimizer):
    """Kingma & Ba (2015) with PyTorch's bias correction and L2 ``weight_decay`` added to the gradient:
    ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)``."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, groups=None,
                 no_decay=None):
        super().__init__(params, lr, groups, no_decay, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)

    def check(self, h, where):
        if "betas" in h:
            b = h["betas"]
            _check(not isinstance(b, (str, bytes)) and np.ndim(b) == 1 and len(b) == 2, where + "betas", b,
                   "a pair (beta1, beta2)")
            for i, v in enumerate(b):
                _check(_in(v, 0, 1), f"{where}betas[{i}]", v, "a number in [0, 1)")
        _check(_in(h.get("eps", 1), 0, lo_open=True), where + "eps", h.get("eps"), "a positive number")
        _check(_in(h.get("weight_decay", 0), 0), where + "weight_decay", h.get("weight_decay"), "a number >= 0")

    def update(self, p, g, s, h, t):
        (b1, b2), lr, wd = h["betas"], h["lr"], h["weight_decay"]
        if wd:
            if self.decoupled:
                p *= 1 - lr * wd
            else:
                g = g + wd * p
        if "m" not in s:
            s["m"], s["v"] = np.zeros_like(p), np.zeros_like(p)
            if h["amsgrad"]:
                s["v_max"] = np.zeros_like(p)
        m, v = s["m"], s["v"]
        step = None if h["amsgrad"] else _one_pass(p, g, m, v)
        if step is not None:
            t_ = p.dtype.type
            step(p, g, m, v, t_(b1), t_(1 - b1), t_(b2), t_(1 - b2), t_(math.sqrt(1 - b2 ** t)), t_(h["eps"]),
                 t_(lr / (1 - b1 ** t)))
            return
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        if h["amsgrad"]:
            np.maximum(s["v_max"], v, out=s["v_max"])
            v = s["v_max"]
        denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + h["eps"]
        p -= (lr / (1 - b1 ** t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): ``p *= 1 - lr wd`` before the Adam step."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, groups=None,
                 no_decay=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, groups, no_decay)


class RMSprop(Optimizer):
    """``s = a s + (1-a) g^2``; centered: ``d = sqrt(s - gbar^2) + eps`` else ``sqrt(s) + eps``;
    momentum ``b = mu b + g / d``, ``p -= lr b``; without: ``p -= lr g / d``."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 groups=None, no_decay=None):
        super().__init__(params, lr, groups, no_decay, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=centered)

    def check(self, h, where):
        _check(_in(h.get("alpha", 0), 0, 1), where + "alpha", h.get("alpha"), "a number in [0, 1)")
        _check(_in(h.get("eps", 1), 0, lo_open=True), where + "eps", h.get("eps"), "a positive number")
        _check(_in(h.get("momentum", 0), 0, 1), where + "momentum", h.get("momentum"), "a number in [0, 1)")
        _check(_in(h.get("weight_decay", 0), 0), where + "weight_decay", h.get("weight_decay"), "a number >= 0")

    def update(self, p, g, s, h, t):
        a = h["alpha"]
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p
        if "square_avg" not in s:
            s["square_avg"] = np.zeros_like(p)
            if h["centered"]:
                s["grad_avg"] = np.zeros_like(p)
            if h["momentum"]:
                s["momentum"] = np.zeros_like(p)
        sq = s["square_avg"]
        sq *= a
        sq += (1 - a) * (g * g)
        if h["centered"]:
            s["grad_avg"] *= a
            s["grad_avg"] += (1 - a) * g
            denom = np.sqrt(sq - s["grad_avg"] ** 2) + h["eps"]
        else:
            denom = np.sqrt(sq) + h["eps"]
        if h["momentum"]:
            s["momentum"] *= h["momentum"]
            s["momentum"] += g / denom
            p -= h["lr"] * s["momentum"]
        else:
            p -= h["lr"] * g / denom


class Adagrad(Optimizer):
    """``sum += g^2``; ``p -= lr / (1 + (t-1) lr_decay) * g / (sqrt(sum) + eps)``."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 groups=None, no_decay=None):
        super().__init__(params, lr, groups, no_decay, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)

    def check(self, h, where):
        _check(_in(h.get("lr_decay", 0), 0), where + "lr_decay", h.get("lr_decay"), "a number >= 0")
        _check(_in(h.get("weight_decay", 0), 0), where + "weight_decay", h.get("weight_decay"), "a number >= 0")
        _check(_in(h.get("initial_accumulator_value", 0), 0), where + "initial_accumulator_value",
               h.get("initial_accumulator_value"), "a number >= 0")
        _check(_in(h.get("eps", 1), 0, lo_open=True), where + "eps", h.get("eps"), "a positive number")

    def update(self, p, g, s, h, t):
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p
        if "sum" not in s:
            s["sum"] = np.full_like(p, h["initial_accumulator_value"])
        s["sum"] += g * g
        clr = h["lr"] / (1 + (t - 1) * h["lr_decay"])
        p -= clr * g / (np.sqrt(s["sum"]) + h["eps"])


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def make_optimizer(name: str, params, lr: float, **kw) -> Optimizer:
    """An optimizer by name; ``weight_decay=0``, ``groups`` and ``no_decay`` are accepted by all."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name](params, lr=lr, **kw)


# -- clipping ---------------------------------------------------------------------------
def _grads(params):
    return [g for _, _, g in _triples(params)]


def grad_norm(params) -> float:
    """Global L2 norm of all gradients (float64 accumulation)."""
    return math.sqrt(sum(_sq(g) for g in _grads(params)))


def _sq(g) -> float:
    """The sum of ``g``'s squares in float64: compiled (``kernels._numba.sum_squares``) for a
    C-contiguous float32 or float64 array under the compiled backend, else by a float64 copy."""
    if type(g) is np.ndarray and g.dtype in (np.float32, np.float64) and g.flags.c_contiguous and g.size:
        numba_kernels = compiled("_numba")
        if numba_kernels is not None:
            return float(numba_kernels.sum_squares(g.reshape(-1)))
    d = g.ravel().astype(np.float64, copy=False)     # one float64 copy of a float32 gradient, none of a float64
    return float(np.dot(d, d))


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``
    (by ``max_norm / (norm + 1e-6)``, as ``torch.nn.utils.clip_grad_norm_``). Returns the norm
    before clipping; ``inf``/``nan`` norms are returned unclipped for the caller to report."""
    _check(isinstance(max_norm, numbers.Real) and not isinstance(max_norm, bool) and max_norm > 0, "max_norm",
           max_norm, "a positive number (inf: measure the norm only)")
    grads = _grads(params)
    norm = grad_norm([(None, None, g) for g in grads])
    coef = max_norm / (norm + 1e-6)
    if coef < 1 and math.isfinite(norm):
        for g in grads:
            g *= g.dtype.type(coef)
    return norm


def clip_grad_value(params, clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place."""
    _check(_in(clip_value, 0, lo_open=True), "clip_value", clip_value, "a positive number")
    for g in _grads(params):
        np.clip(g, -clip_value, clip_value, out=g)


# -- schedules --------------------------------------------------------------------------
def _optimizer(o) -> None:
    if not isinstance(o, Optimizer):
        raise TypeError(f"optimizer: expected an rnnkit optimizer (rnnkit.optim.Adam(model, ...)), "
                        f"got {type(o).__name__}")


class Schedule:
    """Sets ``optimizer.lr`` from the number of ``step()`` calls made so far."""

    def __init__(self, optimizer: Optimizer):
        _optimizer(optimizer)
        self.optimizer, self.base_lr, self.count = optimizer, optimizer.lr, 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, n: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> None:
        self.count += 1
        self.optimizer.lr = self.lr_at(self.count)

    def state_dict(self) -> dict:
        return {"count": self.count, "base_lr": self.base_lr}

    def load_state_dict(self, d: dict) -> None:
        self.count, self.base_lr = int(d["count"]), float(d["base_lr"])
        self.optimizer.lr = self.lr_at(self.count)


class StepLR(Schedule):
    """``lr = base * gamma ** (n // step_size)``."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        _check(is_count(step_size, 1), "step_size", step_size, "an integer >= 1")
        _check(_in(gamma, 0, lo_open=True), "gamma", gamma, "a positive number")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, n):
        return self.base_lr * self.gamma ** (n // self.step_size)


class ExponentialLR(Schedule):
    """``lr = base * gamma ** n``."""

    def __init__(self, optimizer, gamma: float):
        _check(_in(gamma, 0, lo_open=True), "gamma", gamma, "a positive number")
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, n):
        return self.base_lr * self.gamma ** n


class CosineWarmup(Schedule):
    """Linear warm-up ``lr = base * (n + 1) / (warmup + 1)`` for ``n < warmup``, then cosine decay
    ``lr = min_lr + (base - min_lr) (1 + cos(pi p)) / 2`` with ``p = (n - warmup) / (total - warmup)``
    clipped to [0, 1]."""

    def __init__(self, optimizer, warmup_steps: int, total_steps: int, min_lr: float = 0.0):
        _check(is_count(warmup_steps, 0), "warmup_steps", warmup_steps, "an integer >= 0")
        _check(is_count(total_steps, 1), "total_steps", total_steps, "an integer >= 1")
        _check(_in(min_lr, 0), "min_lr", min_lr, "a number >= 0")
        self.warmup, self.total, self.min_lr = warmup_steps, total_steps, min_lr
        super().__init__(optimizer)

    def lr_at(self, n):
        if n < self.warmup:
            return self.base_lr * (n + 1) / (self.warmup + 1)
        p = min(1.0, (n - self.warmup) / max(1, self.total - self.warmup))
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * p))


class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` after ``patience`` evaluations without a relative
    improvement of ``threshold`` (PyTorch's 'min' / 'rel' rule), then wait ``cooldown`` evaluations."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, cooldown=0, min_lr=0.0,
                 eps=1e-8):
        _optimizer(optimizer)
        _check(mode in ("min", "max"), "mode", mode, "'min' or 'max'")
        _check(_in(factor, 0, 1, lo_open=True), "factor", factor, "a number in (0, 1)")
        _check(is_count(patience, 0), "patience", patience, "an integer >= 0")
        _check(is_count(cooldown, 0), "cooldown", cooldown, "an integer >= 0")
        _check(_in(threshold, 0), "threshold", threshold, "a number >= 0")
        _check(_in(min_lr, 0), "min_lr", min_lr, "a number >= 0")
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.threshold, self.cooldown, self.min_lr, self.eps = threshold, cooldown, min_lr, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.bad = self.cooldown_left = 0

    def _better(self, x):
        if self.mode == "min":
            return x < self.best * (1 - self.threshold)
        return x > self.best * (1 + self.threshold)

    def step(self, metric: float) -> None:
        if self._better(metric):
            self.best, self.bad = metric, 0
        else:
            self.bad += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad = 0
        if self.bad > self.patience:
            new = max(self.optimizer.lr * self.factor, self.min_lr)
            if self.optimizer.lr - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_left, self.bad = self.cooldown, 0

    def state_dict(self) -> dict:
        return {"best": self.best, "bad": self.bad, "cooldown_left": self.cooldown_left}

    def load_state_dict(self, d: dict) -> None:
        self.best, self.bad, self.cooldown_left = float(d["best"]), int(d["bad"]), int(d["cooldown_left"])


def make_schedule(name: str, optimizer, total_steps: int, warmup: int = 0):
    """The trainer's schedules by name: 'none' (None), 'cosine' (with ``warmup``), 'step' (x0.5
    every quarter of the run), 'exponential' (to 1% over the run), 'plateau' (x0.5 after 3 flat evaluations)."""
    if name == "none":
        return None
    if name == "cosine":
        return CosineWarmup(optimizer, warmup, total_steps)
    if name == "step":
        return StepLR(optimizer, max(1, total_steps // 4), 0.5)
    if name == "exponential":
        return ExponentialLR(optimizer, 0.01 ** (1 / max(1, total_steps)))
    if name == "plateau":
        return ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    raise ValueError(f"schedule: expected none, cosine, step, exponential or plateau, got {name!r}")
