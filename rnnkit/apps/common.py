"""What every application shares: starting or resuming a run directory and training through the
one :class:`~rnnkit.train.Trainer`."""
from __future__ import annotations

import hashlib
import os
import sys

from .. import io, runs
from ..errors import UserError
from ..train import Trainer, TrainConfig, TrainingDiverged


def digest(data, length=None) -> str:
    """SHA-256 hex digest of ``data`` (bytes, or text as UTF-8), cut to ``length`` characters: how a
    run recognises the data it was trained on when it is resumed."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:length]


def file_digest(path, length=None) -> str:
    """:func:`digest` of a file's bytes."""
    with open(path, "rb") as f:
        return digest(f.read(), length)


def sequences_digest(xs, labels=None, length=16) -> str:
    """:func:`digest` of labelled sequences' content (each array's shape and float64 values, then
    the labels as text): a run recognises its data by it whatever file or format held it."""
    import numpy as np

    h = hashlib.sha256()
    for x in xs:
        x = np.ascontiguousarray(x, np.float64)
        h.update(repr(x.shape).encode())
        h.update(x.tobytes())
    if labels is not None:
        h.update("\n".join(map(str, np.asarray(labels).tolist())).encode("utf-8"))
    return h.hexdigest()[:length]


def where_recorded(path) -> str:
    """How to read a data path a run recorded, for a "file not found": an older run recorded it as
    typed, relative to the directory it was trained in."""
    return "" if os.path.isabs(path) else " (relative to the directory the run was trained in)"


def check_same_data(recorded: dict, key: str, found: str, name, out_dir) -> None:
    """On ``--resume``: refuse data whose digest differs from the one the run recorded under
    ``{key}_digest`` (runs from before digests were recorded are not checked)."""
    if recorded.get(f"{key}_digest") not in (None, found):
        raise UserError(f"--resume: {name} is not the data the run in {out_dir} was trained on (its content "
                        f"changed); resume with the same file, or start a new run")


def saved_run(out_dir, kind: str) -> dict:
    """For ``--resume``: the checkpoint of the ``kind`` run in ``out_dir`` (checked), as a tree
    with ``model_config``, ``config`` (training) and ``extra``."""
    runs.prepare(out_dir, kind, resume=True)
    path = os.path.join(out_dir, "checkpoint.npz")
    try:
        ckpt = io.load(path)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for key in ("model_config", "config", "model", "progress", "extra"):
        if not isinstance(ckpt, dict) or key not in ckpt:
            raise UserError(f"{path}: expected a training checkpoint (with {key!r}), got other content")
    found = runs.saved_kind(ckpt)
    if found != kind:
        raise UserError(f"{path}: expected the checkpoint of {runs._a(kind)} run, got one of {runs._a(found)} run")
    return ckpt


def resumed_config(ckpt: dict, changes: dict | None = None) -> TrainConfig:
    """The run's saved training settings with ``changes`` (TrainConfig fields, e.g. ``{"steps":
    4000, "lr": 1e-3}``) applied: a new ``steps`` replaces an ``epochs`` budget. The trainer
    refuses the fields that cannot change and logs the others when it restores the run."""
    saved = dict(ckpt["config"])
    changes = dict(changes or {})
    unknown = sorted(set(changes) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"resume changes: expected TrainConfig fields, got {', '.join(unknown)}")
    if changes.get("epochs") is None:
        changes.pop("epochs", None)
        if changes.get("steps") is not None:
            changes["epochs"] = None
    try:
        return TrainConfig.from_dict({**saved, **changes})
    except ValueError as exc:
        raise UserError(str(exc)) from None


MOMENTS = {"adam": 2, "adamw": 2, "rmsprop": 1, "adagrad": 1, "sgd": 1}


