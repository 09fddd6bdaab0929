"""Gradient diagnostics: the vanishing and exploding gradient problems, measured.

* :func:`gradient_flow`: ``||dL/dh_t||`` for every time step, per layer and direction: how much
  of the loss's gradient reaches each step's hidden state (through the output at that step and
  through every later step).
* :func:`jacobian_norms`: ``||dh_T/dh_t||`` (largest singular value), the product of the step
  Jacobians from step t to the last step, for one sequence.
* :func:`recurrent_spectrum`: spectral radius and largest singular value of each recurrent
  weight matrix, per gate block.
* :func:`gate_statistics`: mean activation and saturated fraction of every LSTM / GRU gate.
* :func:`check_gradients`: non-finite or too-large gradients, reported by parameter.

Models are any :class:`~rnnkit.nn.Module` whose tree contains recurrent layers
(:class:`~rnnkit.nn.RNNBase`) and that provides ``train_step(batch)`` (gradient flow) or
``forward(x, lengths=...)`` (gate statistics); a bare recurrent layer works too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import kernels
from .functional.recurrent import GATE_NAMES, SQUASHED, layer_forward, sequence_backward, step_gates
from .functional.variants import bind, variant_layer_forward
from .nn import RNNBase


def recurrent_layers(model) -> list:
    """Every recurrent layer module in ``model``'s tree, in registration order, with its path."""
    found = []

    def walk(m, path):
        if isinstance(m, RNNBase):
            found.append((path or "rnn", m))
        for name, child in m._modules.items():
            walk(child, f"{path}.{name}" if path else name)

    walk(model, "")
    return found


def _key(path, layer, d):
    return f"{path}.l{layer}{'_reverse' if d else ''}"


def _recorders(model) -> list:
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError(f"gradient_flow: expected a model containing RNN/LSTM/GRU layers, got {type(model).__name__}")
    return layers


def _set_recording(layers, on: bool) -> None:
    for _, m in layers:
        m.record_hidden_grads, m.hidden_grads = on, {}


def _recorded(layers) -> dict:
    """``{"<module>.l<layer>[_reverse]": (L, N) norms over the hidden units}`` of the last backward."""
    return {_key(path, layer, d): np.linalg.norm(dh.astype(np.float64), axis=-1)
            for path, m in layers for (layer, d), dh in sorted(m.hidden_grads.items())}


def record_gradient_flow(model, batch):
    """Run ``model.train_step(batch)`` with dL/dh_t recorded in every recurrent layer. Returns
    ``(loss, {"<module>.l<layer>[_reverse]": (L, N) norms over the hidden units})``; parameter
    gradients accumulate as in any training step."""
    layers = _recorders(model)
    _set_recording(layers, True)
    try:
        loss, _, _ = model.train_step(batch)
        out = _recorded(layers)
    finally:
        _set_recording(layers, False)
    return loss, out


class FlowRecorder:
    """A Trainer callback that records ``||dL/dh_t||`` (batch mean, first recurrent layer) during
    step 1 and every ``every``-th training step: the recording is switched on before the step
    and read after it, so the measured step is an ordinary training step."""

    def __init__(self, model, every: int):
        self.layers = _recorders(model)
        self.every, self.flows, self.steps = every, [], []
        _set_recording(self.layers, every > 0)

    def __call__(self, trainer) -> None:
        recorded = _recorded(self.layers)
        if recorded:
            self.flows.append(next(iter(recorded.values())).mean(axis=1))    # layer 0, forward direction
            self.steps.append(trainer.step)
        _set_recording(self.layers, self.every > 0 and (trainer.step + 1) % self.every == 0)

    def close(self) -> None:
        _set_recording(self.layers, False)

    def state_dict(self) -> dict:
        """The norms recorded so far (the live lists: a checkpoint tree holding them is always current)."""
        return {"flows": self.flows, "steps": self.steps}

    def load_state_dict(self, d: dict, step: int) -> None:
        """Continue a resumed run at ``step`` with the norms recorded before it."""
        self.flows[:] = [np.asarray(f) for f in d["flows"]]
        self.steps[:] = [int(s) for s in d["steps"]]
        _set_recording(self.layers, self.every > 0 and (step + 1) % self.every == 0)


