"""Trainer: truncated BPTT carries state and cuts gradients; resume is bit-for-bit; logs and checkpoints."""
import json

import numpy as np
import pytest
import torch

from rnnkit import io
from rnnkit.data.text import CharVocab, StreamBatches
from rnnkit.models import CharLM
from rnnkit.models.base import TaskModel
from rnnkit.train import TrainingDiverged, Trainer, TrainConfig

TEXT = "the quick brown fox jumps over the lazy dog. " * 40


def make_trainer(out, steps=12, stateful=True, dropout=0.0, **cfg):
    vocab = CharVocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    train = StreamBatches(ids[:1500], batch_size=3, seq_len=8)
    val = StreamBatches(ids[1500:], batch_size=2, seq_len=8)
    model = CharLM(len(vocab), 8, 16, 2, "lstm", dropout=dropout, seed=3)
    config = TrainConfig(steps=steps, lr=1e-2, stateful=stateful, eval_every=5, checkpoint_every=4, log_every=2,
                         seed=3, **cfg)
    return Trainer(model, train, val, config, out, extra={"vocab": vocab.to_dict()}, progress=False)


def test_tbptt_carries_state_and_cuts_gradient(tmp_path):
    """Window 2's gradient equals torch's gradient of window 2 alone, with the carried state as a constant."""
    tr = make_trainer(tmp_path)
    model = tr.model
    x1, y1 = tr.train_data.batch(0)
    x2, y2 = tr.train_data.batch(1)
    _, state = model(x1)                 # the carried state after window 1
    model.clear_cache()
    model.zero_grad()
    loss, _, _ = model.train_step((x2, y2), state)

    emb = torch.nn.Embedding(*model.embed.params["weight"].shape).double()
    lstm = torch.nn.LSTM(8, 16, 2).double()
    head = torch.nn.Linear(16, model.head.out_features).double()
    sd = {k: torch.tensor(v.astype(np.float64)) for k, v in model.state_dict().items()}
    emb.load_state_dict({"weight": sd["embed.weight"]})
    lstm.load_state_dict({k[4:]: v for k, v in sd.items() if k.startswith("rnn.")})
    head.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("head.")})
    h0, c0 = (torch.tensor(s.astype(np.float64)) for s in state)   # constants: no gradient flows back
    out, _ = lstm(emb(torch.tensor(x2)), (h0, c0))
    logits = head(out)
    tloss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.tensor(y2).reshape(-1))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-5)
    np.testing.assert_allclose(model.rnn.grads["weight_hh_l0"], lstm.weight_hh_l0.grad.numpy(), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(model.embed.grads["weight"], emb.weight.grad.numpy(), rtol=1e-3, atol=1e-5)

    # and the carried state matters: starting window 2 from zeros gives a different loss
    model.zero_grad()
    loss0, _, _ = model.train_step((x2, y2), None)
    assert abs(loss0 - loss) > 1e-6


def test_trainer_carries_state_between_batches(tmp_path):
    tr = make_trainer(tmp_path, stateful=True)
    tr.train_one()
    assert tr.carry is not None and tr.carry[0].shape == (2, 3, 16)
    tr2 = make_trainer(tmp_path / "b", stateful=False)
    tr2.train_one()
    assert tr2.carry is None


@pytest.mark.parametrize("dropout,schedule", [(0.0, "cosine"), (0.3, "plateau")])
def test_resume_is_bit_for_bit(tmp_path, dropout, schedule):
    full = make_trainer(tmp_path / "full", steps=12, dropout=dropout, schedule=schedule, warmup=2)
    full.run()
    part = make_trainer(tmp_path / "part", steps=12, dropout=dropout, schedule=schedule, warmup=2)
    part.run(stop_at=6)            # interrupted after step 6 (checkpoint written)
    resumed = make_trainer(tmp_path / "part", steps=12, dropout=dropout, schedule=schedule, warmup=2)
    resumed.restore(io.load(tmp_path / "part" / "checkpoint.npz"))
    assert resumed.step == 6
    resumed.run()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # the resumed log reads like the uninterrupted one
    steps = lambda p: [json.loads(line)["step"] for line in open(p / "metrics.jsonl")]  # noqa: E731
    assert steps(tmp_path / "full") == steps(tmp_path / "part")


def test_resume_with_a_new_learning_rate_is_the_run_with_that_rate_from_there(tmp_path):
    """A changed lr applies from the resumed step: the result equals an uninterrupted run whose
    optimizer rate was switched at that step; the change is logged; fixed settings are refused."""
    part = make_trainer(tmp_path / "part", steps=12)
    part.run(stop_at=6)
    ckpt = io.load(tmp_path / "part" / "checkpoint.npz")
    resumed = make_trainer(tmp_path / "part", steps=12)
    resumed.config.lr = 3e-3
    resumed.restore(ckpt)
    resumed.run()
    ref = make_trainer(None, steps=12)
    ref.run(stop_at=6)
    ref.optimizer.lr = 3e-3
    ref.run()
    for k, v in ref.model.state_dict().items():
        np.testing.assert_array_equal(v, resumed.model.state_dict()[k], err_msg=k)
    events = [json.loads(line) for line in open(tmp_path / "part" / "metrics.jsonl") if '"resumed"' in line]
    assert events == [{"step": 6, "event": "resumed", "changed": {"lr": [0.01, 0.003]}, "lr": 0.003}]
    for field, value in (("optimizer", "sgd"), ("seed", 4), ("stateful", False)):
        other = make_trainer(tmp_path / "part", steps=12)
        setattr(other.config, field, value)
        with pytest.raises(ValueError, match=f"--resume: these settings cannot change on resume: {field}"):
            other.restore(ckpt)


def test_rollback_under_the_plateau_schedule():
    cfg = TrainConfig(steps=30, lr=1.5, optimizer="sgd", clip=0, stateful=False, log_every=1, checkpoint_every=1,
                      schedule="plateau", on_divergence="rollback", divergence_factor=10, divergence_steps=1)
    tr = Trainer(Quadratic(), Targets(), None, cfg, None, progress=False)
    tr.run()
    events = [r for r in tr.history if r.get("event") == "rollback"]
    assert events and events[0]["lr"] == 0.75 and tr.step == 30


def test_logs_checkpoints_and_best(tmp_path):
    tr = make_trainer(tmp_path, steps=10)
    result = tr.run()
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == [2, 4, 6, 8, 10]
    for r in train_rows:
        assert {"loss", "bpc", "lr", "grad_norm", "tokens_per_s"} <= set(r)
    assert [r["step"] for r in rows if "val_loss" in r] == [5, 10]
    ck = io.load(tmp_path / "checkpoint.npz")
    assert ck["progress"]["step"] == 10 and "optimizer" in ck and ck["model_config"]["kind"] == "charlm"
    assert (tmp_path / "best.npz").exists() and result["stop_reason"] == "finished"


def test_training_reduces_loss(tmp_path):
    tr = make_trainer(tmp_path, steps=60)
    first = tr.evaluate()["val_loss"]
    tr.run()
    assert tr.evaluate()["val_loss"] < first - 0.5


def test_early_stopping(tmp_path):
    tr = make_trainer(tmp_path, steps=200, patience=1)
    tr.config.lr = 1e-9  # nothing improves
    tr.optimizer.lr = 1e-9
    tr.run()
    assert tr.step < 200 and tr.stop_reason.startswith("early stop")


@pytest.mark.parametrize("field,value,match", [
    ("steps", 0, "steps"), ("lr", -1.0, "lr"), ("clip", -1.0, "clip"), ("eval_every", 0, "eval-every"),
])
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


@pytest.mark.filterwarnings("error::RuntimeWarning")      # the one line, without NumPy's warning beside it
def test_nonfinite_loss_is_reported(tmp_path):
    tr = make_trainer(tmp_path)
    tr.model.head.params["bias"][0] = np.inf
    with pytest.raises(TrainingDiverged, match=r"diverged at step 1: the loss became nan \(loss nan\); no checkpoint"):
        tr.train_one()
    assert all(not g.any() for g in tr.model.grad_dict().values())     # nothing half-applied


def test_divergence_keeps_the_last_checkpoint(tmp_path):
    tr = make_trainer(tmp_path)
    tr.run(stop_at=4)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    tr.model.head.params["bias"][0] = np.nan
    with pytest.raises(TrainingDiverged, match="the last good checkpoint, .*checkpoint.npz, is kept"):
        tr.run()
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert not (tmp_path / "run.lock").exists()


class Quadratic(TaskModel):
    """loss = (w - target)^2: plain SGD diverges for lr > 1 and converges for lr < 1."""

    def __init__(self, dtype=np.float64, seed=0):
        super().__init__(dtype, seed)
        self.add_param("w", np.zeros(1))
        self.config = {"kind": "quadratic"}

    def train_step(self, batch, state=None):
        d = self.params["w"] - batch
        self.grads["w"] += 2 * d
        return float((d ** 2).sum()), None, 1

    def evaluate(self, batch, state=None):
        return float(((self.params["w"] - batch) ** 2).sum()), None, 1


class Targets:
    def __init__(self, bad=()):
        self.bad = bad

    def __len__(self):
        return 10

    def batch(self, i, epoch=0):
        return np.array([np.nan if (epoch, i) in self.bad else 3.0])


def test_skip_drops_a_nonfinite_step_and_goes_on():
    cfg = TrainConfig(steps=8, lr=0.1, optimizer="sgd", clip=0, stateful=False, log_every=1, on_divergence="skip")
    tr = Trainer(Quadratic(), Targets(bad={(0, 3)}), None, cfg, None, progress=False)
    tr.run()
    assert tr.step == 8 and np.isfinite(tr.model.params["w"]).all()
    assert [r["event"] for r in tr.history if "event" in r] == ["skipped"]
    with pytest.raises(TrainingDiverged, match=r"training diverged at step 4: the loss became nan \(loss nan\)"):
        Trainer(Quadratic(), Targets(bad={(0, 3)}), None, TrainConfig(steps=8, lr=0.1, optimizer="sgd", clip=0,
                                                                      stateful=False), None, progress=False).run()


def test_rollback_halves_the_learning_rate_and_recovers(tmp_path):
    for out in (None, tmp_path / "run"):
        cfg = TrainConfig(steps=60, lr=1.5, optimizer="sgd", clip=0, stateful=False, log_every=1, checkpoint_every=1,
                          on_divergence="rollback", divergence_factor=10, divergence_steps=1)
        tr = Trainer(Quadratic(), Targets(), None, cfg, out, progress=False)
        tr.run()
        events = [r for r in tr.history if r.get("event") == "rollback"]
        assert events and events[0]["lr"] == 0.75 and tr.rollbacks == len(events)
        assert tr.step == 60 and float(((tr.model.params["w"] - 3.0) ** 2).sum()) < 1e-6


def test_sustained_high_loss_stops_naming_step_loss_and_norm():
    cfg = TrainConfig(steps=60, lr=1.5, optimizer="sgd", clip=0, stateful=False, divergence_factor=10,
                      divergence_steps=3)
    with pytest.raises(TrainingDiverged, match=r"smoothed loss .* stayed above 10 x its lowest value .* for 3 "
                                               r"steps \(loss .*, gradient norm .*\)"):
        Trainer(Quadratic(), Targets(), None, cfg, None, progress=False).run()


def test_a_new_run_that_diverges_before_its_first_checkpoint_leaves_no_run_behind(tmp_path, capsys):
    """Its directory would otherwise hold only config.json: refused by the same command again ("holds
    a run; pass --resume"), and by --resume ("no checkpoint.npz"). The hint names clipping when it is off."""
    from rnnkit.cli import main

    text = tmp_path / "t.txt"
    text.write_text("abcdefgh " * 200)
    out = tmp_path / "r"
    argv = ["train", str(text), "--steps", "20", "--lr", "1e30", "--clip", "0", "--hidden", "8",
            "--seq-len", "16", "--batch-size", "4", "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "training diverged at step" in err and "gradient clipping (--clip 1)" in err and "RuntimeWarning" not in err
    assert f"the new run kept nothing, so {out} was removed" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    out.mkdir()                                       # an empty directory the user made stays, empty
    assert main(argv) == 2
    assert out.exists() and list(out.iterdir()) == []
    assert f"what it wrote in {out} was removed" in capsys.readouterr().err
    assert main(argv[:3] + ["3"] + argv[8:]) == 0                  # a good run, then its --overwrite diverges
    capsys.readouterr()
    assert main(argv + ["--overwrite"]) == 2
    assert "the run that was there before was deleted by --overwrite" in capsys.readouterr().err
    # a run that kept weights (best.npz from an evaluation before it diverged) is kept as it is
    from rnnkit.apps.common import _discard_diverged

    kept = tmp_path / "kept"
    kept.mkdir()
    for name in ("config.json", "metrics.jsonl", "best.npz"):
        (kept / name).write_text("x")
    assert not _discard_diverged(kept, made=True)
    assert sorted(p.name for p in kept.iterdir()) == ["best.npz", "config.json", "metrics.jsonl"]


def test_resuming_a_run_whose_time_limit_is_spent_says_so(tmp_path, capsys):
    import rnnkit.io
    from rnnkit.cli import main

    text = tmp_path / "t.txt"
    text.write_text("abcdefgh " * 200)
    out = tmp_path / "r"
    base = ["train", str(text), "--hidden", "8", "--seq-len", "16", "--batch-size", "4", "--out", str(out),
            "--no-progress"]
    assert main(base + ["--steps", "100000", "--time-limit", "0.5"]) == 0
    capsys.readouterr()
    before = (out / "checkpoint.npz").read_bytes()
    assert main(base + ["--steps", "200000", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "its --time-limit of 0.5 s (which counts every session); pass a larger --time-limit" in err
    assert len(err.strip().splitlines()) == 1 and (out / "checkpoint.npz").read_bytes() == before
    # the first session's time includes compiling the kernels when nothing in this process did before
    used = float(rnnkit.io.load(out / "checkpoint.npz")["progress"]["elapsed"])
    assert main(base + ["--steps", "200000", "--resume", "--time-limit", f"{used + 0.5:.2f}"]) == 0


def test_a_loaded_character_model_samples_with_its_run_s_vocabulary(tmp_path):
    import rnnkit
    from rnnkit.cli import main
    from rnnkit.data.text import CharVocab

    text = tmp_path / "t.txt"
    text.write_text("abcdefgh " * 200)
    assert main(["train", str(text), "--hidden", "8", "--seq-len", "16", "--batch-size", "4", "--steps", "3",
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    m = rnnkit.load(tmp_path / "r")
    vocab = CharVocab.from_dict(m.run_extra["vocab"])
    got = m.sample(length=20, prime="ab", rng=0)
    assert got == m.sample(vocab, length=20, prime="ab", rng=0) == m.sample(m.run_extra["vocab"], length=20,
                                                                                prime="ab", rng=0)
    assert len(got) == 20
    m.run_extra = {}
    with pytest.raises(TypeError, match="was not loaded from a run"):
        m.sample(length=5)


def test_resume_on_another_text_names_both_files(tmp_path, capsys):
    from rnnkit.cli import main

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("abcdefgh " * 200)
    b.write_text("hgfedcba " * 200)
    base = ["--hidden", "8", "--seq-len", "16", "--batch-size", "4", "--out", str(tmp_path / "r"), "--no-progress"]
    assert main(["train", str(a), "--steps", "3"] + base) == 0
    capsys.readouterr()
    assert main(["train", str(b), "--steps", "6", "--resume"] + base) == 2
    err = capsys.readouterr().err
    assert f"this text {b} is not the text the run in {tmp_path / 'r'} was trained on ({a})" in err


def test_a_seq_len_longer_than_a_batch_row_is_said(tmp_path, capsys):
    from rnnkit.cli import main

    text = tmp_path / "t.txt"
    text.write_text("abcdefgh " * 40)                       # 360 characters: 4 rows of 89
    assert main(["train", str(text), "--hidden", "8", "--seq-len", "500", "--batch-size", "4", "--steps", "2",
                 "--out", str(tmp_path / "r"), "--no-progress", "--val-fraction", "0.01"]) == 0
    err = capsys.readouterr().err
    assert "--seq-len 500 is longer than a batch row" in err and "4 rows of 89 characters (--batch-size), so every window is 89 steps" in err
