"""Handwriting generation (Graves 2013, sec. 4) on kanjivg's characters or the user's strokes:
load, split by character, train a :class:`~rnnkit.models.handwriting.HandwritingModel` through
the Trainer, score the held-out characters' negative log-likelihood per point beside two
baselines, draw samples.

Protocol: the sequences (one per character for kanjivg; the user's sequences otherwise) are
split by a permutation drawn from the seed: ``test_fraction`` held out for the final score,
``valid_fraction`` for validation (early stopping, the best weights), the rest to train. The
baselines (:class:`~rnnkit.data.handwriting.GaussianBaseline`,
:class:`~rnnkit.data.handwriting.AR1Baseline`) are fitted on the same training part. Scores are
nats per point, offsets in the units the sequences are given in (kanjivg: sampling steps).
"""
from __future__ import annotations

import os

import numpy as np

from .. import runs
from ..data import handwriting as HW
from ..data.labelled import LabelledSequences
from ..errors import UserError
from ..io import atomic_write_text, json_text
from .common import file_digest, fit, resumed_config, saved_run, where_recorded

KIND = "handwriting"
DEFAULT_CHARACTERS = 2000


def load_data(data=None, characters=DEFAULT_CHARACTERS, step=HW.STEP, seed=0) -> tuple[list, list, dict]:
    """``(sequences, names, description)``: kanjivg's characters (``characters`` of them, drawn by
    ``seed``; None for all) when ``data`` is None, else the user's file; ``description`` identifies
    the data for a resumed run or a later evaluation."""
    if data is None:
        from importlib.metadata import PackageNotFoundError, version

        chars = HW.load_kanjivg(characters, seed=seed, step=step)
        try:
            v = version("kanjivg")
        except PackageNotFoundError:            # the SVGs are importable without the distribution's metadata
            v = "unknown"
        return ([c.offsets for c in chars], [f"U+{c.code.upper()}" for c in chars],   # the plot font has no CJK glyphs
                {"data": None, "source": f"kanjivg {v}", "characters": characters, "step": step})
    seqs = HW.read_strokes(data)
    return seqs, [f"#{i}" for i in range(len(seqs))], {"data": os.path.abspath(data), "source": file_digest(data, 16),
                                                         "characters": None, "step": None}


def split(n: int, test_fraction: float, valid_fraction: float, seed: int):
    """Seeded ``(train, valid, test)`` index arrays; each part keeps at least one sequence."""
    order = np.random.default_rng([seed, 13]).permutation(n)
    n_test, n_valid = int(round(test_fraction * n)), int(round(valid_fraction * n))
    if not valid_fraction:
        raise UserError("--valid-fraction: expected a share above 0 (the best weights are chosen on the "
                        "validation part), got 0")
    if n - n_test - n_valid < 1 or (test_fraction and n_test < 1) or n_valid < 1:
        raise UserError(f"split: {n} sequences give {n_test} test, {n_valid} validation and "
                        f"{n - n_test - n_valid} training ones; expected at least one validation and one training "
                        f"sequence (and a test one when --test-fraction > 0): give more sequences")
    return np.sort(order[n_test + n_valid:]), np.sort(order[n_test: n_test + n_valid]), np.sort(order[:n_test])


def nll(model, seqs, batch_size=256) -> float:
    """Mean negative log-likelihood per point (nats) of ``seqs`` under the model."""
    data = LabelledSequences(seqs, np.zeros(len(seqs), np.int64), batch_size, shuffle=False)
    total = count = 0
    for i in range(len(data)):
        loss, _, n = model.evaluate(data.batch(i, 0))
        total, count = total + loss, count + n
    return total / count


def baselines(train, test) -> dict:
    return {"single Gaussian": HW.nll_per_point(HW.GaussianBaseline().fit(train), test),
            "order-1 (AR(1), 3 regimes)": HW.nll_per_point(HW.AR1Baseline().fit(train), test)}