def gradient_flow(model, batch, reduce="mean") -> dict:
    """``{"<module>.l<layer>[_reverse]": (L,) array}`` of ``||dL/dh_t||`` for t = 1..L.

    Runs ``model.train_step(batch)`` once with recording switched on. The norm is over the hidden
    units of one sequence, then averaged over the batch (``reduce="mean"``) or kept per sequence
    (``reduce=None``: arrays (L, N)). Parameter gradients are left as they were before the call.
    """
    saved = {id(g): g.copy() for _, _, g in model.named_parameters()}
    try:
        _, flows = record_gradient_flow(model, batch)
    finally:
        for _, _, g in model.named_parameters():
            g[...] = saved[id(g)]
    return {k: v.mean(axis=1) if reduce == "mean" else v for k, v in flows.items()}


def jacobian_norms(rnn: RNNBase, x, layer=0, direction=0, sample=0) -> np.ndarray:
    """``(L,)`` array: the largest singular value of ``dh_L/dh_t`` for one sequence of ``x``.

    ``h_t`` is the hidden output of step t of the chosen layer and direction (in processing
    order: for the reverse direction, step 1 is the last input). For an LSTM the derivative is
    taken with the cell state ``c_t`` held fixed. The last entry is 1 (the identity). Computed
    by back-propagating all H unit vectors at once through the step Jacobians.
    """
    if not isinstance(rnn, RNNBase):
        raise TypeError(f"jacobian_norms: expected an RNN/LSTM/GRU layer, got {type(rnn).__name__}")
    if not 0 <= layer < rnn.num_layers or not 0 <= direction < rnn.num_directions:
        raise ValueError(f"jacobian_norms: layer/direction out of range: expected layer < {rnn.num_layers}, "
                         f"direction < {rnn.num_directions}, got {layer}, {direction}")
    x = np.asarray(x)
    if rnn.batch_first:
        x = x.transpose(1, 0, 2)
    if x.ndim != 3 or not 0 <= sample < x.shape[1]:
        raise ValueError(f"jacobian_norms: expected x (L, N, H_in) and 0 <= sample < N, got shape {x.shape}, "
                         f"sample {sample}")
    H, D = rnn.hidden_size, rnn.num_directions
    with kernels.use("numpy"):
        rnn(x[:, sample:sample + 1], lengths=None)
        caches = rnn._take_cache()[0]
        inp = caches[layer * D + direction].x                   # (L, 1, H_in), processing order
        sfx = rnn.suffixes[direction]
        p = rnn.params
        W_hh = p[f"weight_hh_l{layer}{sfx}"]
        tiled = np.repeat(inp, H, axis=1)                       # H copies of the sequence
        state0 = tuple(np.zeros((H, H), rnn.dtype) for _ in range(rnn.ops.n_states))
        args = (tiled, state0, p[f"weight_ih_l{layer}{sfx}"], W_hh, p.get(f"bias_ih_l{layer}{sfx}"),
                p.get(f"bias_hh_l{layer}{sfx}"))
        ops = rnn.ops
        if rnn.variant is not None:                             # a gate variant: its steps, bound
            extra = rnn.variant_params(layer, sfx)
            ops = bind(rnn.variant, extra)
            _, _, cache = variant_layer_forward(rnn.variant, extra, *args)
        else:
            _, _, cache = layer_forward(ops, *args)
        L = tiled.shape[0]
        seed = (np.eye(H, dtype=rnn.dtype),) + tuple(np.zeros((H, H), rnn.dtype) for _ in range(rnn.ops.n_states - 1))
        rows = np.empty((L, H, H), rnn.dtype)                   # rows[t][i] = d h_L[i] / d h_t
        sequence_backward(ops, np.zeros((L, H, H), rnn.dtype), seed, cache.steps, W_hh, record=rows)
    return np.array([np.linalg.norm(rows[t].astype(np.float64), 2) for t in range(L)])


