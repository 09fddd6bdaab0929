"""Corpora larger than memory: preparation speed, and training / evaluation memory that does
not grow with the corpus.

    python benchmarks/large_corpus.py [--mb 120] [--steps 20]

Builds a text of about ``--mb`` MB from the Python sources and documentation on this machine
(repeated until it is large enough), then measures, each in its own process:

* ``rnnkit prepare``: wall time and MB/s;
* ``rnnkit train`` for ``--steps`` steps on the prepared corpus, on a prepared corpus a tenth
  of the size, and on the raw text file (read whole): peak resident memory of each;
* ``rnnkit eval`` of that model on a prepared corpus of ``--eval-mb`` MB (2 by default): time and
  characters per second (about 40,000 a second for this model here, so the full size takes most of
  an hour; its memory does not grow with the corpus either).

Prints a Markdown table and writes benchmarks/results/large_corpus.{md,json}.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
import tempfile
import time

from _results import save, sgemm_rate, sgemm_text  # noqa: E402  (benchmarks/ is the script's directory)

RUNNER = ("import resource, sys; from rnnkit.cli import main; rc = main(sys.argv[1:]); "
          "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def build_text(path, mb):
    """Python's own sources and docs (the ASCII files: a character LM's usual alphabet), repeated to ``mb`` MB."""
    from rnnkit.data.text import pydoc_topics_text

    parts = [pydoc_topics_text()]
    lib = sysconfig.get_paths()["stdlib"]
    for root, _, files in os.walk(lib):
        for name in sorted(files):
            if name.endswith(".py") and "test" not in root:
                try:
                    with open(os.path.join(root, name), encoding="ascii") as f:
                        parts.append(f.read())
                except (UnicodeDecodeError, OSError):
                    pass
    base = "\n".join(parts)                     # about 98 MB here: repeated, or cut, to ``mb`` million characters
    want = int(mb * 1e6)
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        while written < want:
            piece = base[: want - written]
            f.write(piece)
            written += len(piece)
    return os.path.getsize(path)


def rnnkit(*args):
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", RUNNER, *map(str, args)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"rnnkit {' '.join(map(str, args))} failed: {r.stderr[-2000:]}")
    peak = int(r.stderr.rsplit("PEAK_KB", 1)[1].split()[0]) * 1024
    return wall, peak, r.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=float, default=120)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--eval-mb", type=float, default=2.0, help="size of the prepared corpus rnnkit eval reads")
    args = p.parse_args()
    train_args = ["--steps", args.steps, "--hidden", 128, "--layers", 2, "--embed", 32, "--seq-len", 64,
                  "--batch-size", 32, "--eval-every", 10 ** 9, "--val-fraction", 0.002, "--no-progress"]
    rows, out = [], {"sgemm_flops": sgemm_rate()}          # (rnnkit runs in processes of its own)
    print(sgemm_text(out["sgemm_flops"]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        big, small = os.path.join(tmp, "big.txt"), os.path.join(tmp, "small.txt")
        size = build_text(big, args.mb)
        build_text(small, args.mb / 10)     # (a tenth: with --val-fraction 0.002 validation stays small)
        wall, peak, _ = rnnkit("prepare", big, "-o", os.path.join(tmp, "big"), "--no-progress")
        out["prepare"] = {"bytes": size, "seconds": wall, "mb_per_s": size / 1e6 / wall, "peak_bytes": peak}
        print(out["prepare"], file=sys.stderr)
        rnnkit("prepare", small, "-o", os.path.join(tmp, "small"), "--no-progress")
        evaluated = os.path.join(tmp, "eval.txt")
        build_text(evaluated, args.eval_mb)
        rnnkit("prepare", evaluated, "-o", os.path.join(tmp, "eval"), "--no-progress")
        # untimed: with an empty Numba cache (a fresh install, or kernels just edited) the first
        # run compiles the kernels, 10-15 s that would land on whichever row came first
        rnnkit("train", os.path.join(tmp, "small"), "--out", os.path.join(tmp, "warm"), *train_args)
        for name, src in (("prepared corpus, full size", os.path.join(tmp, "big")),
                          ("prepared corpus, a tenth", os.path.join(tmp, "small")),
                          ("raw text file, read whole", big)):
            run = os.path.join(tmp, f"run{len(rows)}")
            wall, peak, _ = rnnkit("train", src, "--out", run, *train_args)
            rows.append({"input": name, "train_seconds": wall, "peak_bytes": peak})
            print(rows[-1], file=sys.stderr)
        wall, peak, text = rnnkit("eval", os.path.join(tmp, "run0"), os.path.join(tmp, "eval"), "--batch-size", 256,
                                  "--seq-len", 256, "--no-progress")
        eval_size = os.path.getsize(evaluated)
        out["eval"] = {"bytes": eval_size, "seconds": wall, "chars_per_s": eval_size / wall, "peak_bytes": peak,
                       "output": text.strip()}
    out["train"] = rows
    md = (f"{sgemm_text(out['sgemm_flops'])}.\n\n"
          f"Text of {size / 1e6:,.0f} MB (Python sources and docs, repeated). `rnnkit prepare`: "
          f"{out['prepare']['seconds']:.1f} s, {out['prepare']['mb_per_s']:.0f} MB/s, peak memory "
          f"{out['prepare']['peak_bytes'] / 2**20:,.0f} MiB.\n\n"
          f"`rnnkit train` ({args.steps} steps, 2-layer LSTM 128, batch 32 x 64), peak resident memory of the process:\n\n"
          "| input | peak memory (MiB) | wall time with start-up (s) |\n|---|---|---|\n")
    for r in rows:
        md += f"| {r['input']} | {r['peak_bytes'] / 2**20:,.0f} | {r['train_seconds']:.1f} |\n"
    md += (f"\n`rnnkit eval` on a prepared corpus of {out['eval']['bytes'] / 1e6:.1f} MB (batch 256 x 256): "
           f"{out['eval']['seconds']:.0f} s, "
           f"{out['eval']['chars_per_s']:,.0f} characters/s, peak {out['eval']['peak_bytes'] / 2**20:,.0f} MiB "
           f"({out['eval']['output'].splitlines()[0]}).\n")
    save("large_corpus", md, out)


if __name__ == "__main__":
    main()
