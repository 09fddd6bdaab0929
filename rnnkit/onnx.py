"""ONNX export: every trained model as ONNX graphs built from ONNX's own RNN / LSTM / GRU operators.

``rnnkit.onnx.export(model, "model.onnx")`` writes the model's graphs and returns
``{graph name: path}``; :func:`graphs` returns them as ``onnx.ModelProto`` without writing. A
model with one graph is written to ``path``; a model with several writes ``model.<graph>.onnx``
beside it:

* ``charlm``: ``sequence`` (ids ``x`` (L, N), ``h0`` [, ``c0``] -> ``logits`` (L, N, V),
  ``h_n`` [, ``c_n``]) and ``step`` (``token`` (N,) and the state -> ``logits`` (N, V) and the
  state), so a deployed model can prime on a text and then sample one character at a time;
* ``classifier``: ``x`` (L, N, D) raw features (the training standardisation is in the graph),
  ``lengths`` (N,) int32 -> ``logits`` (N, C), for every pooling;
* ``forecaster``: ``series`` (window, N) float64, the last ``window`` observations -> ``forecast``
  (N, horizon) float64, what :meth:`Forecaster.predict` returns (scaling, inputs relative to the
  last value and the recursive feedback are in the graph);
* ``tagger``: ``words`` (L, N), ``lengths`` (N,) int32 [, ``chars`` (C, M), ``char_lengths`` (M,)
  int32: a :class:`~rnnkit.data.tagging.TaggedBatch`'s fields] -> ``logits`` (L, N, n_tags);
* ``seq2seq``: ``encoder`` (``src`` (S, N), ``src_len`` (N,) int32 -> ``enc``, ``h`` [, ``c``],
  ``htilde``) and ``decoder`` (one step: ``token`` (N,), ``h`` [, ``c``], ``htilde``, ``enc``,
  ``src_len`` -> ``logits`` (N, V), ``h_next`` [, ``c_next``], ``htilde_next``, ``alpha`` (S, N)),
  which a loop outside drives from ``token = BOS`` and the encoder's outputs, feeding each
  step's ``*_next`` back in;
* ``sequence`` (the generated tasks' model): ``x`` (L, N, H_in), ``lengths`` -> ``out``;
* a bare :class:`~rnnkit.nn.RNN`, :class:`~rnnkit.nn.LSTM` or :class:`~rnnkit.nn.GRU`: ``x``
  (L, N, H_in) (or (N, L, H_in) with ``batch_first``), ``lengths`` (N,) int32, ``h0`` [, ``c0``]
  (D * num_layers, N, H) -> ``y`` (L, N, D * H), ``h_n`` [, ``c_n``], the module's forward.

Ids are int64, lengths int32 (ONNX's ``sequence_lens``), everything else float32 unless said.
The graphs compute the model in eval mode (no dropout).
Each recurrent layer is one ONNX operator with PyTorch's gate blocks reordered to ONNX's (LSTM
i, o, f, c; GRU z, r, h) and ``B = [W_b; R_b]``; the GRU uses ``linear_before_reset=1``
(PyTorch's reset gate multiplies ``W_hn h + b_hn``); hard-sigmoid gates are ONNX's
``HardSigmoid(alpha=1/6, beta=1/2)``. Stacked layers chain: the (L, D, N, H) output is
transposed and reshaped to (L, N, D * H). Opset :data:`OPSET`; each model's ``config`` is in the
file's metadata (``rnnkit.config``, JSON), so vocabularies and class names travel with it.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ._optional import require
from .errors import UserError

# Opset 14: the first at which every operator used here has its present definition. RNN, LSTM
# and GRU took their current form in 14 (22 only adds bfloat16), Softmax works over one axis
# and ReduceSum / Unsqueeze / Squeeze take their axes as inputs since 13. Choosing the lowest
# such opset lets the files run on the widest range of runtimes (onnxruntime >= 1.8).
OPSET = 14

# rnnkit's hard_sigmoid, clip(x / 6 + 1 / 2, 0, 1), is exactly ONNX's HardSigmoid(alpha, beta)
HARD_SIGMOID = (1.0 / 6.0, 0.5)

# rnnkit cell -> (ONNX operator, PyTorch gate blocks in ONNX's order, activations of one direction)
CELLS = {
    "rnn_tanh": ("RNN", (0,), ("Tanh",)),
    "rnn_relu": ("RNN", (0,), ("Relu",)),
    "lstm": ("LSTM", (0, 3, 1, 2), ("Sigmoid", "Tanh", "Tanh")),          # i f g o -> i o f c
    "lstm_hard": ("LSTM", (0, 3, 1, 2), ("HardSigmoid", "Tanh", "Tanh")),
    "gru": ("GRU", (1, 0, 2), ("Sigmoid", "Tanh")),                       # r z n -> z r h
    "gru_hard": ("GRU", (1, 0, 2), ("HardSigmoid", "Tanh")),
    # GRU(reset_after=False): the reset gate before the recurrent product, ONNX's linear_before_reset=0
    "gru_reset_before": ("GRU", (1, 0, 2), ("Sigmoid", "Tanh")),
    "gru_reset_before_hard": ("GRU", (1, 0, 2), ("HardSigmoid", "Tanh")),
}


def _onnx():
    return require("onnx", "onnx", "ONNX export")   # the top-level package: absolute imports never see this module


class Graph:
    """One ONNX graph under construction: nodes, initialisers, inputs and outputs, fresh names."""

    def __init__(self, name: str, dtype=np.float32):
        self.onnx = _onnx()
        self.name, self.dtype = name, np.dtype(dtype)
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self._used: dict[str, int] = {}

    def fresh(self, base: str) -> str:
        k = self._used.get(base, 0)
        self._used[base] = k + 1
        return f"{base}_{k}" if k else base

    def const(self, value, name="const", dtype=None) -> str:
        """An initialiser: floats in the graph's dtype unless ``dtype`` says otherwise, integers as given."""
        arr = np.asarray(value)
        if dtype is not None or arr.dtype.kind == "f":
            arr = arr.astype(dtype if dtype is not None else self.dtype)
        name = self.fresh(name)
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def cast(self, x: str, dtype) -> str:
        return self.op("Cast", x, to=self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))

    def ints(self, *values) -> str:
        return self.const(np.array(values, np.int64), "axes")

    def op(self, op_type: str, *inputs, outputs=1, **attrs):
        """Add a node; returns its output name (a list when ``outputs > 1``)."""
        names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def input(self, name: str, dtype, shape) -> str:
        elem = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem, shape))
        self._used[name] = 1
        return name

    def output(self, value: str, name: str, dtype, shape) -> None:
        elem = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        self._used[name] = 1
        self.nodes.append(self.onnx.helper.make_node("Identity", [value], [name]))
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, elem, shape))

    def model(self, metadata: dict):
        """The checked ``ModelProto`` (``onnx.checker`` with shape inference)."""
        h = self.onnx.helper
        graph = h.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        opsets = [h.make_opsetid("", OPSET)]
        model = h.make_model(graph, opset_imports=opsets, producer_name="rnnkit",
                             ir_version=h.find_min_ir_version_for(opsets))
        h.set_model_props(model, {k: str(v) for k, v in metadata.items()})
        self.onnx.checker.check_model(model, full_check=True)
        return model

    # -- small pieces every model uses ------------------------------------------------------
    def linear(self, x: str, lin) -> str:
        """``x (*, H_in) @ W^T + b`` for an rnnkit :class:`~rnnkit.nn.Linear`."""
        y = self.op("MatMul", x, self.const(lin.params["weight"].T, "weight"))
        return self.op("Add", y, self.const(lin.params["bias"], "bias")) if "bias" in lin.params else y

    def embed(self, ids: str, emb) -> str:
        return self.op("Gather", self.const(emb.params["weight"], "embedding"), ids, axis=0)

    def dim(self, x: str, axis: int) -> str:
        """The size of ``x`` along ``axis``, as an int64 scalar."""
        return self.op("Gather", self.op("Shape", x), self.const(np.int64(axis), "axis", np.int64), axis=0)

    def mask(self, lengths: str, L: str) -> str:
        """(L, N) bool: step t of sequence n is valid (t < lengths[n]) for int32 ``lengths`` (N,)."""
        zero, one = self.const(np.int64(0), "zero", np.int64), self.const(np.int64(1), "one", np.int64)
        t = self.op("Unsqueeze", self.op("Range", zero, L, one), self.ints(1))          # (L, 1)
        n = self.op("Unsqueeze", self.cast(lengths, np.int64), self.ints(0))           # (1, N) int64
        return self.op("Less", t, n)

    def masked_softmax(self, e: str, mask: str) -> str:
        """Softmax over axis 0 of ``e`` (S, N), exactly zero where ``mask`` is false."""
        e = self.op("Where", mask, e, self.const(np.float32(-np.inf), "minus_inf"))
        return self.op("Softmax", e, axis=0)


