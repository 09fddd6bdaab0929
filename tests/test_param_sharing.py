"""Parameter sharing, groups and freezing (issue 15): a tied CharLM steps its one embedding matrix
once, exactly as PyTorch's tied model does; weight decay goes only where asked; frozen
parameters stay as they were and cost no weight-gradient product; all of it survives
state dicts, checkpoints, resume and the command line."""
import json

import numpy as np
import pytest
import torch

from rnnkit import io, kernels, optim
from rnnkit.cli import main
from rnnkit.data.text import CharVocab, StreamBatches
from rnnkit.functional.recurrent import CELLS, layer_backward, layer_forward
from rnnkit.models import CharLM
from rnnkit.train import Trainer, TrainConfig

from .helpers import numeric_grad

TEXT = "the quick brown fox jumps over the lazy dog. " * 40
T64 = {np.float32: torch.float32, np.float64: torch.float64}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors: torch's thread pool costs more than it saves (seconds on a busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class TorchTiedLM(torch.nn.Module):
    """The reference: embedding -> LSTM -> linear whose weight IS the embedding's Parameter."""

    def __init__(self, V, H, layers, dtype, tie=True):
        super().__init__()
        self.embed = torch.nn.Embedding(V, H, dtype=dtype)
        self.rnn = torch.nn.LSTM(H, H, layers, dtype=dtype)
        self.head = torch.nn.Linear(H, V, dtype=dtype)
        if tie:
            self.head.weight = self.embed.weight

    def forward(self, x):
        y, _ = self.rnn(self.embed(x))
        return self.head(y)


def tied_pair(dtype=np.float64, V=7, H=5, layers=1, seed=0, tie=True):
    ours = CharLM(V, H, H, layers, "lstm", dtype=dtype, seed=seed, tie_weights=tie)
    theirs = TorchTiedLM(V, H, layers, T64[dtype], tie)
    theirs.load_state_dict(ours.state_dict(format="torch"))
    return ours, theirs


def batch(V=7, L=6, N=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (L, N)), rng.integers(0, V, (L, N))


def torch_step(theirs, opt, x, y, clip):
    opt.zero_grad()
    logits = theirs(torch.tensor(x))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.tensor(y).reshape(-1))
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_([p for p in theirs.parameters() if p.requires_grad], clip)
    opt.step()
    return loss.item(), norm.item()


def ours_step(model, opt, x, y, clip):
    model.zero_grad()
    loss, _, _ = model.train_step((x, y))
    norm = optim.clip_grad_norm(model, clip)
    opt.step()
    return loss, norm


def assert_same_params(ours, theirs, rtol, atol):
    mine = ours.state_dict()
    for name, p in theirs.named_parameters():                 # torch's names: a tied one once
        np.testing.assert_allclose(mine[name], p.detach().numpy(), rtol=rtol, atol=atol, err_msg=name)
    assert set(mine) == {n for n, _ in theirs.named_parameters()}


OPTS = {
    "sgd": (lambda m: optim.SGD(m, lr=0.3, momentum=0.9, weight_decay=1e-2),
            lambda t: torch.optim.SGD(t.parameters(), lr=0.3, momentum=0.9, weight_decay=1e-2)),
    "adam": (lambda m: optim.Adam(m, lr=0.05, weight_decay=1e-2),
             lambda t: torch.optim.Adam(t.parameters(), lr=0.05, weight_decay=1e-2)),
    "adamw": (lambda m: optim.AdamW(m, lr=0.05, weight_decay=0.1),
              lambda t: torch.optim.AdamW(t.parameters(), lr=0.05, weight_decay=0.1)),
}


# -- sharing ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-5)])
@pytest.mark.parametrize("name", sorted(OPTS))
def test_tied_charlm_steps_the_shared_weight_once_like_torch(name, dtype, tol):
    """Five steps with clipping (below the norm in some steps, so it acts): every parameter equals
    PyTorch's tied model's, the tied matrix included."""
    ours, theirs = tied_pair(dtype, layers=2)
    make_ours, make_theirs = OPTS[name]
    o, t = make_ours(ours), make_theirs(theirs)
    clipped = 0
    for step in range(5):
        x, y = batch(seed=step)
        la, na = ours_step(ours, o, x, y, 0.2)
        lb, nb = torch_step(theirs, t, x, y, 0.2)
        assert la == pytest.approx(lb, rel=tol) and na == pytest.approx(nb, rel=tol)
        clipped += nb > 0.2
    assert clipped >= 2
    assert_same_params(ours, theirs, rtol=tol, atol=tol)
    assert ours.head.params["weight"] is ours.embed.params["weight"]


