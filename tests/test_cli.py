"""The rnnkit command end to end on a small text, and its error messages for bad input."""
import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnkit import io
from rnnkit.cli import main

TEXT = "It was the best of times, it was the worst of times, it was the age of wisdom. " * 30


def rnnkit(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "t.txt").write_text(TEXT, encoding="utf-8")
    r = rnnkit("train", d / "t.txt", "--out", d / "run", "--steps", 12, "--hidden", 16, "--layers", 1,
               "--embed", 8, "--seq-len", 16, "--batch-size", 4, "--eval-every", 6, "--checkpoint-every", 6,
               "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "finished at step 12" in r.stdout
    return d


def test_help_and_version():
    r = rnnkit("--help")
    assert r.returncode == 0 and "train" in r.stdout and "demo" in r.stdout
    assert rnnkit("--version").stdout.startswith("rnnkit ")
    r = rnnkit("train", "--help")
    for flag in ("--cell", "--hidden", "--layers", "--seq-len", "--batch-size", "--lr", "--clip", "--steps",
                 "--epochs", "--out", "--seed", "--resume"):
        assert flag in r.stdout


def test_resume_refuses_changed_settings(run_dir):
    r = rnnkit("train", run_dir / "t.txt", "--out", run_dir / "run", "--resume", "--hidden", 32, "--lr", "0.01",
               "--seed", 3, "--batch-size", 5)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "hidden-size 32 (the run has 16)" in r.stderr
    assert "seed 3 (the run has 0: it drew the data order" in r.stderr
    assert "batch-size 5 (the run has 4: the order of the remaining batches depends on it)" in r.stderr
    assert "lr" not in r.stderr.replace("already", "")       # a new learning rate is allowed


def test_resume_applies_and_logs_changed_training_settings(run_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir / "run", run)
    r = rnnkit("train", run_dir / "t.txt", "--out", run, "--resume", "--steps", 20, "--lr", "0.01", "--clip", "1",
               "--schedule", "cosine", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "finished at step 20" in r.stdout
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    resumed = [x for x in records if x.get("event") == "resumed"]
    assert len(resumed) == 1 and resumed[0]["step"] == 12
    assert resumed[0]["changed"] == {"steps": [12, 20], "lr": [0.002, 0.01], "clip": [5.0, 1.0],
                                     "schedule": ["none", "cosine"]}
    # the cosine schedule starts where the run is: step 12 of 20 from a base of 0.01
    assert resumed[0]["lr"] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 12 / 20)))
    later = [x for x in records if x.get("step", 0) > 12 and "loss" in x]
    assert later and all(x["lr"] < 0.01 for x in later) and later[-1]["step"] == 20
    ckpt = io.load(run / "checkpoint.npz")
    assert ckpt["config"]["lr"] == 0.01 and ckpt["config"]["clip"] == 1.0 and ckpt["config"]["steps"] == 20


def test_help_shows_real_defaults():
    out = rnnkit("train", "--help").stdout
    assert "(default: True)" not in out and "(default: False)" not in out
    assert "learning rate (default: 0.002)" in " ".join(out.split())


