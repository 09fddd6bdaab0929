"""The Python API of training (optimizers, schedules, TrainConfig, Trainer) given wrong input:
one exception naming the argument as the caller spells it, what was expected and what arrived,
raised where the mistake is made (not steps later, not from deep inside NumPy), and no trained
run written over."""
import numpy as np
import pytest

import rnnkit
from rnnkit import optim
from rnnkit.data.text import CharVocab, StreamBatches
from rnnkit.errors import UserError
from rnnkit.train import Trainer, TrainConfig

TEXT = "hello world, this is a tiny bit of text to train on. " * 20


@pytest.fixture
def lm_data():
    v = CharVocab.from_text(TEXT)
    return rnnkit.CharLM(len(v), embed_size=8, hidden_size=8, num_layers=1, seed=0), StreamBatches(v.encode(TEXT), 4, 16)


@pytest.fixture
def m():
    return rnnkit.LSTM(4, 8, seed=0)


def test_numpy_scalars_are_numbers(m):
    assert optim.Adam(m, lr=np.float32(1e-3)).lr == pytest.approx(1e-3)
    assert optim.Adam(m, betas=np.array([0.9, 0.99])).betas == (0.9, 0.99)
    assert TrainConfig(stateful=1).stateful is True
    assert optim.clip_grad_norm([], 1.0) == 0.0                    # a model with every parameter frozen
    assert TrainConfig(lr=np.float32(1e-3), weight_decay=np.float64(0.1)).lr == pytest.approx(1e-3)


@pytest.mark.parametrize("params,err,text", [
    (lambda m: [m.params["weight_ih_l0"]], TypeError, "got a list of ndarray"),
    (lambda m: None, TypeError, "got NoneType"),
    (lambda m: [], ValueError, "expected at least one parameter, got none"),
])
def test_optimizer_params_say_what_arrived(m, params, err, text):
    with pytest.raises(err, match=text):
        optim.Adam(params(m), lr=1e-3)


@pytest.mark.parametrize("make,text", [
    (lambda m: optim.Adam(m, betas=(0.9,)), r"betas: expected a pair \(beta1, beta2\), got \(0.9,\)"),
    (lambda m: optim.Adam(m, betas=0.9), "betas: expected a pair"),
    (lambda m: optim.Adam(m, weight_decay="x"), "weight_decay: expected a number >= 0, got 'x'"),
    (lambda m: optim.Adam(m, eps=float("nan")), "eps: expected a positive number"),
    (lambda m: optim.SGD(m, lr=0.1, momentum=0.9, dampening=-1), r"dampening: expected a number in \[0, 1\]"),
    (lambda m: optim.RMSprop(m, alpha="0.9"), "alpha: expected"),
    (lambda m: optim.clip_grad_norm(m, "5"), "max_norm: expected a positive number"),
    (lambda m: optim.StepLR(optim.SGD(m, lr=0.1), 1, gamma=-1), "gamma: expected a positive number, got -1"),
    (lambda m: optim.StepLR(optim.SGD(m, lr=0.1), 2.5), "step_size: expected an integer >= 1, got 2.5"),
    (lambda m: optim.ExponentialLR(optim.SGD(m, lr=0.1), 0), "gamma: expected a positive number, got 0"),
    (lambda m: optim.CosineWarmup(optim.SGD(m, lr=0.1), 0, 10, min_lr=-1.0), r"min_lr: expected a number >= 0"),
    (lambda m: optim.CosineWarmup(optim.SGD(m, lr=0.1), "5", 10), "warmup_steps: expected an integer >= 0"),
    (lambda m: optim.ReduceLROnPlateau(optim.SGD(m, lr=0.1), patience=-1), "patience: expected an integer >= 0"),
])
def test_optimizer_and_schedule_settings(m, make, text):
    with pytest.raises(ValueError, match=text):
        make(m)


def test_a_schedule_needs_an_optimizer():
    with pytest.raises(TypeError, match="optimizer: expected an rnnkit optimizer .*got NoneType"):
        optim.StepLR(None, 1)


def test_no_decay_as_a_list(m):
    o = optim.AdamW(m, no_decay=["bias"])
    assert {n for n, h in o.overrides.items() if h.get("weight_decay") == 0.0} == {"bias_ih_l0", "bias_hh_l0"}


