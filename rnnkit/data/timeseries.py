"""Time series for forecasting: a held-out tail, scaling fitted on the training part only, sliding
windows, baselines, and the rolling-origin evaluation every forecaster is scored with.

Protocol. The last ``test_size`` values are the test tail. The scaler and the model see only the
values before it. For every origin ``o`` in the tail (the last observed index), a forecaster
predicts ``horizon`` values ``o+1 .. o+horizon`` from the true history up to ``o``; RMSE and MAE
are computed over all forecasts whose targets lie in the tail, in the series' own units.
"""
from __future__ import annotations

import csv
import math

import numpy as np

from .._validate import check_positive_int
from ..errors import UserError, where


class Scaler:
    """Standardisation fitted on one array (the training part): ``(x - mean) / std``."""

    def __init__(self, train: np.ndarray):
        train = np.asarray(train, np.float64)
        self.mean = float(train.mean())
        self.std = float(train.std()) or 1.0

    def transform(self, x):
        return (np.asarray(x, np.float64) - self.mean) / self.std

    def inverse(self, z):
        return np.asarray(z, np.float64) * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        s = cls.__new__(cls)
        s.mean, s.std = float(d["mean"]), float(d["std"])
        return s


class Differencing:
    """Optional log transform and lagged differencing of a series, and the inverse that turns
    forecasts of the differenced series back into the series' own units.

    With ``log=True`` the series is first replaced by ``l_t = log x_t`` (it must be positive).
    Then each lag ``s`` in ``lags`` (applied in order) replaces the series ``u`` by its
    difference ``u_t - u_{t-s}``: lag 1 is the ordinary difference ``(1 - B) u``, lag 12 on monthly
    data the seasonal one ``(1 - B^12) u`` (Box & Jenkins 1970, ch. 9; Hyndman & Athanasopoulos,
    *Forecasting: Principles and Practice*, 3rd ed., sec. 9.1). The airline model's
    ``(1 - B)(1 - B^12) log x_t`` is ``Differencing(log=True, lags=(1, 12))``.

    The transformed series keeps the original indexing: its first ``offset = sum(lags)`` values
    are NaN (undefined) and value ``t`` depends only on ``x_0 .. x_t``, so a forecast from origin
    ``o`` still sees only the history up to ``o``. The inverse integrates back one lag at a time,
    deepest first: ``u_{o+h} = d_{o+h} + u_{o+h-s}``, with ``u_{o+h-s}`` the true value when
    ``h <= s`` and the forecast already rebuilt otherwise; then ``x = exp(l)`` under ``log``.
    """

    def __init__(self, log: bool = False, lags=()):
        self.log, self.lags = bool(log), tuple(int(s) for s in lags)
        if any(s < 1 for s in self.lags):
            raise ValueError(f"lags: expected positive integers, got {list(lags)}")
        self.offset = sum(self.lags)

    def levels(self, series) -> list:
        """``[u_0, u_1, ...]``: the (logged) series and each successive difference, NaN-padded."""
        u = np.asarray(series, np.float64)
        if self.log:
            if (u <= 0).any():
                bad = int(np.flatnonzero(u <= 0)[0])
                raise ValueError(f"log transform: expected a positive series, got {u[bad]} at row {bad}")
            u = np.log(u)
        out = [u]
        for s in self.lags:
            d = np.full_like(u, np.nan)
            d[s:] = u[s:] - u[:-s]
            out.append(d)
            u = d
        return out

    def transform(self, series) -> np.ndarray:
        """The differenced series, same length, NaN in its first ``offset`` places."""
        return self.levels(series)[-1]

    def inverse(self, series, origins, pred) -> np.ndarray:
        """(N, H) forecasts ``pred`` of the transformed series at ``o+1 .. o+H`` for each origin
        ``o`` -> forecasts of the series itself, using its true history up to each origin."""
        levels, origins = self.levels(series), np.asarray(origins)
        out = np.asarray(pred, np.float64)
        H = out.shape[1]
        for k in range(len(self.lags) - 1, -1, -1):            # rebuild level k from level k + 1
            s, rebuilt = self.lags[k], np.empty_like(out)
            for h in range(1, H + 1):
                back = rebuilt[:, h - s - 1] if h > s else levels[k][origins + h - s]
                rebuilt[:, h - 1] = out[:, h - 1] + back
            out = rebuilt
        return np.exp(out) if self.log else out


