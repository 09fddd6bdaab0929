"""The experiment command end to end at a tiny size, truncated BPTT in SequenceModel, and metrics."""
import csv
import json
import os

import numpy as np
import pytest

from rnnkit.apps import experiments
from rnnkit.cli import main
from rnnkit.data import tasks
from rnnkit.models import SequenceModel


def test_experiment_vanishing_end_to_end(tmp_path, capsys):
    out = tmp_path / "v"
    rc = main(["experiment", "vanishing", "--task", "adding", "--T", "8,12", "--cells", "rnn,gru", "--steps", "12",
               "--eval-every", "6", "--flow-every", "4", "--n-test", "40", "--hidden", "8", "--out", str(out),
               "--no-progress"])
    assert rc == 0
    for f in ("results.csv", "results.md", "runs.json", "gradient_flow.png", "gradient_flow_profile.png",
              "loss_curves.png"):
        assert (out / f).stat().st_size > 0, f
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["T"], r["cell"]) for r in rows] == [("8", "rnn"), ("8", "gru"), ("12", "rnn"), ("12", "gru")]
    assert all(float(r["trivial"]) == pytest.approx(1 / 6) for r in rows)
    runs = json.load(open(out / "runs.json"))
    # gradient flow: records at steps 1, 4, 8, 12, one norm per time step
    assert runs[0]["flow_steps"] == [1, 4, 8, 12] and np.array(runs[2]["flow"]).shape == (4, 12)
    assert "| adding | 8 | rnn | mse |" in capsys.readouterr().out
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


