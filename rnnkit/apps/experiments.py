"""Experiments that make the vanishing and exploding gradient problems visible.

* :func:`run_vanishing`: every (task length T, cell) combination trained with the same budget on
  one long-range task; a table (final metric vs. the trivial baseline, steps to solve, wall
  time), a gradient-flow heatmap per run (``log10 ||dL/dh_t||``, time step x training step) and
  loss curves.
* :func:`run_exploding`: a vanilla RNN with a large recurrent initialisation trained with plain
  SGD, once without clipping and once with norm clipping, with loss and gradient-norm curves.
* :func:`run_truncation`: full BPTT against truncation windows: time and peak memory of a
  training step on a long sequence, and what the window does to the adding problem.

Every function writes its files into ``out_dir`` and returns the table rows.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from ..data.tasks import TaskBatches, TaskData, make_task
from ..diagnostics import FlowRecorder
from ..io import atomic_write_text
from ..models.sequence import SequenceModel
from ..train import Trainer, TrainConfig, TrainingDiverged
from ..plots import plot_exploding, plot_flow_heatmaps, plot_flow_profiles, plot_task_curves

# -- what "solved" means per task -----------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    metric: str            # name of the reported metric
    higher_is_better: bool
    solved_at: float       # the metric's threshold for "solved"
    trivial: float | None  # the metric of the trivial (memoryless) answer; None: taken from the data


SPECS = {
    "adding": TaskSpec("mse", False, 0.01, None),
    "copy": TaskSpec("accuracy", True, 0.99, 1 / 8),
    "temporal-order": TaskSpec("accuracy", True, 0.99, 0.25),
    "reber": TaskSpec("accuracy", True, 0.99, 0.5),
    "digits": TaskSpec("accuracy", True, 0.95, 0.1),
    "mackey-glass": TaskSpec("mse", False, None, None),
    "dna": TaskSpec("accuracy", True, 0.99, 0.5),
}
SPEC_NOTES = {
    "adding": "MSE on held-out sequences; trivial: always answer 1 (about 0.167); solved below 0.01",
    "copy": "accuracy on the recalled symbols; trivial: guess (1/8)",
    "temporal-order": "accuracy of the order class; trivial: chance (0.25)",
    "reber": "accuracy at the long-range step (the second-to-last symbol); trivial: 0.5",
    "digits": "accuracy on held-out digits; trivial: chance (0.1)",
    "mackey-glass": "MSE of the next value; trivial: repeat the last value; solved below a tenth of it",
    "dna": "accuracy of motif present / absent; trivial: chance (0.5)",
}


def metric_of(task: str, data: TaskData, out: np.ndarray) -> float:
    """The task's metric for model outputs ``out`` on ``data``."""
    if data.kind == "regression":
        return float(np.mean((out - data.y) ** 2))
    if task == "copy":
        K = 10
        return float((out[-K:].argmax(-1) == data.y[-K:]).mean())
    if task == "reber":
        t = data.lengths - 2
        cols = np.arange(len(t))
        return float((out[t, cols].argmax(-1) == data.y[t, cols]).mean())
    return float((out.argmax(-1) == data.y).mean())


def trivial_metric(task: str, data: TaskData) -> float:
    spec = SPECS[task]
    return data.baseline if spec.trivial is None else spec.trivial


def solved_threshold(task: str, data: TaskData) -> float:
    spec = SPECS[task]
    return 0.1 * data.baseline if spec.solved_at is None else spec.solved_at


def is_solved(task, data, value) -> bool:
    thr = solved_threshold(task, data)
    return value >= thr if SPECS[task].higher_is_better else value < thr


