"""Memory on demand: one training step (forward + BPTT) of an LSTM on a sequence of length L,
with every step's cache kept (``recompute=0``) and with gradient checkpointing by segments of
sqrt(L) steps (``recompute="sqrt"``).

    python benchmarks/recompute.py [--lengths 1000,3000,10000,30000,100000]

LSTM, one layer, input 32, hidden 128, batch 8, float32. Each case runs in a fresh process:
memory is the rise of the process's peak resident size during the step (``ru_maxrss`` after
minus the resident size before: what the step added), time the step's wall time after a warm-up.
Writes benchmarks/results/recompute.{md,json}.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

from _results import save, sgemm_rate, sgemm_text  # noqa: E402  (benchmarks/ is the script's directory)


CASE = """
import resource, sys, time
import numpy as np
import rnnkit
L, recompute = int(sys.argv[1]), sys.argv[2]
recompute = recompute if recompute == "sqrt" else int(recompute)
D, H, N = 32, 128, 8
rng = np.random.default_rng(0)
x = rng.standard_normal((L, N, D)).astype(np.float32)
dy = (rng.standard_normal((L, N, H)) * 1e-3).astype(np.float32)
m = rnnkit.LSTM(D, H, seed=0, recompute=recompute)
m(x[:50]); m.backward(dy[:50])                      # warm-up (JIT)
with open("/proc/self/statm") as f:
    before = int(f.read().split()[1]) * resource.getpagesize()
t0 = time.perf_counter()
m.zero_grad(); m(x); m.backward(dy)
seconds = time.perf_counter() - t0
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before, seconds)
"""


def case(L, recompute):
    out = subprocess.run([sys.executable, "-c", CASE, str(L), str(recompute)], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]) / 2**20, float(out[1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lengths", default="1000,3000,10000,30000,100000")
    args = p.parse_args()
    D, H, N = 32, 128, 8
    rate = sgemm_rate()                     # (the cases run in processes of their own)
    print(sgemm_text(rate), flush=True)
    rows = []
    for L in map(int, args.lengths.split(",")):
        row = {"L": L}
        for name, recompute in (("full", 0), ("sqrt", "sqrt")):
            row[f"{name}_mb"], row[f"{name}_s"] = case(L, recompute)
        rows.append(row)
        print(row, flush=True)
    md = (f"One training step, LSTM input {D}, hidden {H}, batch {N}, float32: memory the step adds to the "
          "process (includes the (L, N, H) output and its gradient, which both ways keep), and time; "
          f"{sgemm_text(rate)}.\n\n"
          "| L | kept every step: MiB | s | recompute='sqrt': MiB | s | memory ratio | time ratio |\n"
          "|---|---|---|---|---|---|---|\n")
    for r in rows:
        md += (f"| {r['L']:,} | {r['full_mb']:,.1f} | {r['full_s']:.2f} | {r['sqrt_mb']:,.1f} | {r['sqrt_s']:.2f} | "
               f"{r['sqrt_mb'] / r['full_mb']:.2f} | {r['sqrt_s'] / r['full_s']:.2f} |\n")
    save("recompute", md, {"sgemm_flops": rate, "rows": rows})


if __name__ == "__main__":
    main()
