"""The "Handwriting (kanjivg)" part of ``benchmarks/real_data.py``: pen-movement generation after
Graves (2013) through ``rnnkit handwriting train``, scored as held-out negative log-likelihood per
point beside two baselines fitted on the same training characters, with sampled characters saved
as PNGs under ``benchmarks/results/``.

    python benchmarks/real_data.py --only handwriting     # this part alone

Kept here (imported by real_data.py) so that the rows of other data sets and this one can change
independently. ``run_handwriting(quick, tmp, log)`` and ``handwriting_markdown(result)`` have the
signatures of a real_data.py section (``SECTIONS`` on the branches that introduce it).
"""
from __future__ import annotations

import json
import os
import shutil
import time

from rnnkit.cli import main as rnnkit_main

# 2,000 of kanjivg's 6,703 plain characters (drawn by the seed), 80/10/10 by character; a one-layer
# LSTM 128 with a 10-component mixture; 1,000 steps of 32 characters (20 passes over the training part), cosine
# lr (chosen on the 200 validation characters: 600 cosine steps reached -0.63 nats a point there, 1,500 steps at
# a constant lr -1.56 at step 1,000; the held-out 200 were not used to choose)
HANDWRITING = ["--characters", "2000", "--hidden-size", "128", "--components", "10", "--lr", "3e-3", "--clip", "5",
               "--schedule", "cosine", "--eval-every", "100", "--steps", "1000"]
# recognition: the 10 most frequent general radicals, 80/20 by character (stratified), through rnnkit classify train
RADICALS = ["--bidirectional", "--cell", "lstm", "--hidden-size", "64", "--pooling", "attention", "--schedule",
            "cosine", "--steps", "1200"]
# How: 1,364 of the 1,704 training characters to train, the other 340 (seeded, stratified) to score; the test file
# was not used. Held-out accuracy there:
RADICALS_TUNING = ("bidirectional GRU 64, mean pooling, 600 cosine steps 94.1%; bidirectional LSTM 64, attention "
                   "pooling, 1,200 cosine steps 99.4% (chosen); logistic regression on the 16 x 16 image 96.5%")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
PUBLISHED = ("none for kanjivg; Graves (2013) scores IAM-OnDB pen traces in nats per sequence (another data set, "
             "sampling and unit), not comparable")


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:                      # a dotted name whose parent is missing
        return False


def run_handwriting(quick, tmp, log=print, results_dir=RESULTS) -> dict:
    """Train through the command line, read its scores, draw samples (bias 0 and 1) into ``results_dir``.
    The first three arguments are what every section of real_data.py takes."""
    argv = list(HANDWRITING)
    if quick:
        argv[argv.index("--characters") + 1], argv[argv.index("--steps") + 1] = "60", "10"
    row = {"options": " ".join(argv), "published": PUBLISHED}
    missing = [m for m in ("kanji", "svg.path") if not _importable(m)]
    if missing:
        return {**row, "skipped": f"needs {' and '.join(missing)}: pip install 'rnnkit[handwriting]'"}
    out = os.path.join(tmp, "handwriting")
    t0 = time.time()
    assert rnnkit_main(["handwriting", "train", "--out", out, "--no-progress"] + argv) == 0
    wall = time.time() - t0
    with open(os.path.join(out, "scores.json")) as f:
        s = json.load(f)
    os.makedirs(results_dir, exist_ok=True)
    name = "handwriting_samples_quick" if quick else "handwriting_samples"
    pngs = [os.path.join(results_dir, f"{name}.png"), os.path.join(results_dir, f"{name}_bias1.png")]
    shutil.copyfile(os.path.join(out, "samples.png"), pngs[0])
    assert rnnkit_main(["handwriting", "sample", out, "--num", "16", "--bias", "1", "--output", pngs[1]]) == 0
    return {**row, **{k: s[k] for k in ("n_train", "n_valid", "n_test", "train_points", "test_points", "steps",
                                         "best_val_nll", "nll_per_point")},
            "seconds": wall, "pngs": [os.path.basename(p) for p in pngs], "radicals": run_radicals(tmp, quick)}