def test_weights_without_a_best_file_are_named(run_dir, tmp_path, capsys):
    """A run with no best.npz yet (no validation score saved) samples and evaluates with its last
    checkpoint, and says so in one line; asked for the last checkpoint, it says nothing."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir / "run", run)
    (run / "best.npz").unlink()
    for cmd in (["sample", run, "--length", "5"], ["eval", run, run_dir / "t.txt"]):
        capsys.readouterr()
        assert main([str(a) for a in cmd]) == 0
        err = capsys.readouterr().err
        assert f"rnnkit {cmd[0]}: note: {run} has no best.npz (no validation score saved yet); using its last " \
               "checkpoint" in err
        assert main([str(a) for a in cmd] + ["--checkpoint", "last"]) == 0
        assert "no best.npz" not in capsys.readouterr().err


def test_sample_eval_plot(run_dir):
    r = rnnkit("sample", run_dir / "run", "--length", 40, "--seed", 1, "--prime", "It was")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("It was") and len(r.stdout.rstrip("\n")) == len("It was") + 40
    assert rnnkit("sample", run_dir / "run", "--length", 40, "--seed", 1, "--prime", "It was").stdout == r.stdout
    r = rnnkit("sample", run_dir / "run", "--length", 20, "--temperature", 0, "--top-k", 3)
    assert r.returncode == 0, r.stderr
    r = rnnkit("eval", run_dir / "run", run_dir / "t.txt")
    assert r.returncode == 0 and "bits/char" in r.stdout, r.stderr
    r = rnnkit("plot", run_dir / "run")
    assert r.returncode == 0, r.stderr
    assert (run_dir / "run" / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_continues_and_extends(run_dir):
    r = rnnkit("train", run_dir / "t.txt", "--out", run_dir / "run", "--resume", "--steps", 18, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout and "finished at step 18" in r.stdout
    steps = [json.loads(line)["step"] for line in open(run_dir / "run" / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 18


@pytest.mark.parametrize("args,match", [
    (["train", "{d}/missing.txt", "--out", "{d}/x"], "not found"),
    (["train", "{d}/empty.txt", "--out", "{d}/x"], "empty"),
    (["train", "{d}/bin.txt", "--out", "{d}/x"], "not UTF-8"),
    (["train", "{d}/t.txt", "--lr", "-1"], "--lr: expected a positive number"),
    (["train", "{d}/t.txt", "--seq-len", "0"], "--seq-len: expected a positive integer"),
    (["train", "{d}/t.txt", "--cell", "transformer"], "expected one of lstm, gru, rnn_tanh, rnn_relu"),
    (["train", "{d}/t.txt", "--out", "{d}/run"], "already holds a charlm run"),
    (["train", "{d}/t.txt", "--out", "{d}/nothing", "--resume"], "no checkpoint"),
    (["train", "{d}/other.txt", "--out", "{d}/run", "--resume"], "not the text"),
    (["sample", "{d}"], "not an rnnkit run directory"),
    (["sample", "{d}/nope"], "run directory not found"),
    (["sample", "{d}/run", "--temperature", "-1"], "expected a number >= 0"),
    (["eval", "{d}/run", "{d}/missing.txt"], "not found"),
    (["plot", "{d}"], "not an rnnkit run directory"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line(run_dir, args, match):
    d = run_dir
    (d / "empty.txt").write_text("")
    (d / "bin.txt").write_bytes(b"\xff\xfe\x00abc")
    (d / "other.txt").write_text("different text " * 50)
    r = rnnkit(*[a.format(d=d) for a in args])
    assert r.returncode == 2
    assert match in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_main_without_command_prints_help(capsys):
    assert main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_memory_estimate_counts_the_parameters_exactly(cell):
    from rnnkit.apps.lm import memory_estimate
    from rnnkit.models import CharLM

    from rnnkit.apps.common import memory_needed

    est = memory_estimate(30, 8, 12, 2, cell, 4, 16)
    model = CharLM(30, 8, 12, 2, cell)
    assert est["parameters"] == model.num_parameters()
    assert est["total"] == est["weights"] + est["activations"] + est["backward"]
    assert est["weights"] == 4 * 4 * est["parameters"]
    # the estimate before the model exists is the one made from the model (which holds its weights already)
    after = memory_needed(model, np.zeros((16, 4), np.int64))
    assert after["activations"] == est["activations"] and after["weights"] == est["weights"] - 4 * est["parameters"]


def test_dry_run_and_refusal_of_a_model_larger_than_memory(run_dir):
    r = rnnkit("train", run_dir / "t.txt", "--dry-run")
    assert r.returncode == 0 and "parameters" in r.stdout and "MiB" in r.stdout
    r = rnnkit("train", run_dir / "t.txt", "--hidden", 100000, "--out", run_dir / "huge")
    assert r.returncode == 2 and "GiB free here" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (run_dir / "huge").exists()


@pytest.mark.parametrize("argv,msg", [
    (["experiment", "exploding", "--out", "{d}/afile/sub", "--steps", "5"], "{d}/afile is a file, not a directory"),
    (["experiment", "vanishing", "--out", "{d}/afile", "--steps", "5"], "expected a directory, got an existing file"),
    (["plot", "{d}/run", "--png", "{d}/afile/x.png"], "{d}/afile is a file, not a directory"),
    (["classify", "train", "--dataset", "dna", "--out", "{d}/afile"], "expected a directory, got an existing file"),
    (["sample", "{d}/run"] , None),
])
def test_output_paths_are_checked_before_any_work(run_dir, argv, msg):
    (run_dir / "afile").write_text("mine")
    t0 = time.perf_counter()
    r = rnnkit(*[a.format(d=run_dir) for a in argv])
    if msg is None:
        assert r.returncode == 0
        return
    assert r.returncode == 2 and msg.format(d=run_dir) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert time.perf_counter() - t0 < 30 and (run_dir / "afile").read_text() == "mine"


def test_metrics_and_scores_are_strict_json():
    from rnnkit import io

    text = io.json_text({"a": float("inf"), "b": [1.0, float("nan")], "c": np.float32(2.5)})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": 2.5} and "Infinity" not in text


@pytest.mark.parametrize("setting", [None, "1"])
def test_demo_tunes_its_threads_unless_told(tmp_path, setting):
    """The demo is a timed run on any machine: unless RNNKIT_NUM_THREADS says otherwise it runs with
    'auto' (the Trainer measures every core against one and logs its choice)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "RNNKIT_NUM_THREADS"}
    if setting:
        env["RNNKIT_NUM_THREADS"] = setting
    # the demo's minutes count its first step, which compiles the kernels when no test before this one
    # has (about 20 s, more than the 9 s given): a first short run compiles them into Numba's cache
    warm = subprocess.run([sys.executable, "-m", "rnnkit", "demo", "--out", str(tmp_path / "w"), "--hidden", "8",
                           "--minutes", "0.01", "--sample-every", "100", "--no-progress"],
                          capture_output=True, text=True, env=env)
    assert warm.returncode == 0, warm.stderr
    r = subprocess.run([sys.executable, "-m", "rnnkit", "demo", "--out", str(tmp_path / "d"), "--hidden", "8",
                        "--minutes", "0.15", "--sample-every", "100", "--no-progress"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in open(tmp_path / "d" / "metrics.jsonl")]
    events = [row for row in rows if row.get("event") == "threads"]
    from rnnkit.threads import cores

    if setting or cores() < 2:
        assert events == []
    else:
        assert events and events[0]["n_threads"] in (1, cores())


def test_demo_never_writes_over_a_run(run_dir):
    r = rnnkit("demo", "--out", run_dir / "run", "--minutes", "0.01", "--no-progress")
    assert r.returncode == 2 and "already holds a charlm run" in r.stderr


def test_out_of_memory_is_one_line(run_dir, monkeypatch, capsys):
    import rnnkit.apps.lm

    def boom(*args, **kw):
        raise MemoryError()

    monkeypatch.setattr(rnnkit.apps.lm, "load", boom)
    assert main(["sample", str(run_dir / "run")]) == 2
    err = capsys.readouterr().err
    assert "ran out of memory" in err and len(err.strip().splitlines()) == 1
