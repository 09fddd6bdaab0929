"""Gate variants of the LSTM and GRU (issue 15): layer_norm, peepholes, coupled_gates, cell_clip.

Every variant and the legal combinations are held to a PyTorch reference written here step by step
(torch autograd, torch's own ``layer_norm``) at 1e-10 in float64 (outputs, final states, the input,
initial-state and every parameter gradient), with lengths, both directions and two layers, alone and
with the regularisers (their masks replayed), and to float64 central differences."""
import itertools

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.diagnostics import gate_statistics, jacobian_norms, recurrent_spectrum
from rnnkit.errors import UserError
from rnnkit.functional.layernorm import layer_norm, layer_norm_backward
from rnnkit.functional.recurrent import step_gates
from rnnkit.interop import to_torch
from rnnkit.models import CharLM
from rnnkit.nn.recurrent_options import StepStream

from .test_regularisation import OPTIONS, assert_finite_differences, compare, problem, run_ours, torch_reference

F = torch.nn.functional
VARIANTS = {
    "lstm-ln": ("lstm", dict(layer_norm=True)),
    "lstm-peep": ("lstm", dict(peepholes=True)),
    "lstm-coupled": ("lstm", dict(coupled_gates=True)),
    "lstm-clip": ("lstm", dict(cell_clip=0.3)),
    "lstm-peep-coupled": ("lstm", dict(peepholes=True, coupled_gates=True)),
    "lstm-all": ("lstm", dict(layer_norm=True, peepholes=True, coupled_gates=True, cell_clip=0.4)),
    "lstm-hard-all": ("lstm", dict(layer_norm=True, peepholes=True, cell_clip=0.4, gate="hard_sigmoid")),
    "gru-ln": ("gru", dict(layer_norm=True)),
    "gru-hard-ln": ("gru", dict(layer_norm=True, gate="hard_sigmoid")),
}
# (layers, bidirectional, lengths, initial state)
LAYOUTS = [(1, False, None, True), (2, True, [5, 2, 4], False), (2, False, [3, 5, 1], True)]


def build(name, layers=2, bidirectional=True, seed=0, **options):
    """A float64 variant layer whose extra parameters are moved away from their initial 1 / 0."""
    family, kw = VARIANTS[name]
    cls = rnnkit.LSTM if family == "lstm" else rnnkit.GRU
    m = cls(3, 4, layers, bidirectional=bidirectional, dtype=np.float64, seed=seed, **kw, **options)
    rng = np.random.default_rng(seed + 100)
    for k, p in m.params.items():
        if k.startswith(("ln_", "peephole")):
            p += 0.4 * rng.standard_normal(p.shape)
    return m