def train_handwriting(data=None, characters=DEFAULT_CHARACTERS, step=HW.STEP, test_fraction=0.1, valid_fraction=0.1,
                      *, hidden_size=128, num_layers=1, n_components=10, cell="lstm", dropout=0.0, batch_size=32,
                      config=None, out_dir, resume=False, changes=None, overwrite=False, progress=False,
                      log=print) -> dict:
    """Train on the training part, choose the weights on the validation part, score the test part
    beside the baselines; ``scores.json`` and ``samples.png`` in the run directory ``out_dir``."""
    from ..models.base import model_from_config
    from ..models.handwriting import HandwritingModel
    from ..train import TrainConfig

    config = config or TrainConfig(steps=1500, lr=3e-3, clip=5.0, stateful=False)
    ckpt = None
    if resume:
        ckpt = saved_run(out_dir, KIND)
        d = ckpt["extra"]["data"]
        data = data if data is not None and d["data"] is not None else d["data"]   # the same strokes, moved
        characters, step = d["characters"], d["step"]
        if data is not None and not os.path.exists(data):
            raise UserError(f"--resume: the run's strokes {data}{where_recorded(data)}: file not found; pass --data "
                            f"with the file it was trained on, where it is now")
        test_fraction, valid_fraction, batch_size = d["test_fraction"], d["valid_fraction"], d["batch_size"]
        config = resumed_config(ckpt, changes)
    seqs, names, desc = load_data(data, characters, step or HW.STEP, config.seed)
    if ckpt is not None and desc["source"] != ckpt["extra"]["data"]["source"]:
        raise UserError(f"--resume: {data or 'the data'} is not the data the run was trained on (digest "
                        f"{desc['source']}, the run's {ckpt['extra']['data']['source']}); resume with that file, or "
                        f"start a new run")
    tr, va, te = split(len(seqs), test_fraction, valid_fraction, config.seed)
    if ckpt is None:
        runs.prepare(out_dir, KIND, overwrite=overwrite, delete=False)     # fit deletes an old run, after every check
    train, valid, test = ([seqs[i] for i in part] for part in (tr, va, te))
    if ckpt is not None:
        model = model_from_config(ckpt["model_config"])
    else:
        median = int(np.median([len(s) for s in train]))
        model = HandwritingModel(hidden_size, num_layers, n_components, cell, dropout, sample_length=median,
                                 seed=config.seed)
        log(f"training HandwritingModel ({model.num_parameters():,} parameters) on {len(train)} sequences "
            f"({sum(map(len, train)):,} points; {len(valid)} for validation, {len(test)} held out)")
    train_data = LabelledSequences(train, np.zeros(len(train), np.int64), batch_size, seed=config.seed)
    val_data = LabelledSequences(valid, np.zeros(len(valid), np.int64), 256, shuffle=False)
    extra = {"data": {**desc, "test_fraction": test_fraction, "valid_fraction": valid_fraction,
                      "batch_size": batch_size}}
    _, result = fit(model, train_data, val_data, config, out_dir, extra=extra, ckpt=ckpt, overwrite=overwrite,
                    progress=progress, log=log)
    scores = {"stop_reason": result["stop_reason"], "steps": result["step"], "n_train": len(train),
              "n_valid": len(valid), "n_test": len(test), "train_points": int(sum(map(len, train))),
              "best_val_nll": result["best_val_loss"]}
    if test:
        scores.update(evaluate_run(out_dir, train, test, log))
    atomic_write_text(os.path.join(out_dir, "scores.json"), json_text(scores, indent=2))
    draw_samples(out_dir, os.path.join(out_dir, "samples.png"), n=16, seed=config.seed,
                 real=[(HW.to_strokes(test[i], desc["step"] or 1.0), names[te[i]]) for i in range(min(8, len(test)))]
                 if desc["step"] else None)
    return scores


def evaluate_run(run_dir, train, test, log=print) -> dict:
    """Held-out NLL per point of the run's best weights beside the baselines fitted on ``train``."""
    model = runs.load(run_dir, "best", kinds=(KIND,))
    out = {"test_points": int(sum(map(len, test))),
           "nll_per_point": {"rnnkit": nll(model, test), **baselines(train, test)}}
    for k, v in out["nll_per_point"].items():
        log(f"held-out NLL per point {k:>28}: {v:.4f} nats ({len(test)} sequences, {out['test_points']:,} points)")
    return out


