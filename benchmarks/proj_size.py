"""The projected LSTM (``proj_size``) beside the plain LSTM and PyTorch's LSTMP: one training
step (forward + full BPTT), torch-rnn's shapes (T=50, N=50, D=64, float32), median of repeats.

    python benchmarks/proj_size.py [--repeats 15]

The projected LSTM runs on rnnkit's NumPy time loop (the fused kernels have no projection);
this measures what that costs. Writes benchmarks/results/proj_size.{md,json}.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import rnnkit

from _results import save, time_it  # noqa: E402  (benchmarks/ is the script's directory)



def rnnkit_step(m, x, dy):
    m.zero_grad()
    y, _ = m(x)
    m.backward(dy)


def torch_step(m, x, dy):
    m.zero_grad()
    y, _ = m(x)
    y.backward(dy)


def timed(fn, repeats):
    """Milliseconds of ``fn()``: the median of ``repeats`` calls after one untimed."""
    return 1e3 * time_it(fn, repeats, warmup=1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    T, N, D = 50, 50, 64
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, N, D)).astype(np.float32)
    rows = []
    for H, P in ((128, 64), (256, 128), (512, 256)):
        plain = rnnkit.LSTM(D, H, seed=0)
        proj = rnnkit.LSTM(D, H, proj_size=P, seed=0)
        tproj = torch.nn.LSTM(D, H, proj_size=P)
        dy_h = rng.standard_normal((T, N, H)).astype(np.float32)
        dy_p = rng.standard_normal((T, N, P)).astype(np.float32)
        xt, dyt = torch.from_numpy(x), torch.from_numpy(dy_p)
        row = {"H": H, "P": P,
               "rnnkit_plain_ms": timed(lambda: rnnkit_step(plain, x, dy_h), args.repeats),
               "rnnkit_proj_ms": timed(lambda: rnnkit_step(proj, x, dy_p), args.repeats),
               "torch_proj_ms": timed(lambda: torch_step(tproj, xt, dyt), args.repeats)}
        rows.append(row)
        print(row)
    md = (f"One training step (forward + BPTT), T={T}, N={N}, D={D}, float32, {torch.get_num_threads()} threads; "
          "median of repeats.\n\n| H | P | rnnkit LSTM (fused kernels) ms | rnnkit LSTM proj_size (NumPy loop) ms | "
          "torch LSTM proj_size ms | rnnkit proj / torch proj |\n|---|---|---|---|---|---|\n")
    for r in rows:
        md += (f"| {r['H']} | {r['P']} | {r['rnnkit_plain_ms']:.1f} | {r['rnnkit_proj_ms']:.1f} | "
               f"{r['torch_proj_ms']:.1f} | {r['rnnkit_proj_ms'] / r['torch_proj_ms']:.2f} |\n")
    save("proj_size", md, rows)


if __name__ == "__main__":
    main()
