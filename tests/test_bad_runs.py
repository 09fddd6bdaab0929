"""Damaged, mismatched or mistyped run directories and arguments: every one ends as one line on
stderr naming what was expected and what arrived, exit status 2, no traceback, and nothing the
user made is changed."""
import json
import os
import shutil

import numpy as np
import pytest

from rnnkit import io
from rnnkit.cli import main

TEXT = "hello world this is a tiny text file for training.\n" * 200
LM = ["--steps", "3", "--hidden", "16", "--layers", "1", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
      "--eval-every", "2", "--no-progress"]
CLS = ["--steps", "3", "--hidden", "8", "--eval-every", "2", "--no-progress"]


def rnnkit(capsys, *argv):
    """``(exit status, stdout, stderr)`` of the command run in this process."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:                       # argument errors leave through the parser
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def files(d) -> dict:
    """Every file under ``d`` with its bytes: what must be unchanged after a refusal."""
    return {os.path.relpath(os.path.join(root, f), d): open(os.path.join(root, f), "rb").read()
            for root, _, names in os.walk(d) for f in names}


def refused(capsys, *argv, keep=()):
    """Run a command that must fail: one line on stderr, status 2, no traceback, the directories
    ``keep`` unchanged. Returns the line."""
    before = [files(k) for k in keep]
    code, _, err = rnnkit(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert [files(k) for k in keep] == before
    return err.strip()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_runs")
    (d / "good.txt").write_text(TEXT, encoding="utf-8")
    assert main(["train", str(d / "good.txt"), "--out", str(d / "run1"), *LM]) == 0
    r = np.random.default_rng(0)
    np.savez(d / "cls.npz", x=r.normal(size=(40, 12, 3)).astype("f4"), lengths=r.integers(4, 13, 40),
             y=r.integers(0, 3, 40))
    assert main(["classify", "train", "--train", str(d / "cls.npz"), "--out", str(d / "crun"), *CLS]) == 0
    return d


def copy(runs, name, to):
    shutil.copytree(runs / name, to)
    return to


# 1 -- a config.json of another shape ------------------------------------------------------------

@pytest.mark.parametrize("config,what", [
    ('{"model": 3}', '"model"'),
    ('{"model": {"hidden_size": 16}}', '"kind"'),
    ("{}", '"kind"'),
    ('{"kind": ["charlm"]}', '"kind"'),
    ('{"kind": 3, "model": {}}', '"kind"'),
    ("[1, 2]", "JSON object"),
])
@pytest.mark.parametrize("command", ["sample", "export", "train"])
def test_config_of_another_shape_is_named(runs, tmp_path, capsys, config, what, command):
    m = copy(runs, "run1", tmp_path / "m")
    (m / "config.json").write_text(config)
    argv = {"sample": ["sample", m], "export": ["export", m],
            "train": ["train", runs / "good.txt", "--out", m, *LM]}[command]
    line = refused(capsys, *argv, keep=[m])
    assert str(m / "config.json") in line and what in line and "expected" in line


# 2 -- a config that does not match its weights, or lacks what its kind needs ----------------------

@pytest.mark.parametrize("command", ["sample", "eval", "export"])
def test_weights_of_another_kind_than_the_config(runs, tmp_path, capsys, command):
    k = copy(runs, "crun", tmp_path / "k")
    cfg = json.loads((k / "config.json").read_text())
    cfg["kind"] = "charlm"
    (k / "config.json").write_text(json.dumps(cfg))
    argv = {"sample": ["sample", k], "eval": ["eval", k, runs / "good.txt"], "export": ["export", k]}[command]
    line = refused(capsys, *argv, keep=[k])
    assert str(k) in line and "charlm" in line and "classifier" in line


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_charlm_weights_without_their_vocabulary(runs, tmp_path, capsys, command):
    r = copy(runs, "run1", tmp_path / "r")
    for name in ("best.npz", "checkpoint.npz"):
        tree = io.load(r / name)
        del tree["extra"]["vocab"]
        io.save(r / name, tree)
    argv = {"sample": ["sample", r], "eval": ["eval", r, runs / "good.txt"]}[command]
    line = refused(capsys, *argv, keep=[r])
    assert str(r) in line and "vocab" in line and "KeyError" not in line


def test_charlm_vocabulary_that_does_not_fit_the_model(runs, tmp_path, capsys):
    r = copy(runs, "run1", tmp_path / "r")
    tree = io.load(r / "best.npz")
    tree["extra"]["vocab"]["chars"] = tree["extra"]["vocab"]["chars"][:5]
    io.save(r / "best.npz", tree)
    line = refused(capsys, "sample", r, "--length", "5", keep=[r])
    assert str(r) in line and "5" in line and "20" in line


# 3 -- a checkpoint that is not a .npz archive ---------------------------------------------------

@pytest.mark.parametrize("content", [os.urandom(300), b"hello", b""])
@pytest.mark.parametrize("name", ["best.npz", "checkpoint.npz"])
def test_a_file_that_is_not_an_npz_archive(runs, tmp_path, capsys, content, name):
    r = copy(runs, "run1", tmp_path / "r")
    (r / name).write_bytes(content)
    argv = ["sample", r, "--checkpoint", "best" if name == "best.npz" else "last", "--length", "5"]
    line = refused(capsys, *argv, keep=[r])
    assert str(r / name) in line and "not a readable .npz archive" in line and "pickle" not in line


def test_an_archive_of_pickled_objects_is_still_named_so(tmp_path):
    np.savez(tmp_path / "obj.npz", __meta__=np.array([{"format": "rnnkit-checkpoint"}], dtype=object))
    with pytest.raises(ValueError, match="it holds pickled objects, which rnnkit never loads"):
        io.load(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"12345")
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        io.load(tmp_path / "junk.npz")


# 4 -- --resume on a run of another kind ---------------------------------------------------------

def test_resume_of_another_kind_says_the_kind(runs, tmp_path, capsys):
    c2 = copy(runs, "crun", tmp_path / "c2")
    line = refused(capsys, "train", runs / "good.txt", "--out", c2, "--resume", "--hidden", "16",
                   "--batch-size", "4", keep=[c2])
    assert "holds a classifier run, not a charlm run" in line and "cannot change" not in line
    l2 = copy(runs, "run1", tmp_path / "l2")
    line = refused(capsys, "classify", "train", "--train", runs / "cls.npz", "--out", l2, "--resume",
                   "--hidden", "8", "--batch-size", "32", keep=[l2])
    assert "holds a charlm run, not a classifier run" in line and "cannot change" not in line


# 5 -- --resume with fewer --steps than the run has done ----------------------------------------

def test_resume_with_fewer_steps_than_done(runs, tmp_path, capsys):
    r = copy(runs, "run1", tmp_path / "r")
    line = refused(capsys, "train", runs / "good.txt", "--out", r, "--resume", "--steps", "1", "--no-progress",
                   keep=[r])
    assert "already done 3 steps, more than --steps 1" in line
    line = refused(capsys, "train", runs / "good.txt", "--out", r, "--resume", "--no-progress", keep=[r])
    assert "already finished its 3 steps" in line


# 6 -- a negative seed names the option -----------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["train", "{d}/good.txt", "--out", "{t}/x"],
    ["classify", "train", "--train", "{d}/cls.npz", "--out", "{t}/x"],
    ["demo", "--out", "{t}/x", "--minutes", "0.01"],
    ["sample", "{d}/run1"],
    ["handwriting", "sample", "{d}/run1"],
])
def test_negative_seed_names_the_option(runs, tmp_path, capsys, argv):
    line = refused(capsys, *[a.format(d=runs, t=tmp_path) for a in argv], "--seed", "-1")
    assert "--seed" in line and "-1" in line and not (tmp_path / "x").exists()


# 7 -- demo suggests what demo has ---------------------------------------------------------------

def test_demo_over_a_run_suggests_what_demo_offers(runs, tmp_path, capsys):
    r = copy(runs, "run1", tmp_path / "r")
    line = refused(capsys, "demo", "--out", r, "--minutes", "0.01", "--no-progress", keep=[r])
    assert "already holds a charlm run" in line and "--resume" in line and "--overwrite" in line
    assert "drop --out for a fresh directory" in line
    line = refused(capsys, "demo", "--resume", "--minutes", "0.01", "--no-progress")
    assert "--resume: expected --out RUN_DIR, the demo run to continue" in line


# 8 -- eval of an empty file speaks of evaluating ------------------------------------------------

@pytest.mark.parametrize("content", ["", "h"])
def test_eval_of_too_little_text(runs, tmp_path, capsys, content):
    (tmp_path / "empty.txt").write_text(content)
    line = refused(capsys, "eval", runs / "run1", tmp_path / "empty.txt", "--no-progress")
    assert str(tmp_path / "empty.txt") in line and "evaluat" in line and "train" not in line


# 9 -- an empty path -----------------------------------------------------------------------------

@pytest.mark.parametrize("argv,option", [
    (["train", "{d}/good.txt", "--out", ""], "--out"),
    (["train", "", "--out", "{t}/x"], "TEXT_FILE"),
    (["demo", "--out", "", "--minutes", "0.01"], "--out"),
    (["sample", ""], "RUN_DIR"),
    (["eval", "", "{d}/good.txt"], "RUN_DIR"),
    (["eval", "{d}/run1", ""], "TEXT_FILE"),
    (["export", ""], "RUN_DIR"),
    (["export", "{d}/run1", "-o", ""], "--output"),
    (["classify", "train", "--train", "{d}/cls.npz", "--out", ""], "--out"),
])
def test_empty_path_names_the_option(runs, tmp_path, capsys, argv, option):
    line = refused(capsys, *[a.format(d=runs, t=tmp_path) for a in argv], keep=[runs / "run1"])
    assert "expected a path, got an empty string" in line and option in line


# 10 -- eval counts what it scores ---------------------------------------------------------------

def test_eval_of_a_text_the_model_cannot_read(runs, tmp_path, capsys):
    (tmp_path / "unseen.txt").write_text("ZQJK" * 224)
    line = refused(capsys, "eval", runs / "run1", tmp_path / "unseen.txt", "--no-progress")
    assert str(tmp_path / "unseen.txt") in line and "vocabulary" in line


def test_eval_counts_the_unknown_characters_it_scores(runs, tmp_path, capsys):
    # 16 rows of 10 scored characters: the first character is only read, the last 5 are left over
    text = "Q" + ("hello world " * 20)[:160] + "ZZZZZ"
    (tmp_path / "t.txt").write_text(text)
    code, out, err = rnnkit(capsys, "eval", runs / "run1", tmp_path / "t.txt", "--no-progress")
    assert code == 0, err
    assert "over 160 characters" in out and "vocabulary" not in out
    text = ("hello world " * 20)[:80] + "ZZZ" + ("hello world " * 20)[:78]
    (tmp_path / "t.txt").write_text(text)
    code, out, err = rnnkit(capsys, "eval", runs / "run1", tmp_path / "t.txt", "--no-progress")
    assert code == 0, err
    assert "over 160 characters" in out and "(3 characters outside the model's vocabulary" in out


def test_every_command_that_resumes_a_run_names_its_kind():
    """check_resume refuses a run of another kind by the kind each training command writes: a new
    training command needs its entry."""
    import argparse

    from rnnkit.cli import build_parser
    from rnnkit.commands._args import RUN_KINDS

    def resumes(p):
        if any("--resume" in a.option_strings for a in p._actions) and \
                any(g.title == "run directory" for g in p._action_groups):
            return True
        return any(resumes(c) for a in p._actions if isinstance(a, argparse._SubParsersAction)
                   for c in a.choices.values())

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {name for name, p in sub.choices.items() if resumes(p)} == set(RUN_KINDS)


# 11 -- an output file the user named is never replaced without --overwrite ------------------------

@pytest.mark.parametrize("argv,option", [
    (["plot", "{d}/run1", "--png", "{f}"], "--png"),
    (["classify", "predict", "{d}/crun", "{d}/cls.npz", "--output", "{f}"], "--output"),
    (["seq2seq", "translate", "{t}/no-run", "a b", "--output", "{f}"], "--output"),
    (["seq2seq", "translate", "{t}/no-run", "--input", "{d}/good.txt", "--scores", "{f}"], "--scores"),
    (["seq2seq", "attention", "{t}/no-run", "a b", "--png", "{f}"], "--png"),
    (["tag", "predict", "{t}/no-run", "{d}/good.txt", "--output", "{f}"], "--output"),
    (["handwriting", "sample", "{t}/no-run", "--output", "{f}"], "--output"),
])
def test_an_existing_output_file_is_kept(runs, tmp_path, capsys, argv, option):
    """Refused before any work (a run directory that does not exist is not even looked at)."""
    mine = tmp_path / "mine" / "keep.out"
    mine.parent.mkdir()
    mine.write_bytes(b"the user's own file")
    line = refused(capsys, *[a.format(d=runs, t=tmp_path, f=mine) for a in argv], keep=[mine.parent, runs / "run1"])
    assert f"{option} {mine}: the file exists; pass --overwrite" in line


def test_overwrite_replaces_an_output_file(runs, tmp_path, capsys):
    mine = tmp_path / "labels.txt"
    mine.write_text("old")
    code, _, err = rnnkit(capsys, "classify", "predict", runs / "crun", runs / "cls.npz", "--output", mine,
                          "--overwrite")
    assert code == 0, err
    assert len(mine.read_text().split()) == 40
    png = tmp_path / "curves.png"
    png.write_text("old")
    code, _, err = rnnkit(capsys, "plot", runs / "run1", "--png", png, "--overwrite")
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_export_checks_each_graph_file(runs, tmp_path, capsys):
    """-o m.onnx for a character model writes m.sequence.onnx and m.step.onnx: an existing one of
    them is refused before either is written."""
    (tmp_path / "m.step.onnx").write_bytes(b"mine")
    line = refused(capsys, "export", runs / "run1", "-o", tmp_path / "m.onnx", keep=[tmp_path])
    assert f"{tmp_path / 'm.step.onnx'}: the file exists; pass --overwrite" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.step.onnx"]
    code, _, err = rnnkit(capsys, "export", runs / "run1", "-o", tmp_path / "m.onnx", "--overwrite")
    assert code == 0, err
    assert (tmp_path / "m.step.onnx").read_bytes() != b"mine"
    # the run's own default file is the run's: exporting again rewrites it
    for _ in range(2):
        code, _, err = rnnkit(capsys, "export", runs / "run1")
        assert code == 0, err


def test_radicals_keeps_existing_files(tmp_path, capsys):
    (tmp_path / "k-test.npz").write_bytes(b"mine")
    line = refused(capsys, "handwriting", "radicals", tmp_path / "k", keep=[tmp_path])
    assert f"PREFIX {tmp_path / 'k-test.npz'}: the file exists" in line


def test_every_command_that_writes_a_named_file_offers_overwrite():
    """A new command with an output-file option needs --overwrite beside it (cli refuses an existing
    file without it)."""
    import argparse

    from rnnkit.cli import build_parser

    def parsers(p, name):
        yield name, p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for n, c in a.choices.items():
                    yield from parsers(c, f"{name} {n}")

    writers = [(name, p) for name, p in parsers(build_parser(), "rnnkit")
               if any(a.dest in ("output", "png", "scores", "prefix") for a in p._actions)]
    assert len(writers) == 9
    for name, p in writers:
        assert any("--overwrite" in a.option_strings for a in p._actions), name


def test_a_device_as_output_is_written_not_replaced(runs, tmp_path, capsys):
    """/dev/null (and /dev/stdout) are not the user's files to keep, and an atomic rename would put a
    regular file in their place."""
    before = os.stat("/dev/null")
    code, _, err = rnnkit(capsys, "classify", "predict", runs / "crun", runs / "cls.npz", "--output", "/dev/null")
    assert code == 0, err
    code, _, err = rnnkit(capsys, "plot", runs / "run1", "--png", "/dev/null")
    assert code == 0, err
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_rdev) == (before.st_mode, before.st_rdev)


def test_a_symbolic_link_as_output_is_written_through(runs, tmp_path, capsys):
    """The link the user made stays a link; the file it points to gets the output."""
    target, link = tmp_path / "target.txt", tmp_path / "link.txt"
    target.write_text("old\n")
    link.symlink_to(target)
    code, out, err = rnnkit(capsys, "classify", "predict", runs / "crun", runs / "cls.npz", "--output", link,
                            "--overwrite")
    assert code == 0, err
    assert link.is_symlink() and target.read_text() != "old\n" and len(target.read_text().split()) > 1
    png_target, png_link = tmp_path / "c.png", tmp_path / "l.png"
    png_target.write_bytes(b"old")
    png_link.symlink_to(png_target)
    code, _, err = rnnkit(capsys, "plot", runs / "run1", "--png", png_link, "--overwrite")
    assert code == 0, err
    assert png_link.is_symlink() and png_target.read_bytes()[:4] == b"\x89PNG"


def test_dash_as_output_is_stdout(runs, tmp_path, capsys, monkeypatch):
    """--output - is stdout, never a file named '-' (which the existing-file check would not guard);
    '-' for a directory or an image is refused."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_text("precious\n")
    code, out, err = rnnkit(capsys, "classify", "predict", runs / "crun", runs / "cls.npz", "--output", "-")
    assert code == 0, err
    assert (tmp_path / "-").read_text() == "precious\n" and len(out.split()) > 1
    line = refused(capsys, "plot", runs / "run1", "--png", "-", keep=[tmp_path])
    assert "--png -: expected a file name ('-' means stdout only for a text --output)" in line
    from rnnkit.io import is_device

    assert is_device("/dev/stdout") and is_device("/proc/self/fd/1") and not is_device(tmp_path / "-")