def torch_variant_cell(v):
    """One step of the variant ``v`` in torch: the equations of :mod:`rnnkit.functional.variants`."""
    # (torch's F.hardsigmoid differentiates with a float32 1/6, so the hard gate is written out)
    sig = torch.sigmoid if v.gate == "sigmoid" else (lambda a: torch.clamp(a / 6 + 0.5, 0, 1))

    def ln(a, p, part, blocks):
        n = F.layer_norm(a.reshape(a.shape[0], blocks, -1), (a.shape[1] // blocks,), eps=1e-5).reshape(a.shape)
        return n * p[f"ln_{part}_weight"] + p[f"ln_{part}_bias"]

    def cell(mode, x, h, c, h_rec, W_ih, W_hh, b_ih, b_hh, **p):
        H, G = h.shape[1], v.n_gates
        gi, gh = x @ W_ih.T, h_rec @ W_hh.T
        if v.layer_norm:
            gi, gh = ln(gi, p, "ih", G), ln(gh, p, "hh", G)
        gi = gi if b_ih is None else gi + b_ih
        gh = gh if b_hh is None else gh + b_hh
        if v.family == "gru":
            r, z = sig(gi[:, :H] + gh[:, :H]), sig(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            return (1 - z) * n + z * h, None
        a = (gi + gh).chunk(G, dim=1)
        af, ag, ao = a if v.coupled_gates else a[1:]
        zero = torch.zeros(H, dtype=x.dtype)
        w = p.get("peephole_weight")
        if w is None:
            p_i = p_o = p_f = zero
        elif v.coupled_gates:
            p_i, p_o, p_f = zero, w[:H], w[H:]
        else:
            p_i, p_o, p_f = w[:H], w[H:2 * H], w[2 * H:]
        f = sig(af + p_f * c)
        i = 1 - f if v.coupled_gates else sig(a[0] + p_i * c)
        c_new = f * c + i * torch.tanh(ag)
        if v.cell_clip is not None:
            c_new = torch.clamp(c_new, -v.cell_clip, v.cell_clip)
        o = sig(ao + p_o * c_new)
        return o * torch.tanh(ln(c_new, p, "c", 1) if v.layer_norm else c_new), c_new

    return cell


# -- PyTorch reference ---------------------------------------------------------------------------

@pytest.mark.parametrize("layers,bidirectional,lengths,with_state", LAYOUTS, ids=["uni", "bi-len", "stack-len"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_matches_a_torch_reference(name, layers, bidirectional, lengths, with_state):
    m = build(name, layers, bidirectional, seed=layers)
    x, states, G, Gs = problem(m, with_state=with_state)
    masks, ours = run_ours(m, x, states, lengths, G, Gs)
    assert masks is None
    compare(ours, torch_reference(m, x, states, lengths, None, G, Gs, cell=torch_variant_cell(m.variant)))


LSTM_OPTIONS = dict(layer_norm=True, peepholes=True, coupled_gates=True, cell_clip=0.4)
SUBSETS = [dict((k, LSTM_OPTIONS[k]) for k in keys) for n in range(1, 5)
           for keys in itertools.combinations(LSTM_OPTIONS, n)]


@pytest.mark.parametrize("options", SUBSETS, ids=["+".join(o) for o in SUBSETS])
def test_every_lstm_combination_matches_torch(options):
    """All 15 non-empty subsets of the four LSTM options: two layers, bidirectional, lengths, initial state."""
    m = rnnkit.LSTM(3, 4, 2, bidirectional=True, dtype=np.float64, seed=5, **options)
    rng = np.random.default_rng(5)
    for k, p in m.params.items():
        if k.startswith(("ln_", "peephole")):
            p += 0.4 * rng.standard_normal(p.shape)
    x, states, G, Gs = problem(m)
    _, ours = run_ours(m, x, states, [5, 2, 4], G, Gs)
    compare(ours, torch_reference(m, x, states, [5, 2, 4], None, G, Gs, cell=torch_variant_cell(m.variant)))


@pytest.mark.parametrize("name", ["lstm-all", "gru-ln"])
def test_batch_first_is_the_transposed_time_major_layer(name):
    m, bf = build(name, seed=6), build(name, seed=6, batch_first=True)
    x = np.random.default_rng(0).standard_normal((5, 3, 3))
    y, _ = m(x, lengths=[5, 2, 4])
    y_bf, _ = bf(x.transpose(1, 0, 2), lengths=[5, 2, 4])
    np.testing.assert_array_equal(y_bf, y.transpose(1, 0, 2))
    dy = np.random.default_rng(1).standard_normal(y.shape)
    np.testing.assert_allclose(bf.backward(dy.transpose(1, 0, 2)), m.backward(dy).transpose(1, 0, 2), rtol=1e-12)
    for k in m.grads:
        np.testing.assert_allclose(bf.grads[k], m.grads[k], rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", ["lstm-all", "gru-ln", "lstm-peep"])
def test_composes_with_the_regularisers(name, training):
    """Recurrent / input / weight dropout and zoneout (masks replayed in torch) around a variant cell."""
    m = build(name, seed=4, **OPTIONS["all"])
    m.train(training)
    x, states, G, Gs = problem(m)
    masks, ours = run_ours(m, x, states, [5, 2, 4], G, Gs)
    assert (masks is not None) and (masks[0].step is not None)     # zoneout's expectation in evaluation
    compare(ours, torch_reference(m, x, states, [5, 2, 4], masks, G, Gs, cell=torch_variant_cell(m.variant)))


# -- finite differences --------------------------------------------------------------------------

FD = [(name, 2, True, [4, 1, 3], {}) for name in sorted(VARIANTS)]
FD += [(name, 1, False, None, {}) for name in ("lstm-all", "gru-ln")]
FD += [("lstm-all", 2, True, [4, 2, 3], OPTIONS["all"]), ("gru-ln", 2, False, [4, 2, 3], OPTIONS["all"])]


@pytest.mark.parametrize("name,layers,bidirectional,lengths,options", FD,
                         ids=[f"{n}-{k}layer-{'bi' if b else 'uni'}{'-len' if le else ''}{'-reg' if o else ''}"
                              for n, k, b, le, o in FD])
def test_finite_differences(name, layers, bidirectional, lengths, options):
    assert_finite_differences(build(name, layers, bidirectional, seed=3, **options), lengths)


def test_layer_norm_function_against_torch():
    rng = np.random.default_rng(0)
    a, g, b, dy = rng.standard_normal((2, 3, 8)), rng.standard_normal(8), rng.standard_normal(8), \
        rng.standard_normal((2, 3, 8))
    y, cache = layer_norm(a, g, b, blocks=2)
    da, dg, db = layer_norm_backward(dy, cache, g)
    at, gt, bt = (torch.tensor(v, requires_grad=True) for v in (a, g, b))
    yt = F.layer_norm(at.reshape(2, 3, 2, 4), (4,), eps=1e-5).reshape(2, 3, 8) * gt + bt
    (yt * torch.tensor(dy)).sum().backward()
    for ours, theirs in ((y, yt.detach()), (da, at.grad), (dg, gt.grad), (db, bt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-13)


# -- structure, modes, state dicts ----------------------------------------------------------------

def test_parameters_names_shapes_and_initial_values():
    m = rnnkit.LSTM(3, 4, 2, bidirectional=True, layer_norm=True, peepholes=True, coupled_gates=True, seed=0)
    sd = m.state_dict()
    assert sd["weight_ih_l0"].shape == (12, 3) and sd["weight_hh_l1_reverse"].shape == (12, 4)   # f, g, o
    for sfx in ("_l0", "_l1", "_l0_reverse", "_l1_reverse"):
        np.testing.assert_array_equal(sd["ln_ih_weight" + sfx], np.ones(12))
        np.testing.assert_array_equal(sd["ln_hh_bias" + sfx], np.zeros(12))
        np.testing.assert_array_equal(sd["ln_c_weight" + sfx], np.ones(4))
        np.testing.assert_array_equal(sd["peephole_weight" + sfx], np.zeros(8))            # p_o, p_f
    assert rnnkit.LSTM(3, 4, peepholes=True).params["peephole_weight_l0"].shape == (12,)   # p_i, p_o, p_f
    assert set(rnnkit.GRU(3, 4, layer_norm=True).params) == {
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "ln_ih_weight_l0", "ln_ih_bias_l0",
        "ln_hh_weight_l0", "ln_hh_bias_l0"}
    assert "layer_norm=True, peepholes=True, coupled_gates=True" in repr(m)
    cfb = rnnkit.LSTM(3, 4, coupled_gates=True, forget_bias=2.0)
    np.testing.assert_array_equal(cfb.params["bias_ih_l0"][:4], 2.0)     # the f block is the first of three


def test_zero_peepholes_are_the_plain_lstm_and_defaults_stay_fused():
    plain = rnnkit.LSTM(3, 4, 2, dtype=np.float64, seed=1)
    peep = rnnkit.LSTM(3, 4, 2, dtype=np.float64, seed=1, peepholes=True)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    np.testing.assert_allclose(peep(x)[0], plain(x)[0], rtol=1e-13, atol=1e-15)
    assert plain.variant is None and plain.ops.fused and not peep.ops.fused


@pytest.mark.parametrize("name", ["lstm-all", "gru-ln"])
def test_evaluation_equals_training_without_regularisers_and_round_trips(name, tmp_path):
    m = build(name, seed=2)
    x = np.random.default_rng(1).standard_normal((5, 3, 3))
    y_train, _ = m(x, lengths=[5, 3, 4])
    m.eval()
    y_eval, _ = m(x, lengths=[5, 3, 4])
    np.testing.assert_array_equal(y_train, y_eval)
    other = build(name, seed=9)
    other.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(other.eval()(x, lengths=[5, 3, 4])[0], y_eval)
    with pytest.raises(ValueError, match="missing keys.*ln_"):
        other.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("ln_")})


def test_clip_acts_and_bounds_the_cell_state():
    m = build("lstm-clip", layers=1, bidirectional=False, seed=0)
    m.params["weight_ih_l0"] *= 8                       # drive the cell state past the clip
    x = np.random.default_rng(0).standard_normal((6, 3, 3))
    _, (h, c) = m(x)
    inside = np.stack([s.inside for s in m._cache[0][0].steps])
    assert np.abs(c).max() <= 0.3 and (~inside).any() and inside.any()


def test_coupled_gates_and_diagnostics_see_i_as_one_minus_f():
    m = build("lstm-peep-coupled", layers=1, bidirectional=False)
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    m(x)
    gates = step_gates(m.ops, m._cache[0][0].steps[2])
    np.testing.assert_allclose(gates["i"], 1 - gates["f"], rtol=0, atol=1e-15)
    m.clear_cache()
    m.record_hidden_grads = True
    m(x)
    m.backward(np.random.default_rng(1).standard_normal((4, 2, 4)))
    assert m.hidden_grads[(0, 0)].shape == (4, 2, 4) and np.isfinite(m.hidden_grads[(0, 0)]).all()
    norms = jacobian_norms(m, x)
    assert norms.shape == (4,) and np.isfinite(norms).all() and norms[-1] > 0
    assert [r["gate"] for r in recurrent_spectrum(m)] == ["f", "g", "o"]
    stats = gate_statistics(m, x)
    assert {r["gate"] for r in stats} == {"i", "f", "g", "o"}


def test_stream_and_sampling_step_through_forward():
    from rnnkit.data.text import CharVocab

    text = "the quick brown fox jumps over the lazy dog. " * 4
    vocab = CharVocab.from_text(text)
    model = CharLM(len(vocab), 8, 12, 2, "lstm", seed=0, dtype=np.float64, layer_norm=True, peepholes=True,
                   cell_clip=2.0)
    s = model.rnn.stream(2)
    assert isinstance(s, StepStream)
    x = np.random.default_rng(0).standard_normal((3, 2, 8))
    ys = [s.step(x[t]).copy() for t in range(3)]
    y, (h, c) = model.rnn(x)
    np.testing.assert_allclose(np.stack(ys), y, rtol=1e-12)
    np.testing.assert_allclose(s.state[1], c, rtol=1e-12)
    assert len(model.sample(vocab, length=5, rng=0)) == 5
    with pytest.raises(UserError, match="layer_norm"):
        to_torch(model)


def test_illegal_combinations_are_one_line():
    cases = [
        (lambda: rnnkit.LSTM(3, 4, proj_size=2, layer_norm=True), "not implemented with proj_size"),
        (lambda: rnnkit.LSTM(3, 4, peepholes=True, recompute=2), "recompute: not with .*nor with the gate variants"),
        (lambda: rnnkit.RNN(3, 4, layer_norm=True), "layer_norm is not an option of 'rnn_tanh'"),
        (lambda: rnnkit.GRU(3, 4, peepholes=True, cell_clip=1.0), "peepholes, cell_clip are not an option of 'gru'"),
        (lambda: rnnkit.GRU(3, 4, reset_after=False, layer_norm=True), "reset_after=True"),
        (lambda: rnnkit.LSTM(3, 4, cell_clip=0), "cell_clip: expected a positive number"),
        (lambda: rnnkit.LSTM(3, 4, cell_clip=float("inf")), "cell_clip: expected a positive number"),
        (lambda: rnnkit.LSTM(3, 4, layer_norm="yes"), "layer_norm: expected True or False, got 'yes'"),
    ]
    for make, match in cases:
        with pytest.raises(ValueError, match=match) as e:
            make()
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="stream"):
        from rnnkit.nn.stream import Stream
        Stream(rnnkit.LSTM(3, 4, peepholes=True))


# -- the command line ------------------------------------------------------------------------------

def test_train_saves_reloads_and_samples(tmp_path, capsys):
    from rnnkit.cli import main

    (tmp_path / "t.txt").write_text("the quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    common = ["train", str(tmp_path / "t.txt"), "--out", str(tmp_path / "run"), "--hidden", "8", "--layers", "2",
              "--embed", "4", "--seq-len", "8", "--batch-size", "2", "--eval-every", "3", "--no-progress"]
    flags = ["--layer-norm", "--peepholes", "--coupled-gates", "--cell-clip", "2.5"]
    assert main(common + ["--steps", "3"] + flags) == 0
    model = rnnkit.load(tmp_path / "run")
    assert (model.rnn.layer_norm, model.rnn.peepholes, model.rnn.coupled_gates, model.rnn.cell_clip) == \
        (True, True, True, 2.5)
    assert model.rnn.params["weight_ih_l1"].shape == (24, 8) and "rnn.ln_c_bias_l1" in model.state_dict()
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "run"), "--length", "12"]) == 0
    assert len(capsys.readouterr().out.splitlines()[0]) >= 12
    assert main(common + ["--steps", "4", "--resume"]) == 0                 # the options come from the run
    assert main(common + ["--steps", "5", "--resume", "--engine", "torch"]) == 2
    assert "--layer-norm, --peepholes, --coupled-gates, --cell-clip" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "t.txt"), "--out", str(tmp_path / "bad"), "--cell", "gru",
                 "--coupled-gates", "--steps", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "coupled_gates is not an option of 'gru'" in err and err.count("\n") == 1


