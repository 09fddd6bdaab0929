"""Shared by the language-model commands: building the data and model, reading a run directory."""
from __future__ import annotations

import hashlib
import os

from ..errors import UserError


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_run(run_dir: str, which: str = "best"):
    """Return ``(model, vocab, tree)`` from a run directory's ``best.npz`` (or ``checkpoint.npz``)."""
    from .. import io
    from ..data.text import CharVocab
    from ..models import CharLM

    if not os.path.isdir(run_dir):
        raise UserError(f"run directory not found: {run_dir}")
    names = ["best.npz", "checkpoint.npz"] if which == "best" else ["checkpoint.npz", "best.npz"]
    for name in names:
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            tree = io.load(path)
            break
    else:
        raise UserError(f"{run_dir} is not an rnnkit run directory (no best.npz or checkpoint.npz in it)")
    cfg = tree.get("model_config", {})
    if cfg.get("kind") != "charlm":
        raise UserError(f"{run_dir} holds a {cfg.get('kind', 'unknown')!r} model, not a character language model")
    model = CharLM.from_config(cfg)
    model.load_state_dict(tree["model"])
    model.eval()
    return model, CharVocab.from_dict(tree["extra"]["vocab"]), tree