# -- recurrent layers ----------------------------------------------------------------------------
def _cell(mode: str):
    if mode not in CELLS:
        raise UserError(f"ONNX export: cell {mode!r} has no ONNX counterpart (ONNX's RNN, LSTM and GRU "
                        f"operators express {', '.join(CELLS)})")
    return CELLS[mode]


def _onnx_layout(w: np.ndarray, order, H: int) -> np.ndarray:
    """PyTorch's stacked gate blocks (G*H, ...) in ONNX's gate order."""
    return np.concatenate([w[k * H:(k + 1) * H] for k in order], axis=0)


def recurrent_op(g: Graph, mode: str, x: str, weights: list, H: int, lengths=None, init=(), peepholes=None,
                 input_forget=False) -> tuple:
    """One ONNX RNN / LSTM / GRU operator for one layer of ``len(weights)`` directions.

    ``weights``: per direction ``(weight_ih, weight_hh, bias_ih or None, bias_hh or None)`` in
    PyTorch's layout; ``x`` (L, N, H_in); ``init``: ``(h_0,)`` or ``(h_0, c_0)`` names, each
    (D, N, H), or empty for zeros; ``peepholes``: per direction the LSTM's (3H,) ``P`` (ONNX's
    p_i, p_o, p_f), or None; ``input_forget``: the LSTM's attribute. Returns ``(y (L, N, D*H),
    finals)`` with each final state (D, N, H)."""
    op, order, acts = _cell(mode)
    D = len(weights)
    W = np.stack([_onnx_layout(w_ih, order, H) for w_ih, _, _, _ in weights])   # (D, G*H, H_in)
    R = np.stack([_onnx_layout(w_hh, order, H) for _, w_hh, _, _ in weights])   # (D, G*H, H)
    inputs = [x, g.const(W, "W"), g.const(R, "R")]
    if weights[0][2] is not None:
        B = np.stack([np.concatenate([_onnx_layout(b_ih, order, H), _onnx_layout(b_hh, order, H)])
                      for _, _, b_ih, b_hh in weights])                       # (D, 2*G*H): Wb then Rb
        inputs.append(g.const(B, "B"))
    else:
        inputs.append("")
    n_states = 2 if op == "LSTM" else 1
    inputs += [lengths or ""] + (list(init) or [""] * n_states)
    if peepholes is not None:
        inputs.append(g.const(np.stack(peepholes), "P"))                      # (D, 3H)
    attrs = dict(hidden_size=H, direction="bidirectional" if D == 2 else "forward", activations=list(acts) * D)
    if input_forget:
        attrs["input_forget"] = 1
    if "HardSigmoid" in acts:
        # one alpha / beta per activation: whichever way a runtime consumes the list (per
        # activation, or only for those that take one) HardSigmoid gets (1/6, 1/2)
        attrs["activation_alpha"] = [HARD_SIGMOID[0]] * (len(acts) * D)
        attrs["activation_beta"] = [HARD_SIGMOID[1]] * (len(acts) * D)
    if op == "GRU":
        attrs["linear_before_reset"] = 0 if "reset_before" in mode else 1
    while inputs[-1] == "":
        inputs.pop()                                                           # trailing optional inputs
    outs = g.op(op, *inputs, outputs=1 + n_states, **attrs)
    y = g.op("Transpose", outs[0], perm=[0, 2, 1, 3])                          # (L, D, N, H) -> (L, N, D, H)
    y = g.op("Reshape", y, g.ints(0, 0, -1))                                   # (L, N, D*H)
    return y, tuple(outs[1:])


