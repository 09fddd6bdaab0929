"""Real-sequence loaders, windowing without leakage, baselines, the forecaster and the sequence
classifier (pooling gradients against finite differences), and the forecast/classify commands."""
import json

import numpy as np

import rnnkit.io
import rnnkit.runs
import pytest

from rnnkit.cli import main
from rnnkit.data import timeseries as TS
from rnnkit.apps.forecast import train_forecaster
from rnnkit.models import SequenceClassifier
from rnnkit.train import TrainConfig

from .helpers import numeric_grad, sample_indices


# -- loaders ------------------------------------------------------------------------------------

def test_forecast_loaders():
    pytest.importorskip("statsmodels")
    pytest.importorskip("aeon")
    from rnnkit.data import datasets as D

    for name, n in (("sunspots", 309), ("co2", 526), ("airline", 144)):
        s = D.FORECAST_DATASETS[name]()
        assert s.shape == (n,) and s.dtype == np.float64 and np.all(np.isfinite(s)), name
    assert D.sunspots()[0] == 5.0 and D.airline()[0] == 112.0
    assert len(D.co2(monthly=False)) == 2284


@pytest.mark.parametrize("name,L,n_train,n_test,D_,k", [
    ("japanese-vowels", (26, 29), 270, 370, 12, 9),
    ("basic-motions", (100, 100), 40, 40, 6, 4),
    ("digits", (8, 8), 1201, 596, 8, 10),
])
def test_classification_loaders(name, L, n_train, n_test, D_, k):
    pytest.importorskip("aeon")
    pytest.importorskip("sklearn")
    from rnnkit.data import datasets as D

    for split, n, ell in (("train", n_train, L[0]), ("test", n_test, L[1])):
        d = D.CLASSIFICATION_DATASETS[name](split)
        assert d.x.shape == (ell, n, D_) and d.x.dtype == np.float32
        assert d.y.shape == (n,) and d.y.dtype == np.int64 and d.y.max() < k and len(d.classes) == k
        assert d.lengths.shape == (n,) and d.lengths.max() == ell
        for j in range(0, n, 37):       # zero past each length
            assert not d.x[d.lengths[j]:, j].any()
    if name == "japanese-vowels":
        assert D.japanese_vowels("train").lengths.min() == 7
    with pytest.raises(ValueError, match="split: expected 'train' or 'test'"):
        D.CLASSIFICATION_DATASETS[name]("validation")


