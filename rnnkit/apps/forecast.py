"""Forecasting a series (bundled data or the user's CSV): load, split off the test tail, train a
:class:`~rnnkit.models.Forecaster` through the Trainer, score it beside baselines, plot.

Protocol: the last ``test_size`` values are the test tail; the scaler and the network see only
the values before it. Within those, the windows whose targets fall in the last
``val_fraction`` are validation (early stopping, the best weights), the rest are training.
``test_size=0`` trains on the whole series and scores nothing.

Every run also forecasts the ``horizon`` values beyond the end of the series (``future.csv``), and
:func:`forecast_file` does that again with a trained run, on the same series or a longer one
(``rnnkit forecast predict RUN_DIR``). With a test tail the forecasts come with an 80% band per
step ahead: the 10% and 90% quantiles of the network's errors on the tail (:func:`error_band`),
empirical, not a guarantee; without a tail there is no held-out error to read it from.
"""
from __future__ import annotations

import os
import time
from typing import NamedTuple

import numpy as np

from .. import runs
from ..data import datasets as D
from ..data import timeseries as TS
from .._validate import is_count, is_real
from ..errors import UserError
from ..io import atomic_write_text, json_text, write_output
from ..train import Trainer, TrainConfig
from .common import check_same_data, fit, resumed_config, saved_run, sequences_digest, where_recorded

KIND = "forecaster"
BAND_LEVEL = 0.8          # the forecasts' band: this share of the held-out errors lies inside it
BAND_MIN_ORIGINS = 10     # held-out forecasts a band needs, at least


def bundled(dataset: str) -> bool:
    """Whether ``dataset`` names a series rnnkit ships or makes (not a file)."""
    return dataset in D.FORECAST_DATASETS or dataset == "mackey-glass"


def recorded(dataset: str) -> str:
    """``dataset`` as a run records it and as series are compared: a file by its real absolute path
    (through links; ``forecast predict`` and ``--resume`` then find it from any directory), a
    bundled name as it is."""
    return dataset if bundled(dataset) else os.path.realpath(dataset)


class Series(NamedTuple):
    values: np.ndarray
    period: int            # the seasonal period (1: none known)
    name: str
    column: str | None     # the CSV column read (chosen when none was named); None for bundled series
    dates: tuple | None    # (column name, the dates after the end), when the CSV holds dates


def load_series(dataset: str, csv_column=None, horizon: int = 0) -> Series:
    """The series of a bundled dataset name, ``mackey-glass`` or a CSV path, read once: a CSV's
    values, the column they came from and the ``horizon`` dates after its end
    (:func:`~rnnkit.data.timeseries.read_csv_series`)."""
    if bundled(dataset) and csv_column is not None:
        raise UserError(f"--column: expected none for the bundled series {dataset} (--column picks a column of a "
                        f"CSV file), got {csv_column!r}")
    if dataset in D.FORECAST_DATASETS:
        return Series(D.FORECAST_DATASETS[dataset](), D.SEASON[dataset], dataset, None, None)
    if dataset == "mackey-glass":
        from ..data.tasks import mackey_glass_series

        return Series(mackey_glass_series(1000, rng=0), 50, dataset, None, None)
    if dataset.endswith(".csv") or os.path.exists(dataset):
        values, column, dates = TS.read_csv_series(dataset, csv_column, horizon)
        return Series(values, 1, os.path.basename(dataset), column, dates)
    raise UserError(f"dataset: expected one of {', '.join(list(D.FORECAST_DATASETS) + ['mackey-glass'])} "
                    f"or a CSV file, got {dataset!r}")


