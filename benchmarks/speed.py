"""rnnkit beside PyTorch on the CPU: training-step time, peak memory, achieved FLOP/s.

torch-rnn's protocol: batch 50, sequence 50, input 64, hidden 64-512, float32, both libraries at
2 threads, medians over repeats, the two libraries in alternation. Each library runs in its own
worker process, in blocks of steps run back to back (the first of a block untimed): in one
process, each library's idle threads spin on the cores for a while after every call (OpenBLAS's
for about 0.1 s) and slowed the other's next step by up to 2x (benchmarks/NOTES.md, attempt 18),
which alternation inside one process cannot cancel. The parent pauses 0.3 s before each block,
because those spinning threads hurt the other process as well. Two workloads per size:

* ``module``: the recurrent module alone, forward + full BPTT with respect to its parameters
  and its input;
* ``charlm``: the whole character-model training step, embedding (vocabulary 65, embedding 64)
  -> recurrent layers -> linear head -> cross-entropy, backward, gradient clipping at norm 5
  and an Adam update.

Memory is the growth of peak resident memory during one full-size training step, each
measurement in a fresh process, after a warm-up step of the same model on a tiny input (JIT
compilation, libraries loaded, PyTorch's ``.grad`` tensors allocated), so the growth is what
the full-size step itself needs. Prints a table and writes ``benchmarks/results/speed.json``.

Each pair of blocks is also placed by where the machine's two cores were: the cores' round trip
(:func:`round_trip`) is measured before the first pair and after each, and the tables end with
the paired ratios of the pairs measured with the cores near (both round trips at most
:data:`FAR_NS`) and far apart (a median over fewer than :data:`MIN_PAIRS` pairs is not shown). On
this project's Zen 4 VM the two were 45-60 or 310-330 ns apart, changing every few seconds to
minutes (in one full table's run, 126 of 720 consecutive measures changed side), and the LSTM's
ratio at H=128 was 0.89 near and 1.00 far in one run (benchmarks/NOTES.md, attempt 90): the
headline ratio is the median of all pairs, as before.

    python benchmarks/speed.py                     # LSTM, 1 layer, hidden 64..512
    python benchmarks/speed.py --cells lstm,gru,rnn --layers 1,2 --hidden 64,128,256,512
    python benchmarks/speed.py --workloads charlm --layers 2 --hidden 256 --batch 32 --seq 64   # another shape
"""
from __future__ import annotations

import argparse
import functools
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

from _results import sgemm_rate, time_it  # noqa: E402  (benchmarks/ is the script's directory)

B, T, D = 50, 50, 64    # torch-rnn's batch and sequence (``--batch``, ``--seq`` for others), input
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
HERE = os.path.dirname(os.path.abspath(__file__))


def step_flops(cell, H, layers, workload="module"):
    """Multiply-adds x 2 of one forward + backward (backward ~ 2x forward) of the matrix products."""
    G, total = GATES[cell], 0
    for layer in range(layers):
        d_in = D if layer == 0 else H
        total += 2 * T * B * G * H * (d_in + H)
    if workload == "charlm":
        total += 2 * T * B * H * V             # the linear head
    return 3 * total


V = 65            # vocabulary of the charlm workload (tiny-shakespeare's)
CLIP, LR = 5.0, 2e-3