class WindowBatches:
    """Training windows for the Trainer: ``x`` (window, N, 1), ``y`` (N, k).

    ``shuffle=True``: batch ``i`` of epoch ``e`` is ``batch_size`` windows drawn with replacement
    by ``default_rng([seed, e, i])`` (a pure function of ``(i, e)``, so resume is exact);
    ``shuffle=False``: consecutive chunks, for validation."""

    def __init__(self, x, y, batch_size=32, shuffle=True, seed=0):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 3 or y.ndim != 2 or x.shape[1] != y.shape[0]:
            raise ValueError(f"WindowBatches: expected x (window, N, features) and y (N, k) with the same N, got "
                             f"shapes {x.shape} and {y.shape}")
        batch_size = check_positive_int(batch_size, "batch_size")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.n = x.shape[1]

    def __len__(self) -> int:
        return max(1, -(-self.n // self.batch_size))

    def batch(self, i: int, epoch: int = 0):
        if self.shuffle:
            idx = np.random.default_rng([self.seed, epoch, i]).integers(0, self.n, min(self.batch_size, self.n))
        else:
            idx = np.arange(i * self.batch_size, min((i + 1) * self.batch_size, self.n))
        return self.x[:, idx], self.y[idx]


def check_series(series, window: int, horizon: int, test_size: int, what="series") -> np.ndarray:
    """A 1-D finite float64 series long enough for the window, the horizon and the test tail."""
    s = np.asarray(series)
    if s.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D series, got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.number):
        raise TypeError(f"{what}: expected numbers, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if not np.all(np.isfinite(s)):
        bad = int(np.flatnonzero(~np.isfinite(s))[0])
        raise ValueError(f"{what}: expected finite values, got {s[bad]} at row {bad}")
    need = test_size + 2 * (window + horizon)
    if len(s) < need:
        raise ValueError(f"{what}: expected at least {need} values for window {window}, horizon {horizon} "
                         f"and a test tail of {test_size}, got {len(s)}")
    return s


def windows(z: np.ndarray, window: int, horizon: int, start: int = 0, stop: int | None = None):
    """All windows of ``z`` whose last observed index ``o`` lies in ``[start + window - 1, stop)``
    and whose ``horizon`` targets lie before ``len(z)``. Returns ``x`` (window, N), ``y`` (N, horizon)
    and the origins (N,)."""
    stop = len(z) - horizon if stop is None else min(stop, len(z) - horizon)
    origins = np.arange(start + window - 1, stop)
    idx = origins[None, :] - np.arange(window - 1, -1, -1)[:, None]      # (window, N)
    tgt = origins[:, None] + np.arange(1, horizon + 1)[None, :]            # (N, horizon)
    return z[idx], z[tgt], origins


def test_origins(n: int, test_size: int, horizon: int) -> np.ndarray:
    """Origins whose whole horizon lies in the test tail (the last ``test_size`` values)."""
    return np.arange(n - test_size - 1, n - horizon)


def score(pred: np.ndarray, truth: np.ndarray) -> dict:
    err = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err)))}


# -- baselines (each: series, origins, horizon -> (N, horizon) forecasts) --------------------


def naive_last(series, origins, horizon):
    """Repeat the last observed value."""
    return np.repeat(series[origins][:, None], horizon, axis=1)


def seasonal_naive(series, origins, horizon, period):
    """The value one season earlier: ``x[o + h - period * ceil(h / period)]``."""
    h = np.arange(1, horizon + 1)
    back = period * np.ceil(h / period).astype(int)
    return series[origins[:, None] + h[None, :] - back[None, :]]


class LinearAR:
    """Linear autoregression of order ``p`` with intercept, fitted by NumPy least squares on the
    training part; multi-step forecasts are recursive."""

    def __init__(self, p: int):
        self.p = p

    def fit(self, train: np.ndarray) -> "LinearAR":
        x, y, _ = windows(train, self.p, 1)
        A = np.column_stack([x.T, np.ones(x.shape[1])])
        self.coef, *_ = np.linalg.lstsq(A, y[:, 0], rcond=None)
        return self

    def forecast(self, series, origins, horizon):
        hist = [series[o - self.p + 1: o + 1].copy() for o in origins]
        H = np.stack(hist)                                  # (N, p)
        out = np.empty((len(origins), horizon))
        for k in range(horizon):
            nxt = H @ self.coef[:-1] + self.coef[-1]
            out[:, k] = nxt
            H = np.column_stack([H[:, 1:], nxt])
        return out


