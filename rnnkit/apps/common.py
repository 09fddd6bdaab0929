"""What every application shares: starting or resuming a run directory and training through the
one :class:`~rnnkit.train.Trainer`."""
from __future__ import annotations

import os
import sys

from .. import io, runs
from ..errors import UserError
from ..train import Trainer, TrainConfig


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
    found = ckpt.get("kind") or ckpt["model_config"].get("kind")
    if found != kind:
        raise UserError(f"{path}: expected the checkpoint of {runs._a(kind)} run, got one of {runs._a(found)} run")
    return ckpt


def resumed_config(ckpt: dict, steps=None, epochs=None) -> TrainConfig:
    """The saved training settings, with a new budget when one is given (to extend a finished run)."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    if steps is not None:
        cfg.steps, cfg.epochs = steps, None
    elif epochs is not None:
        cfg.epochs = epochs
    return cfg


def fit(model, train_data, val_data, config: TrainConfig, out_dir, *, extra=None, ckpt=None, overwrite=False,
        progress=True, callbacks=(), log=print):
    """Train ``model`` in ``out_dir`` (a new run, or the run ``ckpt`` came from) and return
    ``(trainer, result)``. The directory is checked before anything is written."""
    kind = model.config["kind"]
    if ckpt is None:
        runs.prepare(out_dir, kind, resume=False, overwrite=overwrite)
    trainer = Trainer(model, train_data, val_data, config, out_dir, extra=extra, progress=progress,
                      callbacks=callbacks)
    if ckpt is not None:
        trainer.restore(ckpt)
        if trainer.step >= trainer.total_steps:
            raise UserError(f"--resume: the run in {out_dir} already finished its {trainer.total_steps} steps; "
                            f"pass a larger --steps to extend it")
        log(f"resuming {out_dir} at step {trainer.step} of {trainer.total_steps}")
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {trainer.step}; checkpoint saved in {out_dir}. Continue with the same "
              f"command and --resume", file=sys.stderr)
        raise
    return trainer, result
