"""Keras 3 recurrent layers to rnnkit modules and back: :func:`from_keras`, :func:`to_keras`.

Keras keeps one layer's weights as ``kernel`` (H_in, G*H), ``recurrent_kernel`` (H, G*H) and
``bias``, columns in gate blocks; rnnkit (PyTorch) keeps ``weight_ih`` (G*H, H_in), ``weight_hh``
(G*H, H), ``bias_ih`` and ``bias_hh`` (G*H,), rows in gate blocks. So a weight is a transpose,
and the blocks are reordered where the gate orders differ:

=============  ==============  ==============  =============================================
Keras layer    Keras blocks    rnnkit blocks   bias
=============  ==============  ==============  =============================================
SimpleRNN      h               h               (H,) -> bias_ih; bias_hh = 0
LSTM           i, f, c, o      i, f, g, o      (4H,) -> bias_ih; bias_hh = 0
GRU            z, r, h         r, z, n         reset_after=True: (2, 3H), rows input and
                                               recurrent -> bias_ih, bias_hh; reset_after=False:
                                               (3H,) -> bias_ih, bias_hh = 0, and the module is
                                               ``GRU(reset_after=False)``
=============  ==============  ==============  =============================================

A ``Bidirectional`` wrapper (``merge_mode='concat'``, Keras's default) becomes one bidirectional
module: its forward layer fills ``..._l0``, its backward layer ``..._l0_reverse``. Keras
concatenates the backward layer's outputs, put back in time order, after the forward ones,
which is rnnkit's ``(N, L, 2H)`` layout.

Keras itself is needed only to read a layer object or a file (``pip install 'rnnkit[keras]'``:
Keras, h5py and torch as its backend); arrays from ``layer.get_weights()`` need nothing. When this module imports Keras and
``KERAS_BACKEND`` is not set, it sets it to ``torch`` first (Keras 3 then needs no TensorFlow);
a Keras already imported keeps its backend.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from .errors import UserError
from .nn.recurrent import GRU, LSTM, RNN

EXTRA = "pip install 'rnnkit[keras]'"
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}   # Keras layer -> gate blocks
GATE_ORDER = {"GRU": [1, 0, 2]}                 # Keras z, r, h -> rnnkit r, z, n (its own inverse)


def _keras():
    """Import Keras on the torch backend unless the user chose another (one-line error when missing)."""
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as e:
        if e.name not in (None, "keras"):   # keras is there, its backend is not
            raise ImportError(f"keras could not load its backend {os.environ.get('KERAS_BACKEND')!r} ({e}): "
                              f"{EXTRA} installs torch, or set KERAS_BACKEND to an installed one") from None
        raise ImportError(f"Keras models need keras: {EXTRA}") from None
    return keras


# -- from Keras -----------------------------------------------------------------------
def from_keras(layer_or_weights, *, name=None, model=None, batch_first=True, dtype=np.float32):
    """An rnnkit ``RNN`` / ``LSTM`` / ``GRU`` with the weights of a Keras 3 recurrent layer.

    ``layer_or_weights`` is one of

    * a built Keras ``SimpleRNN``, ``LSTM``, ``GRU`` or ``Bidirectional`` layer;
    * a Keras model holding such a layer (its only recurrent layer, or the one called ``name``);
    * a path to a ``.keras`` file (read with ``keras.saving.load_model``; then as a model);
    * a path to a ``.weights.h5`` file with ``model=`` the Keras model it was saved from: the file
      holds arrays only, not the options (activations, ``reset_after``, ``merge_mode``) that
      decide the math, so the weights are loaded into ``model`` (``model.load_weights``, which
      overwrites its weights) and read from there;
    * the list ``layer.get_weights()``: 2 or 3 arrays for a layer, 4 or 6 for a ``Bidirectional``
      one. The cell type follows from the shapes and a GRU's ``reset_after`` from its bias
      shape; arrays carry no options, so Keras's defaults are assumed (``activation='tanh'``,
      ``recurrent_activation='sigmoid'``).

    The module takes Keras's ``(N, L, H_in)`` input (``batch_first=True``) and returns
    ``(y, state)``: ``y`` (N, L, D*H) is the Keras output with ``return_sequences=True``; the
    final state (D, N, H) (an LSTM's ``(h, c)``) is what ``return_state=True`` returns, and
    ``h[-1]`` (``h`` transposed to (N, D*H) for a Bidirectional one) its output with
    ``return_sequences=False``. A Keras mask becomes ``lengths=`` (padding at the end).

    Supported options: ``activation`` 'tanh' (a SimpleRNN also 'relu'), ``recurrent_activation``
    'sigmoid' or 'hard_sigmoid' (Keras 3's ``relu6(x + 3) / 6`` is rnnkit's ``gate='hard_sigmoid'``),
    ``use_bias``, both GRU ``reset_after`` values; ``unroll``, ``stateful`` and the return options do
    not change the math. ``dropout`` / ``recurrent_dropout`` act in Keras's training only and are not
    carried over. Refused with a one-line ``UserError``: other activations, ``go_backwards=True``
    outside a Bidirectional wrapper, ``merge_mode`` other than 'concat', a Bidirectional whose two
    layers differ in options, other layer types.
    """
    src = layer_or_weights
    if isinstance(src, (str, os.PathLike)):
        src = _read_file(os.fspath(src), model)
    if isinstance(src, (list, tuple)):
        spec = _spec_from_arrays(list(src))
    else:
        keras = _keras()
        spec = _spec_from_layer(_find_layer(src, name, keras), keras)
    return _build(spec, batch_first, dtype)


def _read_file(path, model):
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    keras = _keras()
    if path.endswith(".keras"):
        return keras.saving.load_model(path, compile=False)
    if path.endswith(".weights.h5"):
        if model is None:
            raise UserError(f"{path}: a .weights.h5 file holds arrays but not the options that decide the math "
                            "(activations, reset_after, merge_mode); pass the Keras model it was saved from as "
                            "model=, or save the whole model as .keras")
        model.load_weights(path)
        return model
    raise UserError(f"{path}: expected a .keras file or a .weights.h5 file (with model=)")


def _find_layer(src, name, keras):
    """The recurrent layer ``src`` is, or the one inside the model ``src`` (its only one, or ``name``)."""
    kinds = (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU, keras.layers.Bidirectional)
    if not isinstance(src, keras.Model):
        if not isinstance(src, keras.layers.Layer):
            raise UserError(f"from_keras: expected a Keras layer or model, a .keras / .weights.h5 path or "
                            f"the list layer.get_weights(), got {type(src).__name__}")
        if not isinstance(src, kinds):
            raise UserError(f"from_keras: expected a Keras SimpleRNN, LSTM, GRU or Bidirectional layer, "
                            f"got {type(src).__name__}")
        return src
    found = [layer for layer in _all_layers(src, keras) if isinstance(layer, kinds)]
    if name is not None:
        found = [layer for layer in found if layer.name == name]
        if not found:
            raise UserError(f"from_keras: no recurrent layer called {name!r} in model {src.name!r}; it has "
                            f"{[layer.name for layer in _all_layers(src, keras) if isinstance(layer, kinds)]}")
    if len(found) != 1:
        raise UserError(f"from_keras: model {src.name!r} has {len(found)} recurrent layers "
                        f"{[layer.name for layer in found]}; name one with name=")
    return found[0]


def _all_layers(model, keras):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):   # a nested model
            yield from _all_layers(layer, keras)


def _spec_from_layer(layer, keras):
    """``{kind, activation, gate, reset_after, use_bias, weights: [arrays per direction]}``, checked."""
    if isinstance(layer, keras.layers.Bidirectional):
        if layer.merge_mode != "concat":
            raise UserError(f"Bidirectional merge_mode={layer.merge_mode!r}: rnnkit's bidirectional output "
                            "concatenates the two directions (merge_mode='concat')")
        fw, bw = layer.forward_layer, layer.backward_layer
        if fw.go_backwards:
            raise UserError(f"Bidirectional {layer.name!r} wraps a go_backwards=True layer: its forward layer "
                            "runs backwards; wrap a go_backwards=False layer")
        a, b = _layer_options(fw), _layer_options(bw, inside_bidirectional=True)
        if a != b:
            diff = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
            raise UserError(f"Bidirectional {layer.name!r}: its forward and backward layers differ in {diff}; "
                            "an rnnkit bidirectional layer has one set of options")
        return dict(a, weights=[_weights(fw), _weights(bw)])
    return dict(_layer_options(layer), weights=[_weights(layer)])


def _weights(layer):
    w = layer.get_weights()
    if not w:
        raise UserError(f"Keras layer {layer.name!r} has no weights yet: build it (call it on an input) first")
    return w


def _layer_options(layer, inside_bidirectional=False):
    """The options of a SimpleRNN / LSTM / GRU that decide its math, refusing those rnnkit lacks."""
    cfg, kind = layer.get_config(), type(layer).__name__
    what = f"Keras {kind} {layer.name!r}"
    if kind not in GATES:   # a subclass: name the Keras class it derives from
        kind = next(c.__name__ for c in type(layer).__mro__ if c.__name__ in GATES)
    if cfg.get("go_backwards") and not inside_bidirectional:
        raise UserError(f"{what}: go_backwards=True is not supported; reverse the input along time "
                        "(x[:, ::-1]) and load the layer with go_backwards=False")
    act = cfg.get("activation")
    if act not in (("tanh", "relu") if kind == "SimpleRNN" else ("tanh",)):
        allowed = "'tanh' or 'relu'" if kind == "SimpleRNN" else "'tanh' (Keras's default)"
        raise UserError(f"{what}: activation={act!r} is not supported; rnnkit's {kind} uses {allowed}")
    gate = None
    if kind != "SimpleRNN":
        gate = cfg.get("recurrent_activation")
        if gate not in ("sigmoid", "hard_sigmoid"):
            raise UserError(f"{what}: recurrent_activation={gate!r} is not supported; rnnkit's gates are "
                            "'sigmoid' (Keras's default) or 'hard_sigmoid'")
    return {"kind": kind, "units": cfg["units"], "activation": act, "gate": gate,
            "reset_after": bool(cfg["reset_after"]) if kind == "GRU" else None,
            "use_bias": bool(cfg.get("use_bias", True))}


def _spec_from_arrays(arrays):
    """The spec of ``layer.get_weights()`` (Keras's default activations assumed)."""
    n = len(arrays)
    if n not in (2, 3, 4, 6):
        raise UserError(f"from_keras: expected layer.get_weights() of a SimpleRNN, LSTM or GRU (2 or 3 arrays: "
                        f"kernel, recurrent_kernel[, bias]) or of a Bidirectional one (4 or 6), got {n} arrays")
    per = n // 2 if n in (4, 6) else n
    dirs = [[np.asarray(a) for a in arrays[i:i + per]] for i in range(0, n, per)]
    specs = [_direction_spec(w) for w in dirs]
    if len(specs) == 2 and specs[0] != specs[1]:
        raise UserError(f"from_keras: the forward and backward weights differ in shape ({specs[0]} vs {specs[1]})")
    return dict(specs[0], weights=dirs)


def _direction_spec(w):
    kernel, rec = w[0], w[1]
    if rec.ndim != 2 or kernel.ndim != 2 or rec.shape[1] % rec.shape[0] or kernel.shape[1] != rec.shape[1]:
        raise UserError(f"from_keras: expected kernel (H_in, G*H) and recurrent_kernel (H, G*H), got shapes "
                        f"{kernel.shape} and {rec.shape}")
    H, G = rec.shape[0], rec.shape[1] // rec.shape[0]
    kind = {1: "SimpleRNN", 4: "LSTM", 3: "GRU"}.get(G)
    if kind is None:
        raise UserError(f"from_keras: recurrent_kernel {rec.shape} has {G} gate blocks of H={H}; expected 1 "
                        "(SimpleRNN), 4 (LSTM) or 3 (GRU)")
    reset_after = None
    if kind == "GRU":
        if len(w) < 3:
            raise UserError("from_keras: a GRU's arrays without a bias do not tell reset_after=True from False; "
                            "pass the layer or a .keras file instead")
        reset_after = w[2].shape == (2, 3 * H)
    if len(w) == 3 and w[2].shape != ((2, 3 * H) if reset_after else (G * H,)):
        raise UserError(f"from_keras: {kind} bias: expected shape {(G * H,)}"
                        + (f" or {(2, 3 * H)}" if kind == "GRU" else "") + f", got {w[2].shape}")
    return {"kind": kind, "units": H, "activation": "tanh", "gate": None if kind == "SimpleRNN" else "sigmoid",
            "reset_after": reset_after, "use_bias": len(w) == 3}


def _blocks(a, kind):
    """Reorder the last axis's gate blocks between Keras's order and rnnkit's (the map is its own inverse)."""
    order = GATE_ORDER.get(kind)
    if order is None:
        return a
    G = len(order)
    H = a.shape[-1] // G
    return a.reshape(a.shape[:-1] + (G, H))[..., order, :].reshape(a.shape)


def _build(spec, batch_first, dtype):
    kind, H = spec["kind"], spec["units"]
    weights = spec["weights"]
    input_size = weights[0][0].shape[0]
    kw = dict(bias=spec["use_bias"], batch_first=batch_first, bidirectional=len(weights) == 2, dtype=dtype)
    if kind == "SimpleRNN":
        module = RNN(input_size, H, nonlinearity=spec["activation"], **kw)
    elif kind == "LSTM":
        module = LSTM(input_size, H, gate=spec["gate"], **kw)
    else:
        module = GRU(input_size, H, gate=spec["gate"], reset_after=spec["reset_after"], **kw)
    state = {}
    for sfx, w in zip(("", "_reverse"), weights):
        kernel, rec = (np.asarray(a) for a in w[:2])
        state[f"weight_ih_l0{sfx}"] = _blocks(kernel, kind).T        # (H_in, G*H) -> (G*H, H_in)
        state[f"weight_hh_l0{sfx}"] = _blocks(rec, kind).T           # (H, G*H) -> (G*H, H)
        if spec["use_bias"]:
            b = np.asarray(w[2])
            two = b.ndim == 2                                        # GRU reset_after=True: input, recurrent
            state[f"bias_ih_l0{sfx}"] = _blocks(b[0] if two else b, kind)
            state[f"bias_hh_l0{sfx}"] = _blocks(b[1], kind) if two else np.zeros_like(b)
    module.load_state_dict(state)
    return module


# -- to Keras -------------------------------------------------------------------------
def to_keras(module):
    """A built Keras 3 layer computing what the one-layer rnnkit ``module`` computes.

    ``RNN`` -> ``SimpleRNN``, ``LSTM`` -> ``LSTM``, ``GRU`` -> ``GRU`` (``reset_after`` as the
    module's), wrapped in ``Bidirectional(merge_mode='concat')`` when the module is bidirectional;
    ``return_sequences=True, return_state=True``. Keras has one bias where rnnkit has two, so it
    gets ``bias_ih + bias_hh`` (exact math, float rounding differs in the last bits), except for a
    ``reset_after=True`` GRU, which keeps both. The layer takes ``(N, L, H_in)`` input, whatever
    the module's ``batch_first``. Stacked modules (``num_layers > 1``) are refused: convert one
    layer at a time; so are the options Keras lacks (``zoneout``, ``proj_size``, the gate
    variants), with a one-line ``UserError``, as :func:`rnnkit.interop.to_torch` refuses them.
    """
    if not isinstance(module, (RNN, LSTM, GRU)):
        raise UserError(f"to_keras: expected an rnnkit RNN, LSTM or GRU, got {type(module).__name__}")
    if module.num_layers != 1:
        raise UserError(f"to_keras: the module has num_layers={module.num_layers}; Keras layers hold one layer "
                        "each, so convert a one-layer module")
    if module.variant is not None:
        on = [n for n in ("layer_norm", "peepholes", "coupled_gates", "cell_clip") if getattr(module, n)]
        raise UserError(f"to_keras: {', '.join(on)}: Keras's LSTM and GRU layers have no such option")
    if getattr(module, "zoneout", 0.0):    # as rnnkit.interop.to_torch refuses it
        raise UserError(f"to_keras: zoneout={module.zoneout!r} has no Keras counterpart (in evaluation it mixes each "
                        f"state with the previous one); the dropout options are off in evaluation and map exactly")
    if getattr(module, "proj_size", 0):
        raise UserError(f"to_keras: proj_size={module.proj_size} has no Keras counterpart (Keras's LSTM does not "
                        f"project its hidden state)")
    keras = _keras()
    kind = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}[module.mode.split("_")[0]]
    opts = dict(return_sequences=True, return_state=True, use_bias=module.bias, dtype=module.dtype.name)
    if kind == "SimpleRNN":
        opts["activation"] = module.mode[4:]
    else:
        opts["recurrent_activation"] = "hard_sigmoid" if module.mode.endswith("_hard") else "sigmoid"
    reset_after = kind == "GRU" and module.reset_after
    if kind == "GRU":
        opts["reset_after"] = reset_after
    layer = getattr(keras.layers, kind)(module.hidden_size, **opts)
    if module.bidirectional:
        layer = keras.layers.Bidirectional(layer, merge_mode="concat")
    layer.build((None, None, module.input_size))
    p, weights = module.params, []
    for sfx in module.suffixes:
        weights += [_blocks(p[f"weight_ih_l0{sfx}"].T, kind), _blocks(p[f"weight_hh_l0{sfx}"].T, kind)]
        if module.bias:
            b_ih, b_hh = _blocks(p[f"bias_ih_l0{sfx}"], kind), _blocks(p[f"bias_hh_l0{sfx}"], kind)
            weights.append(np.stack([b_ih, b_hh]) if reset_after else b_ih + b_hh)
    layer.set_weights(weights)
    return layer
