"""The recurrent layers' initialisation and regularisation options: recurrent_init, forget_bias,
recurrent_dropout, input_dropout, zoneout, weight_dropout.

Every stochastic option is held to a PyTorch reference written here (the cell equations, the masks
passed in) at 1e-10 in float64, outputs, final states and every gradient, and to float64 central
differences; the masks are replayed by restoring the module's generator before each call."""
import itertools

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import io, kernels
from rnnkit.errors import UserError
from rnnkit.functional import init
from rnnkit.interop import to_torch
from rnnkit.models import CharLM
from rnnkit.nn.recurrent_options import StepStream

from .helpers import assert_close, numeric_grad, sample_indices

F = torch.nn.functional
CELLS = {
    "rnn_tanh": lambda *a, **k: rnnkit.RNN(*a, nonlinearity="tanh", **k),
    "lstm": rnnkit.LSTM,
    "gru": rnnkit.GRU,
    "gru_reset_before": lambda *a, **k: rnnkit.GRU(*a, reset_after=False, **k),
}
OPTIONS = {
    "recurrent": dict(recurrent_dropout=0.4),
    "input": dict(input_dropout=0.3),
    "zoneout": dict(zoneout=0.3),
    "weight": dict(weight_dropout=0.4),
    "all": dict(recurrent_dropout=0.3, input_dropout=0.2, zoneout=0.25, weight_dropout=0.3),
}
# (layers, bidirectional, lengths, initial state)
LAYOUTS = [(1, False, None, True), (2, True, [5, 2, 4], False), (2, False, [3, 5, 1], True)]


def build(cell, options, layers=2, bidirectional=True, seed=0, **kw):
    options = dict(options)
    if cell == "lstm" and options.get("zoneout"):
        options["zoneout"] = (options["zoneout"], options["zoneout"] / 2)     # c gets its own
    return CELLS[cell](3, 4, layers, bidirectional=bidirectional, dtype=np.float64, seed=seed, **options, **kw)


def problem(m, L=5, N=3, with_state=True, seed=1):
    rng = np.random.default_rng(seed)
    rows, n = m.num_layers * m.num_directions, m.ops.n_states
    x = rng.standard_normal((L, N, m.input_size))
    states = [0.5 * rng.standard_normal((rows, N, m.hidden_size)) for _ in range(n)] if with_state else None
    G = rng.standard_normal((L, N, m.num_directions * m.hidden_size))
    Gs = [rng.standard_normal((rows, N, m.hidden_size)) for _ in range(n)]
    return x, states, G, Gs


def pack(m, parts):
    return None if parts is None else (tuple(parts) if m.ops.n_states == 2 else parts[0])


def run_ours(m, x, states, lengths, G, Gs):
    """Forward and backward of loss = sum(G * y) + sum(Gs * finals); returns the masks it drew too."""
    rng_state = m.rng.bit_generator.state
    masks = m.draw_masks(*x.shape[:2])
    m.rng.bit_generator.state = rng_state            # forward draws the same masks again
    m.zero_grad()
    y, final = m(x, pack(m, states), lengths=lengths)
    out = m.backward(G, pack(m, Gs))
    dx, dstate = out if states is not None else (out, None)
    finals = final if m.ops.n_states == 2 else (final,)
    dstates = None if dstate is None else (dstate if m.ops.n_states == 2 else (dstate,))
    return masks, {"y": y, "finals": finals, "dx": dx, "dstate": dstates,
                   "grads": {k: v.copy() for k, v in m.grads.items()}}


# -- the PyTorch reference: the cell equations written out, the masks passed in ------------------

def torch_cell(mode, x, h, c, h_rec, W_ih, W_hh, b_ih, b_hh):
    """One step of ``mode`` with ``h_rec`` (h_{t-1}, masked by recurrent dropout) in the recurrent products."""
    gi = x @ W_ih.T + (0 if b_ih is None else b_ih)
    bh = 0 if b_hh is None else b_hh
    H = h.shape[1]
    if mode == "rnn_tanh":
        return torch.tanh(gi + h_rec @ W_hh.T + bh), None
    if mode == "lstm":
        i, f, g, o = (gi + h_rec @ W_hh.T + bh).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    if mode == "gru":
        gh = h_rec @ W_hh.T + bh
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1 - z) * n + z * h, None                       # the carried h is not masked
    bh = torch.zeros(3 * H, dtype=x.dtype) if b_hh is None else b_hh   # GRU(reset_after=False)
    rz = torch.sigmoid(gi[:, :2 * H] + h_rec @ W_hh[:2 * H].T + bh[:2 * H])
    r, z = rz[:, :H], rz[:, H:]
    n = torch.tanh(gi[:, 2 * H:] + (r * h_rec) @ W_hh[2 * H:].T + bh[2 * H:])
    return (1 - z) * n + z * h, None


