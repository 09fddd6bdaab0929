"""matplotlib figures, each saved as PNG. matplotlib is imported inside each function with the
non-interactive Agg backend, so importing rnnkit never needs a display."""
from __future__ import annotations

import math
import os


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, plt, out_png) -> str:
    """Save ``fig`` as PNG, then close it: rendered in memory and written by
    :func:`rnnkit.io.atomic_write_bytes` (never a half-written image; through a link, to a device)."""
    import io

    from .io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    atomic_write_bytes(out_png, buf.getvalue())
    return out_png


def _points(rows, key):
    """(steps, values) of the records holding a finite number under ``key`` and a finite step
    (a diverged run logs NaN; a hand-edited log may hold anything)."""
    steps, values = [], []
    for r in rows:
        s, v = r.get("step"), r.get(key)
        if (isinstance(s, (int, float)) and isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(s) and math.isfinite(v)):
            steps.append(s)
            values.append(v)
    return steps, values


def plot_metrics(rows, metrics_path, out_png, loss_label="loss (nats)") -> str:
    """Loss (and bits per character, when logged) against step, training and validation, from the
    records of a run's ``metrics_path`` (:func:`rnnkit.io.read_jsonl` reads them)."""
    train, val = _points(rows, "loss"), _points(rows, "val_loss")
    if not train[0] and not val[0]:
        raise ValueError(f"{metrics_path}: no loss values logged yet")
    has_bpc = bool(_points(rows, "bpc")[0] or _points(rows, "val_bpc")[0])
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2 if has_bpc else 1, figsize=(11 if has_bpc else 6, 4), squeeze=False)
    panels = [("loss", "val_loss", loss_label)] + ([("bpc", "val_bpc", "bits per character")] if has_bpc else [])
    for ax, (k, vk, label) in zip(axes[0], panels):
        ax.plot(*_points(rows, k), label="train", lw=1.2)
        vs, vv = _points(rows, vk)
        if vs:
            ax.plot(vs, vv, "o-", label="validation", lw=1.5, ms=3)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(os.path.basename(os.path.dirname(os.path.abspath(metrics_path))))
    fig.tight_layout()
    return save_figure(fig, plt, out_png)


def plot_attention(source, output, weights, out_png) -> str:
    """Attention heatmap of a sequence-to-sequence model: output tokens (rows, plus ``<eos>``)
    against source tokens (columns). ``source`` and ``output`` are token lists (a string is a
    list of characters); ``weights`` is (output steps, source length)."""
    import numpy as np

    plt = _pyplot()
    source, rows = list(source), list(output) + ["<eos>"]
    w = np.asarray(weights)[: len(rows), : len(source)]
    fig, ax = plt.subplots(figsize=(max(4, 0.32 * len(source) + 1.5), max(3, 0.32 * len(rows) + 1.2)),
                           layout="constrained")
    im = ax.imshow(w, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(source)), [t if t != " " else "\u2423" for t in source])
    ax.set_yticks(range(len(w)), rows[: len(w)])
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    join = lambda ts: ("" if all(len(t) == 1 for t in ts) else " ").join(ts)  # noqa: E731
    ax.set_title(f"{join(source)!r} -> {join(rows[:-1])!r}", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
    return save_figure(fig, plt, out_png)


def plot_forecast(series, origins, forecasts, test_size, horizon, name, out_png, future=None, band=None, dates=None):
    """The series' last part with the test tail shaded; each method's forecast of the last step
    ahead; and ``future``, the forecast beyond the series' end, with ``band`` (lower, upper) shaded.
    ``dates`` (``(column name, the future's dates, the rows' dates)``) labels the time axis."""
    plt = _pyplot()
    import numpy as np

    n = len(series)
    start = max(0, n - 3 * max(test_size, 2 * horizon, 20))
    fig, ax = plt.subplots(figsize=(11, 4), layout="constrained")
    ax.plot(np.arange(start, n), series[start:], color="black", lw=1.5, label="truth")
    if test_size:
        ax.axvspan(n - test_size - 0.5, n - 0.5, color="gray", alpha=0.12, label="test tail")
    tgt = origins + horizon
    for k, v in forecasts.items():
        ax.plot(tgt, v[:, horizon - 1], lw=1.2 if k == "rnnkit" else 0.9, ls="-" if k == "rnnkit" else "--", label=k)
    if future is not None:
        ax.plot(np.arange(n - 1, n + len(future)), np.concatenate([series[-1:], future]), color="tab:purple", lw=1.5,
                marker=".", label=f"rnnkit, the next {len(future)} beyond the data")
        if band is not None:
            ax.fill_between(np.arange(n, n + len(future)), band[0], band[1], color="tab:purple", alpha=0.15,
                            label="80% of the held-out errors")
    what = f"{horizon}-step-ahead forecasts on the held-out tail" if test_size else "the forecast beyond the data"
    ax.set_title(f"{name}: {what}")
    ax.set_xlabel("time index")
    if dates is not None:                   # the rows' own dates at whole-row ticks
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        labels = list(dates[2]) + list(dates[1])

        def label(x, _):
            i = int(round(x))
            return labels[i] if abs(x - i) < 1e-6 and 0 <= i < len(labels) else ""

        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(label))
        ax.set_xlabel(dates[0])
        if max(map(len, labels)) > 10:
            ax.tick_params(axis="x", labelrotation=20)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    return save_figure(fig, plt, out_png)


