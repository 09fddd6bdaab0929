"""Recurrent regularisation and cell variants on tinyshakespeare (issue 15): a 2-layer LSTM of
hidden 256 trained for the same number of steps with each option through ``rnnkit train``;
validation bits per character and step time for each.

    python benchmarks/regularisation.py [--steps 1500] [--text ../shared/data/tinyshakespeare.txt]

Every run: batch 32, windows of 64 characters, Adam lr 2e-3, the last 10% of the text held out
for validation, seed 0. Writes benchmarks/results/regularisation.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from _results import save  # noqa: E402  (benchmarks/ is the script's directory)

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare.txt")
BASE = ["--cell", "lstm", "--hidden-size", "256", "--num-layers", "2", "--batch-size", "32", "--seq-len", "64",
        "--lr", "2e-3", "--val-fraction", "0.1", "--seed", "0", "--no-progress"]
CONFIGS = [  # (name, options)
    ("plain", []),
    ("dropout 0.25 between layers", ["--dropout", "0.25"]),
    ("recurrent dropout 0.25", ["--recurrent-dropout", "0.25"]),
    ("zoneout 0.1 (h and c)", ["--zoneout", "0.1"]),
    ("weight dropout 0.3 (W_hh)", ["--weight-dropout", "0.3"]),
    ("layer norm", ["--layer-norm"]),
    ("tied weights (embedding 256)", ["--tie-weights", "--embed-size", "256"]),
]


def run(text, steps, options, out):
    cmd = [sys.executable, "-m", "rnnkit", "train", text, *BASE, "--steps", str(steps),
           "--eval-every", str(max(steps // 10, 1)), "--out", out, *options]
    subprocess.run(cmd, check=True)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        log = [json.loads(line) for line in f]
    vals = [r["val_bpc"] for r in log if "val_bpc" in r]
    rates = [r["tokens_per_s"] for r in log if "tokens_per_s" in r]
    return dict(last_val_bpc=vals[-1], best_val_bpc=min(vals), step_ms=32 * 64 / statistics.median(rates) * 1e3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--only", default="", help="comma-separated config numbers (0-based) to run")
    args = ap.parse_args()
    if not os.path.exists(args.text):
        sys.exit(f"regularisation: {args.text} not found (tinyshakespeare lives in ../shared/data; pass --text)")
    chosen = [CONFIGS[int(i)] for i in args.only.split(",")] if args.only else CONFIGS
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, options) in enumerate(chosen):
            r = run(args.text, args.steps, options, os.path.join(tmp, f"run{k}"))
            rows.append(dict(name=name, options=" ".join(options), **r))
            print(rows[-1], flush=True)
    plain = next((r for r in rows if r["name"] == "plain"), rows[0])
    md = [f"2-layer LSTM, hidden 256, on tinyshakespeare (last 10% held out), {args.steps} steps of 32 x 64 "
          f"characters each, Adam 2e-3, seed 0, `python benchmarks/regularisation.py --steps {args.steps}`; "
          f"{os.cpu_count()} cores.", "",
          "| option | `rnnkit train` flags | validation bits/char (last) | best | step ms | vs plain step |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['name']} | `{r['options'] or '-'}` | {r['last_val_bpc']:.3f} | {r['best_val_bpc']:.3f} | "
                  f"{r['step_ms']:.0f} | {r['step_ms'] / plain['step_ms']:.2f}x |")
    save("regularisation", "\n".join(md) + "\n", {"steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()
