"""``Forecaster``: a recurrent network reading a window of a series and predicting what comes next.

Inputs and targets are expressed relative to the window's last value, in units scaled on the
training part (:class:`~rnnkit.data.timeseries.Scaler`): the network predicts the change from
the last observation. That makes it indifferent to the level of the series, so a trend that
leaves the training range (CO2, airline passengers) does not leave the network's input range.

``strategy='direct'`` predicts all ``horizon`` values at once (one output per step ahead);
``'recursive'`` predicts one step and feeds it back ``horizon`` times.

Preprocessing (options, off by default; :class:`~rnnkit.data.timeseries.Differencing`): with
``log=True`` the network sees ``log x_t``; ``difference=d`` applies ``(1 - B)`` d times and
``seasonal_difference=s`` applies ``(1 - B^s)`` once, so ``log=True, difference=1,
seasonal_difference=12`` models ``(1 - B)(1 - B^12) log x_t``, the series Box & Jenkins's airline
model is fitted to (Box & Jenkins 1970, ch. 9). The scaler and the windows are then fitted on the
transformed series, and :meth:`Forecaster.predict` integrates the forecasts back (with the true
history up to each origin) into the series' own units.

Training goes through :class:`~rnnkit.train.Trainer` like every model: :meth:`fit_scaler` on
the training part, :meth:`training_windows` for the data, then ``train_step`` on batches.
"""
from __future__ import annotations

import math

import numpy as np

from .._validate import check_positive_int
from ..data.timeseries import Differencing, Scaler, check_series, windows
from .base import TaskModel, register
from .sequence import SequenceModel