def test_export_of_several_graphs_leaves_a_file_of_the_stem_alone(runs, tmp_path, capsys):
    (tmp_path / "x.onnx").write_bytes(b"mine")                      # a charlm writes x.sequence / x.step
    code, _, err = rnnkit(capsys, "export", runs / "run1", "-o", tmp_path / "x.onnx")
    assert code == 0, err
    assert (tmp_path / "x.onnx").read_bytes() == b"mine"


def test_stdout_as_a_path_keeps_what_came_before(runs, tmp_path):
    """--output /dev/stdout when the shell sent stdout to a file: written after what the shell and
    the process wrote there, not over it from the start (the file is opened once, by the shell)."""
    import subprocess
    import sys

    out = tmp_path / "all.txt"
    cmd = (f"{{ echo header; {sys.executable} -m rnnkit classify predict {runs / 'crun'} {runs / 'cls.npz'} "
           f"--output /dev/stdout 2>/dev/null; echo footer; }} > {out}")
    assert subprocess.run(["sh", "-c", cmd]).returncode == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "header" and lines[-1] == "footer" and len(lines) > 3


def test_dash_only_for_text_outputs(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, "export", runs / "run1", "-o", "-", keep=[tmp_path])
    assert "--output -: expected a file name ('-' means stdout only for a text --output)" in line
    assert not (tmp_path / "-").exists()


