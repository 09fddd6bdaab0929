"""Sequence classification on the user's files or a built-in dataset: read, standardise on the
training set, train a :class:`~rnnkit.models.SequenceClassifier` through the Trainer, score the
test set (accuracy, confusion matrix), predict new files.

Data: a list of (L_i, D) float sequences and a label each, from ``.npz`` or UEA ``.ts`` files
(:mod:`rnnkit.data.readers`) or from a built-in set (``japanese-vowels``, ``basic-motions``,
``digits``: shipped in installed packages; ``dna``: generated), all through the same
:class:`~rnnkit.data.labelled.LabelledSequences` adapter.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from .. import runs
from ..data import labelled as LS
from ..errors import UserError
from ..io import atomic_write_text, json_text, write_output
from .common import check_same_data, fit, resumed_config, saved_run, sequences_digest

KIND = "classifier"
BUILTIN = ("japanese-vowels", "basic-motions", "digits", "dna", "spoken-digits", "splice-junctions")


def builtin(name: str, length=100, seed=0):
    """``(train, test)`` as ``(xs, labels)`` pairs for a built-in dataset."""
    if name == "dna":
        from ..data.tasks import dna_motifs

        def part(n, rng):
            d = dna_motifs(n, length, rng=rng)
            return [d.x[:, j] for j in range(n)], np.array(["motif" if v else "none" for v in d.y])
        return part(2000, [seed, 1]), part(500, [seed, 2])
    from ..data import datasets as D

    if name not in D.CLASSIFICATION_DATASETS:
        raise UserError(f"--dataset: expected one of {', '.join(BUILTIN)}, got {name!r}")
    return D.labelled_sequences(name, "train"), D.labelled_sequences(name, "test")


def read_labelled(path):
    """``(xs, labels)`` of a labelled ``.npz`` / ``.ts`` file, the labels as read (checked against
    the training classes later, by :func:`train_classifier`)."""
    from ..data.readers import read_sequences

    xs, y = read_sequences(path)
    if y is None:
        raise UserError(f"{path}: expected a label for every sequence ('y' in .npz, class labels in .ts), got none")
    check_not_regression(y, path)
    return xs, y


def check_not_regression(y, path) -> None:
    """Only .ts gives float labels: regression targets (``@targetLabel true``), which name no class,
    to train on or to score predictions against."""
    if y is not None and y.dtype.kind == "f":
        raise UserError(f"{path}: expected class labels (a '@classLabel true ...' header), got regression targets "
                        f"('@targetLabel true'); classification needs classes")


def train_classifier(train, test=None, valid=None, valid_fraction=0.1, *, cell="lstm", hidden_size=64, num_layers=1,
                     bidirectional=False, pooling="last", dropout=0.0, head_dropout=0.0, batch_size=32, config=None,
                     out_dir=None,
                     resume=False, changes=None, overwrite=False, progress=False, log=print, names=None,
                     engine="numpy", nproc=1, rnn_options=None) -> dict:
    """Train on ``train`` = ``(xs, labels)`` (labels raw: names or numbers), validate on ``valid``
    or a seeded stratified ``valid_fraction`` of the training set, and score ``test``.
    Returns the scores; with ``out_dir`` writes a run directory with ``scores.json`` and ``confusion.png``.
    With ``resume`` the run's own settings are used, ``changes`` (TrainConfig fields) applied.
    ``engine="torch"`` runs the forward and backward passes on PyTorch, data-parallel over
    ``nproc`` processes (:mod:`rnnkit.distributed`); the run directory is the same.
    ``head_dropout`` drops the pooled features before the head in training (see the classifier).
    ``rnn_options`` are the recurrent layer's options (``recurrent_dropout``, ``input_dropout``,
    ``zoneout``, ``weight_dropout``, ``forget_bias``, ``recurrent_init``: see
    :class:`~rnnkit.models.classifier.SequenceClassifier`), the ones set (the command passes those
    that differ from the defaults, so a default run's config is what it was before they existed),
    and the classifier's input augmentation (``input_jitter``, ``input_scale``), which the command
    passes with them."""
    options = dict(rnn_options or {})
    kw = dict(cell=cell, hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional, pooling=pooling,
              dropout=dropout, head_dropout=head_dropout, batch_size=batch_size, config=config, out_dir=out_dir,
              resume=resume, changes=changes, overwrite=overwrite, progress=progress, names=names, rnn_options=options)
    if engine == "numpy":
        if nproc != 1:
            raise UserError("--nproc: more than one process needs --engine torch")
        return _train(train, test, valid, valid_fraction, **kw, log=log)
    if engine != "torch":
        raise UserError(f"--engine: expected numpy or torch, got {engine!r}")
    if options:
        raise UserError(f"--engine torch: the torch engine's model has no "
                        f"{', '.join('--' + k.replace('_', '-') for k in options)}; train with --engine numpy")
    from ..distributed import launch

    if batch_size < nproc:
        raise UserError(f"--batch-size {batch_size}: expected at least one sequence per process (--nproc {nproc})")
    if resume:
        saved_run(out_dir, KIND)                                # one line here, before any process starts
    else:
        check_classes(train[1], (names or {}).get("train"))
        runs.prepare(out_dir, KIND, overwrite=overwrite, delete=False)     # process 0's fit deletes an old run
    launch(_process, (train, test, valid, valid_fraction, kw), nproc)
    with open(os.path.join(out_dir, "scores.json"), encoding="utf-8") as f:
        return json.load(f)


def _process(rank, world, train, test, valid, valid_fraction, kw):
    """One process of a torch-engine run (process 0 writes the run directory)."""
    from ..distributed import DistributedClassifier

    quiet = dict(kw, progress=False) if rank else kw
    return _train(train, test, valid, valid_fraction, **quiet, log=print if rank == 0 else (lambda *a: None),
                  model_cls=DistributedClassifier, writer=rank == 0)


def _train(train, test, valid, valid_fraction, *, cell, hidden_size, num_layers, bidirectional, pooling, dropout,
           head_dropout, batch_size, config, out_dir, resume, changes, overwrite, progress, log, names,
           rnn_options=None, model_cls=None, writer=True):
    from ..io import load
    from ..models.base import model_from_config
    from ..models.classifier import SequenceClassifier
    from ..plots import plot_confusion

    names = names or {}
    xs, y_raw = train
    length = len(xs[0]) if pooling == "positions" else None
    for part, key in ((train, "train"), (valid, "valid"), (test, "test")):   # all checked before anything is written
        if part is not None:
            LS.check_features(part[0], xs[0].shape[1], names.get(key, f"{key} set"))
            if length is not None:
                _check_one_length(part[0], length, names.get(key, f"{key} set"))
    ckpt = None
    digests = {key: sequences_digest(*part) for key, part in (("train", train), ("valid", valid)) if part is not None}
    if resume:
        ckpt = saved_run(out_dir, KIND) if writer else load(os.path.join(out_dir, "checkpoint.npz"))
        for key, found in digests.items():      # the same sequences and labels, or the run's state means nothing
            check_same_data(ckpt["extra"]["data"], key, found, names.get(key, f"the {key} set"), out_dir)
        config = resumed_config(ckpt, changes)
    else:
        check_classes(y_raw, names.get("train"))
    y, classes = LS.encode_labels(y_raw, ckpt["model_config"]["classes"] if ckpt else None, names.get("train"))
    if valid is None:
        tr, va = LS.split(len(xs), valid_fraction, seed=config.seed, y=y)
        valid_xs, valid_y = [xs[i] for i in va], y[va]
        xs, y = [xs[i] for i in tr], y[tr]
    else:
        valid_xs, valid_y = valid[0], LS.encode_labels(valid[1], classes, names.get("valid"))[0]
    if not resume and writer:
        runs.prepare(out_dir, KIND, overwrite=overwrite, delete=False)     # fit deletes an old run, after every check
    if ckpt is not None:
        model = model_cls.from_config(ckpt["model_config"]) if model_cls else model_from_config(ckpt["model_config"])
        scaler = LS.Standardizer.from_dict(model.config["scaler"])
    else:
        scaler = LS.Standardizer.fit(xs)
        model = (model_cls or SequenceClassifier)(
            xs[0].shape[1], hidden_size, len(classes), cell=cell, num_layers=num_layers, bidirectional=bidirectional,
            pooling=pooling, dropout=dropout, classes=classes, scaler=scaler.to_dict(), length=length,
            head_dropout=head_dropout, seed=config.seed, **(rnn_options or {}))
    train_data = LS.LabelledSequences(scaler.transform(xs), y, batch_size, seed=config.seed)
    val_data = LS.LabelledSequences(scaler.transform(valid_xs), valid_y, 256, shuffle=False)
    extra = {"data": {**{k: str(v) for k, v in names.items()}, **{f"{k}_digest": v for k, v in digests.items()},
                      "valid_fraction": valid_fraction, "batch_size": batch_size}}
    if ckpt is None:
        log(f"training {SequenceClassifier.__name__} ({model.num_parameters():,} parameters) on {len(xs)} sequences "
            f"({len(valid_xs)} for validation), {len(classes)} classes, {xs[0].shape[1]} features")
    trainer, result = fit(model, train_data, val_data, config, out_dir if writer else None, extra=extra, ckpt=ckpt,
                          overwrite=overwrite, progress=progress, log=log)
    if not writer:
        return None
    model = runs.load(out_dir, "best")
    scores = {"stop_reason": result["stop_reason"], "steps": result["step"], "n_train": len(xs),
              "n_valid": len(valid_xs), "classes": classes, "best_val_loss": result["best_val_loss"]}
    if test is not None:
        test_xs, test_y = test
        scores.update(score(model, test_xs, test_y, names.get("test")))
        log(f"test accuracy {scores['accuracy']:.4f} on {scores['n_test']} sequences "
            f"(majority class {scores['majority_baseline']:.4f})")
        plot_confusion(np.array(scores["confusion"]), classes, f"accuracy {scores['accuracy']:.3f}",
                       os.path.join(out_dir, "confusion.png"))
    atomic_write_text(os.path.join(out_dir, "scores.json"), json_text(scores, indent=2))
    return scores


def check_classes(y_raw, where=None) -> None:
    """A classifier tells classes apart: the training labels must hold at least two."""
    distinct = np.unique(np.asarray(y_raw))
    if len(distinct) < 2:
        shown = f": {str(distinct[0])!r}" if len(distinct) else ""
        raise UserError(f"{where or 'training labels'}: expected at least 2 classes, got {len(distinct)}{shown} "
                        f"(every training sequence has this label)")


def _check_one_length(xs, length, where):
    """``--pooling positions`` reads every step of windows of one length: refuse any other length."""
    other = sorted({len(x) for x in xs} - {length})
    if other:
        more = " ..." if len(other) > 5 else ""
        raise UserError(f"{where}: --pooling positions expected every sequence to have {length} steps (the first "
                        f"training sequence's length), got {', '.join(map(str, other[:5]))}{more}")


def score(model, xs, labels, path=None, pred=None) -> dict:
    """Accuracy, majority baseline and confusion matrix of ``model`` on raw labelled sequences
    (``pred``: its predicted class names, when made already). Labels never seen in training count
    as wrong, with one warning."""
    classes = model.config["classes"]
    labels = [str(v) for v in np.asarray(labels).tolist()]
    unseen = sorted({v for v in labels if v not in classes})
    if unseen:
        print(f"rnnkit classify: warning: {path or 'test set'}: labels never seen in training count as wrong: "
              f"{', '.join(unseen[:10])}", file=sys.stderr)
    pred = model.predict_sequences(xs) if pred is None else pred
    k = len(classes)
    conf = np.zeros((k, k), np.int64)
    index = {c: i for i, c in enumerate(classes)}
    for t, p in zip(labels, pred):
        if t in index:
            conf[index[t], index[p]] += 1
    acc = float(np.mean([t == p for t, p in zip(labels, pred)]))
    _, counts = np.unique(labels, return_counts=True)
    return {"accuracy": acc, "n_test": len(labels), "majority_baseline": float(counts.max() / len(labels)),
            "confusion": conf.tolist(), "unseen_labels": unseen}


def ensemble_probabilities(models, xs) -> np.ndarray:
    r"""(N, C) class probabilities by soft voting: the mean of the models' probabilities,
    :math:`\frac{1}{K} \sum_k p_k(c \mid x)` (an ensemble of independently trained networks,
    Hansen & Salamon 1990; averaging probabilities rather than votes, as in Lakshminarayanan et al.
    2017). The models must share the class names and the input size."""
    first = models[0]
    for m in models[1:]:
        for key in ("classes", "input_size"):
            if m.config[key] != first.config[key]:
                raise UserError(f"ensemble: expected runs with the same {key.replace('_', ' ')} "
                                f"({first.config[key]}), got one with {m.config[key]}")
    return np.mean([m.probabilities(xs) for m in models], axis=0)


def probabilities_csv(model, p, labels) -> str:
    """CSV with a header ``label,<class>,...``: each sequence's predicted label, then its
    probability of every class (6 significant digits)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["label", *model.class_names(range(p.shape[1]))])
    w.writerows([lab, *(f"{v:.6g}" for v in row)] for lab, row in zip(labels, p))
    return buf.getvalue()


def predict_file(run_dirs, path, output=None, probabilities=False) -> dict:
    """Predict every sequence of ``path`` with the run in ``run_dirs`` or, given several, with
    their ensemble (:func:`ensemble_probabilities`); write one label a line to ``output`` (or
    stdout), or with ``probabilities`` a CSV of the label and every class's probability
    (:func:`probabilities_csv`). With labels in the file, the accuracy too."""
    from ..data.readers import read_sequences

    run_dirs = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    models = [runs.load(r, kinds=(KIND,)) for r in run_dirs]
    xs, y = read_sequences(path)
    check_not_regression(y, path)
    LS.check_features(xs, models[0].config["input_size"], path)
    p = ensemble_probabilities(models, xs)
    pred = models[0].class_names(p.argmax(-1))
    text = probabilities_csv(models[0], p, pred) if probabilities else "".join(f"{q}\n" for q in pred)
    write_output(output, text)
    return score(models[0], xs, y, path, pred) if y is not None else {"n": len(xs)}
