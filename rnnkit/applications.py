"""Forecasting and classification on real sequences, end to end: load, split, train, score beside
baselines, write ``metrics.json`` and a plot. Used by ``rnnkit forecast`` / ``rnnkit classify`` and
by ``benchmarks/real_data.py``."""
from __future__ import annotations

import json
import os
import time

import numpy as np

from .data import datasets as D
from .data import timeseries as TS
from .io import atomic_write_text
from .plots import _pyplot
from .plots import save_figure as _save


def load_series(dataset: str, csv_column=None) -> tuple[np.ndarray, int, str]:
    """(series, seasonal period, name) for a bundled dataset name, ``mackey-glass`` or a CSV path."""
    if dataset in D.FORECAST_DATASETS:
        return D.FORECAST_DATASETS[dataset](), D.SEASON[dataset], dataset
    if dataset == "mackey-glass":
        from .data.tasks import mackey_glass_series

        return mackey_glass_series(1000, rng=0), 50, dataset
    if dataset.endswith(".csv") or os.path.exists(dataset):
        return TS.read_csv_column(dataset, csv_column), 1, os.path.basename(dataset)
    raise ValueError(f"dataset: expected one of {', '.join(list(D.FORECAST_DATASETS) + ['mackey-glass'])} "
                     f"or a CSV file, got {dataset!r}")


def run_forecast(dataset="sunspots", column=None, horizon=1, window=24, test_size=None, cell="lstm", hidden=32,
                 layers=1, strategy="recursive", steps=1500, lr=3e-3, batch_size=32, seed=0, season=None,
                 out_dir=None, progress=False, log=print) -> dict:
    """Train a :class:`~rnnkit.models.Forecaster` and score it on the held-out tail beside the
    last-value, seasonal-naive and linear-autoregression baselines (RMSE and MAE, original units)."""
    from .models.forecast import Forecaster

    series, period, name = load_series(dataset, column)
    period = season or period
    test_size = test_size or max(len(series) // 5, horizon + 1)
    series = TS.check_series(series, window, horizon, test_size, what=name)
    n = len(series)
    train = series[: n - test_size]
    origins = TS.test_origins(n, test_size, horizon)
    truth = series[origins[:, None] + np.arange(1, horizon + 1)]
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"forecast {name}", unit="step", leave=False)
    model = Forecaster(window, horizon, cell=cell, hidden=hidden, num_layers=layers, strategy=strategy, seed=seed)
    model.fit(train, steps=steps, lr=lr, batch_size=batch_size,
              progress=(lambda s, loss: bar.update(1)) if bar else None)
    if bar:
        bar.close()
    pred = model.predict(series, origins, horizon)
    wall = time.perf_counter() - t0
    ar = TS.LinearAR(window).fit(train)
    forecasts = {
        "rnnkit": pred,
        "last value": TS.naive_last(series, origins, horizon),
        "linear AR": ar.forecast(series, origins, horizon),
    }
    if period > 1:
        forecasts[f"seasonal naive ({period})"] = TS.seasonal_naive(series, origins, horizon, period)
    scores = {k: TS.score(v, truth) for k, v in forecasts.items()}
    result = {"dataset": name, "n": n, "test_size": test_size, "horizon": horizon, "window": window, "cell": cell,
              "hidden": hidden, "strategy": strategy, "steps": steps, "train_time": wall, "scores": scores}
    for k, s in scores.items():
        log(f"{name} h={horizon} {k:>22}: RMSE {s['rmse']:.4g}  MAE {s['mae']:.4g}")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        atomic_write_text(os.path.join(out_dir, "metrics.json"), json.dumps(result, indent=2))
        plot_forecast(series, origins, forecasts, test_size, horizon, name, os.path.join(out_dir, "forecast.png"))
    return result


def plot_forecast(series, origins, forecasts, test_size, horizon, name, out_png):
    """The series' last part with the test tail shaded; each method's forecast of the last step ahead."""
    plt = _pyplot()
    n = len(series)
    start = max(0, n - 3 * test_size)
    fig, ax = plt.subplots(figsize=(11, 4), layout="constrained")
    ax.plot(np.arange(start, n), series[start:], color="black", lw=1.5, label="truth")
    ax.axvspan(n - test_size - 0.5, n - 0.5, color="gray", alpha=0.12, label="test tail")
    tgt = origins + horizon
    for k, v in forecasts.items():
        ax.plot(tgt, v[:, horizon - 1], lw=1.2 if k == "rnnkit" else 0.9, ls="-" if k == "rnnkit" else "--", label=k)
    ax.set_title(f"{name}: {horizon}-step-ahead forecasts on the held-out tail")
    ax.set_xlabel("time index")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    _save(fig, plt, out_png)


def standardise(train, *others):
    """Per-channel standardisation fitted on the valid steps of ``train`` only; padding stays zero."""
    valid = np.arange(train.x.shape[0])[:, None] < train.lengths[None]
    mean = train.x[valid].mean(0)
    std = train.x[valid].std(0) + 1e-6
    out = []
    for d in (train,) + others:
        v = (np.arange(d.x.shape[0])[:, None] < d.lengths[None])[:, :, None]
        out.append(((d.x - mean) / std * v).astype(np.float32))
    return out