def test_an_experiment_directory_is_named_as_one_and_a_closed_pipe_stops_quietly(runs, tmp_path, capsys):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.json").write_text('{"kind": "experiment-vanishing", "rnnkit_version": "0", "settings": {}}')
    for argv in (["plot", exp], ["export", exp], ["sample", exp]):
        line = refused(capsys, *argv)
        assert "holds an experiment (experiment-vanishing), not a run" in line and "runs" in line, line
    import subprocess
    import sys

    p = subprocess.run(f"{sys.executable} -m rnnkit sample {runs / 'run1'} --length 100000 --num 4 | head -c 10",
                       shell=True, capture_output=True, executable="/bin/bash")
    assert len(p.stdout) == 10 and p.stderr == b""             # bytes: head may cut a character in two


def test_handwriting_eval_finds_a_moved_stroke_file_by_data(tmp_path, capsys, monkeypatch):
    import rnnkit.data.handwriting as HW

    rng = np.random.default_rng(0)
    seqs = [np.column_stack([rng.normal(size=(n, 2)), (np.arange(n) == n - 1)]).astype(np.float32)
            for n in rng.integers(8, 15, 30)]
    HW.save_npz(tmp_path / "s.npz", seqs)
    monkeypatch.chdir(tmp_path)
    assert main(["handwriting", "train", "--data", "s.npz", "--steps", "3", "--hidden", "8", "--components", "2",
                 "--out", "r", "--no-progress"]) == 0
    monkeypatch.chdir("/")
    assert main(["handwriting", "eval", str(tmp_path / "r")]) == 0            # recorded by its absolute path
    (tmp_path / "s.npz").rename(tmp_path / "moved.npz")
    line = refused(capsys, "handwriting", "eval", tmp_path / "r")
    assert "the run's strokes" in line and "file not found; pass --data FILE" in line
    assert main(["handwriting", "eval", str(tmp_path / "r"), "--data", str(tmp_path / "moved.npz")]) == 0
    HW.save_npz(tmp_path / "other.npz", seqs[:20])
    line = refused(capsys, "handwriting", "eval", tmp_path / "r", "--data", tmp_path / "other.npz")
    assert "is not the data the run was trained on" in line