@pytest.mark.parametrize("kw,text", [
    ({"seed": "a"}, "seed: expected an integer >= 0, got 'a'"),
    ({"seed": -5}, "seed: expected an integer >= 0, got -5"),
    ({"stateful": "no"}, "stateful: expected True or False, got 'no'"),
    ({"seed": True}, "seed: expected an integer >= 0, got True"),          # a bool is no count
    ({"steps": True}, "steps: expected an integer >= 1, got True"),
    ({"patience": False}, "patience: expected an integer >= 0, got False"),
    ({"epochs": np.True_}, "epochs: expected an integer >= 1, got np.True_"),
])
def test_train_config_values(kw, text):
    with pytest.raises(ValueError, match=text):
        TrainConfig(**kw)


@pytest.mark.parametrize("change,err,text", [
    (dict(config={"steps": 3}), TypeError, r"Trainer config: expected a TrainConfig, got dict \(TrainConfig"),
    (dict(config=None), TypeError, "Trainer config: expected a TrainConfig, got NoneType"),
    (dict(model=rnnkit.LSTM(4, 8)), TypeError, "Trainer: expected a model whose config is a dict with a 'kind'"),
    (dict(train_data=np.arange(100)), TypeError, r"Trainer train_data: expected batches with len\(\) and batch"),
    (dict(val_data=[1, 2]), TypeError, "Trainer val_data: expected batches .*got list"),
    (dict(eval_batches=0), ValueError, r"eval_batches: expected None \(all\) or an integer >= 1, got 0"),
    (dict(callbacks=[1]), TypeError, r"callbacks: expected functions cb\(trainer\), got int"),
])
def test_trainer_arguments_refused_at_construction(lm_data, change, err, text):
    lm, data = lm_data
    kw = dict(model=lm, train_data=data, val_data=None, config=TrainConfig(steps=2), out_dir=None, progress=False)
    kw.update(change)
    with pytest.raises(err, match=text):
        Trainer(**kw)


def test_a_new_trainer_does_not_write_over_a_trained_run(lm_data, tmp_path):
    """A notebook cell run twice: the second Trainer would start at step 0 in the first one's run."""
    lm, data = lm_data
    Trainer(lm, data, None, TrainConfig(steps=2, checkpoint_every=2), tmp_path / "r", progress=False).run()
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    t = Trainer(lm, data, None, TrainConfig(steps=4, checkpoint_every=2), tmp_path / "r", progress=False)
    with pytest.raises(UserError, match=r"already holds a trained run \(checkpoint.npz.*trainer.restore"):
        t.run()
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before
    t.restore(rnnkit.io.load(tmp_path / "r" / "checkpoint.npz"))         # what the message says to do
    t.run()
    assert t.step == 4


def test_trainer_out_dir_that_is_a_file(lm_data, tmp_path):
    lm, data = lm_data
    (tmp_path / "f").write_text("mine")
    with pytest.raises(UserError, match="Trainer out_dir: expected a directory, got the file"):
        Trainer(lm, data, None, TrainConfig(steps=2), tmp_path / "f", progress=False).run()
    assert (tmp_path / "f").read_text() == "mine"


def test_optimizer_state_of_another_model_is_refused_when_loaded(m):
    other = optim.Adam(rnnkit.GRU(4, 8, seed=0), lr=1e-3)
    for _, p, g in other.params:
        g[...] = 1.0
    other.step()
    state = other.state_dict()
    o = optim.Adam(m, lr=1e-3)
    with pytest.raises(ValueError, match=r"weight_ih_l0 'm': expected shape \(32, 4\) \(the parameter's\), got \(24, 4\)"):
        o.load_state_dict(state)
    with pytest.raises(ValueError, match=r"optimizer state: expected a dict with 'state', 'steps' and 'lr'.*got \['foo'\]"):
        o.load_state_dict({"foo": 1})


def test_load_names_what_it_was_given(lm_data, tmp_path):
    lm, data = lm_data
    Trainer(lm, data, None, TrainConfig(steps=2, checkpoint_every=2), tmp_path / "r", progress=False).run()
    with pytest.raises(UserError, match=r"expected a run directory, got the file .*checkpoint.npz; pass its directory"):
        rnnkit.load(tmp_path / "r" / "checkpoint.npz")
    with pytest.raises(ValueError, match=r"which: expected 'best' or 'last', got 'final'"):
        rnnkit.load(tmp_path / "r", which="final")
    with pytest.raises(TypeError, match="run_dir: expected a path to a run directory, got NoneType"):
        rnnkit.load(None)
    assert rnnkit.load(tmp_path / "r", which="last").config["kind"] == "charlm"


def test_callbacks_from_a_generator_are_kept(lm_data):
    lm, data = lm_data
    calls = []
    t = Trainer(lm, data, None, TrainConfig(steps=3), None, progress=False, callbacks=(f for f in [calls.append]))
    t.run()
    assert len(calls) == 3
