"""Real sequences, one command: every forecasting set beside its naive and linear baselines, every
classification set on its own split, the DNA task uni- vs bidirectional, genomes and speech
through the commands a user runs on their own files, Turkish part-of-speech tagging through
`rnnkit tag train`, the classic time series beside statistical models (``real_timeseries.py``),
Jane Austen's novels beside Kneser-Ney n-grams (``real_text.py``) and handwriting as pen movement
(``real_data_handwriting.py``), beside baselines computed here and published figures.

    python benchmarks/real_data.py            # about an hour on 2 cores (tagging about 20 min and text 5 on a busy machine)
    python benchmarks/real_data.py --quick    # a smoke run with tiny budgets
    python benchmarks/real_data.py --only timeseries,text    # some sections; the rest keep their results
    python benchmarks/real_data.py --only classify --sets splice-junctions   # some rows of that section
    python benchmarks/real_data.py --markdown-only            # the Markdown again from real_data.json
    RNNKIT_NUM_THREADS=1 python benchmarks/real_data.py     # on a machine that other work shares

Prints Markdown tables and writes ``benchmarks/results/real_data.json`` and ``real_data.md``.
Needs the datasets extra (``pip install -e '.[datasets]'``; the dev extra includes it). The splice
junctions and the yeast chromosome are R data files in Debian packages, not on PyPI: unpack them
(``apt-get download r-cran-mlbench r-bioc-biostrings r-cran-janeaustenr``, ``dpkg-deb -x`` each into one
directory)
and set ``RNNKIT_DATA`` to that directory, or their rows are skipped with the message saying so.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time

import numpy as np

from rnnkit.apps.classify import builtin, train_classifier
from rnnkit.apps.forecast import run_forecast
from rnnkit.cli import main as rnnkit_main
from rnnkit.errors import UserError
from rnnkit.train import TrainConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # the sections beside this file, however it is loaded
from real_text import run_text, text_markdown  # noqa: E402  (benchmarks/ is the script's directory)
from real_timeseries import run_timeseries, timeseries_markdown  # noqa: E402
from real_data_handwriting import handwriting_markdown, run_handwriting  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

FORECASTS = [  # (dataset, horizon, window, strategy); one step ahead both strategies are the same model
    ("sunspots", 1, 24, "direct"), ("co2", 1, 24, "direct"), ("airline", 1, 24, "direct"),
    ("mackey-glass", 1, 24, "direct"),
    ("sunspots", 5, 24, "recursive"), ("sunspots", 5, 24, "direct"),
    ("airline", 12, 24, "recursive"), ("airline", 12, 24, "direct"),
]
CLASSIFY = ["japanese-vowels", "digits", "basic-motions"]
# Published figures, only where the source is known; anything else is left blank rather than guessed.
PUBLISHED = {
    "japanese-vowels": "94.1% (Kudo, Toyama & Shimbo 1999, the dataset's authors; not a recurrent model)",
}


def classify(name, steps, out, log, **kw):
    """The built-in set through the same path as a user's files (``rnnkit classify train``)."""
    train, test = builtin(name)
    config = TrainConfig(steps=steps, lr=3e-3, clip=5.0, stateful=False, eval_every=100)
    r = train_classifier(train, test, config=config, out_dir=out, log=log, names={"train": name}, **kw)
    return {"dataset": name, **r}


def run_dna(steps, tmp, log, T=100):
    """The generated DNA task: motif classification (``classify train --dataset dna``) and motif-start
    tagging (``tag train``, its default task), unidirectional and bidirectional GRUs side by side."""
    rows = []
    for bi in (False, True):
        name = f"{'bi' if bi else 'uni'}directional gru"
        train, test = builtin("dna", T)
        config = TrainConfig(steps=steps, lr=3e-3, clip=5.0, stateful=False, eval_every=250)
        r = train_classifier(train, test, cell="gru", hidden_size=32, bidirectional=bi, pooling="attention",
                             config=config, out_dir=os.path.join(tmp, f"dna-c-{bi}"), log=log)
        rows.append({"task": "dna classification", "model": name, "accuracy": r["accuracy"]})
    for bi in (False, True):
        out = os.path.join(tmp, f"dna-t-{bi}")
        argv = ["tag", "train", "--dna-length", str(T), "--cell", "gru", "--hidden-size", "32", "--steps", str(steps),
                "--out", out, "--no-progress"] + ([] if bi else ["--unidirectional"])
        assert rnnkit_main(argv) == 0
        with open(os.path.join(out, "scores.json")) as f:
            s = json.load(f)
        s = s.get("test", s)
        rows.append({"task": "dna tagging", "model": f"{'bi' if bi else 'uni'}directional gru",
                     "accuracy": s["accuracy"], "f1": s["per_tag"]["1"]["f1"]})
    return {"T": T, "rows": rows}


# -- genomes and speech, through `rnnkit classify train` / `rnnkit train` on files ----------------

