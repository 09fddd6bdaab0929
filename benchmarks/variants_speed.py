"""The LSTM's gate variants beside the plain LSTM: one training step (forward + full BPTT),
torch-rnn's shapes (T=50, N=50, D=64, float32), median of repeats.

    python benchmarks/variants_speed.py [--repeats 15] [--sizes 128,256]

The plain LSTM runs on the fused Numba kernels (and, for reference, on the NumPy time loop);
the layer-normalised LSTM on its own fused kernels (rnnkit/kernels/ln_lstm.py), the other
variants (peepholes, and layer_norm with them) on the NumPy time loop. Issue 15's target: the
layer-normalised LSTM within 2x of the plain one. Writes benchmarks/results/variants_speed.{md,json}.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

import rnnkit
from rnnkit import kernels

from _results import save  # noqa: E402  (benchmarks/ is the script's directory)
from proj_size import rnnkit_step  # noqa: E402

VARIANTS = {"layer_norm": dict(layer_norm=True), "peepholes": dict(peepholes=True),
            "layer_norm + peepholes": dict(layer_norm=True, peepholes=True)}


def interleaved(fns: dict, repeats: int) -> dict:
    """``{name: median ms}``, the configurations timed in turn within each repeat, so a busy machine's
    load falls on all of them alike (after one warm-up call each)."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def plain_on_numpy(m, x, dy):
    with kernels.use("numpy"):
        rnnkit_step(m, x, dy)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--sizes", default="128,256")
    args = p.parse_args()
    T, N, D = 50, 50, 64
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, N, D)).astype(np.float32)
    rows, load_before = [], os.getloadavg()[0]
    for H in (int(h) for h in args.sizes.split(",")):
        dy = rng.standard_normal((T, N, H)).astype(np.float32)
        plain = rnnkit.LSTM(D, H, seed=0)
        fns = {"plain_fused": lambda: rnnkit_step(plain, x, dy), "plain_numpy": lambda: plain_on_numpy(plain, x, dy)}
        for name, kw in VARIANTS.items():
            fns[name] = lambda m=rnnkit.LSTM(D, H, seed=0, **kw): rnnkit_step(m, x, dy)
        row = {"H": H, **{f"{k}_ms": v for k, v in interleaved(fns, args.repeats).items()}}
        rows.append(row)
        print(row)
    names = list(VARIANTS)
    md = (f"One training step (forward + BPTT) of a one-layer LSTM, T={T}, N={N}, D={D}, float32, "
          f"{torch.get_num_threads()} threads; median of {args.repeats} repeats, the configurations timed in turn "
          "within each repeat. The plain LSTM on the fused "
          "kernels and on the NumPy loop; layer_norm on its fused kernels, the other variants on the NumPy loop. "
          "x: ratio to the plain LSTM (fused).\n\n"
          "| H | plain (fused) ms | plain (NumPy loop) ms | " + " | ".join(f"{n} ms" for n in names) + " |\n"
          "|---|---|---|" + "---|" * len(names) + "\n")
    for r in rows:
        base = r["plain_fused_ms"]
        md += (f"| {r['H']} | {base:.1f} | {r['plain_numpy_ms']:.1f} | "
               + " | ".join(f"{r[n + '_ms']:.1f} ({r[n + '_ms'] / base:.2f}x)" for n in names) + " |\n")
    load = (load_before, os.getloadavg()[0])
    md += (f"\nLoad average (1 min) {load[0]:.1f} before, {load[1]:.1f} after, on {os.cpu_count()} cores"
           + (": a busy machine, so the times are inflated and the ratios only indicative.\n"
              if max(load) > 0.5 * os.cpu_count() else ".\n"))
    save("variants_speed", md, {"rows": rows, "load_average": load, "cores": os.cpu_count()})


if __name__ == "__main__":
    main()
