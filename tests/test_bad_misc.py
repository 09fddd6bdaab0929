"""Bad input found by a tester's sweep of the CLI (plot, experiment, seq2seq translate): each is one
line with exit status 2 and leaves nothing behind, or, where the input is usable, works."""
import json
import math

import pytest

from rnnkit.cli import main

TEXT = "hello world, this is a tiny text for training. " * 40


def run(capsys, *args):
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:                      # argparse's errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    (d / "t.txt").write_text(TEXT)
    assert main(["train", str(d / "t.txt"), "--out", str(d / "run"), "--steps", "4", "--hidden", "8", "--layers", "1",
                 "--seq-len", "16", "--batch-size", "4", "--eval-every", "2", "--log-every", "1", "--no-progress"]) == 0
    return d / "run"


def test_plot_leaves_out_what_it_cannot_draw(lm_run, tmp_path, capsys):
    """Records without bpc, with NaN, null, strings or huge numbers, lines cut short and lines that
    are not objects: the figure is drawn from the rest, with one warning naming the bad lines."""
    capsys.readouterr()
    log = lm_run / "metrics.jsonl"
    good = log.read_text()
    n = len(good.splitlines())
    try:
        log.write_text(good + '{"step": 5, "loss": 1.0}\n{"step": 6, "loss": NaN, "bpc": "x"}\n'
                       '{"step": 7, "loss": null, "bpc": 1e400}\n{"step": 8, "lo\n[1, 2]\n\xff\n')
        code, out, err = run(capsys, "plot", lm_run, "--png", tmp_path / "c.png")
    finally:
        log.write_text(good)
    assert code == 0, err
    assert (tmp_path / "c.png").stat().st_size > 0
    assert err.strip() == f"rnnkit: warning: {log}, lines {n + 4}, {n + 5}, {n + 6}: not a JSON record; left out of the plot"


def test_plot_without_a_metrics_file_is_one_line(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").mkdir()
    code, _, err = run(capsys, "plot", tmp_path)
    one_line_error(code, err, "is not an rnnkit run directory")


def test_vanishing_on_reber_records_the_flow_of_batches_of_different_lengths(tmp_path, capsys):
    code, out, err = run(capsys, "experiment", "vanishing", "--task", "reber", "--cells", "lstm", "--steps", 3,
                         "--hidden", 4, "--n-test", 10, "--eval-every", 1, "--flow-every", 1, "--no-progress",
                         "--out", tmp_path / "e")
    assert code == 0, err
    assert (tmp_path / "e" / "gradient_flow.png").exists() and (tmp_path / "e" / "gradient_flow_profile.png").exists()
    result = json.loads(next((tmp_path / "e" / "runs").glob("*/result.json")).read_text())
    rows = result["flow"]
    assert len(rows) == 3 and len({len(r) for r in rows}) == 1       # padded to one width


@pytest.mark.parametrize("args,fragments", [
    (["exploding", "--task", "dna", "--T", 5], ["T: expected at least 18", "got 5"]),
    (["vanishing", "--task", "dna", "--T", "40,5"], ["T: expected at least 18", "got 5"]),
    (["vanishing", "--forget-bias", "nan"], ["--forget-bias", "expected a finite number", "'nan'"]),
    (["exploding", "--gain", "1e308"], ["--gain", "expected a number in (0, 1000]", "1e308"]),
])
def test_experiment_settings_are_checked_before_anything_is_made(tmp_path, capsys, args, fragments):
    code, _, err = run(capsys, "experiment", *args, "--steps", 2, "--hidden", 4, "--out", tmp_path / "x")
    one_line_error(code, err, *fragments)
    assert not (tmp_path / "x").exists()


def test_translate_scores_need_targets(tmp_path, capsys):
    code, _, err = run(capsys, "seq2seq", "train", "--task", "reverse", "--steps", 2, "--eval-every", 1, "--n-train", 40,
                       "--n-valid", 8, "--n-test", 8, "--hidden-size", 8, "--embed-size", 4, "--no-progress",
                       "--out", tmp_path / "s")
    assert code == 0, err
    (tmp_path / "src.txt").write_text("abc\nde\n")
    code, _, err = run(capsys, "seq2seq", "translate", tmp_path / "s", "--input", tmp_path / "src.txt",
                       "--scores", tmp_path / "sc.json")
    one_line_error(code, err, "--scores: expected source<TAB>target lines in", "src.txt")
    code, _, err = run(capsys, "seq2seq", "translate", tmp_path / "s", "abc", "--scores", tmp_path / "sc.json")
    one_line_error(code, err, "--scores: expected --input")
    assert not (tmp_path / "sc.json").exists()


def _strokes(tmp_path, name, lengths=20, scale=1.0, pen=None):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 20, 3)).astype(np.float32)
    x[:, :, :2] *= scale
    x[:, :, 2] = rng.random((30, 20)) < 0.2 if pen is None else pen
    np.savez(tmp_path / name, x=x, lengths=np.full(30, lengths))
    return tmp_path / name