def test_set(task, T, n_test, seed):
    """``(test, train)``: the held-out test set, and for digits the fixed training split (the
    generated tasks draw fresh training examples instead, so ``train`` is None)."""
    if task not in SPECS:
        raise ValueError(f"task: expected one of {', '.join(SPECS)}, got {task!r}")
    if task == "digits":
        full = make_task("digits", None, T, seed=seed)
        perm = np.random.default_rng([seed, 2]).permutation(len(full))
        n_test = min(n_test, len(full) // 3)
        return full.take(perm[:n_test]), full.take(perm[n_test:])
    return make_task(task, n_test, T, seed=[seed, 3]), None


def evaluate(model, task, data: TaskData, chunk=500):
    """(loss, metric) of ``model`` on ``data``, in chunks to bound memory."""
    outs, losses = [], []
    for s in range(0, len(data), chunk):
        part = data.take(slice(s, s + chunk))
        out = model.forward(part.x, part.lengths)
        model.clear_cache()
        losses.append(model.loss(out, part.y)[0] * len(part))
        outs.append(out)
    out = np.concatenate(outs, axis=0 if data.kind != "sequence" else 1)
    return sum(losses) / len(data), metric_of(task, data, out)


# -- the vanishing-gradient experiment ---------------------------------------------------


def train_task(task, T, cell, steps, hidden=64, lr=2e-3, batch_size=50, clip=1.0, seed=0, eval_every=100,
               flow_every=50, n_test=1000, optimizer="adam", init="default", gain=1.0, bptt=0, progress=None,
               time_limit=0.0, gate="sigmoid", forget_bias=None):
    """Train one model on one task with the Trainer (in memory); returns a result dict (curves and
    gradient flow included). ``gate`` applies to LSTM / GRU cells and ``forget_bias`` to LSTMs;
    other cells ignore them. Divergence (a non-finite loss or gradient) ends the run and is reported."""
    d, train = test_set(task, T, n_test, seed)
    model = SequenceModel(d.x.shape[2], hidden, d.n_out, d.kind, cell=cell, init=init, recurrent_gain=gain,
                          gate=gate if cell in ("lstm", "gru") else "sigmoid",
                          forget_bias=forget_bias if cell == "lstm" else None, seed=seed)
    model.bptt = bptt
    config = TrainConfig(steps=steps, lr=lr, optimizer=optimizer, clip=clip, stateful=False, log_every=1,
                         eval_every=steps + 1, checkpoint_every=steps + 1, time_limit=time_limit, seed=seed)
    data = TaskBatches(task, T, batch_size, seed, steps, train)
    flow = FlowRecorder(model, flow_every)
    evals, solved = {}, [None]

    def check(trainer):
        s = trainer.step
        if s % eval_every == 0 or s == steps:
            evals[s] = dict(zip(("test_loss", "metric"), evaluate(model, task, d)))
            if solved[0] is None and is_solved(task, d, evals[s]["metric"]):
                solved[0] = s
        if progress is not None:
            progress(s, {**trainer.history[-1], **evals.get(s, {})})

    trainer = Trainer(model, data, None, config, None, progress=False, callbacks=[flow, check])
    diverged = None
    t0 = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):   # divergence is detected and reported below
        try:
            trainer.run()
        except TrainingDiverged as e:
            diverged = e
        finally:
            flow.close()
    wall = time.perf_counter() - t0
    step = trainer.step if diverged is None else diverged.step
    curve = [{"step": r["step"], "loss": float(r["loss"]), "grad_norm": float(r["grad_norm"]), **evals.get(r["step"], {})}
             for r in trainer.history if "loss" in r]
    if diverged is not None:
        curve.append({"step": diverged.step, "loss": diverged.loss, "grad_norm": diverged.grad_norm})
    elif trainer.step not in evals:
        evals[trainer.step] = dict(zip(("test_loss", "metric"), evaluate(model, task, d)))
        curve[-1].update(evals[trainer.step])
    final = evals[max(evals)]["metric"] if evals and diverged is None else math.nan
    return {
        "task": task, "T": T, "cell": cell, "metric": SPECS[task].metric, "final": final,
        "trivial": trivial_metric(task, d), "solved_at": solved_threshold(task, d),
        "solved": diverged is None and is_solved(task, d, final), "steps_to_solve": solved[0],
        "steps": step, "wall_time": wall, "diverged_at": None if diverged is None else diverged.step, "curve": curve,
        "flow": np.array(flow.flows) if flow.flows else np.zeros((0, d.x.shape[0])), "flow_steps": flow.steps,
    }