def tensor(a):
    return None if a is None else torch.from_numpy(np.asarray(a))


def torch_reference(m, x, states, lengths, masks, G, Gs, cell=torch_cell):
    """The whole stacked, bidirectional, packed layer in torch, given rnnkit's masks (None: no
    regularisation drawn). A padded step carries the state and outputs zero; the reverse direction
    walks t = L-1 .. 0, so each sequence starts from its own last step. ``cell`` is one step (a gate
    variant's gets its extra parameters as keywords, by their names without the layer suffix)."""
    L, N = x.shape[:2]
    D, mode = m.num_directions, m.ops.name
    lstm = m.ops.n_states == 2
    params = {k: torch.tensor(v, requires_grad=True) for k, v in m.params.items()}
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states] if states is not None else None
    valid = torch.ones(L, N, 1, dtype=torch.bool) if lengths is None else \
        (torch.arange(L)[:, None] < torch.tensor(lengths)[None, :])[:, :, None]
    inp, finals = xt, [[None] * (m.num_layers * D) for _ in range(2 if lstm else 1)]
    for layer in range(m.num_layers):
        outs = []
        for d, sfx in enumerate(m.suffixes):
            row = layer * D + d
            lm = masks[row] if masks is not None else None
            W_ih, W_hh = params[f"weight_ih_l{layer}{sfx}"], params[f"weight_hh_l{layer}{sfx}"]
            b_ih, b_hh = params.get(f"bias_ih_l{layer}{sfx}"), params.get(f"bias_hh_l{layer}{sfx}")
            extra = {n: params[f"{n}_l{layer}{sfx}"] for n in (m.variant.param_shapes(m.hidden_size) if m.variant
                                                                 else ())}
            xi = inp if lm is None or lm.input is None else inp * tensor(lm.input)
            if lm is not None and lm.weight is not None:
                W_hh = W_hh * tensor(lm.weight)
            rec = None if lm is None or lm.step is None else tensor(lm.step.rec)
            zone = None if lm is None or lm.step is None else lm.step.zone
            zeros = torch.zeros(N, m.hidden_size, dtype=torch.float64)
            h = st[0][row] if st is not None else zeros
            c = (st[1][row] if st is not None else zeros) if lstm else None
            ys = [None] * L
            for t in (range(L) if d == 0 else range(L - 1, -1, -1)):
                h_new, c_new = cell(mode, xi[t], h, c, h if rec is None else h * rec, W_ih, W_hh, b_ih, b_hh,
                                    **extra)
                if zone is not None:
                    dz = [None if z is None else (tensor(z[t]) if isinstance(z, np.ndarray) else z) for z in zone]
                    if dz[0] is not None:
                        h_new = dz[0] * h + (1 - dz[0]) * h_new
                    if lstm and dz[1] is not None:
                        c_new = dz[1] * c + (1 - dz[1]) * c_new
                h = torch.where(valid[t], h_new, h)
                c = torch.where(valid[t], c_new, c) if lstm else None
                ys[t] = h * valid[t]
            outs.append(torch.stack(ys))
            finals[0][row] = h
            if lstm:
                finals[1][row] = c
        inp = torch.cat(outs, dim=2)
    finals = [torch.stack(f) for f in finals]
    loss = (inp * torch.tensor(G)).sum() + sum((f * torch.tensor(g)).sum() for f, g in zip(finals, Gs))
    loss.backward()
    return {"y": inp.detach().numpy(), "finals": tuple(f.detach().numpy() for f in finals), "dx": xt.grad.numpy(),
            "dstate": None if st is None else tuple(s.grad.numpy() for s in st),
            "grads": {k: p.grad.numpy() for k, p in params.items()}}


