"""Training on PyTorch's engine (DistributedDataParallel, gloo, 2 processes on this CPU): the same
loss curve as one process with the whole batch and as rnnkit's own engine, an ordinary run
directory, and --resume across engines."""
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

import rnnkit  # noqa: E402

TEXT = "It was the best of times, it was the worst of times, it was the age of wisdom. " * 60
ARGS = ["--hidden", "16", "--layers", "2", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "6", "--log-every", "2", "--no-progress"]


def rnnkit_cli(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *map(str, args)], capture_output=True, text=True)


def curve(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r.get("loss", r.get("val_loss"))) for r in rows]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp")
    (d / "t.txt").write_text(TEXT)
    for name, extra in (("numpy", []), ("torch1", ["--engine", "torch"]), ("torch2", ["--engine", "torch", "--nproc", 2])):
        r = rnnkit_cli("train", d / "t.txt", "--out", d / name, "--steps", 12, *ARGS, *extra)
        assert r.returncode == 0, r.stderr
    return d


def test_two_processes_give_the_curve_of_one_with_the_whole_batch(runs):
    one, two, own = curve(runs / "torch1"), curve(runs / "torch2"), curve(runs / "numpy")
    assert [s for s, _ in one] == [s for s, _ in two] == [s for s, _ in own] and len(one) > 4
    np.testing.assert_allclose([v for _, v in two], [v for _, v in one], rtol=1e-5)
    np.testing.assert_allclose([v for _, v in one], [v for _, v in own], rtol=1e-4)   # torch's kernels vs rnnkit's
    a = rnnkit.load(runs / "torch2", "checkpoint").state_dict()
    b = rnnkit.load(runs / "torch1", "checkpoint").state_dict()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_the_run_directory_is_an_ordinary_run(runs):
    from rnnkit.interop import to_torch

    model = rnnkit.load(runs / "torch2")
    assert type(model).__name__ == "CharLM" and model.config["kind"] == "charlm"
    x = np.random.default_rng(0).integers(0, model.config["vocab_size"], (5, 2))
    import torch

    np.testing.assert_allclose(to_torch(model)(torch.from_numpy(x))[0].detach().numpy(), model(x)[0], rtol=1e-5,
                               atol=1e-6)
    r = rnnkit_cli("sample", runs / "torch2", "--length", 20, "--seed", 1)
    assert r.returncode == 0 and len(r.stdout.strip()) >= 20, r.stderr


def test_resume_continues_in_either_engine(runs, tmp_path):
    import shutil

    for src, engine in (("torch2", []), ("numpy", ["--engine", "torch", "--nproc", 2])):
        run = tmp_path / src
        shutil.copytree(runs / src, run)
        r = rnnkit_cli("train", runs / "t.txt", "--out", run, "--resume", "--steps", 16, *ARGS, *engine)
        assert r.returncode == 0, r.stderr
        assert "finished at step 16" in r.stdout and curve(run)[-1][0] == 16


@pytest.mark.parametrize("extra,msg", [(["--engine", "torch", "--nproc", "3"], "expected a multiple of --nproc 3"),
                                       (["--nproc", "2"], "more than one process needs --engine torch")])
def test_bad_engine_options_are_one_line(runs, tmp_path, extra, msg):
    r = rnnkit_cli("train", runs / "t.txt", "--out", tmp_path / "x", "--steps", 2, *ARGS, *extra)
    assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_classifier_on_two_processes_with_uneven_shares(tmp_path):
    """A batch of 7 sequences splits 4 / 3: the weighting keeps the gradient the whole batch's mean."""
    rng = np.random.default_rng(0)
    n, L = 60, 12
    x = rng.standard_normal((n, L, 3)).astype(np.float32)
    lengths = rng.integers(3, L + 1, n)
    y = np.where(x[np.arange(n), 0, 0] > 0, "up", "down")
    np.savez(tmp_path / "train.npz", x=x, lengths=lengths, y=y)
    args = ["classify", "train", "--train", tmp_path / "train.npz", "--steps", 10, "--batch-size", 7,
            "--hidden-size", 8, "--eval-every", 5, "--log-every", 1, "--bidirectional", "--no-progress"]
    for name, extra in (("one", []), ("two", ["--engine", "torch", "--nproc", 2])):
        r = rnnkit_cli(*args, "--out", tmp_path / name, *extra)
        assert r.returncode == 0, r.stderr
    one, two = curve(tmp_path / "one"), curve(tmp_path / "two")
    assert [s for s, _ in one] == [s for s, _ in two] and len(one) >= 10
    np.testing.assert_allclose([v for _, v in two], [v for _, v in one], rtol=1e-4)
    assert json.loads((tmp_path / "two" / "scores.json").read_text())["steps"] == 10


def test_spawned_processes_need_no_free_port(runs, tmp_path):
    """The processes meet through a file, not a port: a MASTER_PORT that another program holds
    (here, this test) does not stop them, and the rendezvous leaves nothing behind."""
    import os
    import socket

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(s.getsockname()[1]), "TMPDIR": str(tmp)}
        r = subprocess.run([sys.executable, "-m", "rnnkit", "train", str(runs / "t.txt"), "--out", str(tmp_path / "x"),
                            "--steps", "2", *ARGS, "--engine", "torch", "--nproc", "2"],
                           capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "finished at step 2" in r.stdout
    assert "leaked semaphore" not in r.stderr            # the spawned processes' quick exit releases them first
    assert not [p for p in tmp.iterdir() if p.name.startswith("rnnkit-group-")]   # (torch keeps caches there too)


def test_resume_with_no_steps_left_is_refused_before_the_processes_start(runs, tmp_path):
    import shutil

    run = tmp_path / "r"
    shutil.copytree(runs / "torch2", run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    r = rnnkit_cli("train", runs / "t.txt", "--out", run, "--resume", "--steps", 6, *ARGS, "--engine", "torch",
                   "--nproc", 2)
    assert r.returncode == 2 and "has already done 12 steps, more than --steps 6" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_an_error_inside_the_processes_is_one_line(runs, tmp_path):
    """A mistake only the processes find (here a --freeze pattern that matches no parameter) is the
    command's one line, as with one process, not the spawned process's traceback."""
    r = rnnkit_cli("train", runs / "t.txt", "--out", tmp_path / "x", "--steps", 2, *ARGS, "--engine", "torch",
                   "--nproc", 2, "--freeze", "nothing.*")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "freeze: pattern 'nothing.*'" in r.stderr, r.stderr
    assert not (tmp_path / "x").exists()
