"""``Forecaster``: a recurrent network reading a window of a series and predicting what comes next.

Inputs and targets are expressed relative to the window's last value, in units scaled on the
training part (:class:`~rnnkit.data.timeseries.Scaler`): the network predicts the change from
the last observation. That makes it indifferent to the level of the series, so a trend that
leaves the training range (CO2, airline passengers) does not leave the network's input range.

``strategy='direct'`` predicts all ``horizon`` values at once (one output per step ahead);
``'recursive'`` predicts one step and feeds it back ``horizon`` times.
"""
from __future__ import annotations

import numpy as np

from ..data.timeseries import Scaler, windows
from ..optim import Adam, clip_grad_norm
from .sequence import SequenceModel


class Forecaster:
    def __init__(self, window=24, horizon=1, cell="lstm", hidden=32, num_layers=1, strategy="recursive", seed=0):
        if strategy not in ("direct", "recursive"):
            raise ValueError(f"strategy: expected 'direct' or 'recursive', got {strategy!r}")
        for name, v in (("window", window), ("horizon", horizon), ("hidden", hidden)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        self.window, self.horizon, self.strategy, self.seed = window, horizon, strategy, seed
        n_out = horizon if strategy == "direct" else 1
        self.model = SequenceModel(1, hidden, n_out, "regression", cell=cell, num_layers=num_layers, seed=seed)
        self.scaler = None
        self.history = []

    def _inputs(self, z_windows):
        """(window, N) scaled values -> (window, N, 1) relative to the last value, and that value."""
        last = z_windows[-1]
        return (z_windows - last)[:, :, None].astype(np.float32), last

    def fit(self, train, steps=1500, lr=3e-3, batch_size=32, clip=1.0, progress=None) -> "Forecaster":
        """Fit the scaler and the network on ``train`` (the series before the test tail)."""
        train = np.asarray(train, np.float64)
        self.scaler = Scaler(train)
        z = self.scaler.transform(train)
        k = self.horizon if self.strategy == "direct" else 1
        xw, yw, _ = windows(z, self.window, k)
        if xw.shape[1] < 1:
            raise ValueError(f"training part: expected more than window + horizon = {self.window + k} values, "
                             f"got {len(train)}")
        x, last = self._inputs(xw)
        y = (yw - last[:, None]).astype(np.float32)
        opt = Adam(self.model, lr=lr)
        rng = np.random.default_rng(self.seed)
        for step in range(1, steps + 1):
            idx = rng.integers(0, x.shape[1], min(batch_size, x.shape[1]))
            self.model.zero_grad()
            loss, _, _ = self.model.train_step((x[:, idx], y[idx], None))
            clip_grad_norm(self.model, clip)
            opt.step()
            self.history.append(float(loss))
            if progress is not None:
                progress(step, loss)
        return self

    def predict(self, series, origins, horizon=None) -> np.ndarray:
        """(N, horizon) forecasts from the true history ``series[: o + 1]`` for every origin ``o``."""
        if self.scaler is None:
            raise ValueError("Forecaster.predict: call fit first")
        horizon = self.horizon if horizon is None else horizon
        z = self.scaler.transform(series)
        origins = np.asarray(origins)
        if origins.min() < self.window - 1:
            raise ValueError(f"origins: expected >= window - 1 = {self.window - 1}, got {origins.min()}")
        idx = origins[None, :] - np.arange(self.window - 1, -1, -1)[:, None]
        zw = z[idx]                                              # (window, N)
        if self.strategy == "direct":
            if horizon > self.horizon:
                raise ValueError(f"horizon: a direct forecaster trained for {self.horizon} steps, asked for {horizon}")
            x, last = self._inputs(zw)
            out = self.model.forward(x)[:, :horizon] + last[:, None]
            self.model.clear_cache()
        else:
            out = np.empty((len(origins), horizon))
            for k in range(horizon):
                x, last = self._inputs(zw)
                nxt = self.model.forward(x)[:, 0] + last
                self.model.clear_cache()
                out[:, k] = nxt
                zw = np.concatenate([zw[1:], nxt[None]], axis=0)
        return self.scaler.inverse(out)