def compare(a, b):
    assert_close(a["y"], b["y"], np.float64, "output")
    for i, (p, q) in enumerate(zip(a["finals"], b["finals"])):
        assert_close(p, q, np.float64, f"final state {i}")
    assert_close(a["dx"], b["dx"], np.float64, "input gradient")
    if b["dstate"] is not None:
        for i, (p, q) in enumerate(zip(a["dstate"], b["dstate"])):
            assert_close(p, q, np.float64, f"initial state gradient {i}")
    for k in b["grads"]:
        assert_close(a["grads"][k], b["grads"][k], np.float64, k)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("layers,bidirectional,lengths,with_state", LAYOUTS, ids=["uni", "bi-len", "stack-len"])
@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_matches_a_torch_reference_with_the_same_masks(cell, option, layers, bidirectional, lengths, with_state,
                                                       training):
    m = build(cell, OPTIONS[option], layers, bidirectional, seed=layers)
    m.train(training)
    x, states, G, Gs = problem(m, with_state=with_state)
    masks, ours = run_ours(m, x, states, lengths, G, Gs)
    if training:
        assert masks is not None and all(mk.step is not None or mk.input is not None or mk.weight is not None
                                         for mk in masks)
    compare(ours, torch_reference(m, x, states, lengths, masks, G, Gs))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_input_and_weight_dropout_keep_the_fast_loop(backend, cell):
    """They only change what the fused loop is given; both backends agree with the reference."""
    m = build(cell, dict(input_dropout=0.3, weight_dropout=0.4))
    x, states, G, Gs = problem(m)
    with kernels.use(backend):
        m(x, pack(m, states), lengths=[5, 2, 4])
        fused = hasattr(m._cache[0][0].steps, "layer_backward")       # the fast loop's buffers
        assert fused == (kernels.backend() == "numba" and m.ops.fused)
        m.clear_cache()
        masks, ours = run_ours(m, x, states, [5, 2, 4], G, Gs)
    compare(ours, torch_reference(m, x, states, [5, 2, 4], masks, G, Gs))


# -- finite differences, masks held fixed --------------------------------------------------------

FD = [(cell, option, 2, True, [4, 1, 3]) for cell in sorted(CELLS) for option in sorted(OPTIONS)]
FD += [(cell, "all", 1, False, None) for cell in sorted(CELLS)]


@pytest.mark.parametrize("cell,option,layers,bidirectional,lengths", FD,
                         ids=lambda v: "len" if isinstance(v, list) else str(v))
def test_finite_differences(cell, option, layers, bidirectional, lengths):
    assert_finite_differences(build(cell, OPTIONS[option], layers, bidirectional, seed=3), lengths)


def assert_finite_differences(m, lengths):
    """Central differences for 3 entries of every parameter, the input and the initial states, with
    the module's masks replayed at every call, against its backward."""
    x, states, G, Gs = problem(m, L=4, seed=2)
    rng_state = m.rng.bit_generator.state

    def loss():
        m.rng.bit_generator.state = rng_state          # the same masks every call
        y, final = m(x, pack(m, states), lengths=lengths)
        finals = final if m.ops.n_states == 2 else (final,)
        m.clear_cache()
        return float((G * y).sum() + sum((g * f).sum() for g, f in zip(Gs, finals)))

    _, ours = run_ours(m, x, states, lengths, G, Gs)
    rng = np.random.default_rng(0)
    checks = [(k, p, ours["grads"][k]) for k, p in m.params.items()] + [("x", x, ours["dx"])]
    checks += [(f"state{i}", s, d) for i, (s, d) in enumerate(zip(states, ours["dstate"]))]
    for name, arr, grad in checks:
        for idx in sample_indices(arr.shape, 3, rng):
            assert grad[idx] == pytest.approx(numeric_grad(loss, arr, idx), rel=1e-6, abs=1e-8), (name, idx)