# Each set is written as the files a user has (.npz, a text file) and trained by the command line.
# The settings were chosen on a validation split of the training part only (see NOTES in the
# results); the test part is read once, here.
CLI_CLASSIFY = {  # name: (command-line options, goal accuracy, published figures)
    "splice-junctions": (
        ["--bidirectional", "--cell", "lstm", "--hidden-size", "8", "--pooling", "positions", "--head-dropout", "0.5",
         "--lr", "1e-2", "--schedule", "cosine", "--optimizer", "adamw", "--weight-decay", "0.3", "--steps", "1000"],
        0.959,
        "RBF network 95.9%, DIPOL92 95.2%, logistic discrimination 93.9%, C4.5 92.4%, backprop MLP 91.2%, "
        "k-NN 84.5% (StatLog: Michie, Spiegelhalter & Taylor 1994; the StatLog dna.names)"),
    "spoken-digits": (
        ["--bidirectional", "--cell", "gru", "--hidden-size", "64", "--pooling", "mean", "--lr", "3e-3", "--schedule",
         "cosine", "--steps", "1500"], None,
        "none for this split (the package's MFCCs; FSDD's own split needs the recording numbers, which the "
        "package drops)"),
    "japanese-vowels": (
        ["--bidirectional", "--cell", "gru", "--hidden-size", "64", "--num-layers", "2", "--dropout", "0.2",
         "--pooling", "max", "--input-dropout", "0.1", "--head-dropout", "0.8", "--conv-channels", "128,256,128",
         "--conv-kernels", "8,5,3", "--lr", "3e-3", "--schedule", "cosine", "--steps", "800"], 0.99,
        "MLSTM-FCN 100%, LSTM-FCN 99% (Karim et al. 2019); 1-NN DTW about 94.9% (UEA archive, Bagnall et al. "
        "2018): as quoted in issue 13, not re-checked here; 94.1% (Kudo, Toyama & Shimbo 1999)"),
    "basic-motions": (
        ["--bidirectional", "--cell", "lstm", "--hidden-size", "64", "--pooling", "max", "--lr", "3e-3",
         "--schedule", "cosine", "--optimizer", "adamw", "--weight-decay", "0.3", "--valid-fraction", "0.2",
         "--steps", "800"], 1.0,
        "1-NN DTW about 97.5% (UEA archive, Bagnall et al. 2018): as quoted in issue 13, not re-checked here"),
}
# Sets scored by an ensemble: this many runs (seeds 0, 1, ...) of the options above, their class
# probabilities averaged by `rnnkit classify predict RUN ... FILE`; others are one run, seed 0.
ENSEMBLES = {"splice-junctions": 3, "japanese-vowels": 5, "basic-motions": 3}
# How the options above were chosen: each candidate trained on part of the training data and was
# scored on a held-out part of it, never on the test part. Held-out accuracy / bits per base.
TUNING = [
    "splice junctions (1,600 of the 2,000 training windows to train, the other 400 seeded ones to score; "
    "bidirectional, attention pooling unless said): GRU 32 lr 1e-2 87.0%; GRU 64 lr 1e-2 cosine 86.3%; "
    "GRU 64 + AdamW weight decay 0.3 89.3%; LSTM 64 + AdamW 0.3 88.8%; 2-layer GRU 32 dropout 0.3 + AdamW 0.1 "
    "80.5%; GRU 24 / 16 / 8 + AdamW 0.3 89.5% / 89.8% / 79.3%; GRU 16 + AdamW 1.0 78.5%; LSTM 32 / 16 + AdamW "
    "0.3 91.3% / 91.5% (chosen: LSTM 16, lr 1e-2 cosine, 2,000 steps); LSTM 16 + AdamW 0.1 90.3%; 2-layer "
    "LSTM 16 89.8%; LSTM 16 for 4,000 steps 91.3%; GRU 64 last-step pooling (stopped, 74% at step 600). "
    "The larger models fit the training windows almost exactly (training loss below 0.02) while held-out "
    "accuracy stays near 89-91%; the logistic-regression baseline trained on the same 1,600 scores 94.0%. "
    "Not a matter of knowing where the junction is: the chosen model given each step's position as a fifth "
    "input scores 90.5%.",
    "spoken digits (80% of the 2,400 training recordings to train, 20% to score): bidirectional GRU 64, mean "
    "pooling, lr 3e-3 cosine, 98.1% (the one run).",
    "JapaneseVowels (3-fold cross-validation on its 270 training utterances): that same GRU 64 model 97.0% "
    "(chosen; 100% on one 54-utterance hold-out); LSTM 32 attention + AdamW 0.3 93.7%. BasicMotions (4-fold on "
    "its 40 training recordings): GRU 64 mean, 400 steps 90.0%; LSTM 32 attention + AdamW 0.3, 400 steps 92.5%; "
    "LSTM 64 attention + AdamW 0.3, 800 steps 97.5% (chosen).",
    "Second round (max pooling, the recurrent regularisers and seed ensembles scored by `rnnkit classify predict "
    "RUN ... FILE`, new in `classify`; one BLAS thread, on a busy machine; other held-out splits than above, seeded "
    "anew): splice junctions (1,600 / 400): the chosen LSTM 16 with attention 91.0% and 90.0% in two runs of seed 0 "
    "(BLAS threads differ); max pooling 68.0%; max pooling + recurrent dropout 0.3 + input dropout 0.1 75.0%; "
    "attention + recurrent dropout 0.3 (stopped: 3x slower on the step-by-step loop); attention + input dropout "
    "0.2 + weight dropout 0.2 78.5%; five seeds of the chosen "
    "model 89.5% on average, their ensemble 92.0% (chosen: the ensemble of 5). JapaneseVowels (3-fold on the 270 "
    "training utterances): the GRU 64 mean model 93.3% on average over 5 seeds and 3 folds, the ensemble of 5 "
    "95.6%; the same with max pooling 93.9% and 96.3% (chosen: max pooling, the ensemble of 5; ten seeds "
    "instead of five: 95.2%). BasicMotions "
    "(4-fold on the 40 training recordings): the LSTM 64 attention model 90.8% on average over 3 seeds (single runs "
    "from 60% to 100% on one fold), the ensemble of 3 97.5%; the same with max pooling 97.5% and 100% (chosen: "
    "max pooling, the ensemble of 3). The regularisers were not tried on these two for lack of time. Order of "
    "events, for the record: the ensembles with mean (JapaneseVowels) and attention (BasicMotions) pooling were "
    "run on the test sets first (98.4% and 92.5%) and max pooling was cross-validated afterwards; the switch "
    "follows the cross-validation figures above, which were the rule for every choice.",
    "Third round, for issue 13's two missed goals (new in `classify`: `--pooling positions`, every step's outputs "
    "concatenated into the head, and `--head-dropout`; one BLAS thread on one core of a busy machine; splits and "
    "folds seeded anew, from the training parts only). Splice junctions, two seeded 1,600 / 400 splits, one run "
    "each (bidirectional LSTM, positions readout, AdamW weight decay 0.3, lr 1e-2 cosine, 1,000 steps unless "
    "said): hidden 8 96.0% / 96.5%; hidden 4 96.75% / 96.75%; hidden 16 97.25% / 97.5%; hidden 8 with weight "
    "decay 0.1 96.25% / 97.0%, with 1.0 96.25% / 96.75%; 2,000 steps 96.0% / 96.5%; input dropout 0.1 96.5% / "
    "96.5%; lr 3e-3 96.75% / 96.25%; GRU 8 96.25% / 96.75%. Then 4-fold cross-validation on the 2,000 (3 seeds a "
    "fold; mean single run / ensemble of the 3, the ensemble's figure deciding): hidden 16 95.0% / 95.2%; "
    "hidden 32 94.5% / 95.4%; hidden 16 + head dropout 0.5 95.2% / 96.05%; hidden 8 + head dropout 0.5 96.0% / "
    "96.4% (chosen); hidden 4 + head dropout 0.5 96.1% / 96.25%; hidden 8 + head dropout 0.7 96.3% / 96.3%; the "
    "chosen model with 5 seeds a fold 95.9% / 96.3% (so the ensemble of 3 is kept). JapaneseVowels (3-fold on "
    "the 270 training utterances, other folds than the second round's; 5 seeds a fold; mean single run / "
    "ensemble of 5, errors of 270): the second round's GRU 64 max model 95.9% / 97.4% (7); + input dropout 0.1 "
    "97.4% / 98.1% (5); + input dropout 0.2 97.0% / 98.1% (5); + input dropout 0.2, 1,600 steps 97.1% / 97.8% "
    "(6); + input dropout 0.1 + head dropout 0.5 97.3% / 98.5% (4) (chosen); the same with 10 seeds a fold "
    "97.2% / 98.5% (4) (so the ensemble of 5 is kept); LSTM 64 and GRU 128 were not run for lack of time. The "
    "chosen settings then met the test parts once: splice junctions 96.4% (goal met; every single run above "
    "95.9% too), JapaneseVowels 98.4% (6 errors of 370; the second round's model had 5), so that goal stays "
    "missed: the cross-validated gain (7 to 4 errors of 270) did not carry over, and nothing was tuned on the "
    "test part after it.",
    "Fourth round, for JapaneseVowels alone (issue 13's 99% goal; new in `classify`: `--input-jitter` and "
    "`--input-scale`, training-time augmentation; one BLAS thread on one core of a busy machine). The third "
    "round's 3 folds of the 270 training utterances again (the same seeded folds, so figures compare; its chosen "
    "model's runs re-scored here give the same 4 errors), 5 seeds a fold; mean single run / ensemble of 5 (errors"
    " of 270) and the ensemble's mean log loss on the held-out parts. Every variant is the third round's choice "
    "(bidirectional GRU 64, max pooling, input dropout 0.1, head dropout 0.5, lr 3e-3 cosine, 800 steps) with one"
    " change: that model 97.3% / 98.5% (4), log loss 0.073; LSTM 64 96.7% / 97.8% (6), 0.076; GRU 128 97.6% / "
    "98.1% (5), 0.053; 2 layers (dropout 0.2 between) 97.9% / 98.5% (4), 0.059; 1,600 steps 97.8% / 98.5% (4), "
    "0.061; 2 layers and 1,600 steps 97.0% / 98.5% (4), 0.069; mean pooling 97.3% / 98.5% (4), 0.075; attention "
    "pooling 97.1% / 97.4% (7), 0.072; zoneout 0.1 97.0% / 97.8% (6), 0.076; recurrent dropout 0.2 97.6% / 98.1% "
    "(5), 0.062; input jitter 0.1 97.3% / 98.1% (5), 0.070; jitter 0.2 97.3% / 98.1% (5), 0.068; input scale 0.1 "
    "97.2% / 98.1% (5), 0.071 (per-channel standardisation is what the app already does, so it was not a "
    "variant). Mixed ensembles (`classify predict` over the runs of two or three variants, per fold): max + mean "
    "pooling, 5 + 5, 3 + 2 and 2 + 3 members, 4 errors each (log loss 0.072 for 5 + 5); max + attention 5 + 5, 5 "
    "errors; max + mean + attention 4 (0.072); GRU 64 + GRU 128 5 + 5, 4 (0.061); 2 layers + GRU 128 5 + 5, 4 "
    "(0.054). No variant or mix went below 4 errors: the same four utterances (three of speaker 8, one of speaker"
    " 2) are wrong in nearly every ensemble, so 3-fold CV on 270 cannot tell the better settings apart by errors;"
    " the rule, set after the first results came in and before the last ones, was fewest errors, then the lowest "
    "ensemble log loss among ensembles of 5 of one setting (the form this script runs), mixes counting only if "
    "they had fewer errors. Chosen: the 2-layer model (4 errors, log loss 0.059), options --num-layers 2 "
    "--dropout 0.2 added to the third round's."
    " The chosen settings then met the test part once: 98.6% (5 errors of 370; each seed alone 96.8% to 98.9%; "
    "the third round's model had 6), so the goal stays missed, by 2 errors, and nothing was tuned on the test "
    "part after it (its 97 s: five 2-layer runs on one core of a busy machine).",
    "Fifth round, for JapaneseVowels alone (issue 13's 99% goal; new in `classify`: `--conv-channels` and "
    "`--conv-kernels`, the fully convolutional branch of LSTM-FCN / MLSTM-FCN (Karim et al. 2017, 2019): blocks of "
    "128, 256, 128 filters of widths 8, 5, 3, each with batch norm over the valid steps and ReLU, averaged over "
    "time and joined to the pooled recurrent features before head dropout and the head; one BLAS thread on one "
    "core of a busy machine). The fourth round's 3 seeded folds of the 270 training utterances again, 5 seeds a "
    "fold; mean single run / ensemble of 5 (errors of 270), the ensemble's mean log loss on the held-out parts. "
    "Rule, written down before the first result: fewest ensemble errors, then the lowest log loss, then fewer "
    "parameters; the fourth round's choice (4 errors, 0.059) stays unless beaten. Every candidate has the branch "
    "(lr 3e-3 cosine, 800 steps): the LSTM-FCN shape, LSTM 8, last step, head dropout 0.8 (the paper's dropout "
    "after the LSTM) 97.0% / 97.4% (7), 0.068; the same with LSTM 64 95.9% / 97.0% (8), 0.076; the third round's "
    "bidirectional GRU 64, max pooling, input dropout 0.1, head dropout 0.5 97.8% / 98.5% (4), 0.045; the fourth "
    "round's choice (the same with 2 layers, dropout 0.2 between) 97.9% / 98.5% (4), 0.040; that with head "
    "dropout 0.8 98.2% / 98.9% (3), 0.041 (chosen: the only candidate below 4 errors). The paper's other parts "
    "(its dimension shuffle before the LSTM, MLSTM-FCN's squeeze-and-excite blocks, 2,000 epochs) were not tried. "
    "The chosen settings then met the test part once: 99.5% (2 errors of 370; each seed alone 99.2%, 99.2%, "
    "98.9%, 98.4%, 99.2%), so the 99% goal is met; nothing was tuned on the test part.",
    "yeast (first 80% of the training part to train, the rest to score; best Markov there 1.9481): LSTM 128 "
    "lr 2e-3 constant 1.9454 at the end (1.9384 at best); with a cosine schedule 1.9350 (chosen).",
]
MARKOV_ORDERS = range(9)
MARKOV_ALPHA = 0.5
YEAST_LM = ["--cell", "lstm", "--hidden-size", "128", "--num-layers", "1", "--embed-size", "8", "--seq-len", "100",
            "--schedule", "cosine", "--steps", "1200"]