def test_stepping_a_shared_weight_twice_would_be_caught_and_is_refused():
    """The comparison above can fail: stepping the tied array under both of its names (the bug of
    issue 15) leaves PyTorch's parameters behind; an optimizer given both names refuses them."""
    ours, theirs = tied_pair()
    x, y = batch()
    ours.zero_grad()
    ours.train_step((x, y))
    for _, p, g in ours.named_parameters(remove_duplicate=False):
        p -= 0.3 * g                                # what a per-name loop without deduplication did
    torch_step(theirs, torch.optim.SGD(theirs.parameters(), lr=0.3), x, y, 1e9)
    with pytest.raises(AssertionError):
        assert_same_params(ours, theirs, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="params: expected each parameter once, got embed.weight and head.weight"):
        optim.SGD(list(ours.named_parameters(remove_duplicate=False)), lr=0.3)


def test_tied_gradient_is_the_sum_of_both_uses_and_matches_finite_differences():
    model, theirs = tied_pair(np.float64, layers=1)
    x, y = batch(L=4, N=2)
    model.zero_grad()
    model.train_step((x, y))
    grads = {n: g.copy() for n, _, g in model.named_parameters()}
    assert "head.weight" not in grads
    logits = theirs(torch.tensor(x))
    torch.nn.functional.cross_entropy(logits.reshape(-1, 7), torch.tensor(y).reshape(-1)).backward()
    np.testing.assert_allclose(grads["embed.weight"], theirs.embed.weight.grad.numpy(), rtol=1e-10, atol=1e-12)

    def loss():
        out = model.evaluate((x, y))[0] / y.size
        return out

    for name, p, _ in model.named_parameters():
        num = np.array([numeric_grad(loss, p, idx) for idx in np.ndindex(p.shape)]).reshape(p.shape)
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=name)
    # neither use alone: the embedding's scatter and the output layer's product both count
    untied = CharLM(7, 5, 5, 1, "lstm", dtype=np.float64, seed=0)
    untied.load_state_dict({**model.state_dict(), "head.weight": model.embed.params["weight"].copy()})
    untied.zero_grad()
    untied.train_step((x, y))
    np.testing.assert_allclose(grads["embed.weight"], untied.embed.grads["weight"] + untied.head.grads["weight"],
                               rtol=1e-12, atol=1e-14)


def test_tie_needs_matching_sizes_in_one_line():
    with pytest.raises(ValueError) as e:
        CharLM(7, 8, 16, 1, tie_weights=True)
    assert str(e.value) == ("tie_weights: expected embed_size equal to the output layer's input size "
                            "(hidden_size 16), got embed_size 8")


def test_state_dict_lists_a_shared_weight_once_and_loading_keeps_the_tie(tmp_path):
    a, _ = tied_pair(seed=0)
    b, _ = tied_pair(seed=5)
    sd = a.state_dict()
    assert "head.weight" not in sd and a.num_parameters() == sum(v.size for v in sd.values())
    b.load_state_dict(sd)
    assert b.head.params["weight"] is b.embed.params["weight"]
    b.embed.params["weight"][0, 0] = 42.0                       # modify one, the other changes
    assert b.head.params["weight"][0, 0] == 42.0
    io.save(tmp_path / "m.npz", {"model": a.state_dict()})
    c, _ = tied_pair(seed=9)
    c.load_state_dict(io.load(tmp_path / "m.npz")["model"])
    np.testing.assert_array_equal(c.head.params["weight"], a.embed.params["weight"])
    assert c.head.params["weight"] is c.embed.params["weight"]
    c.head.grads["weight"][1, 1] = 3.0
    assert c.embed.grads["weight"][1, 1] == 3.0                 # one gradient array too


