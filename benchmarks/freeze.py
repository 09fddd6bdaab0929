"""What freezing saves: one CharLM training step (forward, loss, backward) with nothing frozen and
with parts frozen, whose weight-gradient products are then skipped (the input gradients are
still computed, so only the products dW = dY^T X go).

    python benchmarks/freeze.py [--repeats 7]

CharLM vocabulary 96, embedding = hidden 256 (tied), 2 LSTM layers, 64 steps x batch 32,
float32, the default (Numba) time loop, one BLAS thread (``RNNKIT_NUM_THREADS=1`` unless set).
The cases take turns, one step each per round, so a change in the machine's load hits them
alike; the median over ``--repeats`` rounds after a warm-up round. Writes
benchmarks/results/freeze.{md,json}.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("RNNKIT_NUM_THREADS", "1")

import numpy as np

from _results import save  # noqa: E402  (benchmarks/ is the script's directory)

from rnnkit.models import CharLM

CASES = {"nothing": None, "rnn.*_l0 (first layer)": "rnn.*_l0", "embed + rnn (head bias only)": "embed.*,rnn.*"}


def step_times(patterns, repeats, V=96, H=256, L=64, N=32):
    """``{pattern: [seconds of one step per round]}``, the cases in turn within each round."""
    models = {}
    for pattern in patterns:
        models[pattern] = CharLM(V, H, H, 2, "lstm", seed=0, tie_weights=True)
        if pattern:
            models[pattern].freeze(pattern)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, V, (L, N)), rng.integers(0, V, (L, N))
    times = {pattern: [] for pattern in patterns}
    for i in range(repeats + 1):
        for pattern, model in models.items():
            model.zero_grad()
            t0 = time.perf_counter()
            model.train_step((x, y))
            if i:                                   # the first round warms up (JIT, allocations)
                times[pattern].append(time.perf_counter() - t0)
    return times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    times = step_times(list(CASES.values()), args.repeats)
    rows = [{"frozen": name, "seconds": statistics.median(times[pattern]), "all": times[pattern]}
            for name, pattern in CASES.items()]
    base = rows[0]["seconds"]
    md = ("One CharLM training step (vocabulary 96, embedding = hidden 256 tied, 2 LSTM layers, 64 x 32, "
          f"float32), median of {args.repeats}; measured on a shared, busy machine:\n\n"
          "| frozen | step (ms) | vs nothing frozen |\n|---|---|---|\n"
          + "".join(f"| {r['frozen']} | {r['seconds'] * 1e3:.1f} | {r['seconds'] / base:.2f}x |\n" for r in rows))
    save("freeze", md, rows)


if __name__ == "__main__":
    main()