def run_classify(dataset="japanese-vowels", cell="lstm", hidden=64, layers=1, bidirectional=False, pooling="last",
                 steps=800, lr=3e-3, batch_size=32, clip=5.0, seed=0, out_dir=None, progress=False, log=print) -> dict:
    """Train a :class:`~rnnkit.models.SequenceClassifier` on the dataset's training split and report
    test accuracy and the confusion matrix."""
    from .models.classifier import SequenceClassifier
    from .optim import Adam, clip_grad_norm

    if dataset not in D.CLASSIFICATION_DATASETS:
        raise ValueError(f"dataset: expected one of {', '.join(D.CLASSIFICATION_DATASETS)}, got {dataset!r}")
    train, test = D.CLASSIFICATION_DATASETS[dataset]("train"), D.CLASSIFICATION_DATASETS[dataset]("test")
    xtr, xte = standardise(train, test)
    k = len(train.classes)
    model = SequenceClassifier(train.x.shape[2], hidden, k, cell=cell, num_layers=layers, bidirectional=bidirectional,
                               pooling=pooling, seed=seed)
    opt = Adam(model, lr=lr)
    rng = np.random.default_rng(seed)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"classify {dataset}", unit="step", leave=False)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(train), min(batch_size, len(train)))
        model.zero_grad()
        loss, _, _ = model.train_step((xtr[:, idx], train.y[idx], train.lengths[idx]))
        clip_grad_norm(model, clip)
        opt.step()
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
    if bar:
        bar.close()
    wall = time.perf_counter() - t0
    pred = model.predict(xte, test.lengths)
    conf = np.zeros((k, k), np.int64)
    np.add.at(conf, (test.y, pred), 1)
    acc = float((pred == test.y).mean())
    majority = float(np.bincount(test.y, minlength=k).max() / len(test))
    result = {"dataset": dataset, "n_train": len(train), "n_test": len(test), "classes": train.classes,
              "accuracy": acc, "majority_baseline": majority, "cell": cell, "hidden": hidden,
              "bidirectional": bidirectional, "pooling": pooling, "steps": steps, "train_time": wall,
              "confusion": conf.tolist()}
    log(f"{dataset}: test accuracy {acc:.4f} ({len(test)} test sequences; majority class {majority:.4f})")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        atomic_write_text(os.path.join(out_dir, "metrics.json"), json.dumps(result, indent=2))
        plot_confusion(conf, train.classes, f"{dataset}: accuracy {acc:.3f}", os.path.join(out_dir, "confusion.png"))
    return result


def plot_confusion(conf, classes, title, out_png):
    plt = _pyplot()
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.55 * k), layout="constrained")
    ax.imshow(conf, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if conf[i, j] > conf.max() / 2 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    _save(fig, plt, out_png)


def train_dna_model(tagging, bidirectional, T=100, cell="gru", hidden=32, steps=1000, lr=3e-3, batch_size=32, seed=0):
    """A model for the DNA task, trained on freshly generated batches: a per-position tagger
    (``SequenceModel``) or a classifier with attention pooling (the motif may sit anywhere)."""
    from .data.tasks import dna_motifs
    from .models.classifier import SequenceClassifier
    from .models.sequence import SequenceModel
    from .optim import Adam, clip_grad_norm

    if tagging:
        model = SequenceModel(4, hidden, 2, "sequence", cell=cell, bidirectional=bidirectional, seed=seed)
    else:
        model = SequenceClassifier(4, hidden, 2, cell=cell, bidirectional=bidirectional, pooling="attention",
                                   seed=seed)
    opt = Adam(model, lr=lr)
    rng = np.random.default_rng([seed, 1])
    for _ in range(steps):
        b = dna_motifs(batch_size, T, rng=rng, tagging=tagging)
        model.zero_grad()
        model.train_step((b.x, b.y, None))
        clip_grad_norm(model, 5.0)
        opt.step()
    model.eval()
    return model


def score_dna_model(model, test) -> dict:
    """Accuracy, and for tagging the F1 of the motif-start class (rare: accuracy alone flatters)."""
    pred = model.forward(test.x).argmax(-1)
    model.clear_cache()
    out = {"accuracy": float((pred == test.y).mean())}
    if test.kind == "sequence":
        tp = int(((pred == 1) & (test.y == 1)).sum())
        prec = tp / max(int((pred == 1).sum()), 1)
        rec = tp / max(int((test.y == 1).sum()), 1)
        out["f1"] = 2 * prec * rec / max(prec + rec, 1e-12)
    return out


def run_dna(T=100, cell="gru", hidden=32, steps=1000, lr=3e-3, batch_size=32, n_test=500, seed=0, out_dir=None,
            log=print) -> dict:
    """The generated DNA task: motif classification (one label per sequence) and motif-start
    tagging (one label per position) with a unidirectional and a bidirectional model side by side."""
    from .data.tasks import dna_motifs

    rows = []
    for mode, bidirectional in (("classification", False), ("classification", True), ("tagging", False),
                                ("tagging", True)):
        tag = mode == "tagging"
        t0 = time.perf_counter()
        model = train_dna_model(tag, bidirectional, T, cell, hidden, steps, lr, batch_size, seed)
        row = {"task": f"dna {mode}", "model": f"{'bi' if bidirectional else 'uni'}directional {cell}",
               "train_time": time.perf_counter() - t0}
        row.update(score_dna_model(model, dna_motifs(n_test, T, rng=[seed, 2], tagging=tag)))
        rows.append(row)
        log(f"{row['task']:>20} {row['model']:>22}: accuracy {row['accuracy']:.4f}"
            + (f", motif-start F1 {row['f1']:.4f}" if tag else ""))
    result = {"T": T, "cell": cell, "hidden": hidden, "steps": steps, "rows": rows}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        atomic_write_text(os.path.join(out_dir, "metrics.json"), json.dumps(result, indent=2))
    return result
