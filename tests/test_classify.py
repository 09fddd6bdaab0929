"""``rnnkit classify`` on the user's own files, end to end: .npz in both layouts and UEA .ts, train,
resume (bit-identical), predict, refusals, and one clear line for every kind of bad input."""
import json

import numpy as np
import pytest

import rnnkit.runs
from rnnkit.cli import main

TINY = ["--hidden-size", "6", "--batch-size", "8", "--eval-every", "5", "--no-progress", "--seed", "1"]


def make_sequences(n, seed, d=3):
    """Class 'up' rises, class 'down' falls; lengths 4-9."""
    rng = np.random.default_rng(seed)
    xs, y = [], []
    for i in range(n):
        L = int(rng.integers(4, 10))
        sign = 1 if i % 2 else -1
        xs.append((sign * np.linspace(0, 1, L)[:, None] + 0.1 * rng.standard_normal((L, d))).astype(np.float32))
        y.append("up" if sign > 0 else "down")
    return xs, np.array(y)


def save_padded(path, xs, y=None):
    L = max(len(x) for x in xs)
    x = np.zeros((len(xs), L, xs[0].shape[1]), np.float32)
    for i, s in enumerate(xs):
        x[i, : len(s)] = s
    arrays = {"x": x, "lengths": np.array([len(s) for s in xs])}
    if y is not None:
        arrays["y"] = y
    np.savez(path, **arrays)


def save_per_sequence(path, xs, y):
    np.savez(path, y=y, **{f"x_{i}": s for i, s in enumerate(xs)})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("classify")
    save_padded(d / "train.npz", *make_sequences(60, 0))
    save_per_sequence(d / "test.npz", *make_sequences(20, 1))
    save_padded(d / "new.npz", make_sequences(6, 2)[0])                 # unlabelled
    return d


def test_train_resume_predict(files, tmp_path, capsys):
    out, full = tmp_path / "run", tmp_path / "full"
    args = ["classify", "train", "--train", str(files / "train.npz"), "--test", str(files / "test.npz")] + TINY
    assert main(args + ["--steps", "10", "--out", str(out)]) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["classes"] == ["down", "up"] and scores["n_test"] == 20 and scores["n_train"] == 54
    assert json.loads((out / "config.json").read_text())["kind"] == "classifier"
    for name in ("checkpoint.npz", "best.npz", "metrics.jsonl", "confusion.png"):
        assert (out / name).exists()
    # resume to 20 steps == 20 steps in one go
    assert main(args + ["--steps", "20", "--out", str(out), "--resume"]) == 0
    assert main(args + ["--steps", "20", "--out", str(full)]) == 0
    a, b = rnnkit.runs.load(out, "last"), rnnkit.runs.load(full, "last")
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    # predict: labels out, accuracy when the file has labels
    capsys.readouterr()
    assert main(["classify", "predict", str(full), str(files / "new.npz")]) == 0
    lines = capsys.readouterr().out.split()
    assert len(lines) == 6 and set(lines) <= {"up", "down"}
    assert main(["classify", "predict", str(full), str(files / "test.npz"), "--output", str(tmp_path / "p.txt")]) == 0
    assert "accuracy" in capsys.readouterr().err and len((tmp_path / "p.txt").read_text().split()) == 20
    # the Python API gives the same model
    model = rnnkit.load(full)
    assert model.predict_sequences(make_sequences(6, 2)[0]) == lines


def test_learns_the_direction(files, tmp_path):
    out = tmp_path / "r"
    assert main(["classify", "train", "--train", str(files / "train.npz"), "--test", str(files / "test.npz"),
                 "--steps", "120", "--lr", "0.02", "--out", str(out)] + TINY) == 0
    assert json.loads((out / "scores.json").read_text())["accuracy"] >= 0.9


def resumed_equals_whole(base, tmp_path):
    """Train ``base`` 6 steps and resume to 12, and 12 in one go: the weights are bit-identical
    (noise and masks come from the checkpointed RNG). Returns the model of the whole run."""
    out, full = tmp_path / "run", tmp_path / "full"
    assert main(base + ["--steps", "6", "--out", str(out)]) == 0
    assert main(base + ["--steps", "12", "--out", str(out), "--resume"]) == 0
    assert main(base + ["--steps", "12", "--out", str(full)]) == 0
    a, b = rnnkit.runs.load(out, "last"), rnnkit.runs.load(full, "last")
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    return rnnkit.load(full)