def recurrent_spectrum(model) -> list:
    """One row per recurrent weight matrix and gate block: ``{"param", "gate", "spectral_radius",
    "max_singular"}``. A spectral radius above 1 lets a linearised recurrence grow; well below 1
    makes it decay (Pascanu, Mikolov & Bengio 2013)."""
    rows = []
    for path, m in recurrent_layers(model):
        names = GATE_NAMES[m.mode.split("_")[0]] or ("h",)
        if getattr(m, "coupled_gates", False):
            names = names[1:]                     # coupled gates: W_hh has the f, g, o blocks only
        H = m.hidden_size
        for name, W in m.params.items():
            if not name.startswith("weight_hh"):
                continue
            for k, gate in enumerate(names):
                block = W[k * H:(k + 1) * H].astype(np.float64)
                rows.append({"param": f"{path}.{name}", "gate": gate,
                             "spectral_radius": float(np.max(np.abs(np.linalg.eigvals(block)))),
                             "max_singular": float(np.linalg.norm(block, 2))})
    return rows


def gate_statistics(model, x, lengths=None, low=0.05, high=0.95) -> list:
    """Gate activations of every LSTM / GRU layer on input ``x``: one row per layer, direction and
    gate with ``mean``, ``std`` and ``saturated`` (fraction of units below ``low`` or above
    ``high``; for the tanh gates g and n, ``|a| > high``). Padded steps are left out."""
    layers = [(p, m) for p, m in recurrent_layers(model) if GATE_NAMES[m.mode.split("_")[0]]]
    if not layers:
        raise ValueError("gate_statistics: expected a model with LSTM or GRU layers (an Elman RNN has no gates)")
    if isinstance(model, RNNBase):
        model(x, lengths=lengths)
    else:
        model.forward(x, lengths=lengths)
    rows = []
    for path, m in layers:
        caches = m._cache[0]
        D = m.num_directions
        for row, cache in enumerate(caches):
            layer, d = divmod(row, D)
            L = len(cache.steps)
            valid = None if cache.mask is None else cache.mask[:, :, 0]
            per_gate = {}
            for t in range(L):
                for name, a in step_gates(m.ops, cache.steps[t]).items():
                    a = a if valid is None else a[valid[t]]
                    per_gate.setdefault(name, []).append(a.astype(np.float64).ravel())
            for name, parts in per_gate.items():
                a = np.concatenate(parts)
                sat = (a < low) | (a > high) if name in SQUASHED else np.abs(a) > high
                rows.append({"layer": _key(path, layer, d), "gate": name, "mean": float(a.mean()),
                             "std": float(a.std()), "saturated": float(sat.mean())})
    model.clear_cache()
    return rows


@dataclass
class GradientReport:
    """What :func:`check_gradients` found. ``ok`` is False when any gradient is NaN / inf or the
    global norm exceeds the threshold."""

    norm: float
    threshold: float
    nonfinite: list = field(default_factory=list)      # parameter names with NaN or inf
    largest: list = field(default_factory=list)        # (name, norm), largest first

    @property
    def exploding(self) -> bool:
        return bool(self.nonfinite) or not math.isfinite(self.norm) or self.norm > self.threshold

    @property
    def ok(self) -> bool:
        return not self.exploding

    def __str__(self):
        if self.nonfinite:
            return (f"exploding gradients: NaN/inf in {', '.join(self.nonfinite)}; lower the learning rate, "
                    f"clip gradients (--clip) or shrink the recurrent initialisation")
        head = ", ".join(f"{n} {v:.3g}" for n, v in self.largest[:3])
        if self.norm > self.threshold:
            return (f"exploding gradients: global norm {self.norm:.4g} > threshold {self.threshold:g} "
                    f"(largest: {head}); clip gradients (--clip) or lower the learning rate")
        return f"gradients fine: global norm {self.norm:.4g} <= {self.threshold:g} (largest: {head})"


def check_gradients(model, threshold: float = 1e3) -> GradientReport:
    """Inspect ``model``'s current gradients (after a backward pass)."""
    if not (threshold > 0):
        raise ValueError(f"threshold: expected a positive number, got {threshold!r}")
    nonfinite, norms = [], []
    for name, _, g in model.named_parameters():
        if not np.all(np.isfinite(g)):
            nonfinite.append(name)
            norms.append((name, math.inf))
        else:
            norms.append((name, float(np.linalg.norm(g.astype(np.float64)))))
    total = math.sqrt(sum(v * v for _, v in norms)) if not nonfinite else math.inf
    norms.sort(key=lambda t: -t[1])
    return GradientReport(total, float(threshold), nonfinite, norms)