@functools.lru_cache(maxsize=None)
def _inputs(shape, seed=0):
    """The module's input, made once per shape: its random numbers are no part of a training step.
    Neither library writes to it."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _ids(batch, seq, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (seq, batch)), rng.integers(0, V, (seq, batch))


def make_rnnkit(cell, H, layers, workload="module"):
    """A function ``step(batch, seq)`` running one training step of rnnkit at that input size."""
    import rnnkit
    from rnnkit.models import CharLM
    from rnnkit.optim import Adam, clip_grad_norm

    if workload == "charlm":
        model = CharLM(V, D, H, layers, cell, seed=0)
        opt = Adam(model, lr=LR)

        def step(batch=B, seq=T):
            model.zero_grad()
            model.train_step(_ids(batch, seq))
            clip_grad_norm(model, CLIP)
            opt.step()
        return step
    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[cell]
    m = cls(D, H, num_layers=layers, seed=0)

    def step(batch=B, seq=T):
        m.zero_grad()
        y, _ = m(_inputs((seq, batch, D)))
        m.backward(np.ones((seq, batch, H), np.float32))
    return step


def torch_charlm(cell, V, E, H, layers):
    """PyTorch's counterpart of rnnkit's CharLM (same parameter names, so state dicts load)."""
    import torch

    class TorchCharLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(V, E)
            self.rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](E, H, layers)
            self.head = torch.nn.Linear(H, V)

        def forward(self, x, state=None):
            y, state = self.rnn(self.embed(x), state)
            return self.head(y), state
    return TorchCharLM()


def make_torch(cell, H, layers, workload="module"):
    import torch

    torch.set_num_threads(2)
    if workload == "charlm":
        model = torch_charlm(cell, V, D, H, layers)
        opt = torch.optim.Adam(model.parameters(), lr=LR)

        def step(batch=B, seq=T):
            x, y = (torch.from_numpy(a) for a in _ids(batch, seq))
            opt.zero_grad()
            logits, _ = model(x)
            torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1)).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
        return step
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    m = cls(D, H, num_layers=layers)

    def step(batch=B, seq=T):
        m.zero_grad()
        x = torch.from_numpy(_inputs((seq, batch, D))).requires_grad_()
        y, _ = m(x)
        y.backward(torch.ones(seq, batch, H))
    return step


MAKERS = {"rnnkit": make_rnnkit, "torch": make_torch}


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child_memory(lib, cell, H, layers, workload):
    """Run in a fresh process: growth of peak resident memory during one full-size training
    step, after a warm-up step of the same model on a tiny input. Linux: the peak is reset
    through /proc/self/clear_refs, then read back as VmHWM."""
    step = MAKERS[lib](cell, H, layers, workload)
    step(2, 3)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kb("VmRSS")
    step()
    print(json.dumps({"bytes": (_status_kb("VmHWM") - before) * 1024}))


def memory(lib, cell, H, layers, workload):
    out = subprocess.run([sys.executable, __file__, "--child", lib, cell, str(H), str(layers), workload,
                          *_shape_args()], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["bytes"]


def split_product_rate(n=1024, repeats=10) -> float:
    """FLOP/s of rnnkit's split product (``products.matmul``: its own product where it is in use,
    else BLAS's) on an n^3 float32 square, 2 threads. Measure NumPy's first: rnnkit sets BLAS to
    one thread when it first computes."""
    from rnnkit import products, threads

    threads.set_num_threads(2)
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    return 2 * n ** 3 / time_it(lambda: products.matmul(a, a), repeats)


def own_note(n=1024, repeats=10) -> str:
    """rnnkit's own product's rate on the same square, 2 threads, or why it is not in use."""
    from rnnkit import products

    if not products.own_product():
        return "rnnkit's own product not in use (RNNKIT_PRODUCT, or no AVX-512)"
    return f"rnnkit's own product {split_product_rate(n, repeats) / 1e9:.1f} GFLOP/s on the same"


def blas_note() -> str:
    """Which kernels NumPy's OpenBLAS runs, and whether the environment chose them: the machine of
    this project's later sessions (AMD Zen 5, AVX-512) sets ``OPENBLAS_CORETYPE=Haswell`` (AVX2),
    which halves every product's rate against the AVX-512 kernels OpenBLAS picks by itself there
    (benchmarks/NOTES.md, attempt 33); PyTorch's oneDNN and MKL do not read it."""
    from threadpoolctl import threadpool_info

    cores = sorted({i.get("architecture", "?") for i in threadpool_info() if i.get("internal_api") == "openblas"})
    forced = os.environ.get("OPENBLAS_CORETYPE")
    return (f"OpenBLAS kernels {', '.join(cores) or 'none'}"
            + (f" (OPENBLAS_CORETYPE={forced} in the environment)" if forced else " (its own choice)"))


def positive(text):
    """An argument that is a whole number of at least 1 (argparse reports anything else in one line)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _shape_args():
    """The batch and sequence options a worker or memory child needs to measure this run's shape."""
    return () if (B, T) == (50, 50) else ("--batch", str(B), "--seq", str(T))