def test_experiment_vanishing_compares_variants_by_name(tmp_path, capsys):
    import csv
    import json

    from rnnkit.cli import main

    out = tmp_path / "v"
    cells = "lstm,lstm-ln,gru-ln,lstm-peep-coupled"
    assert main(["experiment", "vanishing", "--task", "adding", "--T", "8", "--cells", cells, "--steps", "4",
                 "--eval-every", "4", "--flow-every", "2", "--n-test", "20", "--hidden", "6", "--out", str(out),
                 "--no-progress"]) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["cell"] for r in rows] == cells.split(",")
    runs = json.load(open(out / "runs.json"))
    flows = [np.array(r["flow"]) for r in runs]
    assert all(f.shape == (3, 8) and np.isfinite(f).all() for f in flows)
    assert not np.allclose(flows[0], flows[1])                  # layer norm changes the gradient flow
    capsys.readouterr()
    for bad in ("gru-peep", "rnn-ln", "lstm-ln-ln"):
        with pytest.raises(SystemExit) as e:
            main(["experiment", "vanishing", "--cells", bad, "--out", str(tmp_path / "x")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and "variant suffixes" in err and len(err.strip().splitlines()) == 1


# -- ONNX export -----------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [dict(peepholes=True), dict(coupled_gates=True),
                                     dict(peepholes=True, coupled_gates=True, bias=False)],
                         ids=["peep", "coupled", "both-nobias"])