def _load(fn, *a):
    """``(value, None)``, or ``(None, one-line reason)`` when a package or a Debian file is missing."""
    try:
        return fn(*a), None
    except (ImportError, UserError) as exc:
        return None, str(exc)


def write_npz(path, xs, labels):
    """The .npz layout ``rnnkit classify train`` reads: x (N, L, D) zero-padded, lengths, y."""
    lengths = np.array([len(x) for x in xs])
    x = np.zeros((len(xs), lengths.max(), xs[0].shape[1]), np.float32)      # (N, L, D)
    for i, s in enumerate(xs):
        x[i, : len(s)] = s
    np.savez(path, x=x, lengths=lengths, y=np.asarray(labels))


def logistic_baseline(train, test):
    """Test accuracy of scikit-learn's logistic regression (C = 1, not tuned) on standardised
    features: the whole sequence flattened when every sequence has one length, else the mean and
    standard deviation of each feature over time."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    def features(xs):
        if len({len(x) for x in train[0] + xs}) == 1:
            return np.stack(xs).reshape(len(xs), -1)
        return np.array([np.concatenate([x.mean(0), x.std(0)]) for x in xs])
    scaler = StandardScaler().fit(features(train[0]))
    model = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(features(train[0])), train[1])
    return float(model.score(scaler.transform(features(test[0])), test[1]))


def cli_classify(name, steps, tmp):
    """One classification row: the set as .npz files, `rnnkit classify train` (once per seed of
    ENSEMBLES[name], then `rnnkit classify predict RUN ... test.npz` for the ensemble), a linear
    baseline."""
    from rnnkit.data import datasets as D

    argv, goal, published = CLI_CLASSIFY[name]
    seeds = ENSEMBLES.get(name, 1)
    row = {"dataset": name, "options": " ".join(argv), "goal": goal, "published": published, "seeds": seeds}
    parts, why = _load(lambda: (D.labelled_sequences(name, "train"), D.labelled_sequences(name, "test")))
    if why:
        return {**row, "skipped": why}
    files = []
    for part, (xs, labels) in zip(("train", "test"), parts):
        files.append(os.path.join(tmp, f"{name}-{part}.npz"))
        write_npz(files[-1], xs, labels)
    if steps is not None:
        argv = argv[: argv.index("--steps")] + ["--steps", str(steps)]
    t0 = time.time()
    runs, single = [], []
    for seed in range(seeds):
        runs.append(os.path.join(tmp, f"cli-{name}-{seed}"))
        assert rnnkit_main(["classify", "train", "--train", files[0], "--test", files[1], "--out", runs[-1],
                            "--no-progress", "--seed", str(seed)] + argv) == 0
        with open(os.path.join(runs[-1], "scores.json")) as f:
            s = json.load(f)
        single.append(s["accuracy"])
    accuracy = single[0]
    if seeds > 1:
        labels_out = os.path.join(tmp, f"cli-{name}-ensemble.txt")
        assert rnnkit_main(["classify", "predict", *runs, files[1], "--output", labels_out]) == 0
        with open(labels_out) as f:
            pred = f.read().split()
        accuracy = float(np.mean([p == str(t) for p, t in zip(pred, np.asarray(parts[1][1]).tolist())]))
    wall = time.time() - t0
    return {**row, "n_train": s["n_train"], "n_valid": s["n_valid"], "n_test": s["n_test"], "accuracy": accuracy,
            "single": single, "majority": s["majority_baseline"], "logistic": logistic_baseline(*parts),
            "seconds": wall, "steps": s["steps"]}


def cli_genome(steps, tmp):
    """Bits per base of `rnnkit train` on yeast chromosome I (last 20% held out) beside order-k
    Markov chains counted on the first 80%."""
    from rnnkit.data import datasets as D
    from rnnkit.data import markov as M
    from rnnkit.data.text import split_ids

    row = {"dataset": "yeast chromosome I", "options": " ".join(YEAST_LM)}
    seq, why = _load(D.yeast_chromosome_1)
    if why:
        return {**row, "skipped": why}
    train, test = split_ids(M.encode(seq, "ACGT"), 0.2)      # the split `rnnkit train --val-fraction 0.2` makes
    markov = M.markov_table(train, test, MARKOV_ORDERS, 4, MARKOV_ALPHA)
    path, out = os.path.join(tmp, "yeast-chr1.txt"), os.path.join(tmp, "cli-yeast")
    with open(path, "w") as f:
        f.write(seq)                                          # no final newline: four symbols
    argv = YEAST_LM if steps is None else YEAST_LM[: YEAST_LM.index("--steps")] + ["--steps", str(steps)]
    t0 = time.time()
    assert rnnkit_main(["train", path, "--val-fraction", "0.2", "--out", out, "--no-progress"] + argv) == 0
    wall = time.time() - t0
    with open(os.path.join(out, "metrics.jsonl")) as f:
        evals = [r for r in map(json.loads, f) if "val_loss" in r and "step" in r]
    best_k = min(markov, key=markov.get)
    return {**row, "bases": len(seq), "train_bases": len(train), "test_bases": len(test),
            "bits": evals[-1]["val_loss"] / math.log(2), "best_bits": min(r["val_loss"] for r in evals) / math.log(2),
            "markov": {str(k): v for k, v in markov.items()}, "best_order": best_k, "markov_best": markov[best_k],
            "seconds": wall, "steps": evals[-1]["step"]}


# -- tagging real text: Turkish POS tags through `rnnkit tag train` ------------------------------

# Google's Turkish treebanks (turkish-treebanks): train on the Wikipedia treebank (a seeded 10% of it
# held out for validation, as `rnnkit tag train` does), test once on the web treebank: another
# domain (forums, blogs), so unknown words are many (about a third of the test tokens). The tagger
# runs at the command's defaults (word embeddings 64, character BiLSTM 24 + 24, one layer of 64 a
# direction, word dropout 0.25, Adam 2e-3): nothing was tuned, on validation or otherwise.
TAGGERS = [  # (name, extra command-line options)
    ("bidirectional LSTM, character BiLSTM", []),
    ("unidirectional LSTM, character BiLSTM", ["--unidirectional"]),
    ("bidirectional LSTM, no characters", ["--no-chars"]),
]
TAG_STEPS = 600
TAG_PUBLISHED = ("- (published Turkish UPOS accuracies are for the UD treebanks (IMST, BOUN), whose words and "
                 "tags differ from these treebanks' inflectional groups and 14 tags; none found for these files)")


def most_frequent_tag(train, test) -> dict:
    """The baseline: each word gets the tag it has most often in ``train`` (ties: the tag seen
    first); a word never seen gets the most frequent tag overall. Accuracy on ``test``, overall
    and on the unseen words."""
    from collections import Counter, defaultdict

    per_word, overall = defaultdict(Counter), Counter()
    for tokens, tags in train:
        for w, t in zip(tokens, tags):
            per_word[w][t] += 1
            overall[t] += 1
    best = {w: c.most_common(1)[0][0] for w, c in per_word.items()}
    default = overall.most_common(1)[0][0]
    right, unseen = [], []
    for tokens, tags in test:
        for w, t in zip(tokens, tags):
            right.append(best.get(w, default) == t)
            unseen.append(w not in best)
    right, unseen = np.array(right), np.array(unseen)
    return {"accuracy": float(right.mean()), "oov_accuracy": float(right[unseen].mean()), "default": default}


def run_tagging(steps, tmp, log):
    """Uni- and bidirectional taggers, with and without characters, beside the baseline."""
    from rnnkit.apps.tag import read_tagged, split_validation
    from rnnkit.data import datasets as D

    paths, why = _load(lambda: (D.turkish_treebank("wiki"), D.turkish_treebank("web")))
    if why:
        return {"skipped": why}
    train_all, test = read_tagged(paths[0]), read_tagged(paths[1])
    train, _ = split_validation(train_all, 0.1, 0)           # the sentences `rnnkit tag train` trains on
    out = {"train": "wiki", "test": "web", "train_sentences": len(train), "train_tokens": sum(len(t) for t, _ in train),
           "test_sentences": len(test), "test_tokens": sum(len(t) for t, _ in test),
           "baseline": most_frequent_tag(train, test), "steps": steps, "rows": []}
    for name, opts in TAGGERS:
        run = os.path.join(tmp, "tag-" + name.replace(" ", "-").replace(",", ""))
        t0 = time.time()
        assert rnnkit_main(["tag", "train", "--train", paths[0], "--test", paths[1], "--steps", str(steps),
                            "--eval-every", "100", "--out", run, "--no-progress"] + opts) == 0
        with open(os.path.join(run, "scores.json")) as f:
            s = json.load(f)
        out["rows"].append({"model": name, "options": " ".join(opts), "accuracy": s["accuracy"],
                            "oov_accuracy": s["oov_accuracy"], "oov_tokens": s["oov_tokens"],
                            "macro_f1": s["macro_f1"], "seconds": time.time() - t0})
        log(f"tagging: {name}: accuracy {s['accuracy']:.4f}, unseen words {s['oov_accuracy']:.4f}")
    return out


def tagging_markdown(t):
    md = ["", "## Tagging real text: Turkish part-of-speech tags", ""]
    if "skipped" in t:
        return md + [f"Skipped: {t['skipped']}"]
    b = t["baseline"]
    md += [f"Google's Turkish treebanks (the `turkish-treebanks` package, CoNLL-U, tokens are inflectional groups, "
           f"14 tags): `rnnkit tag train --train wiki.conllu --test web.conllu --steps {t['steps']}` trains on "
           f"{t['train_sentences']:,} Wikipedia sentences ({t['train_tokens']:,} tokens; a seeded 10% more for "
           f"validation) and scores {t['test_sentences']:,} web sentences ({t['test_tokens']:,} tokens) from "
           "another domain. The command's default tagger (word embedding 64, character BiLSTM 24 a direction, "
           "LSTM 64 a direction, word dropout 0.25), not tuned. Unseen words: test tokens absent from the training "
           "sentences.", "",
           "| model | accuracy | unseen words | macro F1 | time | published |", "|---|---|---|---|---|---|"]
    for r in t["rows"]:
        md.append(f"| rnnkit {r['model']} | {100 * r['accuracy']:.1f}% | {100 * r['oov_accuracy']:.1f}% "
                  f"({r['oov_tokens']:,} tokens) | {r['macro_f1']:.3f} | {r['seconds']:.0f} s | |")
    md.append(f"| most frequent tag per word (here; unseen words: {b['default']}) | {100 * b['accuracy']:.1f}% | "
              f"{100 * b['oov_accuracy']:.1f}% | | | |")
    md += ["", f"Published: {TAG_PUBLISHED}."]
    return md


def classify_markdown(rows):
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    md = ["", "## Genomes and speech, through the command line", "",
          "Each set is written as the files a user has and trained by `rnnkit classify train --train F.npz "
          "--test G.npz ...` or `rnnkit train FILE --val-fraction 0.2 ...` (options below, chosen on a "
          "validation split of the training part only). Baselines are computed here on the same split.", "",
          "| dataset | train / test | rnnkit | majority | logistic regression (here) | goal | met | time | published |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            md.append(f"| {r['dataset']} | skipped: {r['skipped']} | | | | | | | {r['published']} |")
            continue
        goal = "-" if r["goal"] is None else f">= {pct(r['goal'])}"
        met = "-" if r["goal"] is None else ("yes" if r["accuracy"] >= r["goal"] else f"NO ({100 * (r['accuracy'] - r['goal']):+.1f} points)")
        ours = pct(r["accuracy"])
        if r.get("seeds", 1) > 1:
            ours += (f" (ensemble of {r['seeds']} seeds; each alone {pct(min(r['single']))} to "
                     f"{pct(max(r['single']))})")
        md.append(f"| {r['dataset']} | {r['n_train'] + r['n_valid']} / {r['n_test']} | {ours} | "
                  f"{pct(r['majority'])} | {pct(r['logistic'])} | {goal} | {met} | {r['seconds']:.0f} s | {r['published']} |")
    md += ["", "Options: " + "; ".join(f"{r['dataset']}: `{r['options']}`" for r in rows), "",
           "How they were chosen (held-out parts of the training data only):", ""]
    md += [f"* {t}" for t in TUNING] + [""]
    return md


def genome_markdown(g):
    md = []
    if "skipped" in g:
        return md + [f"Genome language model: skipped: {g['skipped']}"]
    md += [f"### Bits per base: {g['dataset']} ({g['bases']:,} bases; first {g['train_bases']:,} to train, "
           f"last {g['test_bases']:,} held out)", "",
           "| model | bits per base on the held-out 20% |", "|---|---|",
           f"| rnnkit `rnnkit train` (`{g['options']}`), last evaluation, {g['seconds']:.0f} s | {g['bits']:.4f} |"]
    md += [f"| order-{k} Markov, add-{MARKOV_ALPHA} counts on the first 80% | {v:.4f} |" for k, v in g["markov"].items()]
    met = "yes" if g["bits"] < g["markov_best"] else f"NO ({g['bits'] - g['markov_best']:+.4f} bits)"
    md += ["", f"Goal: below the best Markov order (order {g['best_order']}, {g['markov_best']:.4f}): {met}. "
           f"The lowest validation value during training was {g['best_bits']:.4f}; the table gives the last, "
           "which no choice was made on. rnnkit scores whole windows of the held-out stream laid out as batch "
           "rows (each row starts from a zero state); the Markov chains score every held-out base."]
    return md


def forecast_markdown(forecasts):
    md = ["", "## Forecasting", "",
          "RMSE / MAE on the held-out last 20% (rolling origin, true history), original units; models and "
          "scalers fitted on the rest.", "",
          "| dataset | horizon | strategy | rnnkit LSTM | last value | seasonal naive | linear AR (NumPy lstsq) | beats naive |",
          "|---|---|---|---|---|---|---|---|"]
    for r in forecasts:
        s = r["scores"]
        seas = next((v for k, v in s.items() if k.startswith("seasonal")), None)
        naive = min(v["rmse"] for k, v in s.items() if k == "last value" or k.startswith("seasonal"))
        cell = lambda v: "-" if v is None else f"{v['rmse']:.4g} / {v['mae']:.4g}"  # noqa: E731
        md.append(f"| {r['dataset']} | {r['horizon']} | {r['strategy'] if r['horizon'] > 1 else '-'} | {cell(s['rnnkit'])} | {cell(s['last value'])} | {cell(seas)} | "
                  f"{cell(s['linear AR'])} | {'yes' if s['rnnkit']['rmse'] < naive else 'NO'} |")
    return md


def builtin_markdown(classes):
    md = ["", "## Classification (the dataset's own train/test split)", "",
          "| dataset | train / test | rnnkit LSTM accuracy | majority class | published |", "|---|---|---|---|---|"]
    for r in classes:
        md.append(f"| {r['dataset']} | {r['n_train']} / {r['n_test']} | {r['accuracy']:.4f} | "
                  f"{r['majority_baseline']:.4f} | {PUBLISHED.get(r['dataset'], '-')} |")
    return md


def dna_markdown(dna):
    md = ["", f"## DNA (generated, length {dna['T']}, planted motif TATAAT with one-letter-off distractors)", "",
          "| task | model | accuracy | motif-start F1 |", "|---|---|---|---|"]
    for r in dna["rows"]:
        md.append(f"| {r['task']} | {r['model']} | {r['accuracy']:.4f} | {r.get('f1', float('nan')):.4f} |")
    return md


def run_forecasts(quick, tmp, log):
    steps = 30 if quick else 1500
    config = lambda: TrainConfig(steps=steps, lr=3e-3, clip=1.0, stateful=False, eval_every=100)  # noqa: E731
    return [run_forecast(d, horizon=h, window=w, strategy=st, config=config(), log=log) for d, h, w, st in FORECASTS]


# Each section: the name --only takes -> (its key in real_data.json, run(quick, tmp, log), markdown(result)).
# A run of some sections keeps the others' last results in the JSON and rewrites the Markdown from it.
SECTIONS = {
    "forecast": ("forecasts", run_forecasts, forecast_markdown),
    "builtin": ("classification",
                lambda quick, tmp, log: [classify(d, 20 if quick else 800, os.path.join(tmp, d), log) for d in CLASSIFY],
                builtin_markdown),
    "dna": ("dna", lambda quick, tmp, log: run_dna(10 if quick else 1000, tmp, log), dna_markdown),
    "classify": ("command_line",
                 lambda quick, tmp, log: [cli_classify(n, 10 if quick else None, tmp) for n in CLI_CLASSIFY],
                 classify_markdown),
    "genome": ("genome", lambda quick, tmp, log: cli_genome(10 if quick else None, tmp), genome_markdown),
    "tagging": ("tagging", lambda quick, tmp, log: run_tagging(10 if quick else TAG_STEPS, tmp, log),
                tagging_markdown),
    "timeseries": ("timeseries", run_timeseries, timeseries_markdown),
    "text": ("text", run_text, text_markdown),
    "handwriting": ("handwriting", run_handwriting, handwriting_markdown),   # sample PNGs into benchmarks/results
}


def names_arg(choices):
    """An argparse type: a comma-separated list of names from ``choices``."""
    def parse(text):
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names or any(n not in choices for n in names):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(choices)}, got {text!r}")
        return names
    return parse


sections_arg, sets_arg = names_arg(SECTIONS), names_arg(CLI_CLASSIFY)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny budgets (checks the script, not the models)")
    ap.add_argument("--only", type=sections_arg, default=list(SECTIONS),
                    help=f"run only these sections (comma-separated: {', '.join(SECTIONS)}); the others keep their "
                         "last results")
    ap.add_argument("--sets", type=sets_arg, default=None,
                    help=f"with --only classify: rerun only these of its datasets (comma-separated: "
                         f"{', '.join(CLI_CLASSIFY)}); its other rows keep their last results")
    ap.add_argument("--markdown-only", action="store_true",
                    help="run nothing: rewrite the Markdown from the JSON's results (after editing the prose)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    if args.markdown_only:
        args.only = []
    if args.sets and args.only != ["classify"]:
        ap.error("--sets: expected --only classify with it (the sets are rows of that section)")
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    os.makedirs(args.out, exist_ok=True)
    name = "real_data_quick" if args.quick else "real_data"
    path = os.path.join(args.out, f"{name}.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    seconds = results.setdefault("seconds", {})
    with tempfile.TemporaryDirectory() as tmp:
        for section in args.only:
            key, run, _ = SECTIONS[section]
            t0 = time.time()
            if args.sets:                               # some rows: the others stay as last run, in table order
                new = {r["dataset"]: r for r in (cli_classify(n, 10 if args.quick else None, tmp) for n in args.sets)}
                old = {r["dataset"]: r for r in results.get(key, [])}
                results[key] = [new.get(n, old.get(n)) for n in CLI_CLASSIFY if n in new or n in old]
                continue                                # the section's time is a whole run's
            results[key] = run(args.quick, tmp, log)
            seconds[section] = time.time() - t0
    times = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    md = ["# Real sequences: rnnkit beside baselines", "",
          f"`python benchmarks/real_data.py [--only SECTIONS]` on {platform.machine()}, {os.cpu_count()} cores "
          f"(shared with other work while measured, so times are not final), each section's last run: {times}."]
    for section, (key, _, markdown) in SECTIONS.items():
        if key in results:
            md += markdown(results[key])
    text = "\n".join(md) + "\n"
    print(text)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
