"""A good neighbour on a busy machine: how much rnnkit's and PyTorch's training steps slow down
when one CPU-bound process shares the cores (issue 16, item 5).

Each library runs in a worker process of its own, and their blocks of steps alternate after a
pause, as in ``speed.py`` (``speed.alternate``; each library is compared with itself, quiet
against busy): first on the quiet machine, then with one competing process running a
pure-Python busy loop (one core's worth of work, started before and killed after the busy
blocks). The slowdown is busy / quiet for each library. Both libraries in one process, as this
script measured before (attempt 81), made each one's quiet step slower than alone: PyTorch's
CharLM step at H=128 took 35-39 ms there against 27 in ``speed.py``, since each library's idle
threads spin on the cores the other needs, which flattered PyTorch's slowdown. rnnkit is
measured three ways, to find the cause rather than guess it:

* ``every core`` (the default): the time loop's hidden units split over the machine's cores,
  the threads meeting once a step (``kernels/_parallel.py``), BLAS at one thread;
* ``1 thread`` (``RNNKIT_NUM_THREADS=1``): the same loop on one thread, one thread everywhere;
* ``auto`` (``RNNKIT_NUM_THREADS=auto``): each step wrapped in the Trainer's
  :class:`rnnkit.threads.ThreadTuner`, which times steps at every core and at one and keeps the
  faster. Twelve untimed steps open its worker (the tuner's warm-up and first trial take 8), and
  each phase opens with ``WARM`` blocks untimed (noticing the competitor and trying again takes
  about 9 steps), so the table shows its steady state; the thread counts it chose, quiet and
  busy, are in the variant column.

    python benchmarks/busy.py                  # CharLM steps, LSTM and GRU, 2 layers, H 128 and 256
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import speed  # noqa: E402
from _results import save, sgemm_rate, sgemm_text  # noqa: E402

VARIANTS = ("every core", "1 thread", "auto")


def competitor():
    """One CPU-bound process: a pure-Python loop, no threads."""
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(1.0)
    return p


def variant(name):
    import rnnkit
    from rnnkit import threads

    rnnkit.set_num_threads(1 if name == "1 thread" else "auto" if name == "auto" else threads.cores())


def tuned(step):
    """``step`` inside a ThreadTuner, as the Trainer runs it (RNNKIT_NUM_THREADS=auto)."""
    from rnnkit import threads

    tuner = threads.tuner()

    def run():
        with tuner.step():
            step()
    run.tuner = tuner
    return run


def worker(cell, H, layers, workload, name):
    """rnnkit's worker (``speed.serve``) at the thread setting ``name`` (PyTorch's is
    ``speed.py``'s own). The block count ``0`` asks for the auto tuner's thread count instead of
    steps."""
    variant(name)
    step = speed.make_rnnkit(cell, H, layers, workload)
    if name == "auto":
        step = tuned(step)
    speed.serve(step, warmup=12 if name == "auto" else 3,
                status=(lambda: step.tuner.current) if name == "auto" else None)


WARM = 4          # blocks each phase opens with, untimed


def phase(workers, repeats):
    """Quiet or busy: ``WARM`` blocks of each, untimed, then ``speed.alternate``'s medians."""
    speed.alternate(workers, WARM)
    return speed.alternate(workers, repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", default="128,256")
    ap.add_argument("--workload", default="charlm", choices=("charlm", "module"))
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _, cell, H, layers, workload, name = args.worker
        return worker(cell, int(H), int(layers), workload, name)
    rate = sgemm_rate()                     # (each library runs in processes of its own)
    print(sgemm_text(rate), flush=True)
    rows = []
    for cell in args.cells.split(","):
        for H in map(int, args.hidden.split(",")):
            torch_worker = speed._Worker("torch", cell, H, args.layers, args.workload)
            try:
                for name in VARIANTS:
                    ours = speed._Worker("rnnkit", cell, H, args.layers, args.workload, script=__file__, extra=(name,))
                    try:
                        workers = [ours, torch_worker]
                        q_r, q_t, _ = phase(workers, args.repeats)
                        chosen = [ours.status()] if name == "auto" else []
                        p = competitor()
                        try:
                            b_r, b_t, _ = phase(workers, args.repeats)
                        finally:
                            p.kill()
                            p.wait()
                        if name == "auto":
                            chosen.append(ours.status())
                    finally:
                        ours.close()
                    row = dict(cell=cell, hidden=H, layers=args.layers, variant=name, quiet_rnnkit_s=q_r,
                               quiet_torch_s=q_t, busy_rnnkit_s=b_r, busy_torch_s=b_t, slowdown_rnnkit=b_r / q_r,
                               slowdown_torch=b_t / q_t, auto_threads_quiet_busy=chosen)
                    rows.append(row)
                    print(f"{cell} H={H} {name:9}: rnnkit {q_r * 1e3:7.1f} -> {b_r * 1e3:7.1f} ms (x{b_r / q_r:.2f}); "
                          f"torch {q_t * 1e3:7.1f} -> {b_t * 1e3:7.1f} ms (x{b_t / q_t:.2f})", flush=True)
            finally:
                torch_worker.close()
    md = [f"`python benchmarks/busy.py` ({args.workload} step, {args.layers} layers, batch {speed.B} x {speed.T}), "
          f"{os.cpu_count()} cores; busy = one pure-Python CPU-bound process running beside; ms per step, "
          "each library in its own process, median of alternating blocks (speed.py's protocol); "
          f"{sgemm_text(rate)}.", "",
          "| cell | H | rnnkit threads | rnnkit quiet | rnnkit busy | rnnkit slowdown | PyTorch quiet | PyTorch busy "
          "| PyTorch slowdown |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        label = r["variant"] + (" ({} -> {})".format(*r["auto_threads_quiet_busy"]) if r["variant"] == "auto" else "")
        md.append(f"| {r['cell'].upper()} | {r['hidden']} | {label} | {r['quiet_rnnkit_s'] * 1e3:.1f} | "
                  f"{r['busy_rnnkit_s'] * 1e3:.1f} | {r['slowdown_rnnkit']:.2f}x | {r['quiet_torch_s'] * 1e3:.1f} | "
                  f"{r['busy_torch_s'] * 1e3:.1f} | {r['slowdown_torch']:.2f}x |")
    save("busy", "\n".join(md) + "\n", {"sgemm_flops": rate, "rows": rows, "repeats": args.repeats})


if __name__ == "__main__":
    main()