def memory_needed(model, batch, optimizer="adam") -> dict:
    """Bytes a training step of ``model`` on ``batch`` needs beyond the parameters it already holds,
    estimated before the first step: gradients and optimizer moments, and what the backward pass
    keeps per token (``L x N`` from the batch's longest time-major array): for every recurrent
    layer and direction the gate activations, h and c; every linear layer's output and its
    gradient (the logits of a large vocabulary dominate here); every embedding's output; and for
    attention the scores against every source position (times the attention width when additive).
    A model whose parts see other sequences than the batch's (the tagger's character encoder
    runs over C x M characters) says so with ``token_counts(batch) -> {child name: tokens}``."""
    from ..models.common import modules_of
    from ..nn import RNNBase
    from ..nn.attention import Attention
    from ..nn.layers import Embedding, Linear

    item = model.dtype.itemsize
    arrays = [a for a in (batch if isinstance(batch, tuple) else (batch,)) if hasattr(a, "shape") and a.ndim >= 2]
    N = arrays[0].shape[1] if arrays else 1
    lengths = [a.shape[0] for a in arrays if a.shape[1] == N] or [1]
    L, S = max(lengths), max(lengths)               # S: the longest source a decoder attends over
    counts = model.token_counts(batch) if hasattr(model, "token_counts") else {}
    kept = 0
    for name, child in [("", model)] + list(model._modules.items()):
        tokens = counts.get(name, L * N)
        for m in [child] if not name else modules_of(child):
            if isinstance(m, RNNBase):
                kept += tokens * m.num_layers * m.num_directions * (m.ops.n_gates + 2) * m.hidden_size
            elif isinstance(m, Linear):
                kept += tokens * 2 * m.out_features
            elif isinstance(m, Embedding):
                kept += tokens * m.embedding_dim
            elif isinstance(m, Attention):
                width = len(m.params["v"]) if m.kind in ("additive", "concat") else 0
                kept += tokens * (S * (2 + width) + m.key_size)
    return estimate(model.num_parameters(), 1 + MOMENTS.get(optimizer, 2), kept, item)


def estimate(parameters: int, copies: int, kept: int, itemsize: int) -> dict:
    """A training step's memory in bytes: ``copies`` arrays the size of the parameters (gradients,
    optimizer moments, and the parameters themselves when not yet allocated), the ``kept``
    activation values, and as much again for the gradients the backward pass makes of them (a
    step's measured peak is 1.5-2.2x the kept activations: tests/test_runs.py checks the estimate
    against it)."""
    out = {"parameters": parameters, "weights": copies * parameters * itemsize, "activations": kept * itemsize,
           "backward": kept * itemsize}
    out["total"] = out["weights"] + out["activations"] + out["backward"]
    return out