def test_missing_extra_is_a_one_line_message(monkeypatch, capsys):
    import builtins

    from rnnkit.data import datasets as D

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("aeon"):
            raise ImportError("no aeon")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"needs aeon, part of the datasets extra: pip install -e '\.\[datasets\]'"):
        D.airline()
    assert main(["classify", "train", "--dataset", "basic-motions", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "datasets extra" in err and len(err.strip().splitlines()) == 1


# -- windowing and baselines --------------------------------------------------------------------

def test_windows_and_test_origins():
    z = np.arange(20.0)
    x, y, o = TS.windows(z, 4, 2)
    assert x.shape == (4, 15) and y.shape == (15, 2)
    np.testing.assert_array_equal(x[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(y[0], [4, 5])
    np.testing.assert_array_equal(y[-1], [18, 19])
    o = TS.test_origins(20, 5, 2)
    np.testing.assert_array_equal(o, [14, 15, 16, 17])       # every target in the last 5 values
    assert (o + 1).min() == 15 and (o + 2).max() == 19


def test_scaling_and_training_never_see_the_test_tail(monkeypatch):
    """Change only the test tail: the scaler and the fitted model must not change."""
    rng = np.random.default_rng(0)
    s = np.sin(np.arange(120) / 5) + 0.1 * rng.standard_normal(120)
    test = 20
    seen = []
    orig = TS.Scaler.__init__

    def spy(self, train):
        seen.append(np.array(train))
        orig(self, train)

    monkeypatch.setattr(TS.Scaler, "__init__", spy)
    cfg = TrainConfig(steps=5, stateful=False)
    a, _ = train_forecaster(s[:-test], 8, 1, hidden_size=4, config=cfg)
    s2 = s.copy()
    s2[-test:] += 1000.0
    b, _ = train_forecaster(s2[:-test], 8, 1, hidden_size=4, config=cfg)
    assert len(seen[0]) == 100 and np.array_equal(seen[0], seen[1])
    assert a.scaler.mean == b.scaler.mean
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])


def test_baselines():
    s = np.arange(30.0) % 5
    o = np.array([9, 14])
    np.testing.assert_array_equal(TS.naive_last(s, o, 3), [[4, 4, 4], [4, 4, 4]])
    np.testing.assert_array_equal(TS.seasonal_naive(s, o, 7, 5), [[0, 1, 2, 3, 4, 0, 1]] * 2)
    lin = 2.0 + 0.5 * np.arange(50.0)
    ar = TS.LinearAR(3).fit(lin[:40])
    np.testing.assert_allclose(ar.forecast(lin, np.array([39]), 5)[0], lin[40:45], rtol=1e-8)
    assert TS.score(np.array([1.0, 3.0]), np.array([0.0, 0.0])) == {"rmse": pytest.approx(np.sqrt(5)), "mae": 2.0}


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_forecaster_learns_a_sine_better_than_the_last_value(strategy):
    t = np.arange(300)
    s = 10 + 3 * np.sin(2 * np.pi * t / 25)
    f, _ = train_forecaster(s[:240], 25, 3, hidden_size=16, strategy=strategy, val_fraction=0.0,
                            config=TrainConfig(steps=300, lr=1e-2, clip=1.0, stateful=False))
    o = TS.test_origins(300, 60, 3)
    truth = s[o[:, None] + np.arange(1, 4)]
    ours = TS.score(f.predict(s, o, 3), truth)["rmse"]
    naive = TS.score(TS.naive_last(s, o, 3), truth)["rmse"]
    assert ours < 0.5 * naive


# -- the sequence classifier ----------------------------------------------------------------------

def check_classifier_gradients(m, x, y, lengths, rng, reset=lambda: None):
    """Every parameter's gradient from ``train_step`` against float64 central differences at five
    sampled entries (``reset`` runs before every forward: a fixed dropout mask)."""
    from rnnkit.functional.losses import cross_entropy

    m.zero_grad()
    reset()
    m.train_step((x, y, lengths))

    def loss():
        reset()
        out = m.forward(x, lengths)
        m.clear_cache()
        return cross_entropy(out, y)[0]

    for name, p, g in m.named_parameters():
        for idx in sample_indices(p.shape, 5, rng):
            assert g[idx] == pytest.approx(numeric_grad(loss, p, idx), rel=1e-6, abs=1e-9), name


@pytest.mark.parametrize("pooling", ["last", "mean", "attention", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_gradients_finite_differences(pooling, bidirectional):
    rng = np.random.default_rng(0)
    m = SequenceClassifier(3, 4, 3, cell="gru", bidirectional=bidirectional, pooling=pooling, dtype=np.float64, seed=1)
    x = rng.standard_normal((6, 4, 3))
    lengths = np.array([6, 2, 4, 1])
    x[np.arange(6)[:, None] >= lengths[None]] = 0
    check_classifier_gradients(m, x, np.array([0, 2, 1, 2]), lengths, rng)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_positions_gradients_finite_differences(bidirectional):
    rng = np.random.default_rng(3)
    m = SequenceClassifier(3, 4, 3, cell="lstm", bidirectional=bidirectional, pooling="positions", length=5,
                           dtype=np.float64, seed=2)
    check_classifier_gradients(m, rng.standard_normal((5, 4, 3)), np.array([0, 2, 1, 2]), np.full(4, 5), rng)


def test_classifier_head_dropout_gradients_and_evaluation():
    """head_dropout: finite differences through the mask (the dropout's generator reset before
    every forward, so each draws the same mask); evaluation is the network without dropout."""
    rng = np.random.default_rng(5)
    m = SequenceClassifier(3, 4, 3, cell="gru", bidirectional=True, pooling="positions", length=5, head_dropout=0.5,
                           dtype=np.float64, seed=2)
    x, lengths = rng.standard_normal((5, 4, 3)), np.full(4, 5)

    def reset():
        m.drop.rng = np.random.default_rng(9)

    reset()
    m.forward(x, lengths)
    assert 0 < (m.drop._cache[0] == 0).mean() < 1                    # some features dropped, not all
    m.clear_cache()
    check_classifier_gradients(m, x, np.array([0, 2, 1, 2]), lengths, rng, reset)
    plain = SequenceClassifier(3, 4, 3, cell="gru", bidirectional=True, pooling="positions", length=5,
                               dtype=np.float64, seed=2)
    np.testing.assert_array_equal(m.predict(x, lengths), plain.predict(x, lengths))
    m.eval()
    plain.eval()
    np.testing.assert_array_equal(m.forward(x, lengths), plain.forward(x, lengths))
    assert m.config["head_dropout"] == 0.5 and "head_dropout" not in plain.config


def test_classifier_input_augmentation_gradients_and_evaluation():
    """input_jitter / input_scale: parameter gradients and the input gradient (through the noise's
    scale) against finite differences with the noise replayed; evaluation is the plain network;
    the options are in the config and a model rebuilt from it has them."""
    rng = np.random.default_rng(6)
    kw = dict(cell="gru", bidirectional=True, pooling="max", dtype=np.float64, seed=2)
    m = SequenceClassifier(3, 4, 3, input_jitter=0.2, input_scale=0.3, **kw)
    x, y, lengths = rng.standard_normal((5, 4, 3)), np.array([0, 2, 1, 2]), np.array([5, 3, 5, 1])

    def reset():
        m.noise.rng = np.random.default_rng(9)

    check_classifier_gradients(m, x, y, lengths, rng, reset)
    from rnnkit.functional.losses import cross_entropy, cross_entropy_backward

    reset()
    dx = m.backward(cross_entropy_backward(cross_entropy(m.forward(x, lengths), y)[1]))
    m.zero_grad()

    def loss():
        reset()
        out = m.forward(x, lengths)
        m.clear_cache()
        return cross_entropy(out, y)[0]

    for idx in [(0, 0, 0), (2, 1, 2), (4, 2, 1), (0, 3, 0)]:
        assert dx[idx] == pytest.approx(numeric_grad(loss, x, idx), rel=1e-6, abs=1e-9), idx
    plain = SequenceClassifier(3, 4, 3, **kw)
    m.eval()
    plain.eval()
    np.testing.assert_array_equal(m.forward(x, lengths), plain.forward(x, lengths))
    assert m.config["input_jitter"] == 0.2 and m.config["input_scale"] == 0.3 and "input_jitter" not in plain.config
    again = SequenceClassifier.from_config(m.config, dtype=np.float64)
    assert (again.noise.jitter, again.noise.scale) == (0.2, 0.3)


def test_classifier_positions_is_refused_on_other_lengths():
    from rnnkit.errors import UserError

    m = SequenceClassifier(2, 3, 2, pooling="positions", length=4, dtype=np.float64, seed=0)
    x = np.zeros((4, 3, 2))
    assert m.forward(x).shape == (3, 2)
    m.clear_cache()
    with pytest.raises(UserError, match="expected every sequence to have 4 steps .*got 5$"):
        m.forward(np.zeros((5, 3, 2)))
    with pytest.raises(UserError, match="expected every sequence to have 4 steps .*got 2, 4$"):
        m.forward(x, np.array([4, 2, 4]))
    for pooling, length in (("positions", None), ("mean", 4), ("positions", 0)):
        with pytest.raises(ValueError, match="length: expected the sequence length"):
            SequenceClassifier(2, 3, 2, pooling=pooling, length=length)
    assert "length" not in SequenceClassifier(2, 3, 2, pooling="mean").config      # older configs unchanged


def test_classifier_padding_does_not_matter_and_attention_weights():
    rng = np.random.default_rng(1)
    m = SequenceClassifier(2, 5, 3, cell="lstm", pooling="attention", dtype=np.float64, seed=0)
    x = rng.standard_normal((7, 3, 2))
    lengths = np.array([7, 3, 5])
    a = m.attention_weights(x, lengths)
    assert a.shape == (7, 3) and np.allclose(a.sum(0), 1)
    assert np.all(a[3:, 1] == 0) and np.all(a[5:, 2] == 0)         # padded steps: exactly zero
    x2 = x.copy()
    x2[3:, 1] = 99.0                                                # garbage in the padding
    np.testing.assert_allclose(m.predict(x, lengths), m.predict(x2, lengths))
    with pytest.raises(ValueError, match="pooling: expected one of"):
        SequenceClassifier(2, 3, 2, pooling="min")


# -- commands -------------------------------------------------------------------------------------

def test_forecast_command_on_a_csv(tmp_path):
    t = np.arange(150)
    csv = tmp_path / "load.csv"
    csv.write_text("date,load\n" + "".join(f"d{i},{50 + 10 * np.sin(i / 4):.4f}\n" for i in t))
    out = tmp_path / "run"
    assert main(["forecast", "--dataset", str(csv), "--column", "load", "--horizon", "2", "--window", "12",
                 "--steps", "30", "--hidden", "8", "--out", str(out), "--no-progress"]) == 0
    m = json.loads((out / "scores.json").read_text())
    assert m["horizon"] == 2 and set(m["scores"]) >= {"rnnkit", "last value", "linear AR"}
    assert (out / "forecast.png").stat().st_size > 0
    assert json.loads((out / "config.json").read_text())["kind"] == "forecaster"
    model = rnnkit.runs.load(out)                       # the trained model of the run, ready to forecast
    assert model.predict(np.linspace(40, 60, 40), [39], 2).shape == (1, 2)
    # resuming to a larger budget continues exactly where an uninterrupted run would be
    full = tmp_path / "full"
    common = ["forecast", "--dataset", str(csv), "--column", "load", "--horizon", "2", "--window", "12",
              "--hidden", "8", "--eval-every", "10", "--no-progress"]
    assert main(common + ["--steps", "40", "--out", str(full)]) == 0
    assert main(common + ["--steps", "40", "--out", str(out), "--resume"]) == 0
    a, b = rnnkit.runs.load(full, "last"), rnnkit.runs.load(out, "last")
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    # ... and is scored with the same best weights, found before or after the resume
    sa, sb = (json.loads((d / "scores.json").read_text())["scores"] for d in (full, out))
    assert sa == sb
    assert main(common + ["--out", str(out)]) == 2                         # never overwritten silently


def test_forecast_beyond_the_end_of_a_csv(tmp_path, capsys):
    """Every run writes the forecast after the series' end; ``forecast predict`` makes it again from
    the run, on the run's own file (re-read, so newer rows give the newer forecast) or another."""
    t = np.arange(160)
    csv = tmp_path / "load.csv"
    csv.write_text("date,load,other\n" + "".join(f"d{i},{50 + 10 * np.sin(i / 4):.4f},{i}\n" for i in t))
    out = tmp_path / "run"
    assert main(["forecast", "train", "--dataset", str(csv), "--column", "load", "--horizon", "3", "--window", "12",
                 "--steps", "20", "--hidden", "8", "--out", str(out), "--no-progress"]) == 0
    assert "forecast beyond the end (index 160-162, with the band of 80% of the tail errors): " in \
        capsys.readouterr().out
    future = (out / "future.csv").read_text()
    assert future.splitlines()[0] == "h,index,forecast,lo80,hi80" and len(future.splitlines()) == 4
    rows = [line.split(",") for line in future.splitlines()[1:]]
    assert [r[:2] for r in rows] == [["1", "160"], ["2", "161"], ["3", "162"]]
    model = rnnkit.runs.load(out)
    series = 50 + 10 * np.sin(t / 4)
    np.testing.assert_allclose([float(r[2]) for r in rows], model.forecast(series), rtol=1e-3)
    scores = json.loads((out / "scores.json").read_text())
    assert scores["future"] == [float(r[2]) for r in rows]
    # the band: the 10% and 90% quantiles of the network's errors on the test tail, per step ahead
    tail = TS.test_origins(160, 32, 3)
    err = series[tail[:, None] + np.arange(1, 4)] - model.predict(series, tail, 3)
    band = scores["band"]
    assert band["origins"] == len(tail) == 30 and band["level"] == 0.8
    np.testing.assert_allclose(band["lo"], np.quantile(err, 0.1, axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(band["hi"], np.quantile(err, 0.9, axis=0), rtol=1e-4, atol=1e-6)
    for r, lo, hi in zip(rows, band["lo"], band["hi"]):
        assert float(r[3]) == pytest.approx(float(r[2]) + lo) and float(r[4]) == pytest.approx(float(r[2]) + hi)
    assert main(["forecast", "predict", str(out)]) == 0               # the run's own file and column
    assert capsys.readouterr().out == future
    with csv.open("a") as f:                                             # a newer row moves the origin
        f.write(f"d160,{50 + 10 * np.sin(160 / 4):.4f},160\n")
    assert main(["forecast", "predict", str(out), "--horizon", "5", "--output", str(tmp_path / "next.csv")]) == 0
    nxt = (tmp_path / "next.csv").read_text().splitlines()
    assert nxt[1].startswith("1,161,") and nxt[5].startswith("5,165,")
    assert nxt[3].count(",") == 4 and not nxt[3].endswith(",") and nxt[4].endswith(",,")   # no band past h=3
    np.testing.assert_allclose([float(x.split(",")[2]) for x in nxt[1:]],
                               model.forecast(np.append(series, 50 + 10 * np.sin(160 / 4)), 5), rtol=1e-3)
    capsys.readouterr()
    for argv, msg in ((["--output", str(tmp_path / "next.csv")], "--output " + str(tmp_path / "next.csv") + ": the file exists"),
                      (["--dataset", str(tmp_path / "none.csv")], "none.csv: file not found"),
                      (["--column", "date"], "expected a number"),):
        assert main(["forecast", "predict", str(out)] + argv) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
    short = tmp_path / "short.csv"
    short.write_text("load\n" + "".join(f"{v}\n" for v in range(5)))
    assert main(["forecast", "predict", str(out), "--dataset", str(short)]) == 2
    assert "short.csv: expected at least 12 values (the model's window of 12), got 5" in capsys.readouterr().err


def test_forecast_on_the_whole_series_and_a_direct_run(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    csv.write_text("y\n" + "".join(f"{np.sin(i / 3):.5f}\n" for i in range(90)))
    out = tmp_path / "all"
    assert main(["forecast", "--dataset", str(csv), "--test-size", "0", "--horizon", "4", "--strategy", "direct",
                 "--window", "8", "--steps", "5", "--hidden", "4", "--out", str(out), "--no-progress"]) == 0
    assert "no test tail (--test-size 0), so nothing is scored" in capsys.readouterr().out
    scores = json.loads((out / "scores.json").read_text())
    assert scores["scores"] == {} and scores["test_size"] == 0 and len(scores["future"]) == 4
    assert scores["band"] is None and (out / "future.csv").read_text().startswith("h,index,forecast\n")
    assert (out / "forecast.png").stat().st_size > 0
    assert main(["forecast", "predict", str(out), "--horizon", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == (out / "future.csv").read_text().splitlines()[1:3]
    assert main(["forecast", "predict", str(out), "--horizon", "5"]) == 2
    assert "--horizon: expected at most 4 (the run forecasts 4 steps at once, --strategy direct), got 5" in \
        capsys.readouterr().err
    classify = tmp_path / "c"
    assert main(["classify", "train", "--dataset", "dna", "--length", "20", "--steps", "1", "--hidden", "4",
                 "--out", str(classify), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["forecast", "predict", str(classify)]) == 2
    assert "holds a classifier run, not a forecaster run" in capsys.readouterr().err


def test_forecaster_forecast_is_predict_at_the_last_origin():
    from rnnkit.models.forecast import Forecaster

    s = np.sin(np.arange(60) / 5)
    f = Forecaster(10, 3, hidden_size=4, difference=1, seed=0).fit_scaler(s[:40])
    np.testing.assert_array_equal(f.forecast(s), f.predict(s, [59], 3)[0])
    assert f.forecast(s, 6).shape == (6,) and f.min_history == 11
    with pytest.raises(ValueError, match=r"series: expected at least 11 values \(the model's window of 10 plus 1 "
                                         r"differencing lags\), got 10"):
        f.forecast(s[:10])


@pytest.mark.parametrize("content,argv,msg", [
    ("a,b\n1,2\n", ["--column", "c"], "expected a column named 'c'"),
    ("a,b\n1,x\n2,3\n", ["--column", "b"], "line 2: expected a number, got 'x'"),
    ("a\n1\n2\n3\n", ["--column", "a"], "expected at least"),
    ("a,b\n1,2\n3,4\n", [], "expected --column NAME"),
])
def test_forecast_csv_bad_input(tmp_path, capsys, content, argv, msg):
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    assert main(["forecast", "--dataset", str(csv), "--out", str(tmp_path / "o"), "--no-progress"] + argv) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_forecast_missing_csv_and_unknown_dataset(tmp_path, capsys):
    assert main(["forecast", "--dataset", str(tmp_path / "none.csv"), "--no-progress"]) == 2
    assert "none.csv: file not found" in capsys.readouterr().err
    assert main(["forecast", "--dataset", "moonphase", "--no-progress"]) == 2
    assert "expected one of sunspots, co2, airline, mackey-glass or a CSV file" in capsys.readouterr().err


def test_classify_command_tiny(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "c"
    assert main(["classify", "train", "--dataset", "digits", "--steps", "20", "--hidden", "8", "--pooling", "mean",
                 "--out", str(out), "--no-progress"]) == 0
    m = json.loads((out / "scores.json").read_text())
    assert m["n_test"] == 596 and np.array(m["confusion"]).sum() == 596 and 0 <= m["accuracy"] <= 1
    assert (out / "confusion.png").stat().st_size > 0


def test_dna_task_tags_mark_motif_starts():
    from rnnkit.data.tasks import DNA, dna_motifs

    d = dna_motifs(50, 40, rng=0, tagging=True)
    c = dna_motifs(50, 40, rng=0)
    assert d.x.shape == (40, 50, 4) and d.y.shape == (40, 50) and c.y.shape == (50,)
    assert np.all(d.x.sum(-1) == 1)
    seqs = ["".join(DNA[k] for k in d.x[:, j].argmax(-1)) for j in range(50)]
    for j, s in enumerate(seqs):
        starts = [p for p in range(40) if s.startswith("TATAAT", p)]
        assert list(np.flatnonzero(d.y[:, j])) == starts
        assert c.y[j] == (1 if starts else 0)
    assert 0.3 < c.y.mean() < 0.7
    with pytest.raises(ValueError, match="T: expected at least 18"):
        dna_motifs(2, 10)


def test_classify_dna_command_tiny(tmp_path):
    out = tmp_path / "dna"
    assert main(["classify", "train", "--dataset", "dna", "--length", "24", "--steps", "3", "--hidden", "4",
                 "--out", str(out), "--no-progress"]) == 0
    m = json.loads((out / "scores.json").read_text())
    assert m["classes"] == ["motif", "none"] and m["n_test"] == 500 and m["n_train"] + m["n_valid"] == 2000


# -- forecaster preprocessing: log and differencing ------------------------------------------------

@pytest.mark.parametrize("log,lags", [(False, (1,)), (True, (12,)), (True, (1, 12)), (False, (1, 1))])
def test_differencing_round_trip(log, lags):
    """The transform is the lagged differences of (log) x; inverting the true differenced values of
    any horizon (longer than a lag too) from any origin gives the series back."""
    rng = np.random.default_rng(1)
    t = np.arange(80)
    x = np.exp(0.01 * t + 0.2 * np.sin(2 * np.pi * t / 12) + 0.05 * rng.standard_normal(80)) * 100
    d = TS.Differencing(log, lags)
    u = np.log(x) if log else x
    ref = u
    for s in lags:
        ref = ref[s:] - ref[:-s]
    z = d.transform(x)
    assert np.isnan(z[: d.offset]).all() and d.offset == sum(lags)
    np.testing.assert_allclose(z[d.offset:], ref, rtol=1e-12)
    origins, H = np.array([d.offset + 3, 40, 60]), 19
    truth_z = z[origins[:, None] + np.arange(1, H + 1)]
    np.testing.assert_allclose(d.inverse(x, origins, truth_z), x[origins[:, None] + np.arange(1, H + 1)], rtol=1e-10)


def test_forecaster_seasonal_difference_integrates_with_true_history():
    """A forecaster whose network predicts no change of (1 - B^12) log x forecasts
    x_{o+h} = x_{o+h-12} * x_o / x_{o-12} for h <= 12, and continues from its own forecasts after."""
    from rnnkit.models.forecast import Forecaster

    rng = np.random.default_rng(0)
    x = 100 + np.arange(90.0) + 10 * rng.random(90)
    f = Forecaster(window=6, horizon=1, hidden_size=3, log=True, seasonal_difference=12, dtype=np.float64,
                   seed=0).fit_scaler(x[:70])
    f.net.head.params["weight"][:] = 0.0
    f.net.head.params["bias"][:] = 0.0                  # the network's output: "no change"
    o = np.array([40, 60])
    pred = f.predict(x, o, 14)
    ratio = x[o] / x[o - 12]
    np.testing.assert_allclose(pred[:, :12], x[o[:, None] + np.arange(1, 13) - 12] * ratio[:, None], rtol=1e-10)
    np.testing.assert_allclose(pred[:, 12:], pred[:, :2] * ratio[:, None], rtol=1e-10)
    x_w, y_w = f.training_windows(x[:70])
    assert np.isfinite(x_w).all() and x_w.shape[1] == 70 - 12 - 6    # windows start after the lags
    with pytest.raises(ValueError, match=r"origins: expected >= window - 1 \+ differencing lags = 17, got 16"):
        f.predict(x, [16])
    g = Forecaster.from_config(f.config, dtype=np.float64)
    assert (g.diff.log, g.diff.lags) == (True, (12,)) and g.scaler.mean == f.scaler.mean


def test_forecast_command_log_and_differences(tmp_path, capsys):
    t = np.arange(130)
    csv = tmp_path / "sales.csv"
    csv.write_text("sales\n" + "".join(f"{np.exp(3 + 0.01 * i + 0.3 * np.sin(2 * np.pi * i / 12)):.5f}\n" for i in t))
    out = tmp_path / "run"
    common = ["forecast", "--dataset", str(csv), "--horizon", "12", "--window", "12", "--test-size", "12", "--hidden",
              "4", "--log", "--difference", "1", "--seasonal-difference", "12", "--no-progress"]
    assert main(common + ["--steps", "20", "--out", str(out)]) == 0
    m = json.loads((out / "scores.json").read_text())
    assert (m["log"], m["difference"], m["seasonal_difference"]) == (True, 1, 12)
    assert m["scores"]["rnnkit"]["rmse"] < m["scores"]["last value"]["rmse"]
    model = rnnkit.runs.load(out)
    assert (model.diff.log, model.diff.lags) == (True, (1, 12))
    capsys.readouterr()
    bad = [a if a != "12" or i != common.index("--seasonal-difference") + 1 else "6" for i, a in enumerate(common)]
    assert main(bad + ["--steps", "30", "--out", str(out), "--resume"]) == 2
    assert "seasonal-difference 6 (the run has 12" in capsys.readouterr().err
    neg = tmp_path / "neg.csv"
    neg.write_text("v\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in t))
    assert main(["forecast", "--dataset", str(neg), "--log", "--steps", "1", "--out", str(tmp_path / "n"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "log transform: expected a positive series, got 0.0 at row 0" in err and len(err.strip().splitlines()) == 1
    from rnnkit.onnx import graphs

    with pytest.raises(rnnkit.errors.UserError, match="expected a forecaster without --log"):
        graphs(model)


# -- the benchmark's tagging baseline and its section table -----------------------------------------

def _real_data_script():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "real_data.py")
    spec = importlib.util.spec_from_file_location("real_data_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_most_frequent_tag_baseline_by_hand():
    rd = _real_data_script()
    train = [(["a", "b", "a"], ["X", "Y", "X"]), (["a", "c"], ["Z", "Y"]), (["b"], ["Y"])]
    test = [(["a", "b", "d"], ["X", "X", "Y"]), (["e", "c"], ["Z", "Y"])]
    # a -> X (2 of 3), b -> Y, c -> Y; unseen d, e -> Y (4 of 7 training tags)
    got = rd.most_frequent_tag(train, test)
    assert got["default"] == "Y"
    assert got["accuracy"] == pytest.approx(3 / 5)                 # a ok, b wrong, d ok, e wrong, c ok
    assert got["oov_accuracy"] == pytest.approx(1 / 2)
    assert rd.sections_arg("tagging, classify") == ["tagging", "classify"]
    with pytest.raises(Exception, match="expected a comma-separated list of forecast"):
        rd.sections_arg("tagging,nope")
    assert rd.sets_arg("japanese-vowels,splice-junctions") == ["japanese-vowels", "splice-junctions"]
    with pytest.raises(Exception, match="expected a comma-separated list of splice-junctions"):
        rd.sets_arg("dna")


def test_error_band_and_future_csv(tmp_path):
    from rnnkit.apps.forecast import error_band, future_csv, run_band

    truth = np.arange(20.0)[:, None] + np.zeros((1, 2))
    pred = truth - np.arange(20.0)[:, None] % 5 * np.array([1.0, 2.0])     # errors 0..4 and 0..8
    band = error_band(pred, truth)
    np.testing.assert_allclose(band["lo"], [0.0, 0.0])
    np.testing.assert_allclose(band["hi"], [4.0, 8.0])
    assert error_band(pred[:9], truth[:9]) is None                            # too few held-out forecasts
    text = future_csv(np.array([1.5, 2.5, 3.5]), 10, band)
    assert text.splitlines() == ["h,index,forecast,lo80,hi80", "1,10,1.5,1.5,5.5", "2,11,2.5,2.5,10.5", "3,12,3.5,,"]
    assert future_csv(np.array([1.5]), 10) == "h,index,forecast\n1,10,1.5\n"
    (tmp_path / "scores.json").write_text('{"band": {"level": 0.8, "lo": [1], "hi": [2, 3]}}')
    assert run_band(tmp_path) is None                                         # damaged: no band, no failure
    (tmp_path / "scores.json").write_text("not json")
    assert run_band(tmp_path) is None and run_band(tmp_path / "none") is None


def test_forecast_predict_finds_the_run_s_file_and_keeps_its_band_to_it(tmp_path, capsys, monkeypatch):
    """The run records its CSV by absolute path (predict from anywhere; a moved file is named); the
    band goes only with the run's own series and column and its best weights."""
    data = tmp_path / "data"
    data.mkdir()
    csv = data / "two.csv"
    csv.write_text("a,b\n" + "".join(f"{10 + np.sin(i / 3):.5f},{i % 7}\n" for i in range(120)))
    monkeypatch.chdir(data)
    assert main(["forecast", "--dataset", "two.csv", "--column", "a", "--horizon", "2", "--window", "8",
                 "--steps", "5", "--hidden", "4", "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["forecast", "predict", "r"]) == 0
    got = capsys.readouterr()
    assert got.out.startswith("h,index,forecast,lo80,hi80\n") and got.err == ""
    for argv in (["--column", "b"], ["--checkpoint", "last"], ["--dataset", "data/two.csv", "--column", "b"]):
        assert main(["forecast", "predict", "r"] + argv) == 0
        got = capsys.readouterr()
        assert got.out.startswith("h,index,forecast\n"), argv
        assert "note: no band: the run measured it on its own series" in got.err
    assert main(["forecast", "predict", "r", "--dataset", "data/two.csv"]) == 0     # the same file, relative
    assert capsys.readouterr().out.startswith("h,index,forecast,lo80,hi80\n")
    (data / "other.csv").write_text("x\n" + "".join(f"{i}\n" for i in range(30)))
    assert main(["forecast", "predict", "r", "--dataset", "data/other.csv"]) == 2
    assert "expected a column named 'a', got columns x (--column is the run's, 'a', unless given)" in \
        capsys.readouterr().err
    assert main(["forecast", "predict", "r", "--dataset", "sunspots", "--column", "a"]) == 2
    assert "--column: expected none for the bundled series sunspots" in capsys.readouterr().err
    scores = tmp_path / "r" / "scores.json"
    for band in ('{"level": 0.8, "lo": [1, 2], "hi": ["a", 3]}', '{"level": 0.8, "lo": [null, 1], "hi": [1, 2]}',
                 '{"level": 80, "lo": [1, 2], "hi": [2, 3]}', '{"level": 0.8, "lo": [1, 4], "hi": [2, 3]}'):
        # damaged (strings, nulls, a level of 80, lo above hi): no band, no failure
        scores.write_text('{"band": %s}' % band)
        assert main(["forecast", "predict", "r"]) == 0
        assert capsys.readouterr().out.startswith("h,index,forecast\n")
    csv.rename(data / "moved.csv")
    assert main(["forecast", "predict", "r"]) == 2
    assert f"r: the run's series {csv}: file not found (moved? pass --dataset)" in capsys.readouterr().err


def test_forecast_actions_by_name(capsys):
    """An option after 'forecast' means train; a word there must be an action."""
    for argv, msg in ((["forecast", "predic", "r1"], "invalid choice: 'predic'"),
                      (["forecast"], "ACTION")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert msg in capsys.readouterr().err


@pytest.mark.parametrize("cells,want", [
    (["2024-01-30", "2024-01-31", "2024-02-01"], ["2024-02-02", "2024-02-03"]),                     # days
    (["2024-01-01", "2024-01-08", "2024-01-15"], ["2024-01-22", "2024-01-29"]),                     # weeks
    (["1949-11", "1949-12", "1950-01"], ["1950-02", "1950-03"]),                                    # months
    (["2020-01-31", "2020-02-29", "2020-03-31"], ["2020-04-30", "2020-05-31"]),                     # month ends
    (["2020-03-15", "2020-06-15", "2020-09-15"], ["2020-12-15", "2021-03-15"]),                     # quarters
    (["2024-01-01 10:00", "2024-01-01 11:00", "2024-01-01 12:00"], ["2024-01-01 13:00", "2024-01-01 14:00"]),
    (["2024-01-01T10:00:00", "2024-01-01T10:00:30", "2024-01-01T10:01:00"],
     ["2024-01-01T10:01:30", "2024-01-01T10:02:00"]),
    (["2024-01-01", "2024-01-02", "2024-01-04"], None),                                             # no fixed step
    (["2024-01-03", "2024-01-02", "2024-01-01"], "refused"),                                        # backwards
    (["20240101", "20240102", "20240103"], None),                                                   # numbers
    (["d1", "d2", "d3"], None),
])
def test_next_dates(tmp_path, cells, want):
    csv = tmp_path / "s.csv"
    csv.write_text("when,value\n" + "".join(f"{c},{i}.5\n" for i, c in enumerate(cells)))
    if want == "refused":                   # newest first: the forecast would continue the oldest end
        with pytest.raises(rnnkit.errors.UserError, match="expected rows in time order, oldest first"):
            TS.next_dates(csv, 2)
        return
    assert TS.next_dates(csv, 2) == (None if want is None else ("when", want))


def test_forecast_future_carries_the_csv_dates(tmp_path, capsys):
    csv = tmp_path / "daily.csv"
    csv.write_text("day,sales\n" + "".join(f"2024-01-{1 + i % 31:02d},{i}\n" for i in range(31))
                   + "".join(f"2024-02-{1 + i:02d},{31 + i}\n" for i in range(29))
                   + "".join(f"2024-03-{1 + i:02d},{60 + i}\n" for i in range(31)))
    out = tmp_path / "r"
    assert main(["forecast", "--dataset", str(csv), "--horizon", "2", "--window", "6", "--steps", "3",
                 "--hidden", "4", "--out", str(out), "--no-progress"]) == 0
    assert "forecast beyond the end (day 2024-04-01 to 2024-04-02, with the band" in capsys.readouterr().out
    rows = (out / "future.csv").read_text().splitlines()
    assert rows[0] == "h,index,day,forecast,lo80,hi80" and rows[1].startswith("1,91,2024-04-01,")
    assert rows[2].startswith("2,92,2024-04-02,")


def test_forecast_band_reasons_links_and_older_runs(tmp_path, capsys, monkeypatch):
    csv = tmp_path / "s.csv"
    csv.write_text(",v\n" + "".join(f"2024-02-{1 + i:02d},{np.sin(i / 3):.4f}\n" for i in range(29))
                   + "".join(f"2024-03-{1 + i:02d},{np.sin((29 + i) / 3):.4f}\n" for i in range(31)))
    out = tmp_path / "r"
    assert main(["forecast", "--dataset", str(csv), "--column", "v", "--horizon", "2", "--window", "4", "--steps", "3",
                 "--hidden", "4", "--test-size", "14", "--out", str(out), "--no-progress"]) == 0
    assert "forecast beyond the end (date 2024-04-01 to 2024-04-02" in capsys.readouterr().out   # unnamed: "date"
    (tmp_path / "link.csv").symlink_to(csv)
    assert main(["forecast", "predict", str(out), "--dataset", str(tmp_path / "link.csv")]) == 0   # the same file
    got = capsys.readouterr()
    assert got.out.startswith("h,index,date,forecast,lo80,hi80\n") and got.err == ""
    assert main(["forecast", "predict", str(out), "--checkpoint", "last"]) == 0
    assert "; these are the last weights, not the best" in capsys.readouterr().err
    # a run made before runs recorded absolute paths: its relative name may mean another file now
    tree = rnnkit.io.load(out / "best.npz")
    tree["extra"]["data"]["dataset"] = "s.csv"
    rnnkit.io.save(out / "best.npz", tree)
    monkeypatch.chdir(tmp_path)
    assert main(["forecast", "predict", str(out)]) == 0
    got = capsys.readouterr()
    assert got.out.startswith("h,index,date,forecast\n") and "by a relative path, so this file may be another" in got.err
    monkeypatch.chdir(out)
    assert main(["forecast", "predict", str(out)]) == 2
    assert ("the run's series s.csv (relative to the directory the run was trained in): file not found"
            in capsys.readouterr().err)


def test_forecast_records_the_column_it_chose_and_reads_the_csv_once(tmp_path, capsys, monkeypatch):
    """A run that chose its column records it by name: naming that column later keeps the band, and
    a newer file with a second column of numbers still reads the run's. Another file is chosen
    from again. Each command reads the CSV once (values and dates together)."""
    csv = tmp_path / "s.csv"
    csv.write_text("day,v\n" + "".join(f"2024-03-{1 + i:02d},{np.sin(i / 3):.4f}\n" for i in range(31)))
    reads = []
    table = TS._csv_table
    monkeypatch.setattr(TS, "_csv_table", lambda path: reads.append(path) or table(path))
    out = tmp_path / "r"
    assert main(["forecast", "--dataset", str(csv), "--horizon", "2", "--window", "4", "--steps", "3",
                 "--hidden", "4", "--test-size", "12", "--out", str(out), "--no-progress"]) == 0
    assert len(reads) == 1 and "(day 2024-04-01 to 2024-04-02, with the band" in capsys.readouterr().out
    data = rnnkit.io.load(out / "best.npz")["extra"]["data"]
    assert data["column"] == "v" and data["column_chosen"] is True
    for argv in ([], ["--column", "v"]):
        assert main(["forecast", "predict", str(out)] + argv) == 0
        got = capsys.readouterr()
        assert got.out.startswith("h,index,day,forecast,lo80,hi80\n") and got.err == "", argv
    assert len(reads) == 3
    csv.write_text("day,v,w\n" + "".join(f"2024-03-{1 + i:02d},{np.sin(i / 3):.4f},{i}\n" for i in range(31))
                   + "2024-04-01,0.5,31\n")
    assert main(["forecast", "predict", str(out)]) == 0                 # a newer file with a second column
    assert capsys.readouterr().out.splitlines()[1].startswith("1,32,2024-04-02,")
    other = tmp_path / "other.csv"
    other.write_text("x\n" + "".join(f"{i}\n" for i in range(20)))
    assert main(["forecast", "predict", str(out), "--dataset", str(other)]) == 0      # chosen again: x
    got = capsys.readouterr()
    assert got.out.startswith("h,index,forecast\n1,20,") and "this is another series" in got.err


def test_forecast_plot_labels_its_time_axis_with_the_csv_dates(tmp_path, monkeypatch):
    import rnnkit.plots as plots

    seen = {}

    def keep(fig, plt, out_png):
        fig.canvas.draw()
        ax = fig.axes[0]
        seen["ticks"] = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        seen["xlabel"] = ax.get_xlabel()
        plt.close(fig)

    monkeypatch.setattr(plots, "save_figure", keep)
    rows = [f"2024-{m:02d}" for m in range(1, 13)]
    series = np.arange(12.0)
    plots.plot_forecast(series, np.arange(0), {}, 0, 2, "s", str(tmp_path / "p.png"), future=np.array([12.0, 13.0]),
                        dates=("month", ["2025-01", "2025-02"], rows))
    assert seen["xlabel"] == "month" and seen["ticks"] and set(seen["ticks"]) <= set(rows + ["2025-01", "2025-02"])
    plots.plot_forecast(series, np.arange(0), {}, 0, 2, "s", str(tmp_path / "p.png"), future=np.array([12.0, 13.0]))
    assert seen["xlabel"] == "time index" and "2" in seen["ticks"]


def test_forecast_resume_refuses_a_changed_series(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    csv.write_text("v\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(60)))
    out = tmp_path / "r"
    args = ["forecast", "--dataset", str(csv), "--window", "4", "--hidden", "4", "--out", str(out), "--no-progress"]
    assert main(args + ["--steps", "3"]) == 0
    with csv.open("a") as f:
        f.write("0.5\n")
    capsys.readouterr()
    assert main(["forecast", "--out", str(out), "--resume", "--steps", "6", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--resume: {csv} is not the data the run in {out} was trained on" in err and len(err.splitlines()) == 1
    csv.write_text("v\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(60)))
    assert main(["forecast", "--out", str(out), "--resume", "--steps", "6", "--no-progress"]) == 0


def test_forecast_refuses_dates_newest_first_and_notes_gaps(tmp_path, capsys):
    days = [f"2024-03-{1 + i:02d}" for i in range(31)]
    rows = [f"{d},{np.sin(i / 3):.4f}\n" for i, d in enumerate(days)]
    csv = tmp_path / "s.csv"
    csv.write_text("day,v\n" + "".join(reversed(rows)))
    args = ["forecast", "--dataset", str(csv), "--window", "4", "--hidden", "4", "--steps", "2", "--no-progress",
            "--out", str(tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "s.csv, line 3: expected rows in time order, oldest first, got dates newest first in 'day' (2024-03-31 " \
           "on line 2, then 2024-03-30); sort the file by 'day'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
    csv.write_text("day,v\n" + "".join(rows[:10] + rows[11:]))                 # 2024-03-11 missing
    assert main(args) == 0
    got = capsys.readouterr()
    assert "note: " in got.err and "'day' are not at one step (2024-03-10 to 2024-03-12 on line 12, after steps " \
           "of 1 day)" in got.err
    assert "(index 30-30" in got.out or "(index 30," in got.out or "(index 30)" in got.out
    assert (tmp_path / "r" / "future.csv").read_text().startswith("h,index,forecast")


@pytest.mark.parametrize("rows,note", [
    (["2024-01", "2024-02", "2024-04", "2024-05"], "2024-02 to 2024-04 on line 4, after steps of 1 month"),
    (["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02"], "2024-01-01 repeats on line 3"),
    (["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-04"], "2024-01-02 on line 4 comes after 2024-01-03"),
    (["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 03:00", "2024-01-01 04:00"],
     "2024-01-01 01:00 to 2024-01-01 03:00 on line 4, after steps of 1:00:00"),   # hours within one day
])
def test_dates_at_no_fixed_step_are_noted_not_refused(tmp_path, capsys, rows, note):
    csv = tmp_path / "s.csv"
    csv.write_text("when,regular,v\n" + "".join(f"{d},2020-01-0{1 + i},{i}.5\n" for i, d in enumerate(rows)))
    values, column, dates = TS.read_csv_series(csv, "v", 2)
    assert values.tolist() == [0.5, 1.5, 2.5, 3.5] and dates[0] == "regular"    # a regular column still dates
    csv.write_text("when,v\n" + "".join(f"{d},{i}.5\n" for i, d in enumerate(["2024-03-04", "2024-03-03",
                                                                           "2024-03-03", "2024-03-01"])))
    with pytest.raises(rnnkit.errors.UserError, match="newest first"):   # mostly backwards, with a repeat
        TS.read_csv_series(csv, "v", 2)
    assert capsys.readouterr().err == ""
    csv.write_text("when,v\n" + "".join(f"{d},{i}.5\n" for i, d in enumerate(rows)))
    assert TS.read_csv_series(csv, "v", 2)[2] is None
    err = capsys.readouterr().err
    assert note in err and "'when' are not at one step" in err, err
