"""Where the one-layer LSTM module's training step goes: ``speed.py``'s module workload (batch 50,
sequence 50, input 64, float32, forward + full BPTT), split into its compiled parts, beside
PyTorch's step measured the same steady way.

``speed.py`` times two steps after a pause, in alternation; this script answers what its table
cannot: which part of rnnkit's step costs what, how far each part is from the rate rnnkit's
product reaches on a large square (two threads: its own where it runs, else BLAS's), and what the
step would take if every product and both time loops ran at that rate and nothing else cost
anything (the design's bound). Parts:

* the input projection (one split product before the loop) and the backward's three products
  after it (``dW_hh``, ``dW_ih``, the input gradient);
* the forward and backward time loops (their per-step products and the gate arithmetic, fused);
* the transposing copies (the projection's input, ``W_hh^T``);
* everything else: Python, NumPy's small operations, the input and gradient checks, the
  module's output copy, allocations.

The parts are timed by wrapping the compiled entry points (``kernels._parallel``) in the running
process, so it measures rnnkit's code as it stands; a renamed entry point fails here loudly. Also
the fixed cost of a step (batch 2, sequence 2: almost no arithmetic), and both libraries' steady
step time, each in its own worker process (``speed._Worker``), in alternating blocks of
``--block`` timed steps back to back after ``speed.py``'s pause and as many untimed ones: after a
pause this machine needs 10-15 ms of work to come back to speed (benchmarks/NOTES.md, attempt 62),
which ``speed.py``'s two timed steps a block fall into, for both libraries. The profile's own
rounds likewise start with ``WARM`` seconds of untimed steps. The profile's rounds and
the workers' blocks interleave, so that the machine's slow and fast phases (minutes long here,
and up to 30% apart: benchmarks/NOTES.md, attempt 43) reach all of them alike. Writes
``benchmarks/results/step_profile.{md,json}``.

    python benchmarks/step_profile.py                   # hidden 64 and 128
    python benchmarks/step_profile.py --hidden 64,128,256 --rounds 9
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import speed
from _results import save


class Parts:
    """Wraps the compiled entry points the LSTM step calls and adds up their time per name."""
    NAMES = {"lstm_forward": "forward loop", "lstm_backward": "backward loop", "split_gemm": "products",
             "gemm_three": "products", "transpose_into": "transposing copies"}

    def __init__(self):
        from rnnkit import products
        from rnnkit.kernels import _parallel as P

        self.acc = dict.fromkeys(self.NAMES.values(), 0.0)
        for name in ("lstm_forward", "lstm_backward"):
            P.LOOPS[name] = self._timed(name, P.LOOPS[name])
        for name in ("gemm_three", "split_gemm", "transpose_into"):
            setattr(P, name, self._timed(name, getattr(P, name)))
        if products._compiled() is None:
            raise SystemExit("step_profile: the compiled backend (Numba, SciPy) is not in use")
        products._COMPILED[0] = (products._COMPILED[0][0], P.split_gemm)

    def _timed(self, name, f):
        part = self.NAMES[name]

        def wrapped(*args, **kw):
            t0 = time.perf_counter()
            try:
                return f(*args, **kw)
            finally:
                self.acc[part] += time.perf_counter() - t0
        return wrapped

    def reset(self):
        for k in self.acc:
            self.acc[k] = 0.0


WARM = 0.05


def measure(H, rounds, block, parts, steps=10):
    """Per H, ``rounds`` times: ``steps`` steps of rnnkit in this process with its parts timed
    (``parts``: a :class:`Parts`, installed once), then a block of each library's steady steps in
    its own worker (the order alternating), each after ``speed.py``'s pause, so that all of them
    sample the same phases of the machine. Returns
    the median per-step seconds of each part and of the step, the fixed cost of a step, and the
    workers' medians and median paired ratio."""
    step = speed.MAKERS["rnnkit"]("lstm", H, 1, "module")
    for _ in range(20):
        step()
    workers = [speed._Worker(lib, "lstm", H, 1, "module") for lib in ("rnnkit", "torch")]
    per = {k: [] for k in list(parts.acc) + ["step"]}
    steady = ([], [])
    try:
        for r in range(rounds):
            time.sleep(0.3)
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < WARM:   # untimed: the machine back to speed
                step()
            parts.reset()
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            per["step"].append((time.perf_counter() - t0) / steps)
            for k, v in parts.acc.items():
                per[k].append(v / steps)
            for which in ((0, 1) if r % 2 == 0 else (1, 0)):
                time.sleep(0.3)
                times = workers[which].block(2 * block)
                steady[which].append(statistics.median(times[-block:]))
    finally:
        for w in workers:
            w.close()
    out = {k: statistics.median(v) for k, v in per.items()}
    small = []
    for _ in range(20):
        step(2, 2)
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps * 5):
            step(2, 2)
        small.append((time.perf_counter() - t0) / (steps * 5))
    out["fixed"] = statistics.median(small)
    return out, statistics.median(steady[0]), statistics.median(steady[1]), statistics.median(
        a / b for a, b in zip(*steady))


