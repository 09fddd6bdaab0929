"""Training throughput of the character LM on rnnkit's engine and on PyTorch's (1 and 2
DistributedDataParallel processes, gloo on this CPU), same model, same data, same global batch.

    python benchmarks/ddp_throughput.py [--steps 60] [--hidden 256] [--batch-size 32]

Each configuration is a real ``rnnkit train`` run on Python's documentation text (the demo's
data); the figure is the median of the logged tokens/s after the first log line (warm-up).
Prints a Markdown table and writes benchmarks/results/ddp_throughput.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from _results import save  # noqa: E402  (benchmarks/ is the script's directory)

CONFIGS = [("rnnkit (numpy engine)", []), ("torch, 1 process", ["--engine", "torch"]),
           ("torch DDP, 2 processes", ["--engine", "torch", "--nproc", "2"])]


def run(text_path, out, args, extra):
    cmd = [sys.executable, "-m", "rnnkit", "train", text_path, "--out", out, "--steps", str(args.steps),
           "--hidden", str(args.hidden), "--layers", "2", "--embed", "64", "--seq-len", "64",
           "--batch-size", str(args.batch_size), "--eval-every", str(args.steps), "--log-every", "5",
           "--no-progress", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl")) if '"tokens_per_s"' in line]
    return statistics.median(r["tokens_per_s"] for r in rows[1:]), rows[-1]["loss"], wall


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    from rnnkit.data.text import pydoc_topics_text

    with tempfile.TemporaryDirectory() as tmp:
        text_path = os.path.join(tmp, "pydoc.txt")
        with open(text_path, "w", encoding="utf-8") as f:
            f.write(pydoc_topics_text())
        rows = []
        for name, extra in CONFIGS:
            tok, loss, wall = run(text_path, os.path.join(tmp, str(len(rows))), args, extra)
            rows.append({"engine": name, "tokens_per_s": tok, "final_loss": loss, "wall_s": wall})
            print(f"{name}: {tok:,.0f} tokens/s", file=sys.stderr)
    base = rows[0]["tokens_per_s"]
    md = (f"2-layer LSTM char LM, hidden {args.hidden}, embed 64, batch {args.batch_size} x 64 characters, "
          f"{args.steps} steps; {os.cpu_count()} cores ({platform.processor() or platform.machine()}).\n\n"
          "| engine | tokens/s | vs rnnkit | loss at the last step | wall time (s, with start-up) |\n|---|---|---|---|---|\n")
    for r in rows:
        md += (f"| {r['engine']} | {r['tokens_per_s']:,.0f} | {r['tokens_per_s'] / base:.2f}x | "
               f"{r['final_loss']:.4f} | {r['wall_s']:.1f} |\n")
    save("ddp_throughput", md, {"config": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