def read_csv_column(path, column=None) -> np.ndarray:
    """One numeric column of a CSV file with a header row (``column``, or the only column whose
    cells are mostly numbers). Blank lines are skipped; messages name the file's own line."""
    return read_csv_series(path, column)[0]


def read_csv_series(path, column=None, k: int = 0):
    """``(values, column name, dates)`` from one reading of the CSV file: the column
    :func:`read_csv_column` reads, the name it has in the header (the one chosen when ``column`` is
    None), and, when ``k`` > 0 and a column holds dates (:func:`next_dates`), ``(its name, the k
    dates after the last row, the rows' own dates)``; else None."""
    header, data, rows = _csv_table(path)
    if column is None:
        # chosen only when no other column could be meant: a column of numbers with one bad cell (a
        # typo, 'NA') is still a candidate, so the choice never falls silently on, say, the index
        full = [j for j in range(len(header)) if _bad_cell(data, j) is None]
        mostly = [j for j in range(len(header)) if j not in full
                  and 2 * sum(j < len(r) and _is_float(r[j]) for _, r in data) >= len(data)]
        if len(header) == 1 or len(full) + len(mostly) == 1:
            j = (full + mostly + [0])[0]          # its bad cell, if any, is reported below
        elif len(full) == 1 and not mostly:
            j = full[0]
        else:
            flawed = []
            for k in mostly:
                n, _, got = _bad_cell(data, k)
                flawed.append(f"{header[k]!r} has {got} on line {n}")
            got = (f"columns of numbers: {', '.join(header[k] for k in sorted(full + mostly))}"
                   + (f" ({'; '.join(flawed)})" if flawed else "") if full or mostly else "no column of numbers")
            shared = [name for name in dict.fromkeys(header[k] for k in sorted(full + mostly))
                      if header.count(name) > 1]               # names --column could not choose by
            same = ", ".join(f"{name!r} to columns {_positions(header, name)}" for name in shared)
            raise UserError(f"{path}: expected --column NAME (columns: {', '.join(header)}; {got})"
                            + (f"; the header gives {same}: rename them to choose one" if shared else ""))
        _named_once(path, rows[0][0], header, j, f"column {j + 1} is the column of numbers read")
    else:
        if column not in header:
            raise UserError(f"{path}: expected a column named {column!r}, got columns {', '.join(header)}")
        j = header.index(column)
        _named_once(path, rows[0][0], header, j, f"--column {column!r} cannot tell them apart")
    bad = _bad_cell(data, j)
    if bad is not None:
        n, j, got = bad
        raise UserError(f"{where(path, n)}: expected a number, got {got} in column {header[j]!r}")
    return np.array([float(r[j]) for _, r in data]), header[j], (_dates_after(path, header, data, k) if k > 0 else None)


def _csv_table(path):
    """``(header, data, rows)`` of a CSV file with a header row: the header's names, the data rows as
    ``(line, cells)`` and every row (blank lines skipped), each row no longer than the header."""
    from .readers import read_lines

    lines = read_lines(path, "a CSV file with a header row")
    reader, rows = csv.reader(lines), []           # rows: (line the row starts on, cells)
    try:
        start = 1
        for row in reader:
            if any(c.strip() for c in row):
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:                      # e.g. a field larger than the csv module takes
        raise UserError(f"{where(path, reader.line_num)}: expected CSV, got: {exc}") from None
    if len(rows) < 2:
        raise UserError(f"{path}: expected a header row and data rows, got {len(rows)} row(s)")
    header = [h.strip() for h in rows[0][1]]
    data = rows[1:]
    for n, r in data:                             # a cell past the header's would be read as nothing
        if len(r) > len(header):
            raise UserError(f"{where(path, n)}: expected {len(header)} cell{'s' * (len(header) > 1)} "
                            f"({', '.join(header)}) as in the header, got {len(r)}: {','.join(r)[:60]!r}")
    return header, data, rows