def test_finite_differences_zoneout_in_evaluation():
    m = build("lstm", dict(zoneout=0.4)).eval()
    x, states, G, Gs = problem(m, L=4)

    def loss():
        y, (h, c) = m(x, pack(m, states), lengths=[4, 2, 3])
        m.clear_cache()
        return float((G * y).sum() + (Gs[0] * h).sum() + (Gs[1] * c).sum())

    _, ours = run_ours(m, x, states, [4, 2, 3], G, Gs)
    for name in ("weight_hh_l0", "bias_ih_l1_reverse"):
        for idx in sample_indices(m.params[name].shape, 4, np.random.default_rng(1)):
            assert ours["grads"][name][idx] == pytest.approx(numeric_grad(loss, m.params[name], idx), rel=1e-6,
                                                             abs=1e-8)


# -- modes, seeds, defaults ----------------------------------------------------------------------

@pytest.mark.parametrize("option", ["recurrent", "input", "weight"])
def test_dropout_options_are_the_identity_in_evaluation(option):
    m, plain = build("lstm", OPTIONS[option], seed=5), build("lstm", {}, seed=5)
    m.load_state_dict(plain.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 3, 3))
    m.eval(), plain.eval()
    before = m.rng.bit_generator.state
    np.testing.assert_array_equal(m(x, lengths=[5, 2, 4])[0], plain(x, lengths=[5, 2, 4])[0])
    assert m.rng.bit_generator.state == before                  # nothing drawn
    m.train()
    assert not np.allclose(m(x)[0], plain(x)[0])


def test_zoneout_in_evaluation_is_the_expectation():
    """h_t = z h_{t-1} + (1 - z) h~_t: a one-layer GRU by hand in NumPy."""
    m = build("gru", dict(zoneout=0.3), layers=1, bidirectional=False).eval()
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    y, _ = m(x)
    p = m.params
    h = np.zeros((2, 4))
    for t in range(4):
        gi, gh = x[t] @ p["weight_ih_l0"].T + p["bias_ih_l0"], h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
        sig = lambda v: 1 / (1 + np.exp(-v))                     # noqa: E731
        r, z = sig(gi[:, :4] + gh[:, :4]), sig(gi[:, 4:8] + gh[:, 4:8])
        n = np.tanh(gi[:, 8:] + r * gh[:, 8:])
        h = 0.3 * h + 0.7 * ((1 - z) * n + z * h)
        np.testing.assert_allclose(y[t], h, rtol=1e-12, atol=1e-14)


def test_the_same_seed_gives_the_same_masks_and_defaults_draw_nothing():
    x = np.random.default_rng(0).standard_normal((5, 3, 3))
    a, b, c = (build("lstm", OPTIONS["all"], seed=s) for s in (7, 7, 8))
    c.load_state_dict(a.state_dict())
    ya, yb, yc = a(x)[0], b(x)[0], c(x)[0]
    np.testing.assert_array_equal(ya, yb)
    assert not np.allclose(ya, yc)                              # same weights, other masks
    np.testing.assert_array_equal(a(x)[0], b(x)[0])             # and the next call's masks agree too
    assert not np.allclose(a(x)[0], ya)
    plain = build("lstm", {}, seed=7)
    before = plain.rng.bit_generator.state
    plain(x)
    assert plain.draw_masks(5, 3) is None and plain.rng.bit_generator.state == before
    assert "recurrent_dropout" not in repr(plain) and "zoneout=(0.25, 0.125)" in repr(a)