def test_regularisation_options_and_max_pooling(files, tmp_path, capsys):
    """--recurrent-dropout, --input-dropout, --zoneout ... reach the model and its config; a
    stopped run resumes bit for bit (the masks come from the checkpointed RNG); --engine torch
    refuses them in one line; a default run records none of them."""
    base = ["classify", "train", "--train", str(files / "train.npz"), "--pooling", "max", "--bidirectional",
            "--recurrent-dropout", "0.2", "--input-dropout", "0.1", "--zoneout", "0.1", "--forget-bias", "1"] + TINY
    model = resumed_equals_whole(base, tmp_path)
    assert model.pooling == "max" and model.rnn.recurrent_dropout == 0.2 and model.rnn.input_dropout == 0.1
    assert model.rnn.zoneout == 0.1 and model.config["forget_bias"] == 1.0
    plain = tmp_path / "plain"
    assert main(["classify", "train", "--train", str(files / "train.npz"), "--steps", "2", "--out", str(plain)]
                + TINY) == 0
    assert "recurrent_dropout" not in rnnkit.load(plain).config
    capsys.readouterr()
    assert main(base + ["--steps", "2", "--engine", "torch", "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the torch engine's model has no --recurrent-dropout" in err


def test_input_augmentation_options(files, tmp_path, capsys):
    """--input-jitter / --input-scale reach the model and its config; a stopped run resumes bit for
    bit (the noise comes from the checkpointed RNG); --engine torch refuses them in one line."""
    base = ["classify", "train", "--train", str(files / "train.npz"), "--pooling", "max",
            "--input-jitter", "0.2", "--input-scale", "0.1"] + TINY
    model = resumed_equals_whole(base, tmp_path)
    assert (model.noise.jitter, model.noise.scale) == (0.2, 0.1) and model.config["input_scale"] == 0.1
    capsys.readouterr()
    assert main(base + ["--steps", "2", "--engine", "torch", "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no --input-jitter, --input-scale" in err, err


def test_conv_branch_options(files, tmp_path, capsys):
    """--conv-channels / --conv-kernels (LSTM-FCN's branch) reach the model and its config; a
    stopped run resumes bit for bit (running statistics included); predict reads the run; bad
    values and --engine torch are refused in one line each."""
    base = ["classify", "train", "--train", str(files / "train.npz"), "--test", str(files / "test.npz"),
            "--pooling", "max", "--head-dropout", "0.5", "--conv-channels", "5,4", "--conv-kernels", "4,3"] + TINY
    model = resumed_equals_whole(base, tmp_path)
    assert model.fcn.channels == [5, 4] and model.fcn.kernels == [4, 3]
    assert (model.config["conv_channels"], model.config["conv_kernels"]) == ([5, 4], [4, 3])
    assert int(model.fcn.bn0.buffers["num_batches_tracked"]) > 0 and model.fcn.bn1.buffers["running_var"].std() > 0
    capsys.readouterr()
    assert main(["classify", "predict", str(tmp_path / "full"), str(files / "test.npz"),
                 "--output", str(tmp_path / "p.txt")]) == 0
    assert "accuracy" in capsys.readouterr().err
    assert len((tmp_path / "p.txt").read_text().split()) == 20
    plain = tmp_path / "plain"
    assert main(["classify", "train", "--train", str(files / "train.npz"), "--steps", "2", "--out", str(plain)]
                + TINY) == 0
    assert "conv_channels" not in rnnkit.load(plain).config
    capsys.readouterr()
    train = ["classify", "train", "--train", str(files / "train.npz"), "--steps", "2", "--out", str(tmp_path / "b")]
    for extra, want in [(["--conv-channels", "4,0", "--conv-kernels", "3,3"],
                         "expected comma-separated positive integers such as 128,256,128, got '4,0'"),
                        (["--conv-channels", "4,x"], "got '4,x'"),
                        (["--conv-channels", "4,3"], "--conv-channels: expected --conv-kernels too"),
                        (["--conv-kernels", "3"], "--conv-kernels: expected --conv-channels too"),
                        (["--conv-channels", "4,3", "--conv-kernels", "3"],
                         "--conv-kernels: expected 2 kernel sizes (one per block of --conv-channels 4,3), got 1"),
                        (["--conv-channels", "4", "--conv-kernels", "3", "--engine", "torch"],
                         "the torch engine's model has no --conv-channels, --conv-kernels")]:
        try:
            status = main(train + extra + TINY)
        except SystemExit as e:                                 # argparse's own refusals
            status = e.code
        assert status == 2, extra
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and want in err, err
    assert not (tmp_path / "b").exists()


def test_predict_with_an_ensemble_of_runs(files, tmp_path, capsys):
    """Several run directories: the mean of their class probabilities decides; runs with other
    classes are refused in one line."""
    base = ["classify", "train", "--train", str(files / "train.npz"), "--steps", "8"] + TINY
    runs = [tmp_path / f"r{seed}" for seed in (1, 2, 3)]
    for seed, out in zip((1, 2, 3), runs):
        assert main(base + ["--seed", str(seed), "--out", str(out)]) == 0
    xs = make_sequences(20, 1)[0]
    models = [rnnkit.load(r) for r in runs]
    p = np.mean([m.probabilities(xs) for m in models], axis=0)                  # (20, 2)
    assert p.shape == (20, 2) and np.allclose(p.sum(1), 1)
    want = [models[0].config["classes"][i] for i in p.argmax(1)]
    capsys.readouterr()
    assert main(["classify", "predict"] + [str(r) for r in runs] + [str(files / "test.npz")]) == 0
    got = capsys.readouterr()
    assert got.out.split() == want and "accuracy" in got.err
    assert main(["classify", "predict"] + [str(r) for r in runs] + [str(files / "test.npz"), "--probabilities"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "label," + ",".join(models[0].config["classes"]) and len(lines) == 21
    assert [row.split(",")[0] for row in lines[1:]] == want
    np.testing.assert_allclose([[float(v) for v in row.split(",")[1:]] for row in lines[1:]], p, rtol=1e-5)
    assert models[0].predict_sequences(xs) == [models[0].config["classes"][i] for i in models[0].probabilities(xs).argmax(1)]
    other = tmp_path / "other"
    xo, yo = make_sequences(30, 5)
    save_padded(tmp_path / "other.npz", xo, np.where(yo == "up", "rise", "fall"))
    assert main(["classify", "train", "--train", str(tmp_path / "other.npz"), "--steps", "2", "--out", str(other)]
                + TINY) == 0
    capsys.readouterr()
    assert main(["classify", "predict", str(runs[0]), str(other), str(files / "test.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ensemble: expected runs with the same classes" in err


def test_positions_readout_on_windows_of_one_length(files, tmp_path, capsys):
    """--pooling positions: trained and predicted through the commands on fixed-length windows;
    sequences of another length (in training or at prediction) are refused in one line."""
    xs, y = make_sequences(40, 5)
    save_padded(tmp_path / "fixed.npz", [np.resize(x, (7, 3)) for x in xs], y)
    save_padded(tmp_path / "fixed8.npz", [np.resize(x, (8, 3)) for x in xs[:4]], y[:4])
    out = tmp_path / "run"
    base = ["classify", "train", "--pooling", "positions", "--bidirectional", "--head-dropout", "0.5", "--steps", "4"]
    base += TINY
    assert main(base + ["--train", str(tmp_path / "fixed.npz"), "--test", str(tmp_path / "fixed.npz"),
                        "--out", str(out)]) == 0
    model = rnnkit.runs.load(out)
    assert model.pooling == "positions" and model.config["length"] == 7 and model.config["head_dropout"] == 0.5
    assert model.head.params["weight"].shape == (2, 7 * 12)
    assert main(["classify", "predict", str(out), str(tmp_path / "fixed.npz"), "--output", str(tmp_path / "p")]) == 0
    assert len((tmp_path / "p").read_text().split()) == 40
    capsys.readouterr()
    assert main(["classify", "predict", str(out), str(tmp_path / "fixed8.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected every sequence to have 7 steps" in err and "got 8" in err
    for train in (files / "train.npz", tmp_path / "fixed.npz"):                 # variable lengths / another test length
        assert main(base + ["--train", str(train), "--test", str(tmp_path / "fixed8.npz"),
                            "--out", str(tmp_path / "no")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--pooling positions expected every sequence to have" in err, err
        assert not (tmp_path / "no").exists()


def test_refusals(files, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["classify", "train", "--train", str(files / "train.npz"), "--steps", "2"] + TINY
    assert main(base + ["--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(base + ["--out", str(out)]) == 2
    assert "already holds a classifier run; pass --resume" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before            # nothing touched
    assert main(base + ["--out", str(out), "--overwrite"]) == 0
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "config.json").write_text(json.dumps({"kind": "charlm"}))
    assert main(["classify", "predict", str(tmp_path / "lm"), str(files / "new.npz")]) == 2
    assert "holds a charlm run, not a classifier run" in capsys.readouterr().err


def test_ts_file_reaches_the_builtin_accuracy(tmp_path):
    """BasicMotions exported by aeon's own writer, trained on with --train/--test, gives exactly the
    scores of the built-in --dataset route (same data, same adapter, same seed)."""
    ds = pytest.importorskip("aeon.datasets")
    for split in ("train", "test"):
        X, y = ds.load_basic_motions(split=split)
        ds.save_to_ts_file(X, y, label_type="classification", path=str(tmp_path), problem_name=f"bm_{split}")
    common = ["--steps", "6", "--hidden-size", "8", "--eval-every", "3", "--no-progress"]
    assert main(["classify", "train", "--dataset", "basic-motions", "--out", str(tmp_path / "a")] + common) == 0
    assert main(["classify", "train", "--train", str(tmp_path / "bm_train.ts"), "--test", str(tmp_path / "bm_test.ts"),
                 "--out", str(tmp_path / "b")] + common) == 0
    a = json.loads((tmp_path / "a" / "scores.json").read_text())
    b = json.loads((tmp_path / "b" / "scores.json").read_text())
    assert a["accuracy"] == b["accuracy"] and a["confusion"] == b["confusion"]


def _bad_npz(d):
    xs, y = make_sequences(8, 3)
    save_padded(d / "six.npz", [np.hstack([x, x]) for x in xs], y)              # 6 features, not 3
    save_padded(d / "newlabel.npz", xs, np.array(["up", "sideways"] * 4))
    x = np.ones((3, 4, 3), np.float32)
    np.savez(d / "zero.npz", x=x, lengths=np.array([4, 0, 2]), y=np.array(["up", "up", "down"]))
    (d / "empty.npz").write_bytes(b"")
    (d / "text.npz").write_text("not an archive")
    np.savez(d / "nolabels.npz", x=x)


@pytest.mark.parametrize("argv,msg", [
    (["--train", "{d}/missing.npz"], "missing.npz"),
    (["--train", "{d}/empty.npz"], "empty.npz: expected a .npz archive"),
    (["--train", "{d}/text.npz"], "text.npz: expected a .npz archive"),
    (["--train", "{d}/zero.npz"], "zero.npz"),
    (["--train", "{d}/nolabels.npz"], "nolabels.npz: expected a label for every sequence"),
    (["--train", "{f}/train.npz", "--test", "{d}/six.npz"], "six.npz: expected 3 features per step"),
    (["--train", "{f}/train.npz", "--test", "{d}/newlabel.npz"], "count as wrong: sideways"),
    (["--train", "{f}/train.npz", "--valid", "{d}/newlabel.npz"], "newlabel.npz"),
    (["--train", "{f}/train.csv"], "expected a sequence file ending in .npz or .ts"),
])
def test_bad_input_is_one_line(files, tmp_path, capsys, argv, msg):
    _bad_npz(tmp_path)
    argv = [a.format(d=tmp_path, f=files) for a in argv]
    code = main(["classify", "train", "--steps", "2", "--out", str(tmp_path / "o")] + TINY + argv)
    err = capsys.readouterr().err
    if "count as wrong" in msg:                   # an unseen test label is a warning; it counts as an error
        assert code == 0 and msg in err
        return
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()         # nothing was started


def test_a_configuration_larger_than_free_memory_is_refused_before_training(files, tmp_path, monkeypatch, capsys):
    import rnnkit.apps.common

    monkeypatch.setattr(rnnkit.apps.common, "available_memory", lambda: 10_000)              # 10 kB free
    code = main(["classify", "train", "--train", str(files / "train.npz"), "--hidden-size", "64",
                 "--out", str(tmp_path / "o")] + TINY[2:])
    err = capsys.readouterr().err
    assert code == 2 and "more than the 0.0 GiB free here" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_resume_refuses_changed_training_data(files, tmp_path, capsys):
    """The run records a digest of its training sequences and labels: the same file name with other
    content (fewer sequences, or the same shapes with other values) is refused in one line, and the
    run is left as it was; the same content in another layout resumes."""
    data = tmp_path / "d.npz"
    save_padded(data, *make_sequences(60, 0))
    out = tmp_path / "run"
    args = ["classify", "train", "--train", str(data)] + TINY
    assert main(args + ["--steps", "4", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    xs, y = make_sequences(60, 0)
    for changed in (make_sequences(20, 5), ([-x for x in xs], y[::-1])):
        save_padded(data, *changed)
        assert main(args + ["--steps", "8", "--out", str(out), "--resume"]) == 2
        err = capsys.readouterr().err
        assert f"--resume: {data} is not the data the run in {out} was trained on (its content changed)" in err
        assert len(err.strip().splitlines()) == 1, err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    save_per_sequence(data, xs, y)                  # the same sequences and labels in the other .npz layout
    assert main(args + ["--steps", "8", "--out", str(out), "--resume"]) == 0


def test_unmarked_padding_empty_labels_and_a_missing_ts_label_are_named(tmp_path, capsys):
    from rnnkit.data.readers import read_sequences

    xs, y = make_sequences(6, 3)
    save_padded(tmp_path / "p.npz", xs, y)
    with np.load(tmp_path / "p.npz") as d:
        np.savez(tmp_path / "nolen.npz", x=d["x"], y=d["y"])           # the padding, unmarked
    got, _ = read_sequences(tmp_path / "nolen.npz")
    err = capsys.readouterr().err
    assert len(got) == 6 and {len(x) for x in got} == {max(len(x) for x in xs)}
    assert "nolen.npz: " in err and "sequences end in all-zero steps" in err and "save lengths=" in err
    np.savez(tmp_path / "full.npz", x=np.ones((4, 5, 2)), y=np.array(["a", "b", "a", "b"]))
    read_sequences(tmp_path / "full.npz")
    assert capsys.readouterr().err == ""                                # nothing to warn about
    labels = y.copy()
    labels[3] = ""
    save_padded(tmp_path / "empty.npz", xs, labels)
    assert main(["classify", "train", "--train", str(tmp_path / "empty.npz"), "--steps", "2",
                 "--out", str(tmp_path / "r")] + TINY) == 2
    err = capsys.readouterr().err
    assert "sequence 3: expected a label, got '' (1 such sequence)" in err and len(err.splitlines()) == 1
    ts = tmp_path / "unlabelled.ts"
    ts.write_text("@problemName x\n@dimensions 2\n@equalLength false\n@classLabel true up down\n@data\n"
                  "1,2,3:4,5,6\n")
    with pytest.raises(rnnkit.cli.UserError, match=r"unlabelled.ts, line 6: expected 2 channel\(s\) and a class "
                                                    r"label after the last ':'.*got 2 channel\(s\) and no label"):
        read_sequences(ts)


def test_misspelt_options_name_the_command_and_the_closest_option(files, tmp_path, capsys):
    for argv, msg in ((["classify", "train", "--stpes", "3"], "rnnkit classify train: error: unrecognized "
                       "arguments: --stpes 3; did you mean --steps? (see rnnkit classify train --help)"),
                      (["--bogus"], "rnnkit: error: unrecognized arguments: --bogus (see rnnkit --help)")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert msg in capsys.readouterr().err
    base = ["classify", "train", "--train", str(files / "train.npz"), "--steps", "2"] + TINY
    assert main(base + ["--valid-fraction", "0", "--out", str(tmp_path / "v0")]) == 2
    assert "--valid-fraction: expected a number in (0, 1) without --valid FILE" in capsys.readouterr().err
    assert main(base + ["--valid-fraction", "0", "--valid", str(files / "test.npz"), "--out", str(tmp_path / "v1")]) == 0
    out = tmp_path / "r"           # either spelling of the validation share, on every command
    assert main(["classify", "train", "--train", str(files / "train.npz"), "--val-fraction", "0.2", "--steps", "2",
                 "--out", str(out)] + TINY) == 0
    assert json.loads((out / "scores.json").read_text())["n_valid"] == 12
    assert "confusion.png" not in capsys.readouterr().out and not (out / "confusion.png").exists()


def test_sparse_counts_without_lengths_are_not_taken_for_padding(tmp_path, capsys):
    from rnnkit.data.readers import read_sequences

    counts = np.random.default_rng(0).poisson(0.4, (100, 30, 1)).astype(np.float32)
    np.savez(tmp_path / "counts.npz", x=counts, y=np.array(["a", "b"] * 50))
    read_sequences(tmp_path / "counts.npz")
    assert capsys.readouterr().err == ""


@pytest.mark.filterwarnings("error")                 # matplotlib's "Glyph ... missing from font(s)"
def test_confusion_plot_draws_class_names_the_font_lacks_as_code_points(tmp_path):
    from rnnkit.plots import _drawable, plot_confusion

    assert _drawable("心") == "U+5FC3" and _drawable("down") == "down" and _drawable("Ω") == "Ω"
    plot_confusion(np.array([[3, 1], [0, 4]]), ["心", "水"], "accuracy 0.875", str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 0
