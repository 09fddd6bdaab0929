"""The trainer: a loop over batches with no calculus in it.

Each step: ``model.zero_grad()``; ``loss, state, n = model.train_step(batch, carried_state)``
(forward, loss and backward live in the model); clip; ``optimizer.step()``; schedule; log;
evaluate; checkpoint. With ``stateful=True`` the final state of one batch is the initial state
of the next (truncated BPTT over a stream: the value is carried, the gradient is cut, because
the carried state is a plain array); with ``stateful=False`` every batch starts from zeros
(full BPTT within each batch).

Data sources provide ``len(data)`` (batches per epoch) and ``data.batch(i, epoch)``.
Models provide ``train_step``, ``evaluate`` (summed loss, state, count), ``metrics(mean_loss)``
and ``config``.

A run directory holds ``checkpoint.npz`` (everything needed to resume: model, optimizer,
schedule, RNG states, data position, carried state), ``best.npz`` (the model with the best
validation loss), ``metrics.jsonl`` (one JSON object per line) and ``config.json``. Resuming
from ``checkpoint.npz`` reproduces an uninterrupted run bit for bit.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

from . import __version__, io
from . import threads as _threads
from ._validate import NonFiniteError, check_bool, is_count, is_real
from .errors import Terminated, UserError  # noqa: F401  (Terminated: rnnkit.train.Terminated)
from .models.common import rng_state, set_rng_state
from .optim import Schedule, clip_grad_norm, make_optimizer, make_schedule


DIVERGENCE_ACTIONS = ("stop", "skip", "rollback")
# What a resumed run cannot change: the work already done depends on them (the optimizer's saved
# moments belong to one optimizer; the seed drew the data order and dropout masks; a stateful run
# carries the state of a stream). Every other field of TrainConfig may change on resume, is
# applied from the resumed step on, and is logged in metrics.jsonl.
FIXED_ON_RESUME = {"optimizer": "the saved optimizer moments belong to the first one",
                   "seed": "it drew the data order and the dropout masks of the steps already taken",
                   "stateful": "the carried state belongs to the data layout"}
MAX_SKIPS, MAX_ROLLBACKS = 20, 5       # in a row / in one run: past that, the run stops


@dataclass
class TrainConfig:
    steps: int = 1000             # optimizer steps in all (ignored when ``epochs`` is set)
    epochs: int | None = None     # passes over the training data
    lr: float = 2e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    clip: float = 5.0             # max global gradient norm; 0 disables clipping
    schedule: str = "none"        # none | cosine | step | exponential | plateau
    warmup: int = 0               # warm-up steps for the cosine schedule
    stateful: bool = True         # carry the state between consecutive batches (TBPTT)
    eval_every: int = 200
    checkpoint_every: int = 200
    log_every: int = 10
    patience: int = 0             # evaluations without improvement before stopping; 0 = never
    time_limit: float = 0.0       # seconds; 0 = no limit
    seed: int = 0
    on_divergence: str = "stop"   # stop | skip (drop a non-finite step's update) | rollback (last checkpoint, lr / 2)
    divergence_factor: float = 0.0  # also diverged when the smoothed loss stays above k x its minimum (0: off)
    divergence_steps: int = 20    # ... for this many consecutive steps
    no_decay: str = ""            # no weight decay for parameters whose names contain these words ("bias,norm")
    freeze: str = ""              # parameters not trained: comma-separated name patterns ("embed.*")

    def __post_init__(self):
        positive = {"steps": self.steps, "eval_every": self.eval_every, "checkpoint_every": self.checkpoint_every,
                    "log_every": self.log_every}
        for name, v in positive.items():
            if not is_count(v, 1):
                raise ValueError(f"{name.replace('_', '-')}: expected an integer >= 1, got {v!r}")
        if self.epochs is not None and not is_count(self.epochs, 1):
            raise ValueError(f"epochs: expected an integer >= 1, got {self.epochs!r}")
        if not (is_real(self.lr) and self.lr > 0):
            raise ValueError(f"lr: expected a positive learning rate, got {self.lr!r}")
        for name in ("clip", "weight_decay", "time_limit"):
            v = getattr(self, name)
            if not (is_real(v) and v >= 0):
                raise ValueError(f"{name.replace('_', '-')}: expected a number >= 0, got {v!r}")
        for name in ("warmup", "patience", "seed"):
            v = getattr(self, name)
            if not is_count(v, 0):
                raise ValueError(f"{name}: expected an integer >= 0, got {v!r}")
        if self.on_divergence not in DIVERGENCE_ACTIONS:
            raise ValueError(f"on-divergence: expected one of {', '.join(DIVERGENCE_ACTIONS)}, got {self.on_divergence!r}")
        if not (is_real(self.divergence_factor) and (self.divergence_factor == 0
                                                                      or self.divergence_factor > 1)):
            raise ValueError(f"divergence-factor: expected 0 (off) or a number > 1, got {self.divergence_factor!r}")
        if not is_count(self.divergence_steps, 1):
            raise ValueError(f"divergence-steps: expected an integer >= 1, got {self.divergence_steps!r}")
        self.stateful = check_bool(self.stateful, "stateful")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A saved run's settings (``checkpoint.npz``'s ``config``): keys another rnnkit version wrote
        and this one lacks are dropped. To build a config from your own settings use
        ``TrainConfig(**d)``, which names an unknown one."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class TrainingDiverged(UserError):
    """The loss or the gradient became NaN or infinite; the last good checkpoint is kept as it was.
    ``step``, ``loss`` and ``grad_norm`` say where."""

    def __init__(self, message, step=None, loss=None, grad_norm=None):
        super().__init__(message)
        self.step, self.loss, self.grad_norm = step, loss, grad_norm


def _has_step(record: dict) -> bool:
    """A metrics record whose step reads as an integer (the resume's trim compares it)."""
    try:
        int(record.get("step", 0))
        return True
    except (TypeError, ValueError, OverflowError):
        return False


def _shown(figures: dict) -> dict:
    """Figures for the progress bar, three decimals each, ``val_loss`` as ``val``."""
    return {("val" if k == "val_loss" else k): f"{v:.3f}" for k, v in figures.items()}


def _new_window() -> dict:
    """Sums over the steps since the last log line."""
    return {"loss": 0.0, "tokens": 0, "seconds": 0.0, "n": 0}


def _pack_state(state):
    if state is None:
        return None
    return {"tuple": isinstance(state, tuple), "arrays": list(state) if isinstance(state, tuple) else [state]}


def _unpack_state(packed):
    if packed is None:
        return None
    arrays = [np.asarray(a) for a in packed["arrays"]]
    return tuple(arrays) if packed["tuple"] else arrays[0]


class Trainer:
    """Train ``model`` on ``train_data``, evaluating on ``val_data``, writing into ``out_dir``
    (``None``: in memory only; the log is ``history`` and the best weights ``best_state``).

    ``extra`` (JSON values, e.g. the vocabulary) is saved with every checkpoint and best model.
    ``callbacks`` are called as ``cb(trainer)`` after every step; a callback with ``state_dict()``
    and ``load_state_dict(state, step)`` (e.g. a recorder) has its state saved in every checkpoint
    and given back on restore, so a resumed run's callbacks know what they knew.
    """

    def __init__(self, model, train_data, val_data, config: TrainConfig, out_dir, extra=None, progress=True,
                 callbacks=(), eval_batches=None):
        self.model, self.train_data, self.val_data = model, train_data, val_data
        self.config, self.out_dir = config, None if out_dir is None else os.fspath(out_dir)
        cfg = getattr(model, "config", None)
        if not isinstance(cfg, dict) or "kind" not in cfg:
            raise TypeError(f"Trainer: expected a model whose config is a dict with a 'kind' (CharLM, "
                            f"SequenceClassifier, ...), got {type(model).__name__}")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer config: expected a TrainConfig, got {type(config).__name__}"
                            + (" (TrainConfig(**settings) makes one)" if isinstance(config, dict) else ""))
        for name, data in (("train_data", train_data), ("val_data", val_data)):
            if (data is not None or name == "train_data") and not (hasattr(data, "batch") and hasattr(data, "__len__")):
                raise TypeError(f"Trainer {name}: expected batches with len() and batch(i, epoch) (StreamBatches, "
                                f"LabelledSequences, ...), got {type(data).__name__}")
        if eval_batches is not None and (isinstance(eval_batches, bool) or not isinstance(eval_batches, (int, np.integer))
                                         or eval_batches < 1):
            raise ValueError(f"eval_batches: expected None (all) or an integer >= 1, got {eval_batches!r}")
        callbacks = list(callbacks)                      # a generator is read once
        for cb in callbacks:
            if not callable(cb):
                raise TypeError(f"callbacks: expected functions cb(trainer), got {type(cb).__name__}")
        self.extra = extra or {}
        self.progress, self.callbacks = progress, list(callbacks)
        self.eval_batches = eval_batches
        if config.freeze:
            model.freeze(config.freeze)
        self.optimizer = make_optimizer(config.optimizer, model, lr=config.lr, weight_decay=config.weight_decay,
                                        no_decay=config.no_decay or None)
        self.schedule = make_schedule(config.schedule, self.optimizer, total_steps=self.total_steps,
                                      warmup=config.warmup)
        self.step = self.epoch = self.index = 0
        self.carry = None
        self.best_val = math.inf
        self.bad_evals = 0
        self.elapsed = 0.0
        self.last = {}            # latest logged metrics
        self.history = []         # every logged record of the run (what metrics.jsonl holds)
        self.window = _new_window()
        self.last_checkpoint = None   # in-memory runs with rollback: the last checkpoint tree
        self._smooth, self._lowest, self._high, self._skips, self.rollbacks = None, math.inf, 0, 0, 0
        self.best_state = None    # the weights with the best validation loss, in memory
        self.stop_reason = None
        self.tuner = _threads.tuner()   # RNNKIT_NUM_THREADS=auto: threads chosen from step times
        self.restored = False     # restore() was called: run() continues the run in out_dir

    # -- bookkeeping ----------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        c = self.config
        return c.epochs * len(self.train_data) if c.epochs is not None else c.steps

    def path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    def log(self, record: dict) -> None:
        self.history.append(record)
        if self.out_dir is None:
            return
        with open(self.path("metrics.jsonl"), "a", encoding="utf-8") as f:
            f.write(io.json_text(record) + "\n")
            f.flush()

    # -- checkpoints ----------------------------------------------------------------
    def checkpoint_tree(self) -> dict:
        """Everything a resume needs (what ``checkpoint.npz`` holds)."""
        return {
            "kind": self.model.config["kind"], "rnnkit_version": __version__, "config": asdict(self.config),
            "model_config": self.model.config, "extra": self.extra,
            "model": self.model.state_dict(), "frozen": self.model.frozen_names(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "rng": rng_state(self.model), "carry": _pack_state(self.carry),
            "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in self.callbacks],
            "progress": {"step": self.step, "epoch": self.epoch, "index": self.index, "best_val": self.best_val,
                         "bad_evals": self.bad_evals, "elapsed": self.elapsed, "window": dict(self.window)},
        }

    def save_checkpoint(self) -> None:
        if self.out_dir is None:
            if self.config.on_divergence == "rollback":
                self.last_checkpoint = self.checkpoint_tree()
            return
        io.save(self.path("checkpoint.npz"), self.checkpoint_tree())

    def save_best(self) -> None:
        self.best_state = self.model.state_dict()
        if self.out_dir is None:
            return
        io.save(self.path("best.npz"), {"kind": self.model.config["kind"], "model_config": self.model.config,
                                         "extra": self.extra, "model": self.best_state, "step": self.step,
                                         "val_loss": self.best_val})

    def config_changes(self, saved: dict) -> dict:
        """``{field: [saved value, this trainer's value]}`` for every training setting that differs
        from the checkpoint's; a change of a field in ``FIXED_ON_RESUME`` is a one-line error."""
        old = asdict(TrainConfig.from_dict(saved))
        changes = {k: [old[k], v] for k, v in asdict(self.config).items() if old[k] != v}
        fixed = [f"{k.replace('_', '-')} {v[1]!r} (the run has {v[0]!r}: {FIXED_ON_RESUME[k]})"
                 for k, v in changes.items() if k in FIXED_ON_RESUME]
        if fixed:
            raise UserError(f"--resume: these settings cannot change on resume: {'; '.join(fixed)}")
        return changes

    def restore(self, ckpt: dict, truncate_log: bool = True) -> None:
        """Continue from a checkpoint dict (as loaded by :func:`rnnkit.io.load`). Training settings
        of this trainer's config that differ from the checkpoint's (learning rate, budget, clipping,
        schedule, patience, ...) apply from here on and are logged as a ``"resumed"`` event; those
        in ``FIXED_ON_RESUME`` are refused."""
        changes = self.config_changes(ckpt["config"])
        self.restored = True
        self.model.load_state_dict(ckpt["model"])
        if "freeze" not in changes:                 # frozen as the run was, unless the patterns changed
            self.model.set_frozen(ckpt.get("frozen", []))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        saved_schedule = ckpt["config"].get("schedule", "none")
        if self.schedule is not None and ckpt.get("schedule") is not None and saved_schedule == self.config.schedule:
            self.schedule.load_state_dict(ckpt["schedule"])
        elif isinstance(self.schedule, Schedule):   # a new step-driven schedule: at the step reached
            self.schedule.count = int(ckpt["progress"]["step"])
        if "lr" in changes or "schedule" in changes:
            if isinstance(self.schedule, Schedule):
                self.schedule.base_lr = self.config.lr
                self.optimizer.lr = self.schedule.lr_at(self.schedule.count)
            else:                                   # none or plateau: the new rate as it is
                self.optimizer.lr = self.config.lr
        set_rng_state(self.model, ckpt["rng"])
        self.carry = _unpack_state(ckpt["carry"])
        p = ckpt["progress"]
        self.step, self.epoch, self.index = int(p["step"]), int(p["epoch"]), int(p["index"])
        self.best_val, self.bad_evals, self.elapsed = float(p["best_val"]), int(p["bad_evals"]), float(p["elapsed"])
        self.window = dict(p.get("window", self.window))
        for cb, state in zip(self.callbacks, ckpt.get("callbacks") or []):
            if state is not None and hasattr(cb, "load_state_dict"):
                cb.load_state_dict(state, self.step)
        best = self.path("best.npz") if self.out_dir is not None else None
        if best is not None and os.path.exists(best):       # the best weights so far are this run's too
            self.best_state = io.load(best)["model"]
        if truncate_log:
            self._truncate_log()
        if changes:
            self.log({"step": self.step, "event": "resumed", "changed": changes, "lr": self.optimizer.lr})

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint, so a resumed log reads like an unbroken one."""
        if self.out_dir is None:
            return
        path = self.path("metrics.jsonl")
        if not os.path.exists(path):
            return
        rows = [(line, r) for line, r in io.read_jsonl(path, " (a write cut short?); dropped on resume", _has_step)
                if int(r.get("step", 0)) <= self.step]
        io.atomic_write_text(path, "".join(line if line.endswith("\n") else line + "\n" for line, _ in rows))
        self.history = [r for _, r in rows]

    # -- evaluation -----------------------------------------------------------------
    def evaluate(self) -> dict:
        """Mean validation loss over the whole validation set, plus the model's own metrics."""
        if self.val_data is None:
            return {}
        self.model.eval()
        total, count, state, sums = 0.0, 0, None, {}
        n = len(self.val_data) if self.eval_batches is None else min(self.eval_batches, len(self.val_data))
        for i in range(n):
            out = self.model.evaluate(self.val_data.batch(i, 0), state if self.config.stateful else None)
            loss, state, k = out[:3]
            total, count = total + loss, count + k
            for key, v in (out[3] if len(out) > 3 else {}).items():
                sums[key] = sums.get(key, 0) + v
        self.model.train()
        mean = total / max(count, 1)
        return {"val_loss": mean, **{f"val_{k}": v for k, v in self.model.metrics(mean, sums or None).items()}}

    def _eval_and_track(self) -> dict:
        res = self.evaluate()
        if not res:
            return res
        self.log({"step": self.step, **res})
        if res["val_loss"] < self.best_val:
            self.best_val, self.bad_evals = res["val_loss"], 0
            self.save_best()
        else:
            self.bad_evals += 1
            if self.config.patience and self.bad_evals >= self.config.patience:
                self.stop_reason = f"early stop: no validation improvement in {self.bad_evals} evaluations"
        return res

    # -- the loop -------------------------------------------------------------------
    def train_one(self) -> dict:
        """One optimizer step on the next batch. Returns the step's metrics."""
        c, model = self.config, self.model
        batch = self.train_data.batch(self.index, self.epoch)
        model.train()
        model.zero_grad()
        t0 = time.perf_counter()
        with self.tuner.step() if self.tuner is not None else contextlib.nullcontext():
            # overflow on the way to a NaN is the divergence guard's to report, in one line, not NumPy's
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                try:
                    out = model.train_step(batch, self.carry if c.stateful else None)
                except NonFiniteError:          # a NaN met a module's check inside the step: divergence too
                    out = (math.nan, None, 0)
                if not (isinstance(out, tuple) and len(out) == 3):
                    raise TypeError(f"{type(model).__name__}.train_step: expected (loss, state, count): the mean loss, "
                                    f"the carried state (or None) and the tokens counted, got {type(out).__name__}")
                loss, state, n = out
                norm = clip_grad_norm(model, c.clip if c.clip > 0 else math.inf) if math.isfinite(loss) else math.nan
            problem = self._divergence(loss, norm)
            if not problem:
                self.optimizer.step()
        if problem:
            model.zero_grad()
            return self._on_divergence(problem, loss, norm)
        self._skips = 0
        lr = self.optimizer.lr
        if self.schedule is not None and c.schedule != "plateau":
            self.schedule.step()
        dt = time.perf_counter() - t0
        decision = self.tuner.pop_decision() if self.tuner is not None else None
        if decision is not None:
            self.log({"event": "threads", "step": self.step + 1, **decision})
        self.carry = state if c.stateful else None
        self.step += 1
        self._advance()
        return {"loss": loss, "grad_norm": float(norm), "lr": lr, "tokens": n, "seconds": dt}

    def _advance(self) -> None:
        """Move the data position to the next batch (and epoch, where one ends: no state carried over)."""
        self.index += 1
        if self.index >= len(self.train_data):
            self.index, self.epoch, self.carry = 0, self.epoch + 1, None

    # -- the divergence guard -------------------------------------------------------
    def _divergence(self, loss, norm) -> str | None:
        """What went wrong with this step, or None: a non-finite loss or gradient, or (with
        ``divergence_factor`` k) a smoothed loss above k x its lowest value for ``divergence_steps``."""
        if not math.isfinite(loss):
            return f"the loss became {loss}"
        if not math.isfinite(norm):
            return f"the gradient norm became {norm}"
        c = self.config
        if c.divergence_factor:
            self._smooth = loss if self._smooth is None else 0.9 * self._smooth + 0.1 * loss
            self._lowest = min(self._lowest, self._smooth)
            self._high = self._high + 1 if self._smooth > c.divergence_factor * self._lowest else 0
            if self._high >= c.divergence_steps:
                return (f"the smoothed loss {self._smooth:.4g} stayed above {c.divergence_factor:g} x its lowest "
                        f"value {self._lowest:.4g} for {self._high} steps")
        return None

    def _on_divergence(self, problem, loss, norm):
        """Apply ``on_divergence``; returns None (the loop goes on) or raises ``TrainingDiverged``."""
        c, step = self.config, self.step + 1
        last = self.path("checkpoint.npz") if self.out_dir else None
        have = (last and os.path.exists(last)) or self.last_checkpoint is not None
        action = c.on_divergence
        if action == "skip" and not (math.isfinite(loss) and math.isfinite(norm)):
            ok = self._skips < MAX_SKIPS
        else:
            ok = action == "rollback" and have and self.rollbacks < MAX_ROLLBACKS
        if action == "stop" or not ok:
            kept = f"the last good checkpoint, {last}, is kept" if last and have else "no checkpoint had been written"
            why = {"skip": f"; {self._skips} steps skipped in a row", "rollback": f"; {self.rollbacks} rollbacks done"}
            # a non-finite loss has no gradient norm to show (none was computed)
            seen = f"loss {loss:.4g}" + (f", gradient norm {norm:.4g}" if math.isfinite(loss) else "")
            clip = "a smaller clipping norm (--clip)" if c.clip > 0 else "gradient clipping (--clip 1)"
            raise TrainingDiverged(f"training diverged at step {step}: {problem} ({seen}){why.get(action, '')}; "
                                   f"{kept}; try a lower learning rate (--lr), {clip} or rolling back to the last "
                                   f"checkpoint (--on-divergence rollback)", step, loss, norm)
        if action == "skip":                  # drop this batch's update and go on with the next batch
            self._skips += 1
            self._advance()
            self.log({"step": self.step, "event": "skipped", "why": problem})
            return None
        self.restore(self.last_checkpoint if last is None else io.load(last), truncate_log=False)
        self.rollbacks += 1
        if isinstance(self.schedule, Schedule):
            self.schedule.base_lr *= 0.5
            self.optimizer.lr = self.schedule.lr_at(self.schedule.count)
        else:
            self.optimizer.lr *= 0.5
        self._smooth, self._lowest, self._high = None, math.inf, 0
        self.log({"step": self.step, "event": "rollback", "why": f"{problem} at step {step}",
                  "lr": self.optimizer.lr})
        return None

    def run(self, stop_at: int | None = None) -> dict:
        """Train until the step budget, the time limit or early stopping. ``stop_at`` stops after
        that many steps in all (as an interruption would), leaving a checkpoint to resume from.

        The directory is locked while this runs. Ctrl-C and SIGTERM save a checkpoint and raise
        ``KeyboardInterrupt`` (``Terminated`` for SIGTERM); a non-finite loss raises
        ``TrainingDiverged`` and leaves the last checkpoint as it was."""
        from .runs import RunLock

        if self.out_dir is None:
            return self._with_signals(stop_at)
        if os.path.exists(self.out_dir) and not os.path.isdir(self.out_dir):
            raise UserError(f"Trainer out_dir: expected a directory, got the file {self.out_dir}")
        kept = [n for n in ("checkpoint.npz", "best.npz") if os.path.exists(self.path(n))]
        if kept and self.step == 0 and not self.restored:     # a new run would write over a trained one
            raise UserError(f"Trainer: {self.out_dir} already holds a trained run ({', '.join(kept)}); continue it "
                            f"with trainer.restore(rnnkit.io.load({self.path(kept[0])!r})) before run(), or train "
                            f"into a new or empty directory")
        os.makedirs(self.out_dir, exist_ok=True)
        with RunLock(self.out_dir):
            io.atomic_write_text(self.path("config.json"), json.dumps(
                {"kind": self.model.config["kind"], "rnnkit_version": __version__, "train": asdict(self.config),
                 "model": self.model.config, **self.extra}, indent=2))
            return self._with_signals(stop_at)

    def _with_signals(self, stop_at):
        """Run with SIGINT and SIGTERM deferred to the end of the current step: a step is never
        half-applied (some parameters updated, the counter not) when its checkpoint is saved.
        A second signal before then interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            return self._run(stop_at)
        self._signal = None

        def defer(signum, frame):
            if self._signal is not None:
                raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
            self._signal = signum

        previous = {s: signal.signal(s, defer) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._run(stop_at)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _check_signal(self) -> None:
        s = getattr(self, "_signal", None)
        if s is not None:
            self._signal = None
            raise Terminated() if s == signal.SIGTERM else KeyboardInterrupt()

    def _run(self, stop_at):
        from tqdm.auto import tqdm

        c, total = self.config, self.total_steps
        end = total if stop_at is None else min(total, stop_at)
        self.stop_reason = None
        # a run the clock will stop (a time limit shorter than the step budget could take) counts
        # seconds, so its bar has a true total; otherwise it counts steps
        by_time = bool(c.time_limit) and (self.step == 0 or self.elapsed / self.step * (total - self.step)
                                          > c.time_limit - self.elapsed)
        bar = (tqdm(total=round(c.time_limit), initial=min(round(self.elapsed), round(c.time_limit)), unit="s",
                    disable=not self.progress, dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}") if by_time else
               tqdm(total=total, initial=self.step, disable=not self.progress, unit="step", dynamic_ncols=True))
        window = self.window
        shown = _shown({"loss": self.last.get("loss", float("nan"))})     # the bar's training figures
        start = time.perf_counter() - self.elapsed
        try:
            while self.step < end and self.stop_reason is None:
                m = self.train_one()
                if m is None:                       # a skipped step or a rollback: nothing to log
                    if not by_time:
                        bar.n = self.step
                        bar.refresh()
                    self._check_signal()
                    continue
                for k in ("loss", "tokens", "seconds"):
                    window[k] += m[k]
                window["n"] += 1
                self.elapsed = time.perf_counter() - start
                if self.step % c.log_every == 0 or self.step == end:
                    mean = window["loss"] / window["n"]
                    figures = {"loss": mean, **self.model.metrics(mean, None)}
                    self.last = {"step": self.step, "epoch": self.epoch, **figures, "lr": m["lr"],
                                 "grad_norm": m["grad_norm"],
                                 "tokens_per_s": window["tokens"] / max(window["seconds"], 1e-9),
                                 "elapsed": self.elapsed}
                    self.log(self.last)
                    # the loss (nats) with the model's own figures (a language model's bits per
                    # character, which the run's last line reports); a dict keeps the order
                    shown = _shown(figures)
                    bar.set_postfix({**shown, "tok_s": f"{self.last['tokens_per_s']:.0f}"})
                    window = self.window = _new_window()
                bar.update(min(self.elapsed, c.time_limit) - bar.n if by_time else 1)
                final = self.step >= total or (c.time_limit and self.elapsed >= c.time_limit)
                if self.step % c.eval_every == 0 or final:
                    res = self._eval_and_track()
                    if self.schedule is not None and c.schedule == "plateau" and res:
                        self.schedule.step(res["val_loss"])
                    if res:
                        bar.set_postfix({**shown, **_shown(res)})
                for cb in self.callbacks:
                    cb(self)
                if self.step % c.checkpoint_every == 0:
                    self.save_checkpoint()
                if c.time_limit and self.elapsed >= c.time_limit:
                    self.stop_reason = f"time limit of {c.time_limit:g} s reached"
                self._check_signal()
        except KeyboardInterrupt:
            self.save_checkpoint()
            bar.close()
            raise
        bar.close()
        self.save_checkpoint()
        if self.stop_reason is None:
            self.stop_reason = "finished" if self.step >= total else f"stopped at step {self.step}"
        return {**self.last, "step": self.step, "best_val_loss": self.best_val, "stop_reason": self.stop_reason}