def recurrent(g: Graph, rnn, x: str, lengths=None, state=()) -> tuple:
    """An rnnkit :class:`~rnnkit.nn.recurrent.RNNBase` over ``x`` (L, N, H_in): one operator a
    layer. ``state``: names of (D*layers, N, H) initial states, or empty for zeros. Returns
    ``(y (L, N, D*H), finals)``, finals (D*layers, N, H) like the module's."""
    D, H = rnn.num_directions, rnn.hidden_size
    if getattr(rnn, "proj_size", 0):
        raise UserError(f"ONNX export: an LSTM with proj_size={rnn.proj_size} has no ONNX counterpart (ONNX's LSTM "
                        f"operator has no projection of the hidden state)")
    if getattr(rnn, "zoneout", 0.0):
        raise UserError(f"ONNX export: zoneout={rnn.zoneout!r} has no ONNX counterpart (in evaluation it mixes each "
                        f"state with the previous one, which the RNN / LSTM / GRU operators cannot)")
    if getattr(rnn, "layer_norm", False) or getattr(rnn, "cell_clip", None):
        raise UserError(f"ONNX export: {'layer_norm' if rnn.layer_norm else f'cell_clip={rnn.cell_clip}'} has no ONNX "
                        f"counterpart (ONNX's LSTM / GRU have no normalisation, and its clip bounds the gates' "
                        f"pre-activations, not the cell state); peepholes and coupled_gates export")
    p, finals = rnn.params, []
    for layer in range(rnn.num_layers):
        weights = [(p[f"weight_ih_l{layer}{s}"], p[f"weight_hh_l{layer}{s}"], p.get(f"bias_ih_l{layer}{s}"),
                    p.get(f"bias_hh_l{layer}{s}")) for s in rnn.suffixes]
        peep = [p[f"peephole_weight_l{layer}{s}"] for s in rnn.suffixes] if getattr(rnn, "peepholes", False) else None
        coupled = getattr(rnn, "coupled_gates", False)
        if coupled:
            weights, peep = _coupled(weights, peep, H)
        init = state if rnn.num_layers == 1 else \
            [g.op("Slice", s, g.ints(layer * D), g.ints((layer + 1) * D), g.ints(0)) for s in state]
        x, f = recurrent_op(g, rnn.mode, x, weights, H, lengths, init, peep, input_forget=coupled)
        finals.append(f)
    if rnn.num_layers == 1:
        return x, finals[0]
    return x, tuple(g.op("Concat", *parts, axis=0) for parts in zip(*finals))


