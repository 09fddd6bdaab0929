"""Character-level modelling of Jane Austen's six novels (4.0 MB, the R package janeaustenr in the
Debian package r-cran-janeaustenr): bits per character on the held-out last 10% for interpolated
Kneser-Ney n-grams of orders 0-7 (``rnnkit.data.ngram``, counted on the first 90%) and for an
LSTM trained a few minutes by the commands a user runs: ``rnnkit prepare``, ``rnnkit train
CORPUS_DIR``, ``rnnkit eval RUN TEST_DIR``.

The package is read from ``$RNNKIT_DATA`` (``apt-get download r-cran-janeaustenr`` and
``dpkg-deb -x`` it there) or the system's R library; nothing is copied into the repository.
A section of ``benchmarks/real_data.py`` (``--only text``).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np

TEST_FRACTION = 0.1
ORDERS = range(8)
LM = ["--cell", "lstm", "--hidden-size", "256", "--num-layers", "1", "--embed-size", "64", "--batch-size", "32",
      "--seq-len", "100", "--lr", "3e-3", "--val-fraction", "0.02", "--eval-every", "250"]
MINUTES = 5
PUBLISHED = "- (none found for this corpus)"


def rnnkit_cmd(args, log):
    """``python -m rnnkit ARGS`` in a process of its own with one BLAS thread (the machine's two cores are
    shared; two BLAS threads fighting one core made training ten times slower here)."""
    env = dict(os.environ, RNNKIT_NUM_THREADS=os.environ.get("RNNKIT_NUM_THREADS", "1"),
               PYTHONPATH=os.pathsep.join(p for p in [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                      os.environ.get("PYTHONPATH")] if p))
    done = subprocess.run([sys.executable, "-m", "rnnkit"] + args + ["--no-progress"], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"rnnkit {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    log(done.stdout.strip())
    return done.stdout


def run_text(quick, tmp, log):
    from rnnkit.data import datasets as D
    from rnnkit.data.ngram import KneserNey
    from rnnkit.errors import UserError

    try:
        text = D.austen_novels()
    except (ImportError, UserError) as exc:
        return {"skipped": str(exc)}
    if quick:
        text = text[:200_000]
    cut = int(len(text) * (1 - TEST_FRACTION))
    train, test = text[:cut], text[cut:]
    alphabet = sorted(set(text))
    code = {c: i for i, c in enumerate(alphabet)}
    tr = np.array([code[c] for c in train])
    te = np.array([code[c] for c in test])
    out = {"corpus": "Jane Austen's six novels (janeaustenr)", "characters": len(text), "alphabet": len(alphabet),
           "train_characters": len(train), "test_characters": len(test),
           "unseen_in_train": sorted(set(test) - set(train)), "ngram": {}}
    for k in ORDERS if not quick else range(3):
        t0 = time.time()
        out["ngram"][str(k)] = {"bits": KneserNey(tr, k, len(alphabet)).bits(te, tr), "seconds": time.time() - t0}
        log(f"Kneser-Ney order {k}: {out['ngram'][str(k)]['bits']:.4f} bits/char")
    paths = {p: os.path.join(tmp, f"austen-{p}") for p in ("train", "test")}
    for part, body in (("train", train), ("test", test)):
        with open(paths[part] + ".txt", "w", encoding="utf-8") as f:
            f.write(body)
        rnnkit_cmd(["prepare", paths[part] + ".txt", "--out", paths[part]], log)
    run = os.path.join(tmp, "austen-lm")
    budget = ["--steps", "20"] if quick else ["--steps", "1000000", "--time-limit", str(60 * MINUTES)]
    t0 = time.time()
    rnnkit_cmd(["train", paths["train"], "--out", run] + LM + budget, log)
    out["train_seconds"] = time.time() - t0
    with open(os.path.join(run, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    out["steps"] = max(r["step"] for r in lines if "step" in r)
    out["best_val_bits"] = min(r["val_bpc"] for r in lines if "val_bpc" in r)
    t0 = time.time()
    said = rnnkit_cmd(["eval", run, paths["test"], "--batch-size", "8", "--seq-len", "200"], log)
    out["eval_seconds"] = time.time() - t0
    found = re.search(r"([0-9.]+) bits/char over ([0-9,]+) characters", said)
    out["bits"], out["eval_characters"] = float(found.group(1)), int(found.group(2).replace(",", ""))
    out["options"] = " ".join(LM + budget)
    return out


def text_markdown(t):
    md = ["", "## Text: characters of Jane Austen beside Kneser-Ney n-grams (issue 13)", ""]
    if "skipped" in t:
        return md + [f"Skipped: {t['skipped']}"]
    best = min(t["ngram"], key=lambda k: t["ngram"][k]["bits"])
    md += [f"{t['corpus']}: {t['characters']:,} characters, {t['alphabet']} distinct; the first "
           f"{t['train_characters']:,} to train, the last {t['test_characters']:,} ({100 * TEST_FRACTION:.0f}%, the "
           f"end of *Sense and Sensibility*) held out. The n-grams are counted on the whole training part; "
           "`rnnkit train` keeps its last 2% for validation (the best checkpoint) and trains on the rest, for "
           f"{MINUTES} minutes (`--time-limit`), one BLAS thread, on a machine shared with other work, so the "
           "LSTM's figure is what that budget buys here, not what the model can reach. `rnnkit eval RUN "
           "TEST_DIR --batch-size 8 --seq-len 200` scores the tail as 8 streams with the state carried "
           "(each stream's first character has no context); the n-grams take their first contexts from the end "
           "of the training part.", "",
           "| model | bits per character on the held-out tail | training |", "|---|---|---|"]
    md.append(f"| rnnkit LSTM (`{t['options']}`), best checkpoint | {t['bits']:.4f} | {t['steps']:,} steps, "
              f"{t['train_seconds']:.0f} s (validation {t['best_val_bits']:.4f}) |")
    for k, v in t["ngram"].items():
        md.append(f"| interpolated Kneser-Ney, order {k} ({int(k) + 1}-grams), here | {v['bits']:.4f} | "
                  f"counting {v['seconds']:.0f} s |")
    verdict = "below" if t["bits"] < t["ngram"][best]["bits"] else "above"
    md += ["", f"Best n-gram: order {best}, {t['ngram'][best]['bits']:.4f} bits per character; the LSTM is {verdict} "
           f"it by {abs(t['bits'] - t['ngram'][best]['bits']):.4f}. Published figure for this corpus: {PUBLISHED}."]
    return md