TABLE_COLUMNS = ["task", "T", "cell", "metric", "final", "trivial", "solved", "steps_to_solve", "steps", "wall_time"]


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else (f"{v:.4f}" if abs(v) < 100 else f"{v:.0f}")
    return str(v)


def write_table(rows, out_dir, name, columns=TABLE_COLUMNS, note=""):
    """Write ``rows`` as ``name.csv`` and ``name.md`` in ``out_dir``; return the Markdown text."""
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_text(os.path.join(out_dir, f"{name}.csv"), _csv_text(rows, columns))
    md = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    for r in rows:
        md += "| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |\n"
    if note:
        md += f"\n{note}\n"
    atomic_write_text(os.path.join(out_dir, f"{name}.md"), md)
    return md


def _csv_text(rows, columns) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buf.getvalue()


def run_vanishing(task="adding", Ts=(100,), cells=("rnn", "lstm", "gru"), steps=3000, out_dir="experiment",
                  hidden=64, lr=2e-3, batch_size=50, clip=1.0, seed=0, eval_every=100, flow_every=50,
                  n_test=1000, log=print, progress=True, init="default", gate="sigmoid", forget_bias=None):
    """Train every (T, cell) with the same budget; write table, heatmaps and curves into ``out_dir``."""
    from tqdm.auto import tqdm

    results = []
    for T in Ts:
        for cell in cells:
            bar = tqdm(total=steps, desc=f"{task} T={T} {cell}", unit="step", disable=not progress,
                       dynamic_ncols=True, leave=False)

            def tick(step, row, bar=bar):
                bar.update(1)
                if "metric" in row:
                    bar.set_postfix(loss=f"{row['loss']:.4f}", metric=f"{row['metric']:.4f}")

            r = train_task(task, T, cell, steps, hidden=hidden, lr=lr, batch_size=batch_size, clip=clip,
                           seed=seed, eval_every=eval_every, flow_every=flow_every, n_test=n_test, progress=tick,
                           init=init, gate=gate, forget_bias=forget_bias)
            bar.close()
            results.append(r)
            log(f"{task} T={T} {cell}: {r['metric']} {_fmt(r['final'])} (trivial {_fmt(r['trivial'])}), "
                f"solved {'at step ' + str(r['steps_to_solve']) if r['steps_to_solve'] else 'no'}, "
                f"{r['wall_time']:.0f} s")
    note = (f"{task}: {SPEC_NOTES[task]}. {steps} steps of batch {batch_size}, hidden {hidden}, Adam lr {lr}, "
            f"clip {clip}, init {init}, gates {gate}" + (f", forget bias {forget_bias}" if forget_bias is not None else "")
            + ".")
    md = write_table(results, out_dir, "results", note=note)
    _save_runs(results, out_dir)
    plot_flow_heatmaps(results, os.path.join(out_dir, "gradient_flow.png"))
    plot_flow_profiles(results, os.path.join(out_dir, "gradient_flow_profile.png"))
    plot_task_curves(results, os.path.join(out_dir, "loss_curves.png"))
    log(md)
    return results


def _save_runs(results, out_dir):
    """Curves and gradient flow of every run as JSON (plots can be redrawn from it)."""
    slim = []
    for r in results:
        s = {k: v for k, v in r.items() if k != "flow"}
        s["flow"] = r["flow"].tolist()
        slim.append(s)
    atomic_write_text(os.path.join(out_dir, "runs.json"), json.dumps(slim, default=_json_default))


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(type(v).__name__)


# -- the exploding-gradient experiment ----------------------------------------------------


