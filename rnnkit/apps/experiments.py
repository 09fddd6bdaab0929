"""Experiments that make the vanishing and exploding gradient problems visible.

* :func:`run_vanishing`: every (task length T, cell) combination trained with the same budget on
  one long-range task; a table (final metric vs. the trivial baseline, steps to solve, wall
  time), a gradient-flow heatmap per run (``log10 ||dL/dh_t||``, time step x training step) and
  loss curves.
* :func:`run_exploding`: a vanilla RNN with a large recurrent initialisation trained with plain
  SGD, once without clipping and once with norm clipping, with loss and gradient-norm curves.
* :func:`run_truncation`: full BPTT against truncation windows: time and peak memory of a
  training step on a long sequence, and what the window does to the adding problem.

Every function writes its files into ``out_dir`` and returns the table rows. Each training run
is a run directory under ``out_dir/runs/`` (checkpoints every ``eval_every`` steps, metrics.jsonl,
``result.json`` when done), so an experiment stopped by Ctrl-C, SIGTERM or a crash continues with
``resume=True``: finished runs are read back, the interrupted one resumes from its checkpoint.
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

from .. import __version__, runs
from ..data.tasks import IGNORE_T, TaskBatches, TaskData, make_task
from ..errors import UserError
from ..diagnostics import FlowRecorder
from ..io import atomic_write_text
from ..io import load as load_tree
from ..models.common import split_cell_variant
from ..models.sequence import SequenceModel
from ..train import Trainer, TrainConfig, TrainingDiverged
from ..plots import plot_exploding, plot_flow_heatmaps, plot_flow_profiles, plot_task_curves
from .common import memory_needed, refuse_if_too_big

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


def _check_runs(plan) -> None:
    """Build every run of ``plan`` (``(name, settings)`` pairs, :func:`_build`'s arguments) before the
    experiment's directory is made or ``--overwrite`` deletes the old one: a length the task cannot
    take, or a test set, model or step too large for memory, is one line that leaves the old
    experiment as it was, and no directory holding only a config.json that would refuse the
    corrected command."""
    for _, settings in plan:
        _build(**settings)


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


def _stack_flows(flows, width) -> np.ndarray:
    """The recorded norms as rows of one array. A task whose batches differ in length (reber) records
    rows of different lengths: they are padded with NaN to the longest (blank in the figures)."""
    if not flows:
        return np.zeros((0, width))
    out = np.full((len(flows), max(len(f) for f in flows)), np.nan)
    for row, f in zip(out, flows):
        row[:len(f)] = f
    return out


def train_task(task, T, cell, steps, hidden=64, lr=2e-3, batch_size=50, clip=1.0, seed=0, eval_every=100,
               flow_every=50, n_test=1000, optimizer="adam", init="default", gain=1.0, bptt=0, progress=None,
               time_limit=0.0, gate="sigmoid", forget_bias=None, run_dir=None):
    """Train one model on one task with the Trainer; returns a result dict (curves and gradient flow
    included). ``gate`` applies to LSTM / GRU cells and ``forget_bias`` to LSTMs; other cells
    ignore them. ``cell`` may name a gate variant (``'lstm-ln'``, ``'gru-ln'``, ``'lstm-peep'``,
    ``'lstm-coupled'``, combined as ``'lstm-ln-peep'``: :func:`~rnnkit.models.common.split_cell_variant`). Divergence (a non-finite loss or gradient) ends the run and is reported.

    With ``run_dir`` the run is a run directory (a checkpoint every ``eval_every`` steps, with
    the evaluations and gradient flow so far): a finished one (``result.json``) is read back, an
    interrupted one continues from its checkpoint, bit for bit."""
    done = None if run_dir is None else os.path.join(run_dir, "result.json")
    if done is not None and os.path.exists(done):
        return _read_result(done)
    d, model, config, data = _build(task, T, cell, steps, hidden=hidden, lr=lr, batch_size=batch_size, clip=clip,
                                    seed=seed, eval_every=eval_every, n_test=n_test, optimizer=optimizer, init=init,
                                    gain=gain, bptt=bptt, time_limit=time_limit, gate=gate, forget_bias=forget_bias)
    flow = FlowRecorder(model, flow_every)
    tracker = _Evaluations(model, task, d, eval_every, steps, progress)
    trainer = Trainer(model, data, None, config, run_dir, progress=False, callbacks=[flow, tracker])
    if run_dir is not None and os.path.exists(os.path.join(run_dir, "checkpoint.npz")):
        trainer.restore(load_tree(os.path.join(run_dir, "checkpoint.npz")))
        if progress is not None:
            for s in range(trainer.step):
                progress(s + 1, {})
    evals = tracker.evals
    diverged = None
    with np.errstate(over="ignore", invalid="ignore"):   # divergence is detected and reported below
        try:
            trainer.run()
        except TrainingDiverged as e:
            diverged = e
        finally:
            flow.close()
    step = trainer.step if diverged is None else diverged.step
    curve = [{"step": r["step"], "loss": float(r["loss"]), "grad_norm": float(r["grad_norm"]), **evals.get(r["step"], {})}
             for r in trainer.history if "loss" in r]
    solved = tracker.solved
    if diverged is not None:
        curve.append({"step": diverged.step, "loss": diverged.loss, "grad_norm": diverged.grad_norm})
    elif trainer.step not in evals:
        evals[trainer.step] = dict(zip(("test_loss", "metric"), evaluate(model, task, d)))
        curve[-1].update(evals[trainer.step])
    final = evals[max(evals)]["metric"] if evals and diverged is None else math.nan
    result = {
        "task": task, "T": T, "cell": cell, "metric": SPECS[task].metric, "final": final,
        "trivial": trivial_metric(task, d), "solved_at": solved_threshold(task, d),
        "solved": diverged is None and is_solved(task, d, final), "steps_to_solve": solved,
        "steps": step, "wall_time": trainer.elapsed, "diverged_at": None if diverged is None else diverged.step,
        "curve": curve,
        "flow": _stack_flows(flow.flows, d.x.shape[0]), "flow_steps": flow.steps,
    }
    if done is not None:
        atomic_write_text(done, json.dumps(_slim(result), default=_json_default))
    return result


def _build(task, T, cell, steps, hidden=64, lr=2e-3, batch_size=50, clip=1.0, seed=0, eval_every=100, n_test=1000,
           optimizer="adam", init="default", gain=1.0, bptt=0, time_limit=0.0, gate="sigmoid", forget_bias=None):
    """``(test set, model, training batches, TrainConfig)`` of one run of :func:`train_task`, with the
    memory of a training step checked: everything that can refuse the run before it trains."""
    d, train = test_set(task, T, n_test, seed)
    base, variant = split_cell_variant(cell)
    model = SequenceModel(d.x.shape[2], hidden, d.n_out, d.kind, cell=base, init=init, recurrent_gain=gain,
                          gate=gate if base in ("lstm", "gru") else "sigmoid",
                          forget_bias=forget_bias if base == "lstm" else None, seed=seed, **variant)
    model.bptt = bptt
    config = TrainConfig(steps=steps, lr=lr, optimizer=optimizer, clip=clip, stateful=False, log_every=1,
                         eval_every=steps + 1, checkpoint_every=eval_every, time_limit=time_limit, seed=seed)
    data = TaskBatches(task, T, batch_size, seed, steps, train)
    x, y, lengths = data.batch(0, 0)
    kept = x[-bptt:] if bptt else x               # truncated BPTT keeps one window's steps at a time
    refuse_if_too_big(memory_needed(model, (kept, y, lengths), optimizer), "--hidden, --batch-size or --T")
    return d, model, config, data


class _Evaluations:
    """A Trainer callback: the held-out metric every ``eval_every`` steps and at the last step, and
    the first step at which the task counts as solved (checkpointed with the run)."""

    def __init__(self, model, task, data, eval_every, steps, progress=None):
        self.model, self.task, self.data, self.every, self.steps = model, task, data, eval_every, steps
        self.progress, self.evals, self.solved = progress, {}, None

    def __call__(self, trainer):
        s = trainer.step
        if s % self.every == 0 or s == self.steps:
            self.evals[s] = dict(zip(("test_loss", "metric"), evaluate(self.model, self.task, self.data)))
            if self.solved is None and is_solved(self.task, self.data, self.evals[s]["metric"]):
                self.solved = s
        if self.progress is not None:
            self.progress(s, {**trainer.history[-1], **self.evals.get(s, {})})

    def state_dict(self) -> dict:
        return {"evals": [[s, float(e["test_loss"]), float(e["metric"])] for s, e in self.evals.items()],
                "solved": self.solved}

    def load_state_dict(self, state: dict, step: int) -> None:
        self.evals = {int(s): {"test_loss": loss, "metric": m} for s, loss, m in state["evals"]}
        self.solved = state["solved"]


def _slim(result: dict) -> dict:
    """A result as JSON values (the gradient-flow array as nested lists)."""
    return {**{k: v for k, v in result.items() if k != "flow"}, "flow": result["flow"].tolist()}


def _read_result(path) -> dict:
    with open(path, encoding="utf-8") as f:
        r = json.load(f)
    r["flow"] = np.array(r["flow"]) if r["flow"] else np.zeros((0, r["T"]))
    return r


# -- the experiment's directory ---------------------------------------------------------------


class experiment_dir:
    """``exp = experiment_dir(out_dir, name, settings, resume, overwrite)`` checks ``out_dir`` at once
    (new, or ``overwrite`` of an old experiment or run rnnkit wrote, or ``resume`` of this experiment
    with the same ``settings``) and changes nothing there. ``with exp as runs_dir:``, entered after
    the caller's own checks (:func:`_check_runs`), deletes the old experiment for ``overwrite``,
    records the new one in ``config.json``, locks it while the experiment runs, and on Ctrl-C /
    SIGTERM says how to continue. ``runs_dir`` is where the training runs go."""

    def __init__(self, out_dir, name, settings: dict, resume=False, overwrite=False):
        self.out_dir, self.kind = os.fspath(out_dir), f"experiment-{name}"
        self.settings = json.loads(json.dumps(settings, default=_json_default))
        self.resume, self.overwrite = resume, overwrite
        self._check(delete=False)

    def _check(self, delete: bool):
        if not self.resume or self.overwrite:          # prepare refuses --resume with --overwrite
            runs.prepare(self.out_dir, self.kind, resume=self.resume, overwrite=self.overwrite, delete=delete)
            return
        cfg = runs.read_config(self.out_dir) if os.path.isdir(self.out_dir) else None
        found = None if cfg is None else cfg.get("kind")
        if found != self.kind:
            raise UserError(f"--resume: {self.out_dir} holds no {self.kind.replace('-', ' ')} to resume"
                            + (f" (it holds {runs._a(found)} run)" if found else ""))
        saved = dict(cfg.get("settings", {}))
        for k in ("Ts", "cells"):                         # a repeated one trains once (older experiments kept it)
            if isinstance(saved.get(k), list):
                saved[k] = list(dict.fromkeys(saved[k]))
        options = {"Ts": "T", "L": "length"}               # settings named unlike their options

        def typed(v):
            return ",".join(map(str, v)) if isinstance(v, list) else v

        # a setting an older experiment did not record ran at its then fixed value: not compared
        diffs = [f"--{options.get(k, k).replace('_', '-')} {typed(v)} (the experiment has {typed(saved.get(k))})"
                 for k, v in self.settings.items() if k in saved and saved.get(k) != v]
        if diffs:
            raise UserError(f"--resume: {self.out_dir} was run with other settings; these cannot change on resume: "
                            f"{'; '.join(diffs)}. Drop them (a resume takes the experiment's own), or start anew "
                            f"(another --out, or --overwrite)")

    def __enter__(self):
        self._check(delete=True)                   # the one place an experiment's --overwrite deletes
        self.lock = runs.RunLock(self.out_dir)
        self.lock.__enter__()
        atomic_write_text(os.path.join(self.out_dir, "config.json"), json.dumps(
            {"kind": self.kind, "rnnkit_version": __version__, "settings": self.settings}, indent=2))
        return os.path.join(self.out_dir, "runs")

    def __exit__(self, kind, exc, tb):
        self.lock.__exit__(kind, exc, tb)
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            import sys

            print(f"\ninterrupted; the finished runs and a checkpoint of the current one are in {self.out_dir}. "
                  f"Continue with the same command and --resume", file=sys.stderr)
        return False


def _settings(args: dict) -> dict:
    """An experiment function's arguments that decide its results (not where or how it reports)."""
    return {k: v for k, v in args.items() if k not in ("out_dir", "log", "progress", "resume", "overwrite")}


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
                  n_test=1000, log=print, progress=True, init="default", gate="sigmoid", forget_bias=None,
                  resume=False, overwrite=False):
    """Train every (T, cell) with the same budget; write table, heatmaps and curves into ``out_dir``
    (``resume``: continue an interrupted one there; ``overwrite``: replace an old one)."""
    Ts, cells = list(dict.fromkeys(Ts)), list(dict.fromkeys(cells))       # a repeated one trains once
    if task in IGNORE_T and len(Ts) > 1:
        raise UserError(f"--T: the {task} task's sequences have lengths of their own, so --T does not apply; "
                        f"expected one value (or none), got {','.join(map(str, Ts))}")
    exp = experiment_dir(out_dir, "vanishing", _settings(locals()), resume, overwrite)
    plan = [(f"{task}-T{T}-{cell}", dict(task=task, T=T, cell=cell, steps=steps, hidden=hidden, lr=lr,
                                         batch_size=batch_size, clip=clip, seed=seed, eval_every=eval_every,
                                         n_test=n_test, init=init, gate=gate, forget_bias=forget_bias))
            for T in Ts for cell in cells]
    _check_runs(plan)
    with exp as runs_dir:
        return _vanishing(plan, task, steps, out_dir, hidden, lr, batch_size, clip, flow_every, log, progress, init,
                          gate, forget_bias, runs_dir)


