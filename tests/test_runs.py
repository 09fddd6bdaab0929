"""Run directories are owned: one writer at a time (a lock), stale locks reported, SIGTERM and
kill -9 followed by --resume give the uninterrupted run's weights, and a checkpoint write that
fails midway leaves the previous checkpoint intact."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnkit import io, runs
from rnnkit.errors import UserError

TEXT = "It was the best of times, it was the worst of times, it was the age of wisdom. " * 60
TINY = ["--hidden", "8", "--layers", "1", "--embed", "4", "--seq-len", "8", "--batch-size", "4",
        "--eval-every", "50", "--no-progress"]


def start(text, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "rnnkit", "train", str(text), "--out", str(out), *TINY, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(text, out, *extra):
    p = start(text, out, *extra)
    out_, err = p.communicate(timeout=300)
    return p.returncode, out_, err


def wait_for(cond, timeout=120):
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


def weights(out, which="checkpoint.npz"):
    tree = io.load(os.path.join(out, which))
    return tree["model"], tree["optimizer"], tree["progress"]["step"]


def same_weights(a, b):
    (ma, oa, sa), (mb, ob, sb) = weights(a), weights(b)
    assert sa == sb
    for k in ma:
        np.testing.assert_array_equal(ma[k], mb[k])
    assert oa["steps"] == ob["steps"] and oa["lr"] == ob["lr"] and oa["state"].keys() == ob["state"].keys()
    for name, moments in oa["state"].items():              # Adam's moments too: the resumed run is the same run
        for k, v in moments.items():
            np.testing.assert_array_equal(v, ob["state"][name][k], err_msg=f"{name}.{k}")
    return True


def log_without_times(out):
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    return [{k: v for k, v in r.items() if k not in ("elapsed", "tokens_per_s")} for r in rows]


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text(TEXT)
    return p


def test_a_second_writer_is_refused_and_the_first_run_is_untouched(text, tmp_path):
    lone, shared = tmp_path / "lone", tmp_path / "shared"
    assert run(text, lone, "--steps", "600")[0] == 0
    a = start(text, shared, "--steps", "600")
    wait_for(lambda: (shared / "run.lock").exists() or a.poll() is not None)
    code_new, _, err_new = run(text, shared, "--steps", "600")               # a fresh train on the same --out
    code_res, _, err_res = run(text, shared, "--steps", "600", "--resume")    # a resume beside the running job
    assert a.wait(timeout=300) == 0
    assert code_new == 2 and "already holds a charlm run" in err_new
    if code_res == 2:                       # the first may have written no checkpoint yet: then nothing to resume
        assert ("is in use by process" in err_res) or ("no checkpoint" in err_res) or ("holds no run" in err_res)
    else:                                   # or it had finished: the resume found nothing left to do
        pytest.fail(f"a resume beside a running job must be refused, got exit {code_res}: {err_res}")
    assert same_weights(lone, shared)
    assert log_without_times(lone) == log_without_times(shared)
    assert not (shared / "run.lock").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_then_resumed_equals_uninterrupted(text, tmp_path, sig):
    full, part = tmp_path / "full", tmp_path / "part"
    args = ("--steps", "1500", "--checkpoint-every", "100")
    assert run(text, full, *args)[0] == 0
    p = start(text, part, *args)
    wait_for(lambda: (part / "checkpoint.npz").exists())
    p.send_signal(sig)
    code = p.wait(timeout=120)
    if sig == signal.SIGTERM:
        assert code == 143 and "checkpoint saved" in p.stderr.read()
        assert not (part / "run.lock").exists()
    else:
        assert code == -9 and (part / "run.lock").exists()
        c, _, err = run(text, part, *args, "--resume")
        assert c == 2 and "no longer running" in err and len(err.strip().splitlines()) == 1
        (part / "run.lock").unlink()                                   # the user clears the stale lock
    step = weights(part)[2]
    assert 0 < step < 1500
    c, _, err = run(text, part, *args, "--resume")
    assert c == 0, err
    assert same_weights(full, part)
    assert log_without_times(full) == log_without_times(part)


def test_a_checkpoint_write_failing_midway_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    io.save(path, {"model": {"w": np.arange(3.0)}, "step": 1})
    before = path.read_bytes()
    real_fsync = os.fsync

    def broken(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="No space left"):
        io.save(path, {"model": {"w": np.arange(1000.0)}, "step": 2})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == before
    assert io.load(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]      # no temporary left behind


def test_lock_and_prepare(tmp_path):
    d = tmp_path / "r"
    with runs.RunLock(d):
        with pytest.raises(UserError, match="is in use by process"):
            runs.RunLock(d).__enter__()
    assert not (d / "run.lock").exists()
    (d / "run.lock").write_text(json.dumps({"pid": 2 ** 22 + 12345, "host": os.uname().nodename}))
    with pytest.raises(UserError, match="no longer running; the run it wrote is intact"):
        runs.RunLock(d).__enter__()
    (d / "run.lock").unlink()
    (d / "notes.txt").write_text("mine")
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(UserError, match="files that are not an rnnkit run"):
            runs.prepare(d, "charlm", **kw)
    assert (d / "notes.txt").read_text() == "mine"
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="expected a directory, got an existing file"):
        runs.prepare(f, "charlm")


def test_overwrite_deletes_a_run_only_when_nothing_of_the_user_s_is_beside_it(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"kind": "forecaster", "rnnkit_version": "0"}))
    for name in ("checkpoint.npz", "best.npz", "metrics.jsonl", "curves.png", "future.csv", "forecast.png",
                 "model.onnx", ".best.npz.abc123.tmp"):
        (d / name).write_text("x")
    mine = ["notes.txt", "data.csv", "photo.png", "results.csv", "confusion.png", "forecaster.onnx", ".notes.ab.tmp",
            "runs", "analysis"]
    for name in mine:
        (d / name).mkdir() if name in ("runs", "analysis") else (d / name).write_text("mine")
        with pytest.raises(UserError, match=rf"--overwrite: .* holds files beside the run that are not its own "
                                            rf"\({re.escape(name)}\).*move them out, or choose another --out"):
            runs.prepare(d, "forecaster", overwrite=True)
        assert (d / "config.json").exists() and (d / name).exists()
        (d / name).rmdir() if name in ("runs", "analysis") else (d / name).unlink()
    runs.prepare(d, "forecaster", overwrite=True)
    assert not d.exists()
    # an experiment's directory: its tables, figures and runs/ (each run's own files only)
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"kind": "experiment-vanishing", "rnnkit_version": "0"}))
    for name in ("results.csv", "results.md", "loss_curves.png", "runs.json"):
        (d / name).write_text("x")
    (d / "runs" / "lstm-T50").mkdir(parents=True)
    for name in ("config.json", "checkpoint.npz", "metrics.jsonl", "result.json"):
        (d / "runs" / "lstm-T50" / name).write_text("x")
    (d / "runs" / "lstm-T50" / "model.onnx").write_text("an export of one of its runs")
    (d / "runs" / "lstm-T50" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"not its own \(runs/lstm-T50/notes.txt\)"):
        runs.prepare(d, "experiment-vanishing", overwrite=True)
    (d / "runs" / "lstm-T50" / "notes.txt").unlink()
    runs.prepare(d, "experiment-vanishing", overwrite=True)
    assert not d.exists()


def test_damaged_run_files_are_one_line(text, tmp_path):
    out = tmp_path / "r"
    assert run(text, out, "--steps", "20", "--checkpoint-every", "10")[0] == 0
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 21, "loss": 1.0')                      # a write cut short
    code, _, err = run(text, out, "--steps", "30", "--resume")
    assert code == 0 and "metrics.jsonl, line" in err and "dropped on resume" in err
    assert all(json.loads(line) for line in open(out / "metrics.jsonl"))
    # a checkpoint of another kind, and random bytes
    io.save(out / "checkpoint.npz", {"kind": "seq2seq", "model_config": {"kind": "seq2seq"}, "config": {},
                                     "model": {}, "progress": {}, "extra": {}})
    code, _, err = run(text, out, "--steps", "40", "--resume")
    assert code == 2 and "expected the checkpoint of a charlm run, got one of a seq2seq run" in err
    (out / "checkpoint.npz").write_bytes(os.urandom(300))
    code, _, err = run(text, out, "--steps", "40", "--resume")
    assert code == 2 and "is not an rnnkit checkpoint" in err and "allow_pickle" not in err
    assert len(err.strip().splitlines()) == 1


def _step_peak(model, batch) -> int:
    """Bytes NumPy allocates at the peak of one training step beyond what was held before it."""
    import tracemalloc

    model.train_step(batch, None)              # warm-up: caches and workspaces that persist
    model.zero_grad()
    model.clear_cache()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        model.train_step(batch, None)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _models_and_batches():
    from rnnkit.apps.tag import build_vocabs
    from rnnkit.data import seq2seq as S
    from rnnkit.data.labelled import LabelledSequences
    from rnnkit.data.tagging import TaggedBatches
    from rnnkit.data.text import CharVocab, StreamBatches
    from rnnkit.models import CharLM
    from rnnkit.models.classifier import SequenceClassifier
    from rnnkit.models.seq2seq import Seq2Seq
    from rnnkit.models.tagger import Tagger

    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghij"), size=rng.integers(3, 12))) for _ in range(400)]
    pairs = [(w, w[::-1]) for w in words]
    sv, tv = S.build_vocabs(pairs)
    for attention in ("general", "additive"):
        yield f"seq2seq-{attention}", Seq2Seq(sv, tv, hidden_size=64, attention=attention, seed=0), \
            S.PairBatches(pairs, sv, tv, 64).batch(0, 0)
    v = CharVocab.from_text(TEXT)
    yield "charlm", CharLM(len(v), 32, 128, 2, "lstm", seed=0), StreamBatches(v.encode(TEXT), 16, 64).batch(0, 0)
    xs = [rng.standard_normal((int(rng.integers(20, 60)), 6)).astype(np.float32) for _ in range(64)]
    yield "classifier", SequenceClassifier(6, 64, 3, bidirectional=True, seed=0), \
        LabelledSequences(xs, rng.integers(0, 3, 64), 64).batch(0, 0)
    sentences = [(w.split(), ["X"] * len(w.split())) for w in (" ".join(words[i:i + 15]) for i in range(0, 400, 5))]
    wv, cv, tg = build_vocabs(sentences)
    yield "tagger", Tagger(wv, tg, cv, seed=0), TaggedBatches(sentences, wv, cv, tg, 32).batch(0, 0)


@pytest.mark.parametrize("name", ["seq2seq-general", "seq2seq-additive", "charlm", "classifier", "tagger"])
def test_the_memory_estimate_is_near_the_measured_peak_of_a_step(name):
    """What the refusal before training relies on: the estimate of the step's activations and
    their gradients is within [0.75, 2] of the peak NumPy allocates in a real step."""
    from rnnkit.apps.common import memory_needed

    model, batch = next((m, b) for n, m, b in _models_and_batches() if n == name)
    est = memory_needed(model, batch)
    peak = _step_peak(model, batch)
    ratio = (est["activations"] + est["backward"]) / peak
    assert 0.75 <= ratio <= 2.0, (name, est, peak)


def test_a_user_error_while_rebuilding_a_model_is_passed_on_unchanged(tmp_path, monkeypatch):
    """An environment variable found wrong while the saved model is rebuilt (RNNKIT_NUM_THREADS is
    applied when rnnkit first computes) is that one line, not "the saved model cannot be rebuilt"."""
    from rnnkit.models import base

    monkeypatch.setattr(runs, "require_kind", lambda run_dir, kinds: None)
    monkeypatch.setattr(runs, "load_tree", lambda run_dir, which: ({"model_config": {}}, "run/best.npz"))

    def refuse(config):
        raise UserError("RNNKIT_NUM_THREADS: expected an integer >= 1 or 'auto', got '0'")
    monkeypatch.setattr(base, "model_from_config", refuse)
    with pytest.raises(UserError) as err:
        runs.load(tmp_path)
    assert str(err.value) == "RNNKIT_NUM_THREADS: expected an integer >= 1 or 'auto', got '0'"

    def broken(config):
        raise KeyError("hidden_size")
    monkeypatch.setattr(base, "model_from_config", broken)
    with pytest.raises(UserError, match="run/best.npz: the saved model cannot be rebuilt"):
        runs.load(tmp_path)


def test_a_run_of_another_kind_is_not_offered_resume(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"kind": "classifier", "rnnkit_version": "0"}))
    with pytest.raises(UserError, match=r"holds a classifier run, not a charlm run; choose another --out") as e:
        runs.prepare(d, "charlm")
    assert "--resume" not in str(e.value)