def _drawable(label: str) -> str:
    """A class name as the plot's font can draw it: names with characters past the Latin, Greek and
    Cyrillic blocks (CJK radicals, emoji), which DejaVu Sans lacks, as their code points (U+5FC3)."""
    label = str(label)
    return label if all(ord(c) < 0x2E80 for c in label) else " ".join(f"U+{ord(c):04X}" for c in label)


def plot_confusion(conf, classes, title, out_png):
    plt = _pyplot()
    k = len(classes)
    classes = [_drawable(c) for c in classes]
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
    return save_figure(fig, plt, out_png)


# -- the gradient experiments ----------------------------------------------------------------


def plot_flow_heatmaps(results, out_png):
    """One panel per run: log10 ||dL/dh_t|| with time step across and training step down."""
    import numpy as np

    plt = _pyplot()
    n = len(results)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4 * rows), squeeze=False, layout="constrained")
    logs = [np.log10(np.maximum(r["flow"], 1e-30)) for r in results if r["flow"].size]
    vmax = max((float(np.nanmax(v)) for v in logs), default=0.0)
    vmin = max(min((float(np.nanmin(v)) for v in logs), default=-10.0), vmax - 12)
    im = None
    for ax, r in zip(axes.flat, results):
        f = r["flow"]
        if not f.size:
            ax.set_axis_off()
            continue
        im = ax.imshow(np.log10(np.maximum(f, 1e-30)), aspect="auto", origin="upper", cmap="magma",
                       vmin=vmin, vmax=vmax, interpolation="nearest",
                       extent=(0.5, f.shape[1] + 0.5, max(r["flow_steps"][-1], r["flow_steps"][0] + 1),
                               r["flow_steps"][0]))
        ax.set_title(f"{r['cell']}  T={r['T']}  ({r['metric']} {r['final']:.4g})")
        ax.set_xlabel("time step t")
        ax.set_ylabel("training step")
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="log10 ||dL/dh_t||")
    fig.suptitle(f"Gradient flow through time: {results[0]['task']} (loss at the last step)")
    return save_figure(fig, plt, out_png)


def plot_flow_profiles(results, out_png):
    """||dL/dh_t|| / ||dL/dh_T|| against t, early and late in training, one line per run."""
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, which, title in ((axes[0], 0, "at the first training step"), (axes[1], -1, "at the end of training")):
        for r in results:
            if not r["flow"].size:
                continue
            f = r["flow"][which]
            f = f[~np.isnan(f)]                      # a row padded to the longest batch (reber)
            ax.semilogy(np.arange(1, len(f) + 1), np.maximum(f / max(f[-1], 1e-300), 1e-30),
                        label=f"{r['cell']} T={r['T']}")
        ax.set_title(f"gradient reaching step t, {title}")
        ax.set_xlabel("time step t")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("||dL/dh_t|| / ||dL/dh_T||")
    axes[1].legend(fontsize=8)
    return save_figure(fig, plt, out_png)