@pytest.mark.parametrize("kw,fragments", [
    ({"scale": 0.0}, ["expected pen movement, got dx = dy = 0 at every point"]),
    ({"lengths": 1}, ["expected sequences of at least 2 points", "got 30 of at most 1"]),
    ({"scale": 1e30}, ["sequence 0, step 0: expected finite dx and dy of at most 1e+06"]),
])
def test_handwriting_data_that_cannot_train_is_refused_before_training(tmp_path, capsys, kw, fragments):
    data = _strokes(tmp_path, "h.npz", **kw)
    code, _, err = run(capsys, "handwriting", "train", "--data", data, "--steps", 2, "--hidden", 8, "--components", 2,
                       "--eval-every", 1, "--no-progress", "--out", tmp_path / "h")
    one_line_error(code, err, "h.npz: ", *fragments)
    assert not (tmp_path / "h").exists()


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_handwriting_without_pen_downs_or_jumps_is_scored_beside_finite_baselines(tmp_path, capsys):
    """Every pen bit 1 (no point inside a stroke) and offsets far below 1 (no jump longer than
    kanjivg's step): the order-1 baseline's empty regimes take the pooled fit, and the Gaussian
    baseline's pen-up odds stay finite."""
    for name, kw in (("p.npz", {"pen": 1}), ("s.npz", {"scale": 0.01})):
        data = _strokes(tmp_path, name, **kw)
        code, _, err = run(capsys, "handwriting", "train", "--data", data, "--steps", 2, "--hidden", 8,
                           "--components", 2, "--eval-every", 1, "--no-progress", "--out", tmp_path / name[0])
        assert code == 0, err
        nll = json.loads((tmp_path / name[0] / "scores.json").read_text())["nll_per_point"]
        assert len(nll) == 3 and all(map(math.isfinite, nll.values())), nll


def _cls_npz(path):
    import numpy as np

    r = np.random.default_rng(0)
    np.savez(path, x=r.normal(size=(40, 12, 3)).astype("f4"), lengths=r.integers(4, 13, 40), y=r.integers(0, 3, 40))
    return path


OVERWRITE_APPS = {
    "train": lambda d: ["train", d / "t.txt", "--steps", 2, "--hidden", 8, "--layers", 1, "--seq-len", 16,
                        "--batch-size", 4, "--eval-every", 1, "--no-progress"],
    "classify": lambda d: ["classify", "train", "--train", _cls_npz(d / "c.npz"), "--steps", 2, "--hidden-size", 8,
                           "--eval-every", 1, "--no-progress"],
    "forecast": lambda d: ["forecast", "--dataset", "airline", "--steps", 2, "--hidden", 4, "--no-progress"],
    "handwriting": lambda d: ["handwriting", "train", "--data", _strokes(d, "h.npz"), "--steps", 2, "--hidden", 8,
                              "--components", 2, "--eval-every", 1, "--no-progress"],
    "seq2seq": lambda d: ["seq2seq", "train", "--task", "reverse", "--steps", 2, "--eval-every", 1, "--n-train", 40,
                          "--n-valid", 8, "--n-test", 8, "--hidden-size", 8, "--embed-size", 4, "--no-progress"],
    "tag": lambda d: ["tag", "train", "--dna-train", 40, "--dna-test", 10, "--dna-length", 30, "--steps", 2,
                      "--hidden-size", 8, "--eval-every", 1, "--no-progress"],
}


