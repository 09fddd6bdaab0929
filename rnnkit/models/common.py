"""Pieces shared by the task models: resolving a cell name, seeding submodules, RNG state."""
from __future__ import annotations

import numpy as np

from ..nn import GRU, LSTM, RNN

CELL_NAMES = ("lstm", "gru", "rnn_tanh", "rnn_relu")
CELL_ALIASES = {"rnn": "rnn_tanh", "rnn-tanh": "rnn_tanh", "rnn-relu": "rnn_relu"}


def canonical_cell(cell: str) -> str:
    """PyTorch's spelling of a cell type (``'rnn'`` -> ``'rnn_tanh'``, ``'rnn-relu'`` -> ``'rnn_relu'``),
    the one every config and checkpoint records."""
    return CELL_ALIASES.get(cell, cell)


# Gate variants by name, for comparing cells side by side ('lstm-ln', 'gru-ln', 'lstm-peep', 'lstm-ln-peep-coupled')
CELL_VARIANTS = {"ln": "layer_norm", "peep": "peepholes", "coupled": "coupled_gates"}


def split_cell_variant(name: str) -> tuple[str, dict]:
    """``'lstm-ln-peep'`` -> ``('lstm', {'layer_norm': True, 'peepholes': True})``: a cell name followed
    by ``-`` and suffixes of :data:`CELL_VARIANTS`, or a plain cell name (``'rnn-relu'``) -> ``(name, {})``.
    Whether the cell has the option is the layer's check."""
    parts = name.split("-")
    k = len(parts)
    while k > 1 and parts[k - 1] in CELL_VARIANTS:
        k -= 1
    suffixes = parts[k:]
    if len(set(suffixes)) != len(suffixes):
        raise ValueError(f"cell {name!r}: a variant suffix is repeated")
    return "-".join(parts[:k]), {CELL_VARIANTS[s]: True for s in suffixes}


def make_rnn(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, **kw):
    """``'lstm'``, ``'gru'``, ``'rnn_tanh'`` or ``'rnn_relu'`` (PyTorch's spellings; ``'rnn'`` and
    ``'rnn-relu'`` are accepted too) -> the layer module. A model's ``dropout`` also acts outside
    its recurrent layers, so a one-layer stack is given none between layers (there is no "between"),
    without the warning the layer gives a user who asks for it."""
    cell = CELL_ALIASES.get(cell, cell)
    if num_layers == 1 and kw.get("dropout"):
        kw["dropout"] = 0.0
    if cell == "rnn_tanh":
        return RNN(input_size, hidden_size, num_layers, nonlinearity="tanh", **kw)
    if cell == "rnn_relu":
        return RNN(input_size, hidden_size, num_layers, nonlinearity="relu", **kw)
    if cell == "lstm":
        return LSTM(input_size, hidden_size, num_layers, **kw)
    if cell == "gru":
        return GRU(input_size, hidden_size, num_layers, **kw)
    raise ValueError(f"cell: expected one of {', '.join(CELL_NAMES)}, got {cell!r}")


def rnn_options_config(rnn, options: dict) -> dict:
    """The recurrent options a model was given, as the built layer validated them and as JSON
    keeps them (zoneout's (z_h, z_c) tuple as a list), for the model's config."""
    out = {k: getattr(rnn, k) for k in options}
    if isinstance(out.get("zoneout"), tuple):
        out["zoneout"] = list(out["zoneout"])
    return out


def child_seeds(seed, n: int) -> list:
    """``n`` independent seeds drawn from ``seed`` (an int, None or a Generator)."""
    return [int(s) for s in np.random.default_rng(seed).integers(0, 2**63 - 1, size=n)]


def modules_of(model):
    """Every module in the tree, depth first, in registration order (for RNG state)."""
    return model.modules()


def rng_state(model) -> list:
    return [m.rng.bit_generator.state for m in modules_of(model)]


def set_rng_state(model, states: list) -> None:
    mods = list(modules_of(model))
    if len(mods) != len(states):
        raise ValueError(f"RNG state: expected {len(mods)} generator states, got {len(states)}")
    for m, s in zip(mods, states):
        m.rng.bit_generator.state = s


def first(out):
    """``module.backward`` returns ``dx`` or ``(dx, dstate0)``; take ``dx``."""
    return out[0] if isinstance(out, tuple) else out