def test_an_interrupted_demo_resumes_as_its_own_run(tmp_path, capsys):
    out = tmp_path / "d"
    base = ["demo", "--out", str(out), "--no-progress", "--sample-every", "1000"]
    assert main(base + ["--minutes", "0.02", "--hidden", "8"]) == 0        # stands in for one cut short
    progress = io.load(out / "checkpoint.npz")["progress"]
    capsys.readouterr()
    assert "has --hidden 8, not 16" in refused(capsys, *base, "--minutes", "0.04", "--hidden", "16", "--resume")
    code, out_, err = rnnkit(capsys, *base, "--minutes", "0.01", "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "already trained" in err and "of its --minutes 0.01" in err and "pass a larger --minutes" in err
    assert "rnnkit demo: a " not in out_                      # no banner above the refusal
    # the first session's time includes compiling the kernels when nothing before it in this process
    # did (20 s on a fresh install): the second session is given that much more
    assert main(base + ["--minutes", f"{(float(progress['elapsed']) + 1.2) / 60:.4f}", "--resume"]) == 0
    assert "(hidden 8)" in capsys.readouterr().out
    assert int(io.load(out / "checkpoint.npz")["progress"]["step"]) > int(progress["step"])


def test_handwriting_resumes_on_its_strokes_moved(tmp_path, capsys, monkeypatch):
    import rnnkit.data.handwriting as HW

    rng = np.random.default_rng(1)
    seqs = [np.column_stack([rng.normal(size=(n, 2)), (np.arange(n) == n - 1)]).astype(np.float32)
            for n in rng.integers(8, 15, 30)]
    HW.save_npz(tmp_path / "s.npz", seqs)
    base = ["handwriting", "train", "--hidden", "8", "--components", "2", "--out", str(tmp_path / "r"),
            "--no-progress"]
    assert main(base + ["--data", str(tmp_path / "s.npz"), "--steps", "3"]) == 0
    (tmp_path / "s.npz").rename(tmp_path / "moved.npz")
    line = refused(capsys, *base, "--steps", "6", "--resume")
    assert "the run's strokes" in line and "pass --data" in line
    assert main(base + ["--data", str(tmp_path / "moved.npz"), "--steps", "6", "--resume"]) == 0
    HW.save_npz(tmp_path / "other.npz", seqs[:25])
    line = refused(capsys, *base, "--data", str(tmp_path / "other.npz"), "--steps", "9", "--resume")
    assert "cannot change on resume" in line or "is not the data the run was trained on" in line
    capsys.readouterr()
    assert main(["handwriting", "eval", str(tmp_path / "r")]) == 0           # the run now records the moved file


def test_kanjivg_options_with_the_user_s_strokes_are_refused(tmp_path, capsys):
    line = refused(capsys, "handwriting", "train", "--data", tmp_path / "s.npz", "--characters", "50",
                   "--out", tmp_path / "r")
    assert "--characters: options of the built-in kanjivg strokes, not of --data" in line


def test_the_command_s_kanjivg_defaults_are_the_app_s():
    from rnnkit.apps.handwriting import DEFAULT_CHARACTERS
    from rnnkit.commands.handwriting import KANJIVG_DEFAULTS
    from rnnkit.data.handwriting import STEP

    assert KANJIVG_DEFAULTS == {"characters": DEFAULT_CHARACTERS, "step": STEP}