def _coupled(weights, peep, H):
    """A coupled-gate LSTM's three blocks (f, g, o) as ONNX's four: the i block is minus the f block
    (weights, biases and peephole), so i = sigmoid(-a_f) = 1 - f exactly whichever gate a
    runtime derives under ``input_forget=1`` (onnxruntime computes f = 1 - i; the spec does not say)."""
    def four(w):
        return None if w is None else np.concatenate([-w[:H], w])
    weights = [tuple(four(w) for w in ws) for ws in weights]
    peep = None if peep is None else [np.concatenate([-w[H:], w]) for w in peep]   # [p_o, p_f] -> [p_i, p_o, p_f]
    return weights, peep


def cell_step(g: Graph, cell, x: str, state: tuple) -> tuple:
    """One step of an rnnkit cell: ``x`` (N, H_in), ``state`` names (N, H) -> new state names (N, H)."""
    p = cell.params
    weights = [(p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"))]
    x = g.op("Unsqueeze", x, g.ints(0))                                         # (1, N, H_in)
    init = [g.op("Unsqueeze", s, g.ints(0)) for s in state]                     # (1, N, H)
    _, finals = recurrent_op(g, cell.mode, x, weights, cell.hidden_size, None, init)
    return tuple(g.op("Squeeze", f, g.ints(0)) for f in finals)


def _states(g: Graph, rnn, names, rows: int | str, N="N"):
    """Graph inputs for an initial state: ``names[0]`` (h) and, for an LSTM, ``names[1]`` (c)."""
    n = 2 if rnn.mode.startswith("lstm") else 1
    return tuple(g.input(names[k], rnn.dtype, [rows, N, rnn.hidden_size]) for k in range(n))


# -- the models ------------------------------------------------------------------------------------
def _module(rnn):
    """A bare RNN / LSTM / GRU: ``x``, ``lengths`` (N,) int32, ``h0`` [, ``c0``] -> ``y``, ``h_n`` [, ``c_n``]."""
    g = Graph(type(rnn).__name__.lower())
    H, rows = rnn.hidden_size, rnn.num_layers * rnn.num_directions
    axes = ["N", "L"] if rnn.batch_first else ["L", "N"]
    x = g.input("x", rnn.dtype, axes + [rnn.input_size])
    if rnn.batch_first:
        x = g.op("Transpose", x, perm=[1, 0, 2])                               # (N, L, H_in) -> (L, N, H_in)
    lengths = g.input("lengths", np.int32, ["N"])
    y, finals = recurrent(g, rnn, x, lengths, _states(g, rnn, ("h0", "c0"), rows))
    if rnn.batch_first:
        y = g.op("Transpose", y, perm=[1, 0, 2])
    g.output(y, "y", rnn.dtype, axes + [rnn.num_directions * H])
    for f, name in zip(finals, ("h_n", "c_n")):
        g.output(f, name, rnn.dtype, [rows, "N", H])
    return {"rnn": g}


def _charlm(model):
    rnn, V = model.rnn, model.config["vocab_size"]
    out = {}
    for name in ("sequence", "step"):
        g = Graph(f"charlm_{name}")
        if name == "sequence":
            ids = g.input("x", np.int64, ["L", "N"])
        else:
            ids = g.op("Unsqueeze", g.input("token", np.int64, ["N"]), g.ints(0))   # (1, N)
        state = _states(g, rnn, ("h0", "c0"), rnn.num_layers)
        y, finals = recurrent(g, rnn, g.embed(ids, model.embed), None, state)
        logits = g.linear(y, model.head)                                       # (L, N, V)
        if name == "sequence":
            g.output(logits, "logits", rnn.dtype, ["L", "N", V])
        else:
            g.output(g.op("Squeeze", logits, g.ints(0)), "logits", rnn.dtype, ["N", V])
        for f, s in zip(finals, ("h_n", "c_n")):
            g.output(f, s, rnn.dtype, [rnn.num_layers, "N", rnn.hidden_size])
        out[name] = g
    return out


def _classifier(model):
    rnn, C = model.rnn, model.config["n_classes"]
    g = Graph("classifier")
    x = g.input("x", rnn.dtype, [getattr(model, "length", "L"), "N", rnn.input_size])   # positions: one length
    lengths = g.input("lengths", np.int32, ["N"])
    scaler = model.config.get("scaler")
    if scaler is not None:                                                     # the training standardisation
        x = g.op("Div", g.op("Sub", x, g.const(scaler["mean"], "mean")), g.const(scaler["std"], "std"))
    y, finals = recurrent(g, rnn, x, lengths)                                  # (L, N, W)
    mask = g.mask(lengths, g.dim(x, 0))                                        # (L, N)
    if model.pooling == "last":
        # the final states are the last valid step's (forward) and t = 0's (reverse direction)
        h = g.op("Slice", finals[0], g.ints(-rnn.num_directions), g.ints(rnn.num_layers * rnn.num_directions),
                 g.ints(0))                                                     # (D, N, H)
        pooled = g.op("Reshape", g.op("Transpose", h, perm=[1, 0, 2]), g.ints(0, -1))   # (N, D*H)
    elif model.pooling == "mean":
        fmask = g.op("Unsqueeze", g.cast(mask, model.dtype), g.ints(2))         # (L, N, 1)
        total = g.op("ReduceSum", g.op("Mul", y, fmask), g.ints(0), keepdims=0)    # (N, W)
        n = g.op("Unsqueeze", g.cast(lengths, model.dtype), g.ints(1))          # (N, 1)
        pooled = g.op("Div", total, n)
    elif model.pooling == "max":                                               # opset 14: axes an attribute
        valid = g.op("Unsqueeze", mask, g.ints(2))                             # (L, N, 1)
        masked = g.op("Where", valid, y, g.const(np.float32(-np.inf), "minus_inf"))
        pooled = g.op("ReduceMax", masked, axes=[0], keepdims=0)               # (N, W)
    elif model.pooling == "positions":                                         # every step's outputs in order
        pooled = g.op("Reshape", g.op("Transpose", y, perm=[1, 0, 2]), g.ints(0, -1))   # (N, L*W)
    else:
        e = g.op("Squeeze", g.linear(y, model.score), g.ints(2))               # (L, N)
        a = g.op("Unsqueeze", g.masked_softmax(e, mask), g.ints(2))            # (L, N, 1)
        pooled = g.op("ReduceSum", g.op("Mul", a, y), g.ints(0), keepdims=0)   # (N, W)
    if model.fcn is not None:
        pooled = g.op("Concat", pooled, _conv_branch(g, model.fcn, x, mask, lengths), axis=1)   # (N, W + C_B)
    g.output(g.linear(pooled, model.head), "logits", rnn.dtype, ["N", C])
    return {"classifier": g}


def _conv_branch(g: Graph, branch, x: str, mask: str, lengths: str) -> str:
    """:class:`~rnnkit.nn.ConvBranch` in evaluation: per block Conv ('same' pads), the batch norm's
    running statistics folded into one scale and shift per channel, ReLU, zero past each length;
    then the mean over the valid steps. Channels-first inside: (N, C, L)."""
    from .functional.conv import same_padding

    fmask = g.op("Transpose", g.op("Unsqueeze", g.cast(mask, branch.dtype), g.ints(2)), perm=[1, 2, 0])  # (N, 1, L)
    h = g.op("Mul", g.op("Transpose", x, perm=[1, 2, 0]), fmask)                # (N, C_in, L), padded steps zero
    for i in range(len(branch.channels)):
        conv, bn = getattr(branch, f"conv{i}"), getattr(branch, f"bn{i}")
        a = g.op("Conv", h, g.const(conv.params["weight"], "conv_weight"), g.const(conv.params["bias"], "conv_bias"),
                 pads=list(same_padding(conv.kernel_size)))                    # (N, C_i, L)
        scale = bn.params["weight"] / np.sqrt(bn.buffers["running_var"] + bn.eps)
        shift = bn.params["bias"] - bn.buffers["running_mean"] * scale
        a = g.op("Add", g.op("Mul", a, g.const(scale[:, None], "bn_scale")), g.const(shift[:, None], "bn_shift"))
        h = g.op("Mul", g.op("Relu", a), fmask)
    total = g.op("ReduceSum", h, g.ints(2), keepdims=0)                         # (N, C_B)
    return g.op("Div", total, g.op("Unsqueeze", g.cast(lengths, branch.dtype), g.ints(1)))


def _sequence_out(g: Graph, net, x: str, lengths=None) -> str:
    """A :class:`~rnnkit.models.sequence.SequenceModel` on ``x`` (L, N, H_in): the head on every
    step (task 'sequence') or on each sequence's last valid step."""
    y, _ = recurrent(g, net.rnn, x, lengths)                                   # (L, N, W)
    if net.task == "sequence":
        return g.linear(y, net.head)
    if lengths is None:
        last = g.op("Squeeze", g.op("Slice", y, g.ints(-1), g.ints(np.iinfo(np.int64).max), g.ints(0)), g.ints(0))
    else:
        t = g.op("Sub", g.cast(lengths, np.int64), g.const(np.int64(1), "one", np.int64))
        idx = g.op("Expand", g.op("Unsqueeze", t, g.ints(0, 2)), g.op("Shape", y))   # (L, N, W) of lengths - 1
        last = g.op("Gather", g.op("GatherElements", y, idx, axis=0), g.const(np.int64(0), "zero", np.int64),
                    axis=0)                                                    # (N, W)
    return g.linear(last, net.head)


def _sequence(model):
    g = Graph("sequence")
    x = g.input("x", model.dtype, ["L", "N", model.rnn.input_size])
    lengths = g.input("lengths", np.int32, ["N"])
    out = _sequence_out(g, model, x, lengths)
    n_out = model.config["n_out"]
    g.output(out, "out", model.dtype, ["L", "N", n_out] if model.task == "sequence" else ["N", n_out])
    return {"sequence": g}


def _forecaster(model):
    if model.scaler is None:
        raise UserError("ONNX export: the forecaster has no scaler (it was never trained); train it first")
    if model.diff.log or model.diff.lags:
        raise UserError("ONNX export: expected a forecaster without --log / --difference / --seasonal-difference "
                        f"(the graph reads the raw window), got log={model.diff.log}, lags={list(model.diff.lags)}")
    g = Graph("forecaster")
    series = g.input("series", np.float64, [model.window, "N"])
    mean = g.const(model.scaler.mean, "mean", np.float64)
    std = g.const(model.scaler.std, "std", np.float64)
    z = g.op("Div", g.op("Sub", series, mean), std)                            # (window, N) scaled
    big = np.iinfo(np.int64).max
    steps = 1 if model.strategy == "direct" else model.horizon
    preds = []
    for k in range(steps):
        last = g.op("Slice", z, g.ints(-1), g.ints(big), g.ints(0))            # (1, N)
        x = g.op("Unsqueeze", g.cast(g.op("Sub", z, last), model.dtype), g.ints(2))  # (window, N, 1) float32
        out = g.cast(_sequence_out(g, model.net, x), np.float64)              # (N, n_out) float64
        pred = g.op("Add", out, g.op("Transpose", last, perm=[1, 0]))          # (N, n_out) + (N, 1)
        preds.append(pred)
        if k < steps - 1:                                                      # feed the prediction back
            z = g.op("Concat", g.op("Slice", z, g.ints(1), g.ints(big), g.ints(0)),
                     g.op("Transpose", pred, perm=[1, 0]), axis=0)
    pred = preds[0] if steps == 1 else g.op("Concat", *preds, axis=1)          # (N, horizon)
    g.output(g.op("Add", g.op("Mul", pred, std), mean), "forecast", np.float64, ["N", model.horizon])
    return {"forecaster": g}


def _tagger(model):
    g = Graph("tagger")
    words = g.input("words", np.int64, ["L", "N"])
    lengths = g.input("lengths", np.int32, ["N"])
    x = g.embed(words, model.word_embed)                                       # (L, N, E)
    if model.chars:
        chars = g.input("chars", np.int64, ["C", "M"])
        char_lengths = g.input("char_lengths", np.int32, ["M"])
        _, finals = recurrent(g, model.char_rnn, g.embed(chars, model.char_embed), char_lengths)
        Hc = model.char_rnn.hidden_size
        enc = g.op("Reshape", g.op("Transpose", finals[0], perm=[1, 0, 2]), g.ints(0, -1))   # (M, 2 Hc)
        # the tokens' (t, n) grid positions, time-major: the order of the batch's char columns
        pos = g.op("Transpose", g.op("NonZero", g.mask(lengths, g.dim(words, 0))), perm=[1, 0])   # (M, 2)
        shape = g.op("Concat", g.op("Shape", words), g.ints(2 * Hc), axis=0)
        zeros = g.op("ConstantOfShape", shape, value=g.onnx.numpy_helper.from_array(np.zeros(1, model.dtype)))
        x = g.op("Concat", x, g.op("ScatterND", zeros, pos, enc), axis=2)     # (L, N, E + 2 Hc)
    y, _ = recurrent(g, model.rnn, x, lengths)
    g.output(g.linear(y, model.head), "logits", model.dtype, ["L", "N", len(model.tag_vocab)])
    return {"tagger": g}


def _attention(g: Graph, att, q: str, K: str, mask: str) -> tuple:
    """``q`` (N, Hq), keys ``K`` (S, N, Hk), ``mask`` (S, N) -> context (N, Hk), weights (S, N)."""
    p = att.params
    if att.kind in ("dot", "general"):
        u = q if att.kind == "dot" else g.op("MatMul", q, g.const(p["weight"].T, "weight"))   # (N, Hk)
        e = g.op("ReduceSum", g.op("Mul", K, g.op("Unsqueeze", u, g.ints(0))), g.ints(2), keepdims=0)
    else:
        Hq = att.query_size
        Wq, Wk = (p["weight"][:, :Hq], p["weight"][:, Hq:]) if att.kind == "concat" else (p["weight_q"], p["weight_k"])
        pre = g.op("Add", g.op("MatMul", K, g.const(Wk.T, "weight_k")),
                   g.op("Unsqueeze", g.op("MatMul", q, g.const(Wq.T, "weight_q")), g.ints(0)))   # (S, N, A)
        if "bias" in p:
            pre = g.op("Add", pre, g.const(p["bias"], "bias"))
        e = g.op("MatMul", g.op("Tanh", pre), g.const(p["v"], "v"))           # (S, N)
    alpha = g.masked_softmax(e, mask)                                          # (S, N)
    ctx = g.op("ReduceSum", g.op("Mul", g.op("Unsqueeze", alpha, g.ints(2)), K), g.ints(0), keepdims=0)
    return ctx, alpha


def _seq2seq(model):
    dt, H, W = model.dtype, model.H, model.D * model.H
    lstm = model.cell_kind == "lstm"
    names = ("h", "c") if lstm else ("h",)
    enc_g = Graph("seq2seq_encoder")
    src = enc_g.input("src", np.int64, ["S", "N"])
    src_len = enc_g.input("src_len", np.int32, ["N"])
    enc, finals = recurrent(enc_g, model.encoder, enc_g.embed(src, model.src_embed), src_len)
    rows = model.encoder.num_layers * model.D
    h_n = enc_g.op("Slice", finals[0], enc_g.ints(rows - model.D), enc_g.ints(rows), enc_g.ints(0))  # top layer
    hcat = enc_g.op("Reshape", enc_g.op("Transpose", h_n, perm=[1, 0, 2]), enc_g.ints(0, -1))         # (N, D*H)
    s0 = enc_g.op("Tanh", enc_g.linear(hcat, model.bridge))                    # (N, H)
    zeros = enc_g.op("ConstantOfShape", enc_g.op("Shape", s0),
                     value=enc_g.onnx.numpy_helper.from_array(np.zeros(1, dt)))
    enc_g.output(enc, "enc", dt, ["S", "N", W])
    enc_g.output(s0, "h", dt, ["N", H])
    if lstm:
        enc_g.output(zeros, "c", dt, ["N", H])                                 # the decoder's c_0 is zero
    enc_g.output(zeros, "htilde", dt, ["N", H])                                # and so is its first htilde

    g = Graph("seq2seq_decoder")
    tok = g.input("token", np.int64, ["N"])
    state = tuple(g.input(n, dt, ["N", H]) for n in names)
    htilde = g.input("htilde", dt, ["N", H])
    K = g.input("enc", dt, ["S", "N", W])
    lens = g.input("src_len", np.int32, ["N"])
    inp = g.op("Concat", g.embed(tok, model.tgt_embed), htilde, axis=1)       # (N, E + H)
    state = cell_step(g, model.cell, inp, state)
    ctx, alpha = _attention(g, model.attn, state[0], K, g.mask(lens, g.dim(K, 0)))
    ht = g.op("Tanh", g.linear(g.op("Concat", ctx, state[0], axis=1), model.combine))   # (N, H)
    g.output(g.linear(ht, model.out), "logits", dt, ["N", len(model.tgt_vocab)])
    for name, value in zip(names, state):
        g.output(value, f"{name}_next", dt, ["N", H])
    g.output(ht, "htilde_next", dt, ["N", H])
    g.output(alpha, "alpha", dt, ["S", "N"])
    return {"encoder": enc_g, "decoder": g}


BUILDERS = {"charlm": _charlm, "classifier": _classifier, "forecaster": _forecaster, "tagger": _tagger,
            "seq2seq": _seq2seq, "sequence": _sequence, "rnn": _module}


# -- public functions --------------------------------------------------------------------------------
def graphs(model) -> dict:
    """``{graph name: onnx.ModelProto}`` for a task model (see the module docstring), each checked
    with ``onnx.checker``."""
    from . import __version__
    from .nn.recurrent import RNNBase

    kind = "rnn" if isinstance(model, RNNBase) else getattr(model, "kind", type(model).__name__)
    if kind not in BUILDERS:
        raise UserError(f"ONNX export: no ONNX graph for a {kind!r} model (exported: {', '.join(BUILDERS)})")
    if np.dtype(model.dtype) != np.float32:
        raise UserError(f"ONNX export: expected a float32 model, got {np.dtype(model.dtype)} (onnxruntime "
                        f"runs RNN, LSTM and GRU in float32)")
    built = BUILDERS[kind](model)
    config = {"kind": kind, "repr": repr(model)} if kind == "rnn" else model.config
    meta = {"rnnkit.version": __version__, "rnnkit.kind": kind, "rnnkit.config": json.dumps(config)}
    extra = getattr(model, "run_extra", None) or {}
    if "vocab" in extra:                                                       # the character LM's vocabulary
        meta["rnnkit.vocab"] = json.dumps(extra["vocab"])
    return {name: g.model({**meta, "rnnkit.graph": name}) for name, g in built.items()}


def paths_for(path, names) -> dict:
    """Where :func:`export` writes each graph: ``path`` for one, ``stem.<graph>.onnx`` for several."""
    path = os.fspath(path)
    if len(names) == 1:
        return {names[0]: path}
    stem, ext = os.path.splitext(path)
    return {name: f"{stem}.{name}{ext or '.onnx'}" for name in names}


def export(model, path, overwrite: bool = True) -> dict:
    """Write ``model``'s ONNX graphs (atomically); returns ``{graph name: path written}``. With
    ``overwrite=False`` an existing file at any of those paths is refused before anything is written."""
    return write(graphs(model), path, overwrite)


def write(built: dict, path, overwrite: bool = True) -> dict:
    """Write graphs built by :func:`graphs` where :func:`paths_for` puts them (atomically)."""
    from .io import atomic_write_bytes

    out = paths_for(path, list(built))
    for p in out.values():
        if os.path.isdir(p):
            raise UserError(f"ONNX export: {p} is a directory; expected a file name such as model.onnx")
        if os.path.isfile(p) and not overwrite:
            raise UserError(f"ONNX export: {p} exists; pass overwrite=True to replace it")
    for name, m in built.items():
        atomic_write_bytes(out[name], m.SerializeToString())
    return out