def next_dates(path, k: int):
    """``(column name, the k dates after the last row)`` when a column of the CSV file at ``path``
    holds ISO dates at one fixed step: days, hours, ... (``2024-01-31``, ``2024-01-31 12:00``,
    ``2024-01-31T12:00:00``), or months (``2024-01``; or full dates on one day of the month, or on
    its last day); in the column's form (date, date and time, separator; offsets as ``+00:00``). None
    when no column does. The name is ``date`` for an unnamed column or one named as an output column."""
    dates = _dates_after(path, *_csv_table(path)[:2], k)
    return dates and dates[:2]


def _dates_after(path, header, data, k):
    """``(name, the k dates after the last row, the rows' dates)`` (:func:`next_dates`), or None;
    without such a column, the first column of ISO dates is checked for order
    (:func:`_check_date_order`)."""
    if len(data) < 2:
        return None
    columns = [[r[j].strip() if j < len(r) else "" for _, r in data] for j in range(len(header))]
    for name, cells in zip(header, columns):
        try:
            nxt = _months_after(cells, k)
            if nxt is None:
                nxt = _times_after(cells, k)
        except (OverflowError, ValueError):        # past the year 9999
            nxt = None
        if nxt is not None:                        # an unnamed column, or one named as an output's
            return (name if name and name not in ("h", "index", "forecast", "lo80", "hi80") else "date"), nxt, cells
    for j, cells in enumerate(columns):
        times = _iso_times(cells)
        if times is not None:
            _check_date_order(path, header, data, j, cells, times)
            break
    return None


def _iso_times(cells):
    """Datetimes of a column of ISO dates (``YYYY-MM``, ``YYYY-MM-DD``, with a time or not), or None."""
    import datetime as dt
    import re

    if not all(re.fullmatch(r"\d{4}-\d{2}(-\d{2}([ T].*)?)?", c) for c in cells):
        return None
    try:
        t = [dt.datetime.fromisoformat(c + "-01" if len(c) == 7 else c) for c in cells]
        sorted(t)                                  # dates with and without a time zone do not compare
    except (ValueError, TypeError):
        return None
    return t


def _check_date_order(path, header, data, j, cells, t) -> None:
    """The first column of ISO dates, when none is at one fixed step: dates that go back at nine
    steps in ten or more (newest first) are refused, since the forecast would continue the series' oldest end; any
    other step back, a repeat or a gap gets one note naming its line (the values are read in file
    order, as evenly spaced, and the forecasts carry no dates)."""
    import calendar
    import sys

    steps = [t[i] - t[i - 1] for i in range(1, len(t))]
    name = header[j] or f"column {j + 1}"
    back = [i for i, d in enumerate(steps, 1) if d.total_seconds() < 0]
    moves = sum(d.total_seconds() != 0 for d in steps)
    if back and len(back) >= 0.9 * moves:          # sorted newest first (repeats, and a slip in ten, aside)
        raise UserError(f"{where(path, data[back[0]][0])}: expected rows in time order, oldest first, got dates "
                        f"newest first in {name!r} ({cells[back[0] - 1]} on line {data[back[0] - 1][0]}, then "
                        f"{cells[back[0]]}); sort the file by {name!r}")
    if back:
        i = back[0]
        what = f"{cells[i]} on line {data[i][0]} comes after {cells[i - 1]}: the rows are not in time order"
    else:
        dated = all(len(c) == 10 for c in cells) and len({(x.year, x.month) for x in t}) > 1
        if all(len(c) == 7 for c in cells) or (dated and (len({x.day for x in t}) == 1 or all(
                x.day == calendar.monthrange(x.year, x.month)[1] for x in t))):    # months: steps in months
            idx = [x.year * 12 + x.month for x in t]
            steps = [idx[i] - idx[i - 1] for i in range(1, len(idx))]
            span = f"{steps[0]} month{'s' * (steps[0] != 1)}"
        else:
            span = _span(steps[0])
        same = next((i for i in range(1, len(t)) if t[i] == t[i - 1]), None)
        odd = next((i for i, d in enumerate(steps, 1) if d != steps[0]), None)
        if odd is None:                           # one step, in forms the readers above do not continue
            return
        what = (f"{cells[same]} repeats on line {data[same][0]}" if same is not None else
                f"{cells[odd - 1]} to {cells[odd]} on line {data[odd][0]}, after steps of {span}")
    print(f"rnnkit: note: {path}: the dates in {name!r} are not at one step ({what}): the values are read as "
          f"evenly spaced, in file order, and the forecasts carry no dates", file=sys.stderr)