def plot_task_curves(results, out_png):
    """Held-out loss against training step, one panel per T, the trivial baseline dashed."""
    plt = _pyplot()
    Ts = sorted({r["T"] for r in results})
    fig, axes = plt.subplots(1, len(Ts), figsize=(5.5 * len(Ts), 4), squeeze=False)
    for ax, T in zip(axes[0], Ts):
        for r in (r for r in results if r["T"] == T):
            ev = [c for c in r["curve"] if "metric" in c]
            ax.plot([c["step"] for c in ev], [c["metric"] for c in ev], "-", label=r["cell"])
        r0 = next(r for r in results if r["T"] == T)
        ax.axhline(r0["trivial"], ls="--", color="gray", label="trivial baseline")
        if r0["metric"] == "mse":
            ax.set_yscale("log")
            ax.axhline(r0["solved_at"], ls=":", color="green", label="solved")
        ax.set_title(f"{r0['task']}, T={T}")
        ax.set_xlabel("training step")
        ax.set_ylabel(f"held-out {r0['metric']}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, plt, out_png)


def plot_exploding(runs, gain, lr, out_png):
    """Gradient norm (before clipping) and training loss against step, with and without clipping;
    a dotted red line where a run diverged."""
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for r in runs:
        label = f"clip {r['clip']:g}" if r["clip"] else "no clipping"
        st = [c["step"] for c in r["curve"]]
        axes[0].semilogy(st, [max(c["grad_norm"], 1e-12) if math.isfinite(c["grad_norm"]) else np.nan
                              for c in r["curve"]], label=label, lw=1)
        axes[1].semilogy(st, [c["loss"] if math.isfinite(c["loss"]) else np.nan for c in r["curve"]], label=label, lw=1)
        if r["diverged_at"]:
            for ax in axes:
                ax.axvline(r["diverged_at"], color="red", ls=":", lw=1)
    axes[0].set_title("gradient norm before clipping")
    axes[1].set_title("training loss")
    axes[1].axhline(runs[0]["trivial"], ls="--", color="gray", label="trivial baseline")
    for ax in axes:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.suptitle(f"Exploding gradients: tanh RNN, recurrent weights {gain} x orthogonal, SGD lr {lr}")
    return save_figure(fig, plt, out_png)


def _inside(stroke, size):
    """The runs of a stroke's points that lie in its cell (a drawing that wanders off its square is
    cut there, not drawn across its neighbours)."""
    import numpy as np

    ok = np.all((stroke >= -0.02 * size) & (stroke <= 1.02 * size), axis=1)
    cuts = np.flatnonzero(np.diff(ok.astype(int))) + 1
    return [run for run, keep in zip(np.split(stroke, cuts), np.split(ok, cuts)) if keep[0] and len(run) > 1]


def plot_strokes(drawings, titles, out_png, cols=8, box=109.0) -> str:
    """A grid of pen drawings: ``drawings`` a list of characters, each a list of (k_i, 2) stroke
    point arrays in the coordinates of a ``box`` x ``box`` square (y downwards, as in SVG; ``box=None``
    scales each drawing's own extent into the square), one line per stroke; ``titles`` one short
    string each (or None). A drawing that leaves its square is cut at the square's edge. One axes
    and one line collection for the whole grid (a subplot per drawing took seconds)."""
    import numpy as np
    from matplotlib.collections import LineCollection

    plt = _pyplot()
    n = len(drawings)
    cols = min(cols, n)
    rows = -(-n // cols)
    size = box or 1.0
    gap_x, gap_y = 1.1 * size, 1.3 * size
    fig, ax = plt.subplots(figsize=(1.3 * cols, 1.5 * rows))
    lines, frames = [], []
    for k, (strokes, title) in enumerate(zip(drawings, titles)):
        x0, y0 = (k % cols) * gap_x, (k // cols) * gap_y
        if box is None and strokes:
            pts = np.concatenate(strokes)
            lo, span = pts.min(0), max(float(np.ptp(pts, 0).max()), 1e-9)
            strokes = [(s - lo) / span for s in strokes]
        lines += [run + [x0, y0] for s in strokes for run in _inside(s, size)]
        frames.append(np.array([[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]]))
        if title:
            ax.text(x0 + size / 2, y0 - 0.04 * size, title, ha="center", va="bottom", fontsize=7)
    ax.add_collection(LineCollection(frames, colors="0.75", linewidths=0.4))
    ax.add_collection(LineCollection(lines, colors="black", linewidths=1.6, capstyle="round"))
    ax.set_xlim(-0.05 * size, (cols - 1) * gap_x + 1.05 * size)
    ax.set_ylim((rows - 1) * gap_y + 1.05 * size, -0.25 * size)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return save_figure(fig, plt, out_png)