def train_forecaster(train, window=24, horizon=1, cell="lstm", hidden_size=32, num_layers=1, strategy="recursive",
                     config=None, batch_size=32, val_fraction=0.1, out_dir=None, overwrite=False, progress=False,
                     extra=None, ckpt=None, log=False, difference=0, seasonal_difference=0):
    """Fit the scaler on ``train`` and train a Forecaster on its windows through the Trainer
    (or continue the run ``ckpt`` came from). Returns ``(model, result)``; the model holds the
    best validation weights (or the last ones when there is no validation part). ``log``,
    ``difference`` and ``seasonal_difference`` are the Forecaster's preprocessing options."""
    from ..models.base import model_from_config
    from ..models.forecast import Forecaster

    config = config or TrainConfig(steps=1500, lr=3e-3, clip=1.0, stateful=False)
    if ckpt is not None:
        model = model_from_config(ckpt["model_config"])
    else:
        model = Forecaster(window, horizon, cell, hidden_size, num_layers, strategy, log=log, difference=difference,
                           seasonal_difference=seasonal_difference, dtype=np.float32, seed=config.seed)
        model.fit_scaler(train)
    x, y = model.training_windows(train)
    n_val = int(round(x.shape[1] * val_fraction))
    train_data = TS.WindowBatches(x[:, : x.shape[1] - n_val], y[: x.shape[1] - n_val], batch_size, seed=config.seed)
    val_data = TS.WindowBatches(x[:, x.shape[1] - n_val:], y[x.shape[1] - n_val:], 256, shuffle=False) if n_val else None
    if out_dir is None:
        trainer = Trainer(model, train_data, val_data, config, None, progress=progress)
        result = trainer.run()
    else:
        trainer, result = fit(model, train_data, val_data, config, out_dir, extra=extra, ckpt=ckpt,
                              overwrite=overwrite, progress=progress)
    if trainer.best_state is not None:
        model.load_state_dict(trainer.best_state)
    model.eval()
    return model, result