def test_onnx_export_of_peepholes_and_coupled_gates(options):
    """ONNX's P input and input_forget=1 (the i block written as minus the f block), on onnxruntime."""
    pytest.importorskip("onnxruntime")
    from .test_onnx import LENGTHS, close, sessions

    m = rnnkit.LSTM(3, 4, 2, bidirectional=True, seed=1, **options)
    rng = np.random.default_rng(0)
    for k, p in m.params.items():
        if k.startswith("peephole"):
            p[...] = rng.standard_normal(p.shape)
    N = len(LENGTHS)
    x = 2 * rng.standard_normal((5, N, 3)).astype(np.float32)
    h0, c0 = (rng.standard_normal((4, N, 4)).astype(np.float32) for _ in range(2))
    y, (h, c) = m(x, (h0, c0), lengths=LENGTHS)
    m.clear_cache()
    got = sessions(m)["rnn"](x=x, lengths=LENGTHS.astype(np.int32), h0=h0, c0=c0)
    close(got["y"], y), close(got["h_n"], h), close(got["c_n"], c)


def test_onnx_refuses_layer_norm_and_cell_clip_in_one_line():
    import rnnkit.onnx as rx

    for m, what in ((rnnkit.GRU(3, 4, layer_norm=True), "layer_norm"), (rnnkit.LSTM(3, 4, cell_clip=1.0), "cell_clip")):
        with pytest.raises(UserError, match=f"ONNX export: {what}") as e:
            rx.graphs(m)
        assert "\n" not in str(e.value)


def test_keras_refuses_the_variants_in_one_line():
    from rnnkit.keras import to_keras                                # refused before Keras is imported

    with pytest.raises(UserError, match="to_keras: peepholes, cell_clip: Keras's LSTM") as e:
        to_keras(rnnkit.LSTM(3, 4, peepholes=True, cell_clip=1.0))
    assert "\n" not in str(e.value)
