"""Where benchmarks put what they measured: ``benchmarks/results/NAME.md`` (the table, as printed)
and ``NAME.json`` (the numbers); and the machine's product rate that issue 16 asks each table to
carry, measured in the same run (:func:`sgemm_rate`)."""
from __future__ import annotations

import json
import os
import statistics
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def save(name: str, md: str, data) -> None:
    """Print ``md`` and write it and ``data`` under ``benchmarks/results/``."""
    print(md)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{name}.md"), "w", encoding="utf-8") as f:
        f.write(md)
    with open(os.path.join(RESULTS, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)


def time_it(step, repeats, warmup=3) -> float:
    """Seconds of ``step()``: the median of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def sgemm_rate(n=1024, repeats=10) -> float:
    """FLOP/s of NumPy's float32 product on an ``n``^3 square at 2 BLAS threads (:func:`time_it`):
    this machine's rate, which moves by up to 2x within the hour, to read a table beside. BLAS gets
    2 threads for the measure whatever rnnkit set it to (one, when it first computes); measured
    first in a run, nothing of rnnkit's spins beside it."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.copy()
    with threadpool_limits(2, user_api="blas"):
        return 2 * n ** 3 / time_it(lambda: a @ b, repeats)


def sgemm_text(rate: float) -> str:
    """How the tables name :func:`sgemm_rate`'s result."""
    return f"sgemm {rate / 1e9:.1f} GFLOP/s measured in the same run (NumPy, 1024^3, float32, 2 threads)"