def available_memory() -> int | None:
    """Bytes the system says it can still give (``MemAvailable``), or None where it does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def refuse_if_too_big(est: dict, change: str) -> None:
    """A one-line refusal when the estimate ``est`` (``parameters``, ``weights``, ``activations``,
    ``total`` in bytes) does not fit in the memory this machine has free; ``change`` says what to lower."""
    free = available_memory()
    if free is not None and est["total"] > 0.9 * free:
        raise UserError(f"this configuration needs about {est['total'] / 2**30:.1f} GiB for training "
                        f"({est['parameters']:,} parameters: {est['weights'] / 2**30:.1f} GiB with gradients and "
                        f"optimizer moments; {est['activations'] / 2**30:.1f} GiB kept for BPTT and as much for its "
                        f"gradients), more than the "
                        f"{free / 2**30:.1f} GiB free here; use a smaller {change}")


def check_memory(model, batch, optimizer="adam") -> None:
    """Before the first step of any app: gradients, moments and BPTT activations must fit."""
    refuse_if_too_big(memory_needed(model, batch, optimizer), "--hidden-size or --batch-size")


TIME_LIMIT = ("--time-limit", 1.0)     # the command's flag for TrainConfig.time_limit, and its unit in seconds


def check_steps_left(ckpt, total: int, config: TrainConfig, out_dir, time_flag=TIME_LIMIT) -> None:
    """Refuse to resume the run ``ckpt`` came from when its ``total`` steps (``config``'s budget)
    are already done, or its time limit already used, in one line, before anything in ``out_dir``
    is touched. ``time_flag``: the flag the command sets the time limit with, and its unit in
    seconds (``rnnkit demo``'s ``--minutes``: 60)."""
    try:
        done = int(ckpt["progress"]["step"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise UserError(f"{os.path.join(out_dir, 'checkpoint.npz')}: expected a training checkpoint with the "
                        f"step it reached (progress/step), got {str(ckpt.get('progress'))[:80]}") from None
    more = "--steps" if config.epochs is None else "--epochs (or --steps)"
    if done > total:
        budget = f"--steps {total}" if config.epochs is None else f"the {total} steps of --epochs {config.epochs}"
        raise UserError(f"--resume: the run in {out_dir} has already done {done} steps, more than {budget}; "
                        f"pass a larger {more} to extend it")
    if done == total:
        raise UserError(f"--resume: the run in {out_dir} already finished its {total} steps; "
                        f"pass a larger {more} to extend it")
    try:
        used = float(ckpt["progress"].get("elapsed", 0.0))
    except (AttributeError, TypeError, ValueError):
        used = 0.0
    if config.time_limit and used >= config.time_limit:      # it would stop after one step
        flag, unit = time_flag
        if unit == 1.0:
            raise UserError(f"--resume: the run in {out_dir} has already trained {used:.0f} s, its {flag} of "
                            f"{config.time_limit:g} s (which counts every session); pass a larger {flag}, "
                            f"or {flag} 0 for none")
        raise UserError(f"--resume: the run in {out_dir} has already trained {used / unit:.2f} of its {flag} "
                        f"{config.time_limit / unit:g} (they count every session); pass a larger {flag}")


def _discard_diverged(out_dir, made: bool) -> bool:
    """A new run that diverged before it saved any weights (no checkpoint.npz, no best.npz) leaves
    only its settings and log: remove them, and the directory when the run made it, so the same
    command can run again (a directory holding only config.json refuses it, and --resume has no
    checkpoint to take). Returns whether it did."""
    if any(os.path.exists(os.path.join(out_dir, n)) for n in ("checkpoint.npz", "best.npz")):
        return False
    for name in os.listdir(out_dir):
        path = os.path.join(out_dir, name)
        if runs.run_owned(out_dir, name):                   # a file of the run's (no directory, no link)
            os.unlink(path)
    if made and not os.listdir(out_dir):
        os.rmdir(out_dir)
    return True


def fit(model, train_data, val_data, config: TrainConfig, out_dir, *, extra=None, ckpt=None, overwrite=False,
        progress=True, callbacks=(), log=print, time_flag=TIME_LIMIT):
    """Train ``model`` in ``out_dir`` (a new run, or the run ``ckpt`` came from) and return
    ``(trainer, result)``. The directory is checked before anything is written; ``time_flag``
    names the time limit in a refused resume (:func:`check_steps_left`)."""
    kind = model.config["kind"]
    check_memory(model, train_data.batch(0, 0), config.optimizer)
    trainer = Trainer(model, train_data, val_data, config, out_dir, extra=extra, progress=progress,
                      callbacks=callbacks)             # it can still refuse (a --freeze matching nothing); writes nothing
    replaced = ckpt is None and out_dir is not None and overwrite and runs.read_config(out_dir) is not None
    if ckpt is None and out_dir is not None:
        runs.prepare(out_dir, kind, resume=False, overwrite=overwrite)    # the one place --overwrite deletes
    if ckpt is not None:
        # before restore, which trims metrics.jsonl and logs the changed settings: a refused resume
        # leaves the run as it was
        check_steps_left(ckpt, trainer.total_steps, config, out_dir, time_flag)
        trainer.restore(ckpt)
        log(f"resuming {out_dir} at step {trainer.step} of {trainer.total_steps}")
    try:
        result = run_new_or_resumed(trainer, out_dir, new=ckpt is None, replaced=replaced)
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {trainer.step}; checkpoint saved in {out_dir}. Continue with the same "
              f"command and --resume (--out {out_dir})", file=sys.stderr)
        raise
    return trainer, result


def run_new_or_resumed(trainer, out_dir, new: bool, replaced: bool = False) -> dict:
    """``trainer.run()``; a ``new`` run that diverges before it saved any weights leaves nothing
    behind (:func:`_discard_diverged`) and says so (``replaced``: ``--overwrite`` deleted a run first)."""
    made = out_dir is not None and not os.path.exists(out_dir)
    try:
        return trainer.run()
    except TrainingDiverged as exc:
        if not new or out_dir is None or not _discard_diverged(out_dir, made):
            raise
        old = "; the run that was there before was deleted by --overwrite" if replaced else ""
        where = f"{out_dir} was removed" if made else f"what it wrote in {out_dir} was removed"
        raise TrainingDiverged(f"{exc}; the new run kept nothing, so {where}{old}", exc.step, exc.loss,
                               exc.grad_norm) from None
