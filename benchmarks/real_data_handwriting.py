"""The "Handwriting (kanjivg)" part of ``benchmarks/real_data.py``: pen-movement generation after
Graves (2013) through ``rnnkit handwriting train``, scored as held-out negative log-likelihood per
point beside two baselines fitted on the same training characters, with sampled characters saved
as PNGs under ``benchmarks/results/``.

    python benchmarks/real_data.py --only handwriting     # this part alone

Kept here (imported by real_data.py) so that the rows of other data sets and this one can change
independently.
"""
from __future__ import annotations

import json
import os
import shutil
import time

from rnnkit.cli import main as rnnkit_main

# 2,000 of kanjivg's 6,703 plain characters (drawn by the seed), 80/10/10 by character; a one-layer
# LSTM 128 with a 10-component mixture; 600 steps of 32 characters (about 12 passes over the training part)
HANDWRITING = ["--characters", "2000", "--hidden-size", "128", "--components", "10", "--lr", "3e-3", "--clip", "5",
               "--eval-every", "100", "--steps", "600"]
PUBLISHED = ("none for kanjivg; Graves (2013) scores IAM-OnDB pen traces in nats per sequence (another data set, "
             "sampling and unit), not comparable")


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:                      # a dotted name whose parent is missing
        return False


def run_handwriting(tmp, results_dir, quick=False, log=print) -> dict:
    """Train through the command line, read its scores, draw samples (bias 0 and 1) into ``results_dir``."""
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
            "seconds": wall, "pngs": [os.path.basename(p) for p in pngs]}


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
    return md