def flops(H):
    """Multiply-adds x 2 of each part: the projection and the backward's ``dW_hh``, ``dW_ih`` and
    input gradient over all L*N columns; each loop's per-step products over L-1 steps (the forward
    skips step 0's, its state being zero; the backward's first step has no step after it, and the
    initial state's gradient is not asked for)."""
    G, LN, steps = 4, speed.B * speed.T, speed.B * (speed.T - 1)
    return {"products": 2 * LN * G * H * (speed.D + H + speed.D) + 2 * LN * G * H * speed.D,
            "forward loop": 2 * steps * G * H * H, "backward loop": 2 * steps * G * H * H}


def _sizes(text):
    """A comma-separated list of hidden sizes, each at least 1."""
    return [speed.positive(h) for h in text.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=_sizes, default=[64, 128], help="hidden sizes, comma-separated")
    ap.add_argument("--rounds", type=speed.positive, default=15,
                    help="rounds of 10 steps (profile), of blocks (steady)")
    ap.add_argument("--block", type=speed.positive, default=12,
                    help="timed steps of a steady block (after as many untimed)")
    args = ap.parse_args()
    from rnnkit import products

    rate = speed.split_product_rate()
    which = "rnnkit's own product" if products.own_product() else "rnnkit's split BLAS product"
    trips = [speed.round_trip(50_000)]
    parts = Parts()
    lines = [f"`python benchmarks/step_profile.py`: the one-layer LSTM module's step (batch {speed.B}, sequence "
             f"{speed.T}, input {speed.D}, float32, forward + full BPTT). {which} on a 1024^3 square, "
             f"two threads: {rate / 1e9:.1f} GFLOP/s (\"the square's rate\").", ""]
    rows = []
    for H in args.hidden:
        p, r_s, t_s, ratio = measure(H, args.rounds, args.block, parts)
        fl = flops(H)
        rest = p["step"] - sum(p[k] for k in set(Parts.NAMES.values()))
        bound = sum(fl.values()) / rate
        table = [("input projection and the backward's three products", p["products"], fl["products"]),
                 ("forward loop", p["forward loop"], fl["forward loop"]),
                 ("backward loop", p["backward loop"], fl["backward loop"]),
                 ("transposing copies", p["transposing copies"], None),
                 ("everything else", rest, None)]
        first = len(lines)
        lines += [f"**H={H}**", "", "| part | ms a step | share | GFLOP/s | ms at the square's rate |",
                  "|---|---|---|---|---|"]
        for name, sec, f in table:
            lines.append(f"| {name} | {sec * 1e3:.3f} | {sec / p['step']:.0%} | "
                         + (f"{f / sec / 1e9:.0f} | {f / rate * 1e3:.3f} |" if f else "- | - |"))
        lines += [f"| the step (in this process) | {p['step'] * 1e3:.3f} | 100% | "
                  f"{sum(fl.values()) / p['step'] / 1e9:.0f} | {bound * 1e3:.3f} |", "",
                  f"- fixed cost of a step (batch 2, sequence 2): {p['fixed'] * 1e3:.3f} ms",
                  f"- steady step, each library in its own process, {args.rounds} alternating blocks of "
                  f"{args.block} (after {args.block} untimed): rnnkit {r_s * 1e3:.3f} ms, "
                  f"PyTorch {t_s * 1e3:.3f} ms, ratio {ratio:.3f}",
                  f"- the design's bound (every product and both loops at the square's rate, nothing else): "
                  f"{bound * 1e3:.3f} ms, {bound / t_s:.2f} of PyTorch's steady step",
                  f"- 0.8 x PyTorch's steady step: {0.8 * t_s * 1e3:.3f} ms", ""]
        rows.append(dict(hidden=H, parts_s=p, rest_s=rest, flops=fl,
                         bound_s=bound, rnnkit_steady_s=r_s, torch_steady_s=t_s, steady_ratio=ratio))
        print("\n".join(lines[first:]), flush=True)
    trips.append(speed.round_trip(50_000))
    lines.append(f"The cores' round trip (a cache line there and back): {trips[0] * 1e9:.0f} ns before, "
                 f"{trips[1] * 1e9:.0f} ns after.")
    save("step_profile", "\n".join(lines) + "\n", {"square_rate": rate, "square_product": which,
                                                    "round_trip_s": trips, "block": args.block, "rows": rows})


if __name__ == "__main__":
    sys.exit(main())