@pytest.mark.parametrize("task", ["copy", "temporal-order", "reber", "digits", "mackey-glass"])
def test_experiment_vanishing_takes_every_task(task, tmp_path):
    if task == "digits":
        pytest.importorskip("sklearn")
    rc = main(["experiment", "vanishing", "--task", task, "--T", "10", "--cells", "lstm", "--steps", "3",
               "--eval-every", "3", "--n-test", "20", "--hidden", "4", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    row = next(csv.DictReader(open(tmp_path / "results.csv")))
    assert row["task"] == task and 0 <= float(row["final"]) < 1e3


def test_experiment_exploding_end_to_end(tmp_path):
    rc = main(["experiment", "exploding", "--T", "30", "--steps", "40", "--hidden", "16", "--gain", "4",
               "--lr", "0.5", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    rows = list(csv.DictReader(open(tmp_path / "exploding.csv")))
    assert [r["clip"] for r in rows] == ["0.0", "1.0"]
    assert rows[0]["outcome"].startswith("diverged")          # no clipping: blows up
    assert rows[1]["outcome"] == "trained"                     # same start, clipped: stays finite
    assert (tmp_path / "exploding.png").stat().st_size > 0


def test_experiment_truncation_end_to_end(tmp_path):
    rc = main(["experiment", "truncation", "--length", "40", "--windows", "0,10", "--T", "12",
               "--task-windows", "0,4", "--steps", "4", "--hidden", "4", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    cost = list(csv.DictReader(open(tmp_path / "truncation_cost.csv")))
    assert [r["window"] for r in cost] == ["full", "10"]
    assert float(cost[1]["peak_mb"]) < float(cost[0]["peak_mb"])   # a window keeps fewer steps
    assert (tmp_path / "truncation.png").stat().st_size > 0


@pytest.mark.parametrize("argv,msg", [
    (["--task", "nope"], "invalid choice"),
    (["--T", "0"], "comma-separated positive integers"),
    (["--cells", "lstm,tree"], "comma-separated cells"),
    (["--steps", "-1"], "positive integer"),
])
def test_experiment_bad_flags_are_one_line_errors(argv, msg, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["experiment", "vanishing", "--out", str(tmp_path)] + argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _grads(m):
    return {k: g.copy() for k, _, g in m.named_parameters()}


def test_truncated_bptt_equals_full_bptt_on_the_last_window_from_the_carried_state():
    """Regression target: TBPTT(k) gradients are those of a full-BPTT step on the last k steps
    started from the state the earlier steps produced (the value carried, the gradient cut)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 3, 2)), rng.standard_normal((3, 1))
    m = SequenceModel(2, 4, 1, "regression", cell="lstm", dtype=np.float64, seed=0)
    m.bptt = 4
    m.zero_grad()
    loss_t, _, _ = m.train_step((x, y, None))
    g_t = _grads(m)
    _, state = m.rnn(x[:6])
    m.rnn.clear_cache()
    m.zero_grad()
    yw, _ = m.rnn(x[6:], state)
    out = m.head(yw[-1])
    loss, cache = m.loss(out, y)
    dh = m.head.backward(m.loss_backward(cache))
    dy = np.zeros_like(yw)
    dy[-1] = dh
    m.rnn.backward(dy)
    assert loss_t == pytest.approx(loss)
    for k, g in _grads(m).items():
        np.testing.assert_allclose(g_t[k], g, rtol=1e-12, atol=1e-14, err_msg=k)
    # and it differs from full BPTT, which reaches the first 6 steps too
    m.bptt = 0
    m.zero_grad()
    loss_f, _, _ = m.train_step((x, y, None))
    assert loss_f == pytest.approx(loss_t)
    assert not np.allclose(_grads(m)["rnn.weight_ih_l0"], g_t["rnn.weight_ih_l0"])


def test_truncated_bptt_for_per_step_targets_sums_window_losses():
    rng = np.random.default_rng(1)
    d = tasks.copy_memory(3, T=6, rng=1, dtype=np.float64)
    m = SequenceModel(10, 5, 10, "sequence", cell="gru", dtype=np.float64, seed=0)
    m.bptt = 26                 # longer than the sequence (26 steps): identical to full BPTT
    m.zero_grad()
    l1, _, _ = m.train_step((d.x, d.y, None))
    g1 = _grads(m)
    m.bptt = 0
    m.zero_grad()
    l0, _, _ = m.train_step((d.x, d.y, None))
    assert l1 == pytest.approx(l0)
    for k, g in _grads(m).items():
        np.testing.assert_allclose(g1[k], g, rtol=1e-12, err_msg=k)
    m.bptt = 5                  # windows: same total loss, different gradients
    m.zero_grad()
    l5, _, _ = m.train_step((d.x, d.y, None))
    assert l5 == pytest.approx(l0)
    assert rng is not None
    with pytest.raises(ValueError, match="equal-length sequences"):
        r = tasks.reber(4, rng=0)
        m2 = SequenceModel(7, 3, 7, "sequence", cell="lstm", seed=0)
        m2.bptt = 3
        m2.train_step((r.x, r.y, r.lengths))


def test_metrics_and_solved_thresholds():
    d = tasks.adding(50, T=10, rng=0)
    assert experiments.metric_of("adding", d, d.y) == 0.0
    assert experiments.is_solved("adding", d, 0.005) and not experiments.is_solved("adding", d, 0.02)
    r = tasks.reber(20, rng=0)
    onehot = np.eye(7)[np.where(r.y < 0, 0, r.y)]
    assert experiments.metric_of("reber", r, onehot) == 1.0
    c = tasks.copy_memory(5, T=8, rng=0)
    assert experiments.metric_of("copy", c, np.eye(10)[c.y]) == 1.0
    assert experiments.metric_of("copy", c, np.eye(10)[np.zeros_like(c.y)]) == 0.0


def test_experiment_vanishing_init_and_gate_options(tmp_path):
    rc = main(["experiment", "vanishing", "--T", "8", "--cells", "rnn-relu,lstm", "--init", "identity",
               "--gate", "hard_sigmoid", "--forget-bias", "1", "--steps", "4", "--eval-every", "2", "--n-test", "10",
               "--hidden", "4", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    md = (tmp_path / "results.md").read_text()
    assert "init identity, gates hard_sigmoid, forget bias 1.0" in md
    r = experiments.train_task("adding", 6, "lstm", 1, hidden=3, init="orthogonal", gate="hard_sigmoid",
                               forget_bias=2.0, n_test=5, flow_every=0)
    assert r["steps"] == 1


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_experiment_results_are_not_written_over(tmp_path, capsys):
    common = ["experiment", "exploding", "--T", "10", "--hidden", "4", "--out", str(tmp_path), "--no-progress"]
    argv = common + ["--steps", "3"]
    assert main(argv) == 0
    before = _files(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already holds an experiment-exploding run" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
    assert _files(tmp_path) == before
    assert main(common + ["--steps", "4", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "steps 4 (the experiment has 3)" in err and len(err.strip().splitlines()) == 1
    assert main(argv + ["--resume"]) == 0          # nothing left to train: the finished runs are read back
    assert json.loads((tmp_path / "runs.json").read_text()) == json.loads(before["runs.json"])


def _old_experiment(path, capsys):
    """A finished tiny exploding experiment in ``path``; returns its files."""
    assert main(["experiment", "exploding", "--T", "10", "--hidden", "4", "--steps", "3", "--out", str(path),
                 "--no-progress"]) == 0
    capsys.readouterr()
    return _files(path)


@pytest.mark.parametrize("argv,fragments,memory", [
    # refused by the memory estimate of a run's step, after --overwrite used to delete the old experiment
    (["vanishing", "--T", "50", "--cells", "rnn,gru", "--hidden", "64", "--batch-size", "200"],
     ["needs about", "use a smaller --hidden, --batch-size or --T"], 2**20),
    (["exploding", "--T", "50", "--hidden", "64", "--batch-size", "200"], ["use a smaller --hidden"], 2**20),
    # ... of the truncation table's measured steps
    (["truncation", "--length", "5000", "--windows", "0,10", "--T", "10", "--task-windows", "0"],
     ["use a smaller --length"], 2**20),
    # a model no machine can hold (numpy's MemoryError, while the run is built)
    (["vanishing", "--T", "10", "--cells", "rnn", "--hidden", "10000000"],
     ["ran out of memory; use a smaller --hidden,"], None),
])
def test_experiment_overwrite_refused_late_leaves_the_old_one(tmp_path, capsys, monkeypatch, argv, fragments, memory):
    """--overwrite deletes the old experiment only after every run is built and its memory checked."""
    from rnnkit.apps import common

    before = _old_experiment(tmp_path / "e", capsys)
    if memory is not None:
        monkeypatch.setattr(common, "available_memory", lambda: memory)
    code = main(["experiment", *argv, "--steps", "2", "--out", str(tmp_path / "e"), "--overwrite", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err
    assert _files(tmp_path / "e") == before


def test_experiment_overwrite_replaces_only_what_rnnkit_wrote(tmp_path, capsys):
    """A directory with other files, or another program's config.json, is refused with --overwrite and left as
    it was; an old experiment is replaced."""
    argv = ["experiment", "exploding", "--T", "10", "--hidden", "4", "--steps", "2", "--overwrite", "--no-progress"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"kind": "experiment-exploding"}))
    for name, fragment in (("notes", "not an rnnkit run (todo.txt)"), ("other", "rnnkit did not write")):
        before = _files(tmp_path / name)
        assert main(argv + ["--out", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1, err
        assert _files(tmp_path / name) == before
    _old_experiment(tmp_path / "e", capsys)
    assert main(argv + ["--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "config.json").read_text())["settings"]["steps"] == 2


def test_experiment_resume_with_overwrite_is_refused(tmp_path, capsys):
    before = _old_experiment(tmp_path / "e", capsys)
    code = main(["experiment", "exploding", "--T", "10", "--hidden", "4", "--steps", "3", "--out", str(tmp_path / "e"),
                 "--resume", "--overwrite", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--resume and --overwrite: expected one of them, got both" in err, err
    assert _files(tmp_path / "e") == before


@pytest.mark.parametrize("argv,msg", [
    (["vanishing", "--T", "50,0"], "--T: expected comma-separated positive integers"),
    (["truncation", "--windows", "0,-5"], "--windows: expected comma-separated integers >= 0"),
    (["truncation", "--task-windows", "0,x"], "--task-windows: expected comma-separated integers >= 0"),
])
def test_experiment_length_lists_are_one_line_errors(argv, msg, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["experiment", *argv, "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "e").exists()




def test_experiment_sigterm_then_resume_equals_uninterrupted(tmp_path):
    """SIGTERM in the second of two runs: exit 143 with a checkpoint; --resume keeps the finished run,
    continues the other from its checkpoint, and every result equals an uninterrupted experiment's."""
    import signal
    import subprocess
    import sys
    import time

    args = ["experiment", "vanishing", "--task", "adding", "--T", "20", "--cells", "rnn,gru", "--steps", "600",
            "--hidden", "16", "--eval-every", "50", "--flow-every", "25", "--n-test", "100", "--no-progress"]
    full, part = tmp_path / "full", tmp_path / "part"
    cmd = [sys.executable, "-m", "rnnkit", *args]
    assert subprocess.run(cmd + ["--out", str(full)], capture_output=True).returncode == 0
    p = subprocess.Popen(cmd + ["--out", str(part)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = part / "runs" / "adding-T20-gru" / "checkpoint.npz"
    deadline = time.time() + 120
    while not second.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=120) == 143
    assert "--resume" in p.stderr.read()
    assert (part / "runs" / "adding-T20-rnn" / "result.json").exists()
    assert not (part / "runs" / "adding-T20-gru" / "result.json").exists()
    assert not (part / "run.lock").exists()
    r = subprocess.run(cmd + ["--out", str(part), "--resume"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def results(d):
        return [{k: v for k, v in run.items() if k != "wall_time"} for run in json.loads((d / "runs.json").read_text())]

    assert results(full) == results(part)


def test_experiment_options_are_used_or_refused(tmp_path, capsys):
    """--clip reaches truncation's runs; exploding's clipped run needs a norm; --T below a task's
    least, or several T for a task with lengths of its own, is one line; a resume with only --out
    takes the experiment's own settings, and a given one that differs is named by its option."""
    assert main(["experiment", "truncation", "--length", "20", "--windows", "0", "--T", "8", "--task-windows", "0",
                 "--steps", "2", "--hidden", "4", "--clip", "0.5", "--out", str(tmp_path / "t"), "--no-progress"]) == 0
    runs_cfg = [json.load(open(tmp_path / "t" / "runs" / d / "config.json")) for d in os.listdir(tmp_path / "t" / "runs")]
    assert runs_cfg and all(c["train"]["clip"] == 0.5 for c in runs_cfg)
    capsys.readouterr()
    for argv, msg in ((["exploding", "--clip", "0"], "--clip: expected a clipping norm > 0 for the clipped run"),
                      (["vanishing", "--T", "1"], "T: expected at least 2 for the adding task"),
                      (["vanishing", "--task", "digits", "--T", "10,500"], "--T does not apply")):
        assert main(["experiment", *argv, "--steps", "2", "--hidden", "4", "--out", str(tmp_path / "x"),
                     "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
    base = ["experiment", "vanishing", "--out", str(tmp_path / "v"), "--no-progress"]
    assert main(base + ["--T", "6", "--cells", "rnn,rnn", "--steps", "3", "--hidden", "4", "--n-test", "10"]) == 0
    assert len(list(csv.DictReader(open(tmp_path / "v" / "results.csv")))) == 1      # a repeated cell trains once
    assert main(base + ["--resume"]) == 0                                             # nothing retyped
    capsys.readouterr()
    assert main(base + ["--resume", "--T", "7"]) == 2
    assert "these cannot change on resume: --T 7 (the experiment has 6)" in capsys.readouterr().err
    cfg = json.loads((tmp_path / "v" / "config.json").read_text())          # an older experiment's record:
    cfg["settings"]["cells"] = ["rnn", "rnn"]                                # a repeated cell, and no clip
    del cfg["settings"]["clip"]
    (tmp_path / "v" / "config.json").write_text(json.dumps(cfg))
    assert main(base + ["--resume"]) == 0