def main():
    global B, T
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="lstm")
    ap.add_argument("--layers", default="1")
    ap.add_argument("--hidden", default="64,128,256,512")
    ap.add_argument("--workloads", default="module,charlm", help="module, charlm or both")
    ap.add_argument("--repeats", type=positive, default=15)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--batch", type=positive, default=B, help="batch size (torch-rnn's protocol: 50)")
    ap.add_argument("--seq", type=positive, default=T, help="sequence length (torch-rnn's protocol: 50)")
    ap.add_argument("--out", help="results file (default results/speed.json, or results/speed_b{batch}_t{seq}.json "
                                  "for another shape)")
    ap.add_argument("--child", nargs=5, metavar=("LIB", "CELL", "H", "LAYERS", "WORKLOAD"), help=argparse.SUPPRESS)
    ap.add_argument("--worker", nargs=5, metavar=("LIB", "CELL", "H", "LAYERS", "WORKLOAD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    B, T = args.batch, args.seq
    if args.out is None:
        args.out = os.path.join(HERE, "results", "speed.json" if (B, T) == (50, 50) else f"speed_b{B}_t{T}.json")
    if args.child:
        lib, cell, H, layers, workload = args.child
        child_memory(lib, cell, int(H), int(layers), workload)
        return
    if args.worker:
        lib, cell, H, layers, workload = args.worker
        worker(lib, cell, int(H), int(layers), workload)
        return
    peak = sgemm_rate()
    rows = []
    head = (f"{'workload':8} {'cell':5} {'L':>2} {'H':>4} | {'rnnkit ms':>9} {'torch ms':>9} {'ratio':>6} | "
            f"{'rnnkit MB':>9} {'torch MB':>9} {'ratio':>6} | {'GFLOP/s':>7} {'of peak':>7}")
    blas = f"{blas_note()}; {own_note()}"
    print(f"machine: {platform.processor() or platform.machine()}, sgemm peak {peak / 1e9:.1f} GFLOP/s "
          f"(NumPy, 1024^3, 2 threads; {blas}); batch {B}, seq {T}, input {D}, float32, forward + full BPTT")
    print(head)
    print("-" * len(head))
    for workload in args.workloads.split(","):
        for cell in args.cells.split(","):
            for layers in map(int, args.layers.split(",")):
                for H in map(int, args.hidden.split(",")):
                    rows.append(measure(workload, cell, layers, H, args, peak))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": platform.platform(), "sgemm_flops": peak, "blas": blas, "batch": B, "seq_len": T, "input": D,
                   "vocab": V, "rows": rows}, f, indent=2)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(markdown(rows, peak, [int(h) for h in args.hidden.split(",")], blas))
    print(f"wrote {args.out} and its .md")


def worker(lib, cell, H, layers, workload, warmup=3):
    """A library's side of :func:`paired` (see :func:`serve`)."""
    serve(MAKERS[lib](cell, H, layers, workload), warmup)


def serve(step, warmup=3, status=None):
    """A worker process's loop: runs ``warmup`` steps, says ready, then reads a count k per line,
    runs k steps back to back and prints the times of all but the first as a JSON list; k = 0
    prints ``status()`` instead (``benchmarks/busy.py``: the auto tuner's thread count); an empty
    line ends it."""
    for _ in range(warmup):
        step()
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        if int(line) == 0:
            print(json.dumps(status() if status else None), flush=True)
            continue
        times = []
        for _ in range(int(line)):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        print(json.dumps(times[1:]), flush=True)


class _Worker:
    """A library's steps in a process of its own: this script's ``--worker`` (or ``script``'s, with
    ``extra`` arguments after the five)."""

    def __init__(self, lib, cell, H, layers, workload, script=__file__, extra=()):
        self.p = subprocess.Popen([sys.executable, script, "--worker", lib, cell, str(H), str(layers), workload,
                                   *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.p.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{lib} worker did not start")

    def block(self, k):
        self.p.stdin.write(f"{k}\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def status(self):
        return self.block(0)

    def close(self):
        """Ends the worker: an empty line, or, when it has died or does not end, a kill."""
        try:
            self.p.stdin.write("\n")
            self.p.stdin.close()
            self.p.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()


# the cores' round trip (:func:`round_trip`) above which a pair counts as measured with the cores
# far apart: this VM's two cores were 45-60 ns apart at some times and 310-330 at others, nothing
# between (benchmarks/NOTES.md, attempt 90); the tables show a phase's median from MIN_PAIRS pairs
FAR_NS = 150
MIN_PAIRS = 3


@functools.lru_cache(maxsize=None)
def _ping():
    """The compiled ping of :func:`round_trip` (compiled once a process)."""
    import numba

    from rnnkit.kernels._sync import fetch_add, load_acquire

    @numba.njit(parallel=True)
    def ping(a, n):
        for w in numba.prange(2):
            for i in range(n):
                spins = 0
                while load_acquire(a, 0) != 2 * i + w and spins < 100_000_000:
                    spins += 1
                if spins == 100_000_000:          # the two workers did not run side by side
                    a[8] = 1
                    break
                fetch_add(a, 0)
        return 0
    return ping


def round_trip(n=20_000, rounds=3) -> float:
    """Seconds a cache line takes to go from one core to the other and back, best of ``rounds``:
    two workers of rnnkit's thread pool take turns incrementing one counter (``kernels._sync``'s
    atomics); NaN without two threads. This VM's two cores are sometimes 45-130 ns apart,
    sometimes 310-400 (benchmarks/NOTES.md, attempts 62 and 90), and both libraries' steps, and
    their ratio, move with it: the tables say which pairs were measured where. It is measured on
    this process's threads, between the workers' blocks: the placement at those moments, which
    can change in seconds."""
    import numba

    if numba.get_num_threads() < 2:
        return float("nan")
    ping = _ping()
    a = np.zeros(16, np.int64)
    ping(a, 10)
    best = float("inf")
    for _ in range(rounds):
        a[:] = 0
        t0 = time.perf_counter()
        ping(a, n)
        best = min(best, (time.perf_counter() - t0) / n)
    return float("nan") if a[8] else best


def _or_none(seconds):
    """A round trip for the JSON: None for NaN (no measure), which strict JSON has no word for."""
    return None if seconds != seconds else seconds


def phase_of(before, after) -> str:
    """``near`` or ``far`` when both round trips around a pair (seconds) are on one side of
    :data:`FAR_NS`, else ``mixed`` (the cores moved during the pair, or no measure: NaN or None)."""
    if before is None or after is None:
        return "mixed"
    if before * 1e9 <= FAR_NS and after * 1e9 <= FAR_NS:
        return "near"
    if before * 1e9 > FAR_NS and after * 1e9 > FAR_NS:
        return "far"
    return "mixed"


def by_phase(pairs) -> dict:
    """``{near|far|mixed: {"pairs": n, "ratio": median a / b}}`` of :func:`alternate`'s ``pairs``."""
    out = {}
    for name in ("near", "far", "mixed"):
        ratios = [p["a"] / p["b"] for p in pairs if phase_of(p["trip_before"], p["trip_after"]) == name]
        out[name] = {"pairs": len(ratios), "ratio": statistics.median(ratios) if ratios else None}
    return out


def paired(libs, cell, H, layers, workload, repeats, block=3, pause=0.3, pairs=None):
    """torch-rnn's protocol, each library in its own process: blocks of ``block`` steps alternate
    (the order swapped every repeat), so a change in the machine's load hits both. Before each
    block the parent waits ``pause`` seconds, longer than OpenBLAS's idle threads spin (about
    0.1 s: they took the cores from the other process's next steps), and a block's first step is
    untimed (its pools wake); the block's time is the median of the rest. Returns the median times
    and the median of the paired ratios a / b, and fills ``pairs`` (a list) as :func:`alternate`
    does."""
    workers = []
    try:
        for lib in libs:
            workers.append(_Worker(lib, cell, H, layers, workload, extra=_shape_args()))
        return alternate(workers, repeats, block, pause, pairs)
    finally:
        for w in workers:
            w.close()


def alternate(workers, repeats, block=3, pause=0.3, pairs=None):
    """:func:`paired`'s alternation on two running :class:`_Worker` s. With ``pairs`` (a list), the
    cores' round trip (:func:`round_trip`) is measured before each pair and after the last, before
    the pause, and each pair is appended as ``{"a", "b", "trip_before", "trip_after"}`` (seconds)."""
    ta, tb = [], []
    trip = round_trip() if pairs is not None else None
    for r in range(repeats):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            time.sleep(pause)                  # the other process's idle threads stop spinning
            (ta, tb)[which].append(statistics.median(workers[which].block(block)))
        if pairs is not None:
            after = round_trip()
            pairs.append({"a": ta[-1], "b": tb[-1], "trip_before": _or_none(trip), "trip_after": _or_none(after)})
            trip = after
    return statistics.median(ta), statistics.median(tb), statistics.median(a / b for a, b in zip(ta, tb))


def paired_steps(step_a, step_b, repeats, warmup=3):
    """The same alternation inside one process (``benchmarks/busy.py``, which compares each
    library with itself, quiet against busy): returns the median times and the median of the
    paired ratios a / b."""
    for _ in range(warmup):
        step_a(), step_b()
    ta, tb = [], []
    for r in range(repeats):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            (step_a, step_b)[which]()
            (ta, tb)[which].append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb), statistics.median(a / b for a, b in zip(ta, tb))


def measure(workload, cell, layers, H, args, peak):
    """One row of the table: times and memory, each library in processes of its own."""
    pairs = []
    t_r, t_t, ratio = paired(("rnnkit", "torch"), cell, H, layers, workload, args.repeats, pairs=pairs)
    m_r = m_t = float("nan")
    if not args.no_memory:
        m_r, m_t = (memory(lib, cell, H, layers, workload) for lib in ("rnnkit", "torch"))
    fl = step_flops(cell, H, layers, workload) / t_r
    row = dict(workload=workload, cell=cell, layers=layers, hidden=H, rnnkit_s=t_r, torch_s=t_t,
               time_ratio=ratio, rnnkit_bytes=m_r, torch_bytes=m_t,
               memory_ratio=m_r / m_t if m_t > 0 else float("nan"), rnnkit_flops=fl, peak_fraction=fl / peak,
               pairs=pairs, by_phase=by_phase(pairs))
    print(f"{workload:8} {cell:5} {layers:>2} {H:>4} | {t_r * 1e3:9.2f} {t_t * 1e3:9.2f} {row['time_ratio']:6.2f} | "
          f"{m_r / 2**20:9.1f} {m_t / 2**20:9.1f} {row['memory_ratio']:6.2f} | "
          f"{fl / 1e9:7.2f} {fl / peak:7.1%} | {_phases_text(row['by_phase'])}", flush=True)
    return row


def _phase_cell(v) -> str:
    """One phase of :func:`by_phase`: ``0.82 x9`` (median ratio x pairs), or only the count below
    :data:`MIN_PAIRS` pairs, ``-`` for none."""
    return f"{v['ratio']:.2f} x{v['pairs']}" if v["pairs"] >= MIN_PAIRS else f"x{v['pairs']}" if v["pairs"] else "-"


def _phases_text(phases) -> str:
    """``near 0.82 x9, far x2, mixed x4``: the paired ratios by where the cores were."""
    return f"near {_phase_cell(phases['near'])}, far {_phase_cell(phases['far'])}, mixed x{phases['mixed']['pairs']}"


def markdown(rows, peak, hidden, blas=""):
    """The time tables as NOTES.md shows them: ms per step rnnkit / PyTorch (median paired ratio)."""
    out = [f"`python benchmarks/speed.py` on {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
           f"sgemm {peak / 1e9:.1f} GFLOP/s measured in the same run (1024^3, 2 threads{'; ' + blas if blas else ''}); "
           f"batch {B}, sequence {T}, "
           f"input {D}, float32, forward + full BPTT; ms per step rnnkit / PyTorch (median of paired ratios)."]
    for workload in dict.fromkeys(r["workload"] for r in rows):
        out += ["", f"**{workload}**", "", "| cell | layers | " + " | ".join(f"H={h}" for h in hidden) + " |",
                "|---|---|" + "---|" * len(hidden)]
        for key in dict.fromkeys((r["cell"], r["layers"]) for r in rows if r["workload"] == workload):
            cells = {r["hidden"]: r for r in rows if (r["workload"], r["cell"], r["layers"]) == (workload, *key)}
            out.append(f"| {key[0].upper()} | {key[1]} | " + " | ".join(
                f"{cells[h]['rnnkit_s'] * 1e3:.1f} / {cells[h]['torch_s'] * 1e3:.1f} ({cells[h]['time_ratio']:.2f})"
                if h in cells else "-" for h in hidden) + " |")
    phased = [r for r in rows if "by_phase" in r]
    if phased:
        out += ["", f"The same paired ratios by where the two cores were: the cores' round trip measured before "
                f"and after each pair, both at most {FAR_NS} ns (near) or both above (far); ratio x pairs, "
                f"the ratio from {MIN_PAIRS} pairs on (pairs whose cores moved between the two measures are "
                f"left out of both)."]
        for workload in dict.fromkeys(r["workload"] for r in phased):
            out += ["", f"**{workload}, near / far**", "",
                    "| cell | layers | " + " | ".join(f"H={h}" for h in hidden) + " |",
                    "|---|---|" + "---|" * len(hidden)]
            for key in dict.fromkeys((r["cell"], r["layers"]) for r in phased if r["workload"] == workload):
                cells = {r["hidden"]: r["by_phase"] for r in phased if (r["workload"], r["cell"], r["layers"])
                         == (workload, *key)}
                out.append(f"| {key[0].upper()} | {key[1]} | " + " | ".join(
                    f"{_phase_cell(c['near'])} / {_phase_cell(c['far'])}" if (c := cells.get(h)) else "-"
                    for h in hidden) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