@pytest.mark.parametrize("app", sorted(OVERWRITE_APPS))
def test_overwrite_refused_late_keeps_the_old_run(app, tmp_path, capsys, monkeypatch):
    """--overwrite deletes the old run only when nothing else can refuse the command: here the last
    check before training (the memory a step needs) refuses, and the old run is still all there."""
    import rnnkit.apps.common as common
    from rnnkit.errors import UserError

    (tmp_path / "t.txt").write_text(TEXT)
    args = OVERWRITE_APPS[app](tmp_path)
    code, _, err = run(capsys, *args, "--out", tmp_path / "run")
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}

    def refuse(*a, **k):
        raise UserError("this configuration needs more memory than is free here (a test's refusal)")

    monkeypatch.setattr(common, "check_memory", refuse)
    code, _, err = run(capsys, *args, "--out", tmp_path / "run", "--overwrite")
    one_line_error(code, err, "a test's refusal")
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


def test_overwrite_with_a_model_too_big_keeps_the_old_run(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(TEXT)
    args = OVERWRITE_APPS["train"](tmp_path)
    assert run(capsys, *args, "--out", tmp_path / "run")[0] == 0
    before = (tmp_path / "run" / "best.npz").read_bytes()
    code, _, err = run(capsys, *args, "--out", tmp_path / "run", "--overwrite", "--hidden", 100000)
    one_line_error(code, err, "this configuration needs about")
    assert (tmp_path / "run" / "best.npz").read_bytes() == before


def test_handwriting_settings_and_edited_configs_are_one_line(tmp_path, capsys):
    data = _strokes(tmp_path, "h.npz")
    args = ["handwriting", "train", "--data", data, "--steps", 2, "--hidden", 8, "--components", 2, "--eval-every", 1,
            "--no-progress"]
    code, _, err = run(capsys, *args, "--valid-fraction", 0, "--out", tmp_path / "v")
    one_line_error(code, err, "--valid-fraction: expected a share above 0")
    assert not (tmp_path / "v").exists()
    assert run(capsys, *args, "--out", tmp_path / "h")[0] == 0
    cfg = json.loads((tmp_path / "h" / "config.json").read_text())
    del cfg["data"]
    (tmp_path / "h" / "config.json").write_text(json.dumps(cfg))
    for cmd in (["eval", tmp_path / "h"], ["sample", tmp_path / "h", "--output", tmp_path / "s.png"]):
        code, _, err = run(capsys, "handwriting", *cmd)
        one_line_error(code, err, "config.json: expected the data settings a handwriting run records")


def test_overwrite_keeps_what_rnnkit_did_not_write(tmp_path, capsys):
    """A directory with another program's config.json (no rnnkit_version in it) is not rnnkit's to delete."""
    (tmp_path / "t.txt").write_text(TEXT)
    foreign = tmp_path / "hf"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"kind": "bert-base"}))
    (foreign / "pytorch_model.bin").write_bytes(b"weights")
    code, _, err = run(capsys, *OVERWRITE_APPS["train"](tmp_path), "--out", foreign, "--overwrite")
    one_line_error(code, err, "--overwrite: ", "rnnkit did not write", "choose another --out")
    assert (foreign / "pytorch_model.bin").read_bytes() == b"weights"


def test_overwrite_refused_by_the_trainer_keeps_the_old_run(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(TEXT)
    args = OVERWRITE_APPS["train"](tmp_path)
    assert run(capsys, *args, "--out", tmp_path / "run")[0] == 0
    before = (tmp_path / "run" / "best.npz").read_bytes()
    code, _, err = run(capsys, *args, "--out", tmp_path / "run", "--overwrite", "--freeze", "nothing.*")
    one_line_error(code, err, "freeze: pattern 'nothing.*' matches no parameter")
    assert (tmp_path / "run" / "best.npz").read_bytes() == before


@pytest.mark.parametrize("argv,name", [
    (["tag", "train", "--train", ""], "--train"), (["handwriting", "train", "--data", ""], "--data"),
    (["seq2seq", "train", "--train", ""], "--train"), (["classify", "predict", "", "x.npz"], "RUN_DIR"),
    (["plot", ""], "RUN_DIR"), (["forecast", "--dataset", ""], "--dataset"), (["tag", "predict", "r", ""], "FILE"),
])
def test_an_empty_path_is_named(argv, name, capsys):
    code, _, err = run(capsys, *argv)
    one_line_error(code, err, f"{name}: expected a path, got an empty string")


def test_ts_header_classes_separated_by_commas(tmp_path):
    from rnnkit.data.readers import read_ts

    (tmp_path / "c.ts").write_text("@problemName t\n@univariate true\n@equalLength true\n@classLabel true 1,2\n"
                                   "@data\n1,2,3:1\n2,3,4:2\n")
    assert list(read_ts(tmp_path / "c.ts")[1]) == ["1", "2"]