def _vanishing(plan, task, steps, out_dir, hidden, lr, batch_size, clip, flow_every, log, progress, init, gate,
               forget_bias, runs_dir):
    from tqdm.auto import tqdm

    results = []
    for name, settings in plan:
        T, cell = settings["T"], settings["cell"]
        bar = tqdm(total=steps, desc=f"{task} T={T} {cell}", unit="step", disable=not progress,
                   dynamic_ncols=True, leave=False)

        def tick(step, row, bar=bar):
            bar.update(1)
            if "metric" in row:
                bar.set_postfix(loss=f"{row['loss']:.4f}", metric=f"{row['metric']:.4f}")

        r = train_task(**settings, flow_every=flow_every, progress=tick, run_dir=os.path.join(runs_dir, name))
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
    atomic_write_text(os.path.join(out_dir, "runs.json"), json.dumps([_slim(r) for r in results],
                                                                      default=_json_default))


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(type(v).__name__)


# -- the exploding-gradient experiment ----------------------------------------------------


def run_exploding(task="adding", T=100, steps=600, out_dir="experiment", hidden=64, gain=3.0, lr=0.1, clip=1.0,
                  batch_size=50, seed=0, log=print, progress=True, resume=False, overwrite=False):
    """A tanh RNN with recurrent weights ``gain`` x orthogonal, trained with SGD with and without
    norm clipping from the same initialisation and the same batches."""
    exp = experiment_dir(out_dir, "exploding", _settings(locals()), resume, overwrite)
    plan = [(f"clip-{c:g}", dict(task=task, T=T, cell="rnn", steps=steps, hidden=hidden, lr=lr, batch_size=batch_size,
                                 clip=c, seed=seed, eval_every=max(steps // 20, 1), optimizer="sgd", init="orthogonal",
                                 gain=gain))
            for c in (0.0, clip)]
    _check_runs(plan)
    with exp as runs_dir:
        return _exploding(plan, out_dir, hidden, gain, lr, batch_size, log, runs_dir)


def _exploding(plan, out_dir, hidden, gain, lr, batch_size, log, runs_dir):
    rows = []
    for name, settings in plan:
        c = settings["clip"]
        r = train_task(**settings, flow_every=0, run_dir=os.path.join(runs_dir, name))
        r["clip"] = c
        r["max_grad_norm"] = max(x["grad_norm"] for x in r["curve"])
        r["final_loss"] = r["curve"][-1]["loss"]
        r["outcome"] = (f"diverged at step {r['diverged_at']}" if r["diverged_at"]
                        else ("diverged (loss > 100 x trivial)" if not r["final"] < 100 * r["trivial"] else "trained"))
        rows.append(r)
        log(f"clip {c or 'off'}: {r['outcome']}, max gradient norm {r['max_grad_norm']:.3g}, "
            f"final {r['metric']} {_fmt(r['final'])}")
    cols = ["task", "T", "cell", "clip", "outcome", "max_grad_norm", "metric", "final", "trivial", "steps", "wall_time"]
    md = write_table(rows, out_dir, "exploding", columns=cols,
                     note=f"tanh RNN, hidden {hidden}, recurrent weights {gain} x orthogonal, SGD lr {lr}, batch {batch_size}.")
    _save_runs(rows, out_dir)
    plot_exploding(rows, gain, lr, os.path.join(out_dir, "exploding.png"))
    log(md)
    return rows


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


def _check_measurement(L, windows, cell, hidden=128, batch_size=32, seed=0) -> None:
    """Refuse an ``L`` whose measured steps (:func:`measure_truncation`'s, each window keeping only its
    own steps) would not fit in memory, before anything is made or deleted."""
    kept = max((k if 0 < k < L else L for k in windows), default=0)
    model = SequenceModel(2, hidden, 1, "regression", cell=cell, seed=seed)
    x = np.broadcast_to(np.float32(0), (kept, batch_size, 2))        # the shape alone: nothing allocated
    est = memory_needed(model, (x,))
    values = L * batch_size * 2                   # the input: drawn in float64, kept in float32, and its gradient
    est["activations"] += 12 * values
    est["backward"] += 4 * values
    est["total"] = est["weights"] + est["activations"] + est["backward"]
    refuse_if_too_big(est, "--length")


def run_truncation(L=1000, windows=(0, 50, 100, 200), T=100, task_windows=(0, 75, 50, 25), cell="lstm", steps=2000,
                   out_dir="experiment", hidden=64, lr=2e-3, batch_size=50, clip=1.0, seed=0, log=print, progress=True,
                   resume=False, overwrite=False):
    """Time/memory of truncation on a long sequence, then the adding problem trained per window."""
    exp = experiment_dir(out_dir, "truncation", _settings(locals()), resume, overwrite)
    plan = [(f"window-{k or 'full'}", dict(task="adding", T=T, cell=cell, steps=steps, hidden=hidden, lr=lr,
                                           batch_size=batch_size, clip=clip, seed=seed, bptt=k))
            for k in task_windows]
    _check_measurement(L, windows, cell, seed=seed)
    _check_runs(plan)
    with exp as runs_dir:
        return _truncation(plan, L, windows, T, cell, out_dir, seed, log, runs_dir)


def _truncation(plan, L, windows, T, cell, out_dir, seed, log, runs_dir):
    cost = measure_truncation(L, windows, cell=cell, seed=seed)
    md1 = write_table(cost, out_dir, "truncation_cost", columns=["L", "window", "time_ms", "peak_mb"],
                      note=f"{cell}, hidden 128, batch 32: one training step (forward + backward) on L={L} steps.")
    log(md1)
    rows = []
    for name, settings in plan:
        r = train_task(**settings, flow_every=0, run_dir=os.path.join(runs_dir, name))
        r["window"] = settings["bptt"] or "full"
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