def test_torch_state_dicts_of_tied_models_load_and_differing_copies_are_refused():
    ours, theirs = tied_pair(seed=2)
    fresh, _ = tied_pair(seed=3)
    fresh.load_state_dict(theirs.state_dict())                  # both names, one tensor
    np.testing.assert_array_equal(fresh.embed.params["weight"], ours.embed.params["weight"])
    bad = {k: v.clone() for k, v in theirs.state_dict().items()}
    bad["head.weight"] += 1
    with pytest.raises(ValueError, match="head.weight: expected the values of embed.weight, to which it is tied"):
        fresh.load_state_dict(bad)


def test_to_torch_and_back_keep_the_tie():
    from rnnkit.interop import from_torch, to_torch

    model, _ = tied_pair(seed=4)
    model.freeze("rnn.weight_hh_l0")
    twin = to_torch(model)
    assert twin.head.weight is twin.embed.weight
    assert [n for n, p in twin.named_parameters() if not p.requires_grad] == ["rnn.weight_hh_l0"]
    x, _ = batch()
    ref, _ = model(x)
    model.clear_cache()
    np.testing.assert_allclose(twin(torch.tensor(x))[0].detach().numpy(), ref, rtol=1e-10, atol=1e-12)
    back = from_torch(twin)
    assert back.config["tie_weights"] and back.head.params["weight"] is back.embed.params["weight"]
    assert back.frozen_names() == ["rnn.weight_hh_l0"]
    np.testing.assert_array_equal(back.embed.params["weight"], model.embed.params["weight"])


def test_torch_engine_keeps_the_tie_in_one_memory():
    """--engine torch: the twin's one tied Parameter is a view of rnnkit's one array, and a
    training step gives rnnkit's own gradients."""
    from rnnkit.distributed import DistributedCharLM

    ours = CharLM(7, 5, 5, 1, "lstm", seed=0, tie_weights=True)
    engine = DistributedCharLM(7, 5, 5, 1, "lstm", seed=0, tie_weights=True)
    assert engine.twin.head.weight is engine.twin.embed.weight
    assert np.shares_memory(engine.twin.head.weight.detach().numpy(), engine.embed.params["weight"])
    x, y = batch()
    for m in (ours, engine):
        m.zero_grad()
        m.train_step((x, y))
    for (n, _, g), (n2, _, g2) in zip(ours.named_parameters(), engine.named_parameters()):
        assert n == n2
        np.testing.assert_allclose(g2, g, rtol=2e-4, atol=1e-6, err_msg=n)


def test_onnx_export_of_a_tied_model_computes_the_same_logits():
    pytest.importorskip("onnxruntime")
    from .test_onnx import sessions

    model = CharLM(7, 5, 5, 1, "lstm", dtype=np.float32, seed=0, tie_weights=True)
    model.eval()
    x, _ = batch()
    zeros = {k: np.zeros((1, 3, 5), np.float32) for k in ("h0", "c0")}
    got = sessions(model)["sequence"](x=x, **zeros)
    ref, _ = model(x)
    np.testing.assert_allclose(got["logits"], ref, rtol=1e-5, atol=1e-5)