def image_baseline(train, test, size=16) -> float:
    """Test accuracy of scikit-learn's logistic regression (C = 1, not tuned) on each character
    rendered as a ``size`` x ``size`` image (1 where a sampled point falls): what a model that sees
    the drawing but not its order gets."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from rnnkit.data.handwriting import BOX, to_strokes

    def images(xs):
        out = np.zeros((len(xs), size * size))
        for i, x in enumerate(xs):
            pts = np.concatenate(to_strokes(x))
            cells = np.clip((pts / BOX * size).astype(int), 0, size - 1)
            out[i, cells[:, 1] * size + cells[:, 0]] = 1.0
        return out
    model = LogisticRegression(C=1.0, max_iter=5000).fit(images(train[0]), train[1])
    return float(model.score(images(test[0]), test[1]))


def run_radicals(tmp, quick=False) -> dict:
    """Radical recognition: `rnnkit handwriting radicals` writes the files, `rnnkit classify train` learns them."""
    from rnnkit.data.readers import read_sequences

    argv = list(RADICALS)
    if quick:
        argv[argv.index("--steps") + 1] = "10"
    prefix, out = os.path.join(tmp, "radicals"), os.path.join(tmp, "radicals-run")
    t0 = time.time()
    assert rnnkit_main(["handwriting", "radicals", prefix, "--top", "10"]) == 0
    assert rnnkit_main(["classify", "train", "--train", f"{prefix}-train.npz", "--test", f"{prefix}-test.npz",
                        "--out", out, "--no-progress"] + argv) == 0
    wall = time.time() - t0
    with open(os.path.join(out, "scores.json")) as f:
        s = json.load(f)
    parts = [read_sequences(f"{prefix}-{p}.npz") for p in ("train", "test")]
    return {"options": " ".join(argv), "n_train": s["n_train"], "n_valid": s["n_valid"], "n_test": s["n_test"],
            "classes": s["classes"], "accuracy": s["accuracy"], "majority": s["majority_baseline"],
            "image_logistic": image_baseline(*parts), "seconds": wall}


def handwriting_markdown(r) -> list:
    md = ["", "## Handwriting (kanjivg): pen movement, Graves (2013) section 4", ""]
    if "skipped" in r:
        return md + [f"skipped: {r['skipped']}"]
    md += [f"`rnnkit handwriting train {r['options']}`: {r['n_train']} characters to train, {r['n_valid']} to "
           f"validate (best weights), {r['n_test']} held out ({r['test_points']:,} points), split by character with "
           f"seed 0; {r['steps']} steps, {r['seconds']:.0f} s. Each stroke is sampled every 6 units of arc length "
           "(the box is 109), offsets in those units; pen-up marks each stroke's last point. Negative "
           "log-likelihood per point in nats (lower is better), the same mixture-density formula for every row.", "",
           "| model | held-out NLL per point (nats) |", "|---|---|"]
    names = {"rnnkit": "rnnkit LSTM 128 + 10-component mixture density output",
             "single Gaussian": "one bivariate Gaussian + Bernoulli pen, fitted to all training offsets",
             "order-1 (AR(1), 3 regimes)": "order-1: linear-Gaussian AR(1) + Bernoulli pen, per regime of the "
                                           "previous point (pen up / after a jump / inside a stroke)"}
    md += [f"| {names.get(k, k)} | {v:.4f} |" for k, v in r["nll_per_point"].items()]
    md += ["", f"Published: {r['published']}.", "",
           f"Samples: `{r['pngs'][0]}` (8 held-out characters, then 16 samples, bias 0) and `{r['pngs'][1]}` "
           "(bias 1: sigma x e^-1, sharper mixture weights)."]
    q = r["radicals"]
    md += ["", "### Recognition: which radical, from the pen's movement", "",
           f"kanjivg marks each character's dictionary radical (`kvg:radical=\"general\"`); the characters whose "
           f"radical is one of the 10 most frequent ({' '.join(q['classes'])}) are split 80/20 by character "
           "(seeded, stratified) by `rnnkit handwriting radicals` and learnt by `rnnkit classify train` "
           f"(`{q['options']}`), {q['seconds']:.0f} s. Stroke count is not used as a task: it is the number of "
           "pen-ups in the input. The options were chosen on a held-out fifth of the training characters: "
           f"{RADICALS_TUNING}.", "",
           "| model | train / test | accuracy |", "|---|---|---|",
           f"| rnnkit bidirectional LSTM, attention pooling, on (dx, dy, pen) | {q['n_train'] + q['n_valid']} / {q['n_test']} | "
           f"{100 * q['accuracy']:.1f}% |",
           f"| logistic regression on the 16 x 16 rendered image (here) | same | {100 * q['image_logistic']:.1f}% |",
           f"| majority class | same | {100 * q['majority']:.1f}% |", "",
           "Published: none known for this task."]
    return md