@register("forecaster")
class Forecaster(TaskModel):
    def __init__(self, window=24, horizon=1, cell="lstm", hidden_size=32, num_layers=1, strategy="recursive",
                 scaler=None, log=False, difference=0, seasonal_difference=0, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        if strategy not in ("direct", "recursive"):
            raise ValueError(f"strategy: expected 'direct' or 'recursive', got {strategy!r}")
        for name, v in (("window", window), ("horizon", horizon), ("hidden_size", hidden_size)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        for name, v in (("difference", difference), ("seasonal_difference", seasonal_difference)):
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {v!r}")
        self.window, self.horizon, self.strategy = window, horizon, strategy
        self.diff = Differencing(log, [1] * difference + ([seasonal_difference] if seasonal_difference else []))
        self.n_out = horizon if strategy == "direct" else 1
        self.net = SequenceModel(1, hidden_size, self.n_out, "regression", cell=cell, num_layers=num_layers,
                                 dtype=dtype, seed=seed)
        self.scaler = None if scaler is None else Scaler.from_dict(scaler)
        self.config = dict(kind="forecaster", window=window, horizon=horizon, cell=self.net.config["cell"], hidden_size=hidden_size,
                           num_layers=num_layers, strategy=strategy, scaler=scaler, log=bool(log),
                           difference=int(difference), seasonal_difference=int(seasonal_difference))

    # -- data -----------------------------------------------------------------------------
    def fit_scaler(self, train) -> "Forecaster":
        """Fit the scaler on ``train`` (the series before the test tail, after the log and
        differencing options) and record it in the config."""
        train = check_series(train, 0, 0, 0, what="train")
        if len(train) <= self.diff.offset:
            need = (f"{self.diff.offset} (the differencing lags) + 1 = {self.diff.offset + 1} values"
                    if self.diff.offset else "1 value")
            raise ValueError(f"train: expected at least {need}, got {len(train)}")
        self.scaler = Scaler(self.diff.transform(train)[self.diff.offset:])
        self.config["scaler"] = self.scaler.to_dict()
        return self

    def _inputs(self, z_windows):
        """(window, N) scaled values -> (window, N, 1) relative to the last value, and that value."""
        last = z_windows[-1]
        return (z_windows - last)[:, :, None].astype(self.dtype), last

    def training_windows(self, train):
        """``x`` (window, N, 1) and ``y`` (N, k) from the training part, in the network's units."""
        if self.scaler is None:
            raise ValueError("Forecaster.training_windows: call fit_scaler first")
        need, lags = self.window + self.n_out + self.diff.offset, " + differencing lags" * bool(self.diff.offset)
        if len(train) < need:
            raise ValueError(f"training part: expected at least window + horizon{lags} = {need} values, "
                             f"got {len(train)}")
        xw, yw, _ = windows(self.scaler.transform(self.diff.transform(train)), self.window, self.n_out,
                            start=self.diff.offset)
        x, last = self._inputs(xw)
        return x, (yw - last[:, None]).astype(self.dtype)

    # -- the contract -----------------------------------------------------------------------
    def train_step(self, batch, state=None):
        x, y = self.unpack(batch, "x, y")
        return self.net.train_step((x, y, None))

    def evaluate(self, batch, state=None):
        x, y = self.unpack(batch, "x, y")
        return self.net.evaluate((x, y, None))

    def metrics(self, mean_loss, sums=None):
        return {"rmse_scaled": math.sqrt(max(mean_loss, 0.0))}

    # -- forecasting ------------------------------------------------------------------------
    @property
    def min_history(self) -> int:
        """Values a forecast needs before its origin: the window plus the differencing lags."""
        return self.window + self.diff.offset

    def forecast(self, series, horizon=None, what="series") -> np.ndarray:
        """(horizon,) forecasts of the values after the end of ``series``, read from its last
        :attr:`min_history` values (``predict`` at the last origin)."""
        n = len(check_series(series, 0, 0, 0, what=what))
        if n < self.min_history:
            lags = f" plus {self.diff.offset} differencing lags" if self.diff.offset else ""
            raise ValueError(f"{what}: expected at least {self.min_history} values (the model's window of "
                             f"{self.window}{lags}), got {n}")
        return self.predict(series, [n - 1], horizon)[0]

    def predict(self, series, origins, horizon=None) -> np.ndarray:
        """(N, horizon) forecasts from the true history ``series[: o + 1]`` for every origin ``o``."""
        if self.scaler is None:
            raise ValueError("Forecaster.predict: the model has no scaler; train it first")
        horizon = self.horizon if horizon is None else check_positive_int(horizon, "horizon")
        series = check_series(series, 0, 0, 0, what="series")
        z = self.scaler.transform(self.diff.transform(series))
        origins, first, last = np.asarray(origins), self.window - 1 + self.diff.offset, len(series) - 1
        if origins.ndim != 1 or origins.size == 0:
            raise ValueError(f"origins: expected a non-empty 1-D list of indices, got shape {origins.shape}")
        if not np.issubdtype(origins.dtype, np.integer):
            raise TypeError(f"origins: expected integer indices, got dtype {origins.dtype}")
        lags = " + differencing lags" * bool(self.diff.offset)
        if origins.min() < first:
            raise ValueError(f"origins: expected >= window - 1{lags} = {first}, got {origins.min()} "
                             f"(valid: [{first}, {last}])")
        if origins.max() > last:
            raise ValueError(f"origins: expected <= len(series) - 1 = {last}, got {origins.max()} "
                             f"(valid: [{first}, {last}])")
        idx = origins[None, :] - np.arange(self.window - 1, -1, -1)[:, None]
        zw = z[idx]                                              # (window, N)
        if self.strategy == "direct":
            if horizon > self.horizon:
                raise ValueError(f"horizon: a direct forecaster trained for {self.horizon} steps, asked for {horizon}")
            x, last = self._inputs(zw)
            out = self.net.forward(x)[:, :horizon] + last[:, None]
            self.net.clear_cache()
        else:
            out = np.empty((len(origins), horizon))
            for k in range(horizon):
                x, last = self._inputs(zw)
                nxt = self.net.forward(x)[:, 0] + last
                self.net.clear_cache()
                out[:, k] = nxt
                zw = np.concatenate([zw[1:], nxt[None]], axis=0)
        return self.diff.inverse(series, origins, self.scaler.inverse(out))
