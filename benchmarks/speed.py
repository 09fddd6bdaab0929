"""rnnkit beside PyTorch on the CPU: training-step time, peak memory, achieved FLOP/s.

torch-rnn's protocol: batch 50, sequence 50, input 64, hidden 64-512, float32, both libraries at
2 threads, medians over repeats. Memory is the growth of peak resident memory during one
training step, each measurement in a fresh process. Prints a table and writes
``benchmarks/results/speed.json``.

    python benchmarks/speed.py                     # LSTM, 1 layer, hidden 64..512
    python benchmarks/speed.py --cells lstm,gru,rnn --layers 1,2 --hidden 64,128,256,512
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")

import numpy as np  # noqa: E402

B, T, D = 50, 50, 64
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
HERE = os.path.dirname(os.path.abspath(__file__))


def step_flops(cell, H, layers):
    """Multiply-adds x 2 of one forward + backward (backward ~ 2x forward) of the matrix products."""
    G, total = GATES[cell], 0
    for layer in range(layers):
        d_in = D if layer == 0 else H
        total += 2 * T * B * G * H * (d_in + H)
    return 3 * total


def make_rnnkit(cell, H, layers):
    import rnnkit

    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[cell]
    m = cls(D, H, num_layers=layers, seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, D)).astype(np.float32)
    dy = np.ones((T, B, H), np.float32)

    def step():
        m.zero_grad()
        y, _ = m(x)
        m.backward(dy)
    return step


def make_torch(cell, H, layers):
    import torch

    torch.set_num_threads(2)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    m = cls(D, H, num_layers=layers)
    x = torch.randn(T, B, D, requires_grad=True)
    dy = torch.ones(T, B, H)

    def step():
        m.zero_grad()
        y, _ = m(x)
        y.backward(dy)
    return step


MAKERS = {"rnnkit": make_rnnkit, "torch": make_torch}


def time_it(step, repeats, warmup=3):
    for _ in range(warmup):
        step()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child_memory(lib, cell, H, layers):
    """Run in a fresh process: growth of peak resident memory during one training step, after a
    warm-up step (JIT compilation, allocator pools). Linux: the peak is reset through
    /proc/self/clear_refs, then read back as VmHWM."""
    step = MAKERS[lib](cell, H, layers)
    step()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kb("VmRSS")
    step()
    print(json.dumps({"bytes": (_status_kb("VmHWM") - before) * 1024}))


def memory(lib, cell, H, layers):
    out = subprocess.run([sys.executable, __file__, "--child", lib, cell, str(H), str(layers)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["bytes"]


def matmul_rate(n=1024, repeats=10):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.copy()
    sec = time_it(lambda: a @ b, repeats)
    return 2 * n ** 3 / sec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="lstm")
    ap.add_argument("--layers", default="1")
    ap.add_argument("--hidden", default="64,128,256,512")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "speed.json"))
    ap.add_argument("--child", nargs=4, metavar=("LIB", "CELL", "H", "LAYERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        lib, cell, H, layers = args.child
        child_memory(lib, cell, int(H), int(layers))
        return
    peak = matmul_rate()
    rows = []
    head = (f"{'cell':5} {'L':>2} {'H':>4} | {'rnnkit ms':>9} {'torch ms':>9} {'ratio':>6} | "
            f"{'rnnkit MB':>9} {'torch MB':>9} {'ratio':>6} | {'GFLOP/s':>7} {'of peak':>7}")
    print(f"machine: {platform.processor() or platform.machine()}, sgemm peak {peak / 1e9:.1f} GFLOP/s "
          f"(1024^3, 2 threads); batch {B}, seq {T}, input {D}, float32, forward + full BPTT")
    print(head)
    print("-" * len(head))
    for cell in args.cells.split(","):
        for layers in map(int, args.layers.split(",")):
            for H in map(int, args.hidden.split(",")):
                t_r = time_it(MAKERS["rnnkit"](cell, H, layers), args.repeats)
                t_t = time_it(MAKERS["torch"](cell, H, layers), args.repeats)
                m_r = m_t = float("nan")
                if not args.no_memory:
                    m_r, m_t = memory("rnnkit", cell, H, layers), memory("torch", cell, H, layers)
                fl = step_flops(cell, H, layers) / t_r
                row = dict(cell=cell, layers=layers, hidden=H, rnnkit_s=t_r, torch_s=t_t, time_ratio=t_r / t_t,
                           rnnkit_bytes=m_r, torch_bytes=m_t, memory_ratio=m_r / m_t if m_t else float("nan"),
                           rnnkit_flops=fl, peak_fraction=fl / peak)
                rows.append(row)
                print(f"{cell:5} {layers:>2} {H:>4} | {t_r * 1e3:9.2f} {t_t * 1e3:9.2f} {row['time_ratio']:6.2f} | "
                      f"{m_r / 2**20:9.1f} {m_t / 2**20:9.1f} {row['memory_ratio']:6.2f} | "
                      f"{fl / 1e9:7.2f} {fl / peak:7.1%}", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": platform.platform(), "sgemm_flops": peak, "batch": B, "seq_len": T, "input": D,
                   "rows": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
