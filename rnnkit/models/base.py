"""The model contract every task model fulfils, and the registry that rebuilds a model from its config.

A task model is a :class:`~rnnkit.nn.Module` with

* ``train_step(batch, state) -> (loss, state, count)``: forward, loss and backward (gradients
  accumulate into ``grads``); ``state`` is carried between batches by stateful training
  (``None`` for models that start every batch from zeros);
* ``evaluate(batch, state) -> (loss_sum, state, count[, sums])``: the summed loss without
  gradients; the optional ``sums`` dict holds counts to add up over the validation set
  (``{"correct": 37}``);
* ``metrics(mean_loss, sums=None) -> dict``: what a person reads (bits per character,
  accuracy), from the mean loss and the summed counts;
* ``config``: a JSON dict with ``kind`` and every constructor argument, and
  ``from_config(config)``: the same model again (weights apart).

:class:`~rnnkit.train.Trainer` is the only loop that trains them. ``register`` records a model
class under its ``kind`` so that :func:`model_from_config` (and ``rnnkit.load``) can rebuild any
run's model without knowing its type.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..nn import Module

MODELS: dict[str, type] = {}


def register(kind: str):
    """Class decorator: ``@register("tagger")`` makes ``kind`` rebuildable from a config."""
    def deco(cls):
        MODELS[kind] = cls
        cls.kind = kind
        return cls
    return deco


class TaskModel(Module):
    """Base of the task models: the defaults of the contract."""

    kind = "model"

    @classmethod
    def from_config(cls, config: dict, dtype=np.float32, seed=None):
        kw = {k: v for k, v in config.items() if k != "kind"}
        return cls(**kw, dtype=dtype, seed=seed)

    def metrics(self, mean_loss: float, sums: dict | None = None) -> dict:
        return {}

    def train_step(self, batch, state=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def unpack(self, batch, names: str):
        """``batch`` as the tuple of ``names`` ("x, y, lengths") it must hold; one line naming them
        otherwise (a call of ``train_step`` by hand with a part missing)."""
        want = names.count(",") + 1
        if not isinstance(batch, (tuple, list)) or len(batch) != want:
            got = f"{len(batch)} items" if isinstance(batch, (tuple, list)) else type(batch).__name__
            raise TypeError(f"{type(self).__name__}: expected a batch ({names}), got {got}")
        return batch

    def evaluate(self, batch, state=None):  # pragma: no cover - abstract
        raise NotImplementedError


def model_from_config(config: dict, dtype=np.float32):
    """The model a config describes (any registered kind), freshly initialised."""
    from .. import models  # noqa: F401  (importing the package registers every kind)

    kind = config.get("kind") if isinstance(config, dict) else None
    if kind not in MODELS:
        raise UserError(f"model config: expected a kind among {', '.join(sorted(MODELS))}, got {kind!r}")
    return MODELS[kind].from_config(config, dtype=dtype)