def _span(d) -> str:
    """A step between dates in words: ``1 day``, ``7 days``, ``1:00:00`` (hours and less)."""
    if d.seconds == 0 and d.microseconds == 0:
        return f"{d.days} day{'s' * (d.days != 1)}"
    return str(d)


def _months_after(cells, k):
    """The k months after cells of months (``YYYY-MM``), or of dates all on one day of the month
    (at most the 28th) or all on its last day, at one step of months; else None."""
    import calendar
    import datetime as dt
    import re

    if all(re.fullmatch(r"\d{4}-\d{2}", c) for c in cells):
        ym, day = [(int(c[:4]), int(c[5:])) for c in cells], None
        if not all(1 <= m <= 12 for _, m in ym):
            return None
    else:
        try:
            d = [dt.date.fromisoformat(c) for c in cells]
        except ValueError:
            return None
        ym = [(x.year, x.month) for x in d]
        if len({x.day for x in d}) == 1 and d[0].day <= 28:
            day = d[0].day
        elif all(x.day == calendar.monthrange(x.year, x.month)[1] for x in d):
            day = "end"
        else:
            return None
    idx = [y * 12 + m - 1 for y, m in ym]
    steps = {b - a for a, b in zip(idx, idx[1:])}
    if len(steps) != 1 or min(steps) <= 0:
        return None
    step, out = next(iter(steps)), []
    for i in range(1, k + 1):
        y, m = divmod(idx[-1] + i * step, 12)
        m += 1
        if day is None:
            out.append(f"{y:04d}-{m:02d}")
        else:
            out.append(dt.date(y, m, calendar.monthrange(y, m)[1] if day == "end" else day).isoformat())
    return out


def _times_after(cells, k):
    """The k times after ISO dates or date-times at one fixed step, in the cells' own form; else None.
    Only the extended form (``2024-01-31``...): Python reads ``20240131`` as a date too, and a
    column of numbers must not be taken for one."""
    import datetime as dt
    import re

    if not all(re.match(r"\d{4}-\d{2}-\d{2}", c) for c in cells):    # a day in every cell, not months
        return None
    t = _iso_times(cells)
    if t is None:
        return None
    steps = {b - a for a, b in zip(t, t[1:])}
    if len(steps) != 1 or next(iter(steps)) <= dt.timedelta(0):
        return None
    step, last = next(iter(steps)), cells[-1]
    if len(last) == 10:                            # dates only
        return [(t[-1] + i * step).date().isoformat() for i in range(1, k + 1)]
    sep = "T" if "T" in last else " "
    spec = "minutes" if len(last) == 16 else "auto"
    return [(t[-1] + i * step).isoformat(sep=sep, timespec=spec) for i in range(1, k + 1)]


def _named_once(path, line, header, j, why) -> None:
    """Refuse a header (on ``line``) that gives column ``j``'s name to other columns too: the series
    read would be known by a name that means more than one column."""
    if header.count(header[j]) > 1:
        raise UserError(f"{where(path, line)}: expected each column to have its own name, got {header[j]!r} for "
                        f"columns {_positions(header, header[j])} ({why}); rename them")


def _positions(header, name) -> str:
    """The 1-based columns ``name`` heads: ``'2 and 3'``, ``'1, 4 and 5'``."""
    same = [str(k + 1) for k, h in enumerate(header) if h == name]
    return f"{', '.join(same[:-1])} and {same[-1]}"


def _bad_cell(data, j):
    """``(line, j, shown cell)`` of the first cell of column ``j`` that is no finite number, or None."""
    for n, r in data:
        if j >= len(r):
            return n, j, "no cell"
        if not _is_number(r[j].strip()):
            return n, j, repr(r[j].strip())
    return None


def _is_float(text) -> bool:
    """``text`` reads as a float, finite or not (``nan``, ``inf``: a number column's bad cells)."""
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def _is_number(text) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False