def run_forecast(dataset="sunspots", column=None, horizon=1, window=24, test_size=None, cell="lstm", hidden_size=32,
                 num_layers=1, strategy="recursive", config=None, batch_size=32, val_fraction=0.1, season=None,
                 out_dir=None, overwrite=False, resume=False, changes=None, progress=False, log=print,
                 log_transform=False, difference=0, seasonal_difference=0) -> dict:
    """Train on everything before the test tail and score the rolling-origin forecasts of the tail
    beside the last-value, seasonal-naive and linear-autoregression baselines (RMSE and MAE,
    original units). With ``out_dir``: a run directory with ``scores.json`` and ``forecast.png``.
    ``log_transform``, ``difference`` and ``seasonal_difference`` preprocess the series inside the
    model (:class:`~rnnkit.models.Forecaster`); ``log`` is the function progress lines go to."""
    from ..plots import plot_forecast

    config = config or TrainConfig(steps=1500, lr=3e-3, clip=1.0, stateful=False)
    ckpt, chosen = None, column is None          # chosen: the CSV's column is the one read_csv_series picks
    if resume:                                   # every setting comes from the run, with ``changes`` applied
        ckpt = saved_run(out_dir, KIND)
        d, m = ckpt["extra"]["data"], ckpt["model_config"]
        dataset, column, test_size, val_fraction, season = (d["dataset"], d["column"], d["test_size"],
                                                            d["val_fraction"], d["season"])
        chosen = d.get("column_chosen", column is None)
        window, horizon, strategy, batch_size = m["window"], m["horizon"], m["strategy"], d["batch_size"]
        cell, hidden_size, num_layers = m["cell"], m["hidden_size"], m["num_layers"]
        log_transform, difference, seasonal_difference = (m.get("log", False), m.get("difference", 0),
                                                          m.get("seasonal_difference", 0))
        config = resumed_config(ckpt, changes)
    if test_size is not None and not is_count(test_size, 0):
        raise UserError(f"--test-size: expected an integer >= 0 (0: no test tail), got {test_size!r}")
    loaded = load_series(dataset, column, horizon)     # the data is checked before the run is touched
    series, name, column, dates = loaded.values, loaded.name, loaded.column, loaded.dates
    period = season or loaded.period
    test_size = max(len(series) // 5, horizon + 1) if test_size is None else test_size
    if 0 < test_size < horizon:           # scoring needs an origin whose whole horizon lies in the tail
        raise UserError(f"--horizon {horizon}: expected at most --test-size {test_size} (every scored forecast "
                        f"lies in the test tail), got {horizon}")
    series = TS.check_series(series, window + difference + seasonal_difference, horizon, test_size, what=name)
    found = sequences_digest([series])
    if resume:           # newer rows would move the test tail and the training part under the saved state
        check_same_data(ckpt["extra"]["data"], "series", found, dataset, out_dir)
    if period >= len(series) - test_size:
        raise UserError(f"--season: expected a period shorter than the training part ({len(series) - test_size} "
                        f"values), got {period}")
    if not resume and out_dir is not None:
        runs.prepare(out_dir, KIND, overwrite=overwrite, delete=False)     # fit deletes an old run, after every check
    n = len(series)
    train = series[: n - test_size]
    t0 = time.perf_counter()
    extra = {"data": {"dataset": recorded(dataset), "column": column, "column_chosen": chosen and column is not None,
                      "series_digest": found,
                      "test_size": test_size, "val_fraction": val_fraction, "season": season, "batch_size": batch_size}}
    model, fit_result = train_forecaster(train, window, horizon, cell, hidden_size, num_layers, strategy, config,
                                         batch_size, val_fraction, out_dir, overwrite=overwrite, progress=progress,
                                         extra=extra, ckpt=ckpt, log=log_transform, difference=difference,
                                         seasonal_difference=seasonal_difference)
    wall = time.perf_counter() - t0
    origins, forecasts = np.arange(0), {}
    if test_size:
        origins = TS.test_origins(n, test_size, horizon)
        forecasts = {"rnnkit": model.predict(series, origins, horizon), "last value": TS.naive_last(series, origins, horizon),
                     "linear AR": TS.LinearAR(window).fit(train).forecast(series, origins, horizon)}
        if period > 1:
            forecasts[f"seasonal naive ({period})"] = TS.seasonal_naive(series, origins, horizon, period)
    truth = series[origins[:, None] + np.arange(1, horizon + 1)]
    scores = {k: TS.score(v, truth) for k, v in forecasts.items()}
    future = model.forecast(series, horizon)
    band = error_band(forecasts["rnnkit"], truth) if test_size else None
    result = {"dataset": name, "n": n, "test_size": test_size, "horizon": horizon, "window": window, "cell": cell,
              "hidden_size": hidden_size, "strategy": strategy, "log": log_transform, "difference": difference,
              "seasonal_difference": seasonal_difference, "steps": fit_result["step"], "train_time": wall,
              "scores": scores, "future": future.tolist(), "band": band}
    for k, s in scores.items():
        log(f"{name} h={horizon} {k:>22}: RMSE {s['rmse']:.4g}  MAE {s['mae']:.4g}")
    if not test_size:
        log(f"{name}: no test tail (--test-size 0), so nothing is scored")
    span = f"index {n}" if horizon == 1 else f"index {n}-{n + horizon - 1}"
    if dates:
        span = f"{dates[0]} {dates[1][0]}" + (f" to {dates[1][-1]}" if horizon > 1 else "")
    limits = band_limits(future, band)
    cells = [f"{v:.4g}" for v in future] if limits is None else [
        f"{v:.4g} ({a:.4g} to {b:.4g})" for v, a, b in zip(future, *limits)]
    log(f"{name}: forecast beyond the end ({span}{', with the band of 80% of the tail errors' * bool(band)}): "
        + ", ".join(cells))
    if test_size and band is None:
        log(f"{name}: no band: {len(origins)} held-out forecast{'s' * (len(origins) != 1)}, fewer than "
            f"{BAND_MIN_ORIGINS} (a longer --test-size gives one)")
    if out_dir:
        atomic_write_text(os.path.join(out_dir, "scores.json"), json_text(result, indent=2))
        atomic_write_text(os.path.join(out_dir, "future.csv"), future_csv(future, n, band, dates))
        plot_forecast(series, origins, forecasts, test_size, horizon, name, os.path.join(out_dir, "forecast.png"),
                      future=future, band=limits, dates=dates)
    return result


def error_band(pred, truth, level=BAND_LEVEL) -> dict | None:
    """The band of held-out errors per step ahead: ``lo[h]`` and ``hi[h]``, the ``(1 - level) / 2``
    and ``(1 + level) / 2`` quantiles of ``truth - pred`` over the origins (rows), to add to a
    forecast; None with fewer than ``BAND_MIN_ORIGINS`` origins."""
    err = np.asarray(truth) - np.asarray(pred)                        # (origins, horizon)
    if len(err) < BAND_MIN_ORIGINS:
        return None
    lo, hi = np.quantile(err, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return {"level": level, "origins": len(err), "lo": lo.tolist(), "hi": hi.tolist()}


def band_limits(future, band):
    """(lower, upper) arrays for the steps of ``future`` the band covers (NaN beyond), or None."""
    if not band:
        return None
    k = min(len(future), len(band["lo"]))
    lower, upper = np.full(len(future), np.nan), np.full(len(future), np.nan)
    lower[:k], upper[:k] = future[:k] + np.asarray(band["lo"][:k]), future[:k] + np.asarray(band["hi"][:k])
    return lower, upper


def future_csv(future, n: int, band=None, dates=None) -> str:
    """The forecasts beyond a series of ``n`` values as CSV: steps ahead, the row index each one
    would have in the series (``n``, ``n + 1``, ...), with ``dates`` (``(column name, dates)``,
    :func:`~rnnkit.data.timeseries.next_dates`) its date under the series' own column name, the
    forecast; with a band, its lower and upper limits (``lo80``, ``hi80``; empty past the steps the
    band was measured for)."""
    import csv
    import io

    limits = band_limits(future, band)
    head = ["h", "index"] + ([dates[0]] if dates else []) + ["forecast"]
    if limits is not None:
        pct = round(100 * band["level"])
        head += [f"lo{pct}", f"hi{pct}"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for i, v in enumerate(map(float, future)):
        row = [i + 1, n + i] + ([dates[1][i]] if dates else []) + [repr(v)]
        if limits is not None:
            row += ["" if np.isnan(x[i]) else repr(float(x[i])) for x in limits]
        w.writerow(row)
    return buf.getvalue()


def run_band(run_dir) -> dict | None:
    """The band a forecast run measured on its test tail (its ``scores.json``), or None."""
    import json

    try:
        with open(os.path.join(run_dir, "scores.json"), encoding="utf-8") as f:
            band = json.load(f).get("band")
    except (OSError, ValueError, AttributeError):
        return None
    def numbers(v):
        return isinstance(v, list) and all(is_real(x) and np.isfinite(x) for x in v)

    ok = (isinstance(band, dict) and numbers(band.get("lo")) and numbers(band.get("hi"))
          and len(band["lo"]) == len(band["hi"]) and all(a <= b for a, b in zip(band["lo"], band["hi"]))
          and is_real(band.get("level")) and 0 < band["level"] < 1)
    return band if ok else None


def forecast_file(run_dir, dataset=None, column=None, horizon=None, output=None, which="best") -> dict:
    """Forecast the ``horizon`` values after the end of ``dataset`` (a bundled name or a CSV file;
    default: the series the run was trained on, e.g. the same CSV with newer rows; ``column``
    default: the run's) with the trained forecaster in ``run_dir``; the network reads the last
    ``window`` values, as in training. Writes :func:`future_csv`'s text to ``output`` (stdout when
    None or ``"-"``) and returns ``{"n", "horizon", "future", "band"}``. The run's band (measured on
    its own series with its best weights) comes only with a forecast of that series by those weights."""
    import sys

    model = runs.load(run_dir, which, kinds=(KIND,))
    data = model.run_extra.get("data", {})
    own, own_column = data.get("dataset"), data.get("column")
    if data.get("column_chosen") and dataset is not None and recorded(dataset) != recorded(own):
        own_column = None              # the run's file had one column of numbers; another file's is chosen again
    relative = bool(own) and not bundled(own) and not os.path.isabs(own)    # a run made before rnnkit recorded
    if dataset is None:                                                      # absolute paths
        if not own:
            raise UserError(f"{run_dir}: the run does not record its series; pass --dataset")
        if not bundled(own) and not os.path.isfile(own):
            raise UserError(f"{run_dir}: the run's series {own}{where_recorded(own)}: file not found (moved? pass "
                            f"--dataset)")
        dataset = own
    defaulted = column is None and not bundled(dataset) and own_column is not None
    column = own_column if defaulted else column                    # a newer file of the run's columns
    if horizon is None:
        horizon = model.horizon
    elif model.strategy == "direct" and horizon > model.horizon:
        raise UserError(f"--horizon: expected at most {model.horizon} (the run forecasts {model.horizon} steps at once, "
                        f"--strategy direct), got {horizon}")
    try:
        loaded = load_series(dataset, column, horizon)
    except UserError as exc:
        if defaulted and dataset != own:
            raise UserError(f"{exc} (--column is the run's, {column!r}, unless given)") from None
        raise
    series, name = loaded.values, loaded.name
    try:
        future = model.forecast(series, horizon, what=name)
    except (ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None
    band = run_band(run_dir)
    why = ("the run records its series by a relative path, so this file may be another" if relative
           else "this is another series" if recorded(dataset) != (own and recorded(own)) else
           f"this is column {loaded.column}, not the run's" if (loaded.column != own_column if own_column is not None
                                                                 else column is not None) else
           "these are the last weights, not the best" if which != "best" else None)
    if band is not None and why:
        print(f"note: no band: the run measured it on its own series ({own}"
              f"{f', column {own_column}' if own_column else ''}) with its best weights; {why}", file=sys.stderr)
        band = None
    write_output(output, future_csv(future, len(series), band, loaded.dates))
    return {"n": len(series), "horizon": horizon, "future": future, "band": band}