def _recorded_data(cfg, run_dir) -> tuple[dict, int]:
    """``(data settings, seed)`` as a handwriting run's config.json records them; one line naming the
    file when they are not there (an edited or foreign config)."""
    try:
        d, seed = cfg["data"], int(cfg["train"]["seed"])
        for key in ("data", "characters", "step", "source", "test_fraction", "valid_fraction"):
            d[key]
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{os.path.join(run_dir, 'config.json')}: expected the data settings a handwriting run "
                        f"records (\"data\": data, characters, step, source, test_fraction, valid_fraction; "
                        f"\"train\": seed), got other content") from None
    return d, seed


def eval_handwriting(run_dir, log=print, data=None) -> dict:
    """``rnnkit handwriting eval``: rebuild the run's split from its recorded settings and score
    the held-out part again (the baselines too). ``data``: the run's stroke file where it is now
    (moved, or recorded by a relative path by an older run); it must be the same content."""
    d, seed = _recorded_data(runs.require_kind(run_dir, (KIND,)), run_dir)
    path = data if data is not None else d["data"]
    if path is not None and data is None and not os.path.exists(path):
        raise UserError(f"{run_dir}: the run's strokes {path}{where_recorded(path)}: file not found; pass --data FILE")
    if data is not None and d["data"] is None:
        raise UserError(f"--data: the run was trained on {d['source']}, not a file of strokes; drop --data")
    seqs, _, desc = load_data(path, d["characters"], d["step"] or HW.STEP, seed)
    if desc["source"] != d["source"]:
        raise UserError(f"{run_dir}: {path} is not the data the run was trained on (its content changed: digest "
                        f"{desc['source']}, the run's {d['source']}); pass --data with the file it was trained on")
    tr, _, te = split(len(seqs), d["test_fraction"], d["valid_fraction"], seed)
    if not len(te):
        raise UserError(f"{run_dir}: the run held out no test sequences (--test-fraction 0)")
    return evaluate_run(run_dir, [seqs[i] for i in tr], [seqs[i] for i in te], log)


def draw_samples(run_dir, out_png, n=16, length=None, bias=0.0, seed=0, real=None) -> str:
    """``n`` samples of the run's best model as a PNG grid (after ``real`` (strokes, name) pairs, the
    held-out characters, to compare with, when given; the first row). Offsets are drawn at the run's sampling step (1 for user data)."""
    from ..plots import plot_strokes

    model = runs.load(run_dir, "best", kinds=(KIND,))
    step = _recorded_data(runs.read_config(run_dir), run_dir)[0]["step"]
    out = model.sample(n, length, bias, rng=seed)                       # (length, n, 3)
    drawings = [d for d, _ in real or []] + [HW.to_strokes(out[:, i], step or 1.0) for i in range(n)]
    titles = [t for _, t in real or []] + [f"sample {i + 1}" + (f", b={bias:g}" if bias else "") for i in range(n)]
    return plot_strokes(drawings, titles, out_png, box=HW.BOX if step else None)


def export_radicals(prefix, top=10, test_fraction=0.2, seed=0, step=HW.STEP, log=print) -> tuple[str, str]:
    """The radical-recognition task (:func:`~rnnkit.data.handwriting.radical_dataset`) as the
    ``.npz`` files ``rnnkit classify train`` reads: ``PREFIX-train.npz`` and ``PREFIX-test.npz``,
    a seeded split stratified by radical (every character is in one file only)."""
    from ..data.labelled import split as split_indices

    seqs, labels = HW.radical_dataset(top, step)
    y = np.array(labels)
    train, test = split_indices(len(seqs), test_fraction, seed=seed, y=y)
    paths = (f"{prefix}-train.npz", f"{prefix}-test.npz")
    os.makedirs(os.path.dirname(os.path.abspath(paths[0])), exist_ok=True)     # PREFIX may name a new directory
    for path, part in zip(paths, (train, test)):
        HW.save_npz(path, [seqs[i] for i in part], y[part])
    classes, counts = np.unique(y, return_counts=True)
    log(f"wrote {paths[0]} ({len(train)} characters) and {paths[1]} ({len(test)}): {len(classes)} radicals "
        f"({', '.join(f'{c} {n}' for c, n in zip(classes, counts))}); train with rnnkit classify train --train "
        f"{paths[0]} --test {paths[1]}")
    return paths
