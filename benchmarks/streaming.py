"""Streaming inference and sampling speed beside PyTorch (issue 6's latency targets).

* Per-step latency, batch 1, input 64: ``rnnkit`` ``layer.stream().step(x)`` against calling
  ``torch.nn.LSTMCell`` / ``GRUCell`` / ``RNNCell`` once per step under ``torch.no_grad()``
  (both at 2 threads; medians of repeated blocks of steps).
* Sampling: characters per second of ``CharLM.sample`` (what ``rnnkit sample`` runs) for the
  demo's model shape (1-layer LSTM, hidden 256, embedding 64, vocabulary 100).

    python benchmarks/streaming.py      # prints a table, writes benchmarks/results/streaming.json

Run it alone: other processes on the 2 cores distort every figure.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numpy as np  # noqa: E402

from _results import sgemm_rate, sgemm_text  # noqa: E402  (benchmarks/ is the script's directory)

HERE = os.path.dirname(os.path.abspath(__file__))
D, STEPS, BLOCKS = 64, 2000, 7


def _median_us(fn):
    fn(200)                                           # warm-up (JIT, caches)
    times = []
    for _ in range(BLOCKS):
        t = time.perf_counter()
        fn(STEPS)
        times.append((time.perf_counter() - t) / STEPS * 1e6)
    return statistics.median(times)


def rnnkit_latency(cell, H):
    import rnnkit

    m = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[cell](D, H, seed=0)
    m.eval()
    s = m.stream(1)
    x = np.random.default_rng(0).standard_normal((1, D)).astype(np.float32)

    def run(n):
        for _ in range(n):
            s.step(x)
    return _median_us(run)


def torch_latency(cell, H):
    import torch

    torch.set_num_threads(2)
    c = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn": torch.nn.RNNCell}[cell](D, H)
    x = torch.randn(1, D)
    state = [(torch.zeros(1, H), torch.zeros(1, H)) if cell == "lstm" else torch.zeros(1, H)]

    def run(n):
        with torch.no_grad():
            s = state[0]
            for _ in range(n):
                s = c(x, s)
            state[0] = s
    return _median_us(run)


def sampling_rate(batch=1):
    """Characters per second of ``CharLM.sample`` drawing ``batch`` samples together."""
    from rnnkit.data.text import CharVocab
    from rnnkit.models import CharLM

    vocab = CharVocab.from_text("".join(chr(32 + i) for i in range(99)))
    m = CharLM(len(vocab), 64, 256, 1, cell="lstm", seed=0)
    n = None if batch == 1 else batch
    m.sample(vocab, length=50, rng=0, n=n)
    length = 3000 if batch == 1 else 500
    t = time.perf_counter()
    m.sample(vocab, length=length, temperature=0.8, rng=1, n=n)
    return length * batch / (time.perf_counter() - t)


def torch_sampling_rate(batch=1):
    """The same model in PyTorch (embedding, LSTM, linear), sampled step by step under no_grad."""
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    emb, lstm, head = torch.nn.Embedding(100, 64), torch.nn.LSTM(64, 256), torch.nn.Linear(256, 100)
    length = 1000 if batch == 1 else 300

    def run(steps):
        idx, state = torch.zeros(1, batch, dtype=torch.long), None
        with torch.no_grad():
            for _ in range(steps):
                y, state = lstm(emb(idx), state)
                p = torch.softmax(head(y[0]) / 0.8, dim=-1)
                idx = torch.multinomial(p, 1).T
    run(20)
    t = time.perf_counter()
    run(length)
    return length * batch / (time.perf_counter() - t)


def main():
    rate = sgemm_rate()                     # before rnnkit first computes here (it sets BLAS to one thread)
    print(sgemm_text(rate))
    rows = []
    print(f"{'cell':<5} {'hidden':>6} {'rnnkit us/step':>15} {'torch cell us/step':>19} {'ratio':>7}")
    for cell in ("lstm", "gru", "rnn"):
        for H in (64, 128, 256, 512):
            ours, theirs = rnnkit_latency(cell, H), torch_latency(cell, H)
            rows.append({"cell": cell, "hidden": H, "rnnkit_us": ours, "torch_us": theirs, "ratio": ours / theirs})
            print(f"{cell:<5} {H:>6} {ours:>15.2f} {theirs:>19.2f} {ours / theirs:>7.3f}", flush=True)
    sampling = []
    print("\nsampling (CharLM: 1-layer LSTM 256, embedding 64, vocabulary 100), characters/s:")
    print(f"{'batch':>5} {'rnnkit':>10} {'torch':>10} {'rnnkit/torch':>13}")
    for batch in (1, 64):
        ours, theirs = sampling_rate(batch), torch_sampling_rate(batch)
        sampling.append({"batch": batch, "rnnkit_chars_per_s": ours, "torch_chars_per_s": theirs})
        print(f"{batch:>5} {ours:>10,.0f} {theirs:>10,.0f} {ours / theirs:>13.2f}", flush=True)
    out = {"machine": platform.machine(), "cpus": os.cpu_count(), "sgemm_flops": rate, "input": D, "batch": 1,
           "latency": rows,
           "sampling_chars_per_s": sampling[0]["rnnkit_chars_per_s"], "sampling": sampling}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "streaming.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()   # --help; no options
    main()