def test_options_are_checked_in_one_line():
    cases = [(lambda: rnnkit.GRU(3, 4, zoneout=(0.1, 0.2)), "pair \\(z_h, z_c\\) for an LSTM"),
             (lambda: rnnkit.LSTM(3, 4, recurrent_dropout=1.0), "recurrent_dropout: expected a probability"),
             (lambda: rnnkit.LSTM(3, 4, proj_size=2, zoneout=0.1), "not implemented with proj_size"),
             (lambda: rnnkit.GRU(3, 4, forget_bias=1.0), "only LSTMs have a forget gate"),
             (lambda: rnnkit.LSTM(3, 4, bias=False, forget_bias=1.0), "no biases"),
             (lambda: rnnkit.LSTM(3, 4, recurrent_init="identity"), "IRNN"),
             (lambda: rnnkit.RNN(3, 4, recurrent_init="he"), "recurrent_init: expected one of")]
    for make, match in cases:
        with pytest.raises(ValueError, match=match):
            make()
    with pytest.warns(UserWarning, match="num_layers > 1"):
        rnnkit.LSTM(3, 4, dropout=0.2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CharLM(10, 4, 8, 1, dropout=0.2)           # its dropout also acts before the head
        m = rnnkit.LSTM(3, 4, proj_size=2, weight_dropout=0.3, input_dropout=0.2, dtype=np.float64)
    m(np.ones((3, 2, 3)))
    m.backward(np.ones((3, 2, 2)))


# -- initialisation --------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(12, 3), (4, 4), (3, 6)])
def test_orthogonal_is_torch_orthogonal_from_the_same_normal_matrix(shape):
    a = torch.empty(shape, dtype=torch.float64).normal_(0, 1, generator=torch.Generator().manual_seed(0))
    w = torch.empty(shape, dtype=torch.float64)
    torch.nn.init.orthogonal_(w, generator=torch.Generator().manual_seed(0))    # draws the same matrix
    q = init.orthogonalise(a.numpy())
    np.testing.assert_allclose(q, w.numpy(), rtol=0, atol=1e-12)
    small = min(shape)
    np.testing.assert_allclose(q.T @ q if shape[0] >= shape[1] else q @ q.T, np.eye(small), atol=1e-12)
    rng, again = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(init.orthogonal(shape, rng), init.orthogonalise(again.standard_normal(shape)))


def test_recurrent_init_and_forget_bias():
    plain = rnnkit.LSTM(3, 4, 2, bidirectional=True, dtype=np.float64, seed=1)
    m = rnnkit.LSTM(3, 4, 2, bidirectional=True, dtype=np.float64, seed=1, recurrent_init="orthogonal",
                    forget_bias=1.5)
    for k, p in m.params.items():
        if k.startswith("weight_hh"):
            assert p.shape == (16, 4)
            np.testing.assert_allclose(p.T @ p, np.eye(4), atol=1e-12)       # the whole (G*H, H) matrix
        elif k.startswith("bias"):
            np.testing.assert_array_equal(p[4:8], 1.5 if k.startswith("bias_ih") else 0.0)
            np.testing.assert_array_equal(np.delete(p, np.s_[4:8]), np.delete(plain.params[k], np.s_[4:8]))
        else:
            np.testing.assert_array_equal(p, plain.params[k])               # nothing else moves
    fb = rnnkit.LSTM(3, 4, dtype=np.float64, seed=1, forget_bias=1.0)
    assert "forget_bias=1.0" in repr(fb) and "recurrent_init='orthogonal'" in repr(m)
    irnn = rnnkit.RNN(3, 5, 2, nonlinearity="relu", dtype=np.float64, recurrent_init="identity")
    for layer in range(2):
        np.testing.assert_array_equal(irnn.params[f"weight_hh_l{layer}"], np.eye(5))
        assert not irnn.params[f"bias_ih_l{layer}"].any() and not irnn.params[f"bias_hh_l{layer}"].any()
    # init_recurrent with only a forget bias no longer redraws the weights
    before = {k: v.copy() for k, v in plain.params.items()}
    init.init_recurrent(plain, forget_bias=2.0)
    for k, v in before.items():
        if k.startswith("bias"):
            v[4:8] = 2.0 if k.startswith("bias_ih") else 0.0
        np.testing.assert_array_equal(plain.params[k], v, err_msg=k)


# -- models, checkpoints, the command line ---------------------------------------------------------

TEXT = "the quick brown fox jumps over the lazy dog. " * 40
REG = dict(recurrent_dropout=0.3, input_dropout=0.1, zoneout=[0.1, 0.05], weight_dropout=0.2)


def _trainer(out, steps=10):
    from rnnkit.data.text import CharVocab, StreamBatches
    from rnnkit.train import Trainer, TrainConfig

    vocab = CharVocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    model = CharLM(len(vocab), 8, 12, 2, "lstm", seed=3, forget_bias=1.0, recurrent_init="orthogonal", **REG)
    config = TrainConfig(steps=steps, lr=1e-2, stateful=True, eval_every=5, checkpoint_every=4, log_every=2, seed=3)
    return Trainer(model, StreamBatches(ids[:1500], 3, 8), StreamBatches(ids[1500:], 2, 8), config, out,
                   extra={"vocab": vocab.to_dict()}, progress=False)


def test_resume_with_regularisation_is_bit_for_bit(tmp_path):
    full = _trainer(tmp_path / "full")
    full.run()
    part = _trainer(tmp_path / "part")
    part.run(stop_at=4)
    resumed = _trainer(tmp_path / "part")
    resumed.restore(io.load(tmp_path / "part" / "checkpoint.npz"))
    resumed.run()
    for k, v in full.model.state_dict().items():
        np.testing.assert_array_equal(v, resumed.model.state_dict()[k], err_msg=k)
    back = rnnkit.load(tmp_path / "full", "checkpoint")
    assert {k: back.config[k] for k in REG} == REG and back.rnn.zoneout == (0.1, 0.05)
    assert back.config["forget_bias"] == 1.0 and back.config["recurrent_init"] == "orthogonal"


def test_zoneout_model_samples_through_the_step_stream():
    from rnnkit.data.text import CharVocab

    vocab = CharVocab.from_text(TEXT)
    model = CharLM(len(vocab), 8, 12, 1, "gru", seed=0, zoneout=0.2, dtype=np.float64)
    s = model.rnn.stream(2)
    assert isinstance(s, StepStream)
    x = np.random.default_rng(0).standard_normal((3, 2, 8))
    ys = [s.step(x[t]).copy() for t in range(3)]
    model.rnn.eval()
    y, h = model.rnn(x)
    np.testing.assert_allclose(np.stack(ys), y, rtol=1e-12)
    np.testing.assert_allclose(s.state, h, rtol=1e-12)
    assert len(model.sample(vocab, length=5, rng=0)) == 5
    with pytest.raises(UserError, match="zoneout"):
        to_torch(model)


def test_command_line_options(tmp_path, capsys):
    from rnnkit.cli import main

    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    common = ["train", str(tmp_path / "t.txt"), "--out", str(tmp_path / "run"), "--hidden", "8", "--layers", "1",
              "--embed", "4", "--seq-len", "8", "--batch-size", "2", "--eval-every", "3", "--no-progress"]
    flags = ["--recurrent-dropout", "0.2", "--input-dropout", "0.1", "--zoneout", "0.1,0.05", "--weight-dropout",
             "0.3", "--forget-bias", "1", "--recurrent-init", "orthogonal"]
    assert main(common + ["--steps", "3"] + flags) == 0
    model = rnnkit.load(tmp_path / "run")
    assert (model.rnn.recurrent_dropout, model.rnn.input_dropout, model.rnn.zoneout, model.rnn.weight_dropout,
            model.rnn.forget_bias, model.rnn.recurrent_init) == (0.2, 0.1, (0.1, 0.05), 0.3, 1.0, "orthogonal")
    capsys.readouterr()
    assert main(common + ["--steps", "4", "--resume", "--zoneout", "0.2"]) == 2
    err = capsys.readouterr().err
    assert "zoneout 0.2 (the run has [0.1, 0.05])" in err and err.count("\n") == 1
    assert main(common + ["--steps", "4", "--resume", "--recurrent-dropout", "0.2"]) == 0   # unchanged: fine
    assert main(common + ["--steps", "5", "--resume", "--engine", "torch"]) == 2
    assert "--engine torch: torch.nn's recurrent layers have no --recurrent-dropout" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "t.txt"), "--out", str(tmp_path / "bad"), "--cell", "gru",
                 "--forget-bias", "1", "--steps", "1", "--no-progress"]) == 2
    assert "only LSTMs have a forget gate" in capsys.readouterr().err


def test_every_option_combination_constructs_and_runs():
    """The legal combinations (all subsets) run forward and backward with lengths, both directions."""
    names = ["recurrent_dropout", "input_dropout", "zoneout", "weight_dropout"]
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    for k in range(len(names) + 1):
        for subset in itertools.combinations(names, k):
            m = rnnkit.LSTM(3, 4, 2, bidirectional=True, dtype=np.float64, seed=0, **{n: 0.2 for n in subset})
            y, _ = m(x, lengths=[4, 2])
            assert not y[2:, 1].any()                                        # padding outputs zero
            assert m.backward(np.ones_like(y)).shape == x.shape