# -- groups -----------------------------------------------------------------------------
def test_no_decay_leaves_biases_alone_and_decays_the_rest():
    """With zero gradients AdamW's step is the decay alone: weights shrink by 1 - lr wd, biases not at all."""
    model, _ = tied_pair(layers=2)
    before = model.state_dict()
    opt = optim.AdamW(model, lr=0.1, weight_decay=0.5, no_decay="bias,norm")
    model.zero_grad()
    opt.step()
    after = model.state_dict()
    for name in before:
        want = before[name] if "bias" in name else before[name] * (1 - 0.1 * 0.5)
        np.testing.assert_allclose(after[name], want, rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", ["sgd", "adamw", "rmsprop", "adagrad"])
def test_groups_match_torch_param_groups(name):
    """Per-group lr and weight decay over four steps, against torch's param_groups."""
    ours, theirs = tied_pair(layers=1, tie=False)
    groups = [{"params": "rnn.*", "lr": 0.02, "weight_decay": 0.3}]
    cls, tcls, kw = {"sgd": (optim.SGD, torch.optim.SGD, {"momentum": 0.9}),
                     "adamw": (optim.AdamW, torch.optim.AdamW, {}),
                     "rmsprop": (optim.RMSprop, torch.optim.RMSprop, {"momentum": 0.5}),
                     "adagrad": (optim.Adagrad, torch.optim.Adagrad, {"lr_decay": 0.1})}[name]
    o = cls(ours, lr=0.05, weight_decay=0.1, groups=groups, no_decay="bias", **kw)
    named = dict(theirs.named_parameters())
    rnn_w = [p for n, p in named.items() if n.startswith("rnn.") and "bias" not in n]
    rnn_b = [p for n, p in named.items() if n.startswith("rnn.") and "bias" in n]
    rest_w = [p for n, p in named.items() if not n.startswith("rnn.") and "bias" not in n]
    rest_b = [p for n, p in named.items() if not n.startswith("rnn.") and "bias" in n]
    t = tcls([{"params": rnn_w, "lr": 0.02, "weight_decay": 0.3}, {"params": rnn_b, "lr": 0.02, "weight_decay": 0.0},
              {"params": rest_w}, {"params": rest_b, "weight_decay": 0.0}], lr=0.05, weight_decay=0.1, **kw)
    for step in range(4):
        x, y = batch(seed=step)
        ours_step(ours, o, x, y, 1.0)
        torch_step(theirs, t, x, y, 1.0)
    assert_same_params(ours, theirs, rtol=1e-10, atol=1e-12)


def test_no_decay_norm_covers_the_layer_norm_gains():
    model = CharLM(7, 6, 6, 1, "lstm", seed=0, layer_norm=True, peepholes=True)
    opt = optim.AdamW(model, lr=0.1, weight_decay=0.5, no_decay="bias,norm")
    undecayed = sorted(n for n, _, _ in model.named_parameters() if opt.settings(n)["weight_decay"] == 0)
    assert undecayed == sorted(["head.bias", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "rnn.ln_ih_weight_l0",
                                "rnn.ln_ih_bias_l0", "rnn.ln_hh_weight_l0", "rnn.ln_hh_bias_l0",
                                "rnn.ln_c_weight_l0", "rnn.ln_c_bias_l0"])


def test_group_lr_moves_with_the_schedule_in_proportion():
    model, _ = tied_pair()
    opt = optim.SGD(model, lr=1.0, groups=[{"params": ["head.bias"], "lr": 0.25}])
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert opt.settings("head.bias")["lr"] == 0.125 and opt.settings("embed.weight")["lr"] == 0.5


@pytest.mark.parametrize("groups,match", [
    ([{"params": "decoder.*", "lr": 0.1}], r"groups\[0\]: 'params' 'decoder.\*' selects no parameter"),
    ([{"params": "rnn.*", "beta": 0.1}], r"groups\[0\]: expected settings among lr, momentum"),
    ([{"params": "rnn.*", "weight_decay": -1}], r"groups\[0\] weight_decay: expected a number >= 0, got -1"),
    ([{"lr": 0.1}], r"groups\[0\]: expected a dict with 'params'"),
])
def test_bad_groups_are_one_line(groups, match):
    model, _ = tied_pair()
    with pytest.raises((ValueError, TypeError), match=match) as e:
        optim.SGD(model, lr=0.1, groups=groups)
    assert "\n" not in str(e.value)


# -- freezing ---------------------------------------------------------------------------
def test_frozen_parameters_match_torch_requires_grad_false():
    """Frozen: untouched (no weight decay either), out of the clipping norm; the rest as torch's."""
    ours, theirs = tied_pair(layers=2, tie=False)
    assert ours.freeze("embed.*,rnn.weight_ih_l1") == ["embed.weight", "rnn.weight_ih_l1"]
    theirs.embed.weight.requires_grad_(False)
    theirs.rnn.weight_ih_l1.requires_grad_(False)
    before = ours.state_dict()
    o = optim.AdamW(ours, lr=0.05, weight_decay=0.1)
    t = torch.optim.AdamW([p for p in theirs.parameters() if p.requires_grad], lr=0.05, weight_decay=0.1)
    for step in range(4):
        x, y = batch(seed=step)
        _, na = ours_step(ours, o, x, y, 0.3)
        _, nb = torch_step(theirs, t, x, y, 0.3)
        assert na == pytest.approx(nb, rel=1e-10)
    assert_same_params(ours, theirs, rtol=1e-10, atol=1e-12)
    after = ours.state_dict()
    for name in ("embed.weight", "rnn.weight_ih_l1"):
        np.testing.assert_array_equal(after[name], before[name])
    # the gradient products were skipped: the frozen gradients were never written
    assert not ours.embed.grads["weight"].any() and not ours.rnn.grads["weight_ih_l1"].any()
    assert ours.rnn.grads["weight_hh_l1"].any()
    ours.unfreeze("rnn.*")
    assert ours.frozen_names() == ["embed.weight"]


def test_unfreezing_later_matches_torch_per_parameter_adam_steps():
    """Gradual unfreezing: Adam's bias correction counts each parameter's own steps, as torch's
    (a parameter frozen for two steps starts its moments at t = 1 when it thaws)."""
    ours, theirs = tied_pair(layers=1, tie=False)
    ours.freeze("embed.*,rnn.weight_hh_l0")
    frozen = [theirs.embed.weight, theirs.rnn.weight_hh_l0]
    for p in frozen:
        p.requires_grad_(False)
    o = optim.Adam(ours, lr=0.05)
    t = torch.optim.Adam(theirs.parameters(), lr=0.05)
    for step in range(5):
        if step == 2:
            ours.unfreeze("*")
            for p in frozen:
                p.requires_grad_(True)
        x, y = batch(seed=step)
        ours_step(ours, o, x, y, 1e9)
        torch_step(theirs, t, x, y, 1e9)
    assert int(o.state["embed.weight"]["step"]) == 3 and int(o.state["head.weight"]["step"]) == 5
    assert_same_params(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_frozen_weights_skip_their_gradient_products(cell, backend):
    """``skip`` leaves the weight-gradient products out of ``layer_backward``'s result (not
    computed), on both time loops; every other gradient and dx are the unskipped ones."""
    ops, rng = CELLS[cell], np.random.default_rng(0)
    G = ops.n_gates
    x = rng.standard_normal((5, 2, 3))
    W_ih, W_hh = rng.standard_normal((G * 4, 3)) * 0.5, rng.standard_normal((G * 4, 4)) * 0.5
    b = rng.standard_normal(G * 4) * 0.1
    state0 = tuple(np.zeros((2, 4)) for _ in range(ops.n_states))
    dy = rng.standard_normal((5, 2, 4))
    dstate = tuple(np.zeros((2, 4)) for _ in range(ops.n_states))
    with kernels.use(backend):
        from rnnkit.nn.recurrent import time_loop

        results = []
        for skip in ((), ("W_ih", "W_hh")):
            _, _, cache = layer_forward(ops, x, state0, W_ih, W_hh, b, b, loop=time_loop(ops))
            results.append(layer_backward(ops, dy, dstate, cache, W_ih, W_hh, skip=skip))
    (dx, _, full), (dx2, _, part) = results
    assert {"W_ih", "W_hh"} <= set(full) and not {"W_ih", "W_hh"} & set(part)
    np.testing.assert_allclose(dx2, dx, rtol=1e-12)
    for k in ("b_ih", "b_hh"):
        np.testing.assert_allclose(part[k], full[k], rtol=1e-12)


def test_frozen_cell_weights_get_no_gradient_and_the_rest_are_unchanged():
    from rnnkit.nn import LSTMCell

    cell, ref = (LSTMCell(3, 4, dtype=np.float64, seed=0) for _ in range(2))
    cell.freeze("weight_*")
    rng = np.random.default_rng(0)
    x, dh, dc = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    outs = []
    for m in (cell, ref):
        m.zero_grad()
        _, cache = m.forward_cached(x)
        outs.append(m.backward_cached((dh, dc), cache))
    assert not cell.grads["weight_ih"].any() and not cell.grads["weight_hh"].any()
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(cell.grads["bias_ih"], ref.grads["bias_ih"])


def test_freezing_a_shared_weight_by_either_name_freezes_it_everywhere():
    model, _ = tied_pair()
    assert model.freeze("head.weight") == ["embed.weight"]
    assert "weight" in model.embed.frozen and "weight" in model.head.frozen
    assert [n for n, _, _ in model.trainable_parameters()] == [
        "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "head.bias"]
    with pytest.raises(ValueError, match=r"freeze: pattern 'decoder.\*' matches no parameter \(names: embed.weight"):
        model.freeze("decoder.*")


# -- checkpoints, resume, command line --------------------------------------------------
def make_trainer(out, steps=10, freeze="rnn.weight_ih_l0"):
    vocab = CharVocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    train = StreamBatches(ids[:1500], batch_size=3, seq_len=8)
    val = StreamBatches(ids[1500:], batch_size=2, seq_len=8)
    model = CharLM(len(vocab), 12, 12, 1, "lstm", seed=3, tie_weights=True)
    config = TrainConfig(steps=steps, lr=1e-2, optimizer="adamw", weight_decay=0.1, no_decay="bias",
                         freeze=freeze, clip=0.5, eval_every=5, checkpoint_every=4, log_every=2, seed=3)
    return Trainer(model, train, val, config, out, extra={"vocab": vocab.to_dict()}, progress=False)


def test_tied_frozen_grouped_run_resumes_bit_for_bit(tmp_path):
    full = make_trainer(tmp_path / "full")
    w0 = full.model.rnn.params["weight_ih_l0"].copy()
    full.run()
    part = make_trainer(tmp_path / "part")
    part.run(stop_at=6)
    ckpt = io.load(tmp_path / "part" / "checkpoint.npz")
    assert "head.weight" not in ckpt["model"] and ckpt["frozen"] == ["rnn.weight_ih_l0"]
    resumed = make_trainer(tmp_path / "part")
    resumed.model.unfreeze("*")                     # the checkpoint says what is frozen
    resumed.restore(ckpt)
    assert resumed.model.frozen_names() == ["rnn.weight_ih_l0"]
    assert resumed.model.head.params["weight"] is resumed.model.embed.params["weight"]
    resumed.run()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(b["rnn.weight_ih_l0"], w0)


def cli(*args):
    return main([str(a) for a in args])


def test_resume_with_new_freeze_patterns_applies_them(tmp_path):
    part = make_trainer(tmp_path / "run")
    part.run(stop_at=4)
    resumed = make_trainer(tmp_path / "run", freeze="embed.*")
    resumed.restore(io.load(tmp_path / "run" / "checkpoint.npz"))
    assert resumed.model.frozen_names() == ["embed.weight"]
    assert resumed.history[-1]["changed"]["freeze"] == ["rnn.weight_ih_l0", "embed.*"]


def test_cli_train_tie_weights_resume_sample_eval(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    common = ["--out", str(run), "--hidden", 12, "--embed", 12, "--layers", 1, "--seq-len", 8, "--batch-size", 3,
              "--eval-every", 4, "--no-progress"]
    assert cli("train", str(text), "--steps", 4, "--tie-weights", "--optimizer", "adamw", "--weight-decay", "0.1",
                 "--no-decay-bias-norm", "--freeze", "rnn.weight_hh_l0", *common) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["tie_weights"] is True and cfg["train"]["no_decay"] == "bias,norm"
    ckpt = io.load(run / "checkpoint.npz")
    assert "head.weight" not in ckpt["model"] and ckpt["frozen"] == ["rnn.weight_hh_l0"]
    w_hh = ckpt["model"]["rnn.weight_hh_l0"]
    assert cli("train", str(text), "--resume", "--steps", 6, *common) == 0
    ckpt = io.load(run / "checkpoint.npz")
    assert ckpt["progress"]["step"] == 6
    np.testing.assert_array_equal(ckpt["model"]["rnn.weight_hh_l0"], w_hh)     # still frozen after resume
    from rnnkit import load

    model = load(run)
    assert model.head.params["weight"] is model.embed.params["weight"]
    capsys.readouterr()
    assert cli("sample", str(run), "--length", 20) == 0
    assert cli("eval", str(run), str(text)) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out[0]) == 20 and "bits/char" in out[1]


def test_cli_tie_weights_with_other_sizes_is_one_line(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text(TEXT, encoding="utf-8")
    assert cli("train", str(text), "--out", tmp_path / "run", "--hidden", 16, "--embed", 8, "--layers", 1,
                 "--steps", 2, "--tie-weights", "--no-progress") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "embed_size 8" in err and "hidden_size 16" in err