def run_exploding(task="adding", T=100, steps=600, out_dir="experiment", hidden=64, gain=3.0, lr=0.1, clip=1.0,
                  batch_size=50, seed=0, log=print, progress=True):
    """A tanh RNN with recurrent weights ``gain`` x orthogonal, trained with SGD with and without
    norm clipping from the same initialisation and the same batches."""
    runs = []
    for c in (0.0, clip):
        r = train_task(task, T, "rnn", steps, hidden=hidden, lr=lr, batch_size=batch_size, clip=c, seed=seed,
                       eval_every=max(steps // 20, 1), flow_every=0, optimizer="sgd", init="orthogonal", gain=gain)
        r["clip"] = c
        r["max_grad_norm"] = max(x["grad_norm"] for x in r["curve"])
        r["final_loss"] = r["curve"][-1]["loss"]
        r["outcome"] = (f"diverged at step {r['diverged_at']}" if r["diverged_at"]
                        else ("diverged (loss > 100 x trivial)" if not r["final"] < 100 * r["trivial"] else "trained"))
        runs.append(r)
        log(f"clip {c or 'off'}: {r['outcome']}, max gradient norm {r['max_grad_norm']:.3g}, "
            f"final {r['metric']} {_fmt(r['final'])}")
    cols = ["task", "T", "cell", "clip", "outcome", "max_grad_norm", "metric", "final", "trivial", "steps", "wall_time"]
    md = write_table(runs, out_dir, "exploding", columns=cols,
                     note=f"tanh RNN, hidden {hidden}, recurrent weights {gain} x orthogonal, SGD lr {lr}, batch {batch_size}.")
    _save_runs(runs, out_dir)
    plot_exploding(runs, gain, lr, os.path.join(out_dir, "exploding.png"))
    log(md)
    return runs


# -- truncated vs full BPTT --------------------------------------------------------------------


def measure_truncation(L=1000, windows=(0, 50, 100, 200), cell="lstm", hidden=128, batch_size=32, repeats=3, seed=0):
    """Wall time and peak traced memory of one training step on a sequence of length ``L`` for
    full BPTT (window 0) and each truncation window."""
    rng = np.random.default_rng(seed)
    x = rng.random((L, batch_size, 2)).astype(np.float32)
    y = rng.random((batch_size, 1)).astype(np.float32)
    rows = []
    for k in windows:
        m = SequenceModel(2, hidden, 1, "regression", cell=cell, seed=seed)
        m.bptt = k
        m.train_step((x, y, None))            # warm up (kernel compilation, buffers)
        times = []
        for _ in range(repeats):
            m.zero_grad()
            t0 = time.perf_counter()
            m.train_step((x, y, None))
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        m.train_step((x, y, None))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append({"L": L, "window": k or "full", "time_ms": 1e3 * float(np.median(times)),
                     "peak_mb": peak / 2**20})
    return rows


def run_truncation(L=1000, windows=(0, 50, 100, 200), T=100, task_windows=(0, 75, 50, 25), cell="lstm", steps=2000,
                   out_dir="experiment", hidden=64, lr=2e-3, batch_size=50, seed=0, log=print, progress=True):
    """Time/memory of truncation on a long sequence, then the adding problem trained per window."""
    cost = measure_truncation(L, windows, cell=cell, seed=seed)
    md1 = write_table(cost, out_dir, "truncation_cost", columns=["L", "window", "time_ms", "peak_mb"],
                      note=f"{cell}, hidden 128, batch 32: one training step (forward + backward) on L={L} steps.")
    log(md1)
    rows = []
    for k in task_windows:
        r = train_task("adding", T, cell, steps, hidden=hidden, lr=lr, batch_size=batch_size, seed=seed, bptt=k,
                       flow_every=0)
        r["window"] = k or "full"
        rows.append(r)
        log(f"adding T={T} window {r['window']}: mse {_fmt(r['final'])}, solved "
            f"{'at step ' + str(r['steps_to_solve']) if r['steps_to_solve'] else 'no'}")
    md2 = write_table(rows, out_dir, "truncation_adding",
                      columns=["task", "T", "cell", "window", "final", "trivial", "solved", "steps_to_solve", "wall_time"],
                      note=(f"Only the last window gets a gradient. With a window of T/2 = {T // 2} or less the gradient "
                            "never reaches the first marked number (it lies in the first half); the model can still "
                            "use it when what it learns from the second one (store a marked value, keep it) carries "
                            "over, so compare the final MSE and the steps to solve rather than expecting failure."))
    log(md2)
    plot_task_curves([dict(r, cell=f"window {r['window']}") for r in rows], os.path.join(out_dir, "truncation.png"))
    return cost, rows
