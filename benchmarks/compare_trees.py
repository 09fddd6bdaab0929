"""Two versions of rnnkit's source, side by side on this machine: this tree against another
(a ``git worktree`` of an earlier commit, say), each in worker processes of its own, alternating.

Why: a change to the hot path is judged by a few per cent of the step, and this machine moves a
step by more than that within minutes (its two cores near or far apart: benchmarks/NOTES.md,
attempt 90), while within one process the two versions cannot both be loaded. So each round runs
one process per tree, in alternating order, each building ``speed.py``'s workload, warming up,
timing ``--steps`` steps with the compiled parts timed as ``step_profile.py`` times them, and
measuring the cores' round trip before and after. Rounds whose two processes did not both see
the cores near (or both far) are left out of that phase's medians. Prints, per workload and
phase, each tree's median step and parts and their ratio (other / this tree, so below 1.0 means
this tree is faster).

    git worktree add /tmp/base HEAD~1
    python benchmarks/compare_trees.py /tmp/base                     # LSTM module, 1 layer, H=128
    python benchmarks/compare_trees.py /tmp/base --configs module:1:64,module:1:128,charlm:2:128 --rounds 10

Each tree keeps its own Numba cache (next to its sources), so the first round of a tree that
has never run compiles: run it once with ``--rounds 1`` first, or read the first round with care.
Results: ``results/compare_trees.{md,json}``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from speed import positive

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WARM_STEPS = 15             # untimed steps a worker runs first


def worker(workload, layers, H, steps, cell="lstm"):
    """One process: the workload's step with its parts timed; prints one JSON line."""
    import rnnkit
    import speed
    from _results import time_it
    from step_profile import Parts

    parts = Parts()
    step = speed.make_rnnkit(cell, H, layers, workload)
    for _ in range(WARM_STEPS):
        step()
    before = speed.round_trip(20_000, 1)
    parts.reset()
    seconds = time_it(step, steps, warmup=0)
    after = speed.round_trip(20_000, 1)
    out = {"source": os.path.dirname(os.path.dirname(os.path.abspath(rnnkit.__file__))),
           "step": seconds, "round_trip": [before, after]}
    out.update({k: v / steps for k, v in parts.acc.items()})
    print(json.dumps(out))


def run(tree, config, steps):
    workload, layers, H = config
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tree, HERE]))
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", f"{workload}:{layers}:{H}",
                           "--steps", str(steps)], env=env, capture_output=True, text=True, cwd=HERE)
    if done.returncode != 0:
        raise SystemExit(f"compare_trees: the worker for {tree} failed:\n{done.stderr.strip()}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if os.path.realpath(result["source"]) != os.path.realpath(tree):
        raise SystemExit(f"compare_trees: expected rnnkit from {tree}, the worker imported it from {result['source']}")
    return result


def _configs(text):
    return [_config(c) for c in text.split(",")]


def _config(text):
    try:
        workload, layers, H = text.split(":")
        if workload not in ("module", "charlm"):
            raise ValueError
        return workload, positive(layers), positive(H)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"expected WORKLOAD:LAYERS:H (module or charlm, the numbers at least 1), "
                                         f"got {text!r}") from None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("other", nargs="?", help="the other tree's root (holding rnnkit/)")
    ap.add_argument("--configs", type=_configs, default="module:1:128",
                    help="comma-separated WORKLOAD:LAYERS:H, WORKLOAD module or charlm (default module:1:128)")
    ap.add_argument("--rounds", type=positive, default=8, help="process pairs per workload (default 8)")
    ap.add_argument("--steps", type=positive, default=150, help="timed steps per process (default 150)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        workload, layers, H = _config(args.worker)
        return worker(workload, layers, H, args.steps)
    if not args.other or not os.path.isdir(os.path.join(args.other, "rnnkit")):
        got = repr(args.other) if args.other else "none"
        raise SystemExit(f"compare_trees: expected the other tree's root (holding rnnkit/) as the first argument, "
                         f"got {got}")
    import speed
    from _results import save

    trees = {"this": ROOT, "other": os.path.abspath(args.other)}
    rows = []
    for config in args.configs:
        got = {name: {"near": [], "far": []} for name in trees}
        for r in range(args.rounds):
            order = ("this", "other") if r % 2 == 0 else ("other", "this")
            results = {name: run(trees[name], config, args.steps) for name in order}
            phases = {speed.phase_of(*res["round_trip"]) for res in results.values()}
            if len(phases) == 1 and phases <= {"near", "far"}:
                phase = phases.pop()
                for name, res in results.items():
                    got[name][phase].append(res)
            steps = ", ".join(f"{n} {res['step'] * 1e3:.3f} ms" for n, res in results.items())
            print(f"{config} round {r + 1}: {steps}", flush=True)
        for phase in ("near", "far"):
            a = got["this"][phase]
            if not a:
                continue
            keys = ["step"] + [k for k in a[0] if k not in ("step", "round_trip", "source")]
            med = {name: {k: statistics.median(res[k] for res in got[name][phase]) for k in keys} for name in trees}
            rows.append({"workload": config[0], "layers": config[1], "hidden": config[2], "phase": phase,
                         "rounds": len(a), "this": med["this"], "other": med["other"]})
    lines = [f"`python benchmarks/compare_trees.py {args.other}`: this tree ({ROOT}) against the other, LSTM, "
             f"{args.steps} steps per process after {WARM_STEPS} untimed, {args.rounds} alternating process pairs "
             "per workload; "
             "rounds where both processes saw the cores near (or both far) only. ms a step (median over rounds), "
             "this -> other (ratio other / this).", ""]
    if not rows:
        lines.append("No round had both processes in one phase.")
    for row in rows:
        layers = row["layers"]
        lines += [f"**{row['workload']}, {layers} layer{'s' if layers > 1 else ''}, H={row['hidden']}, cores "
                  f"{row['phase']} ({row['rounds']} rounds)**", "",
                  "| part | this | other | ratio |", "|---|---|---|---|"]
        for k in row["this"]:
            x, y = row["this"][k] * 1e3, row["other"][k] * 1e3
            lines.append(f"| {k} | {x:.3f} | {y:.3f} | {y / x:.3f} |" if x else f"| {k} | {x:.3f} | {y:.3f} | - |")
        lines.append("")
    save("compare_trees", "\n".join(lines), {"this": ROOT, "other": trees["other"], "rows": rows})


if __name__ == "__main__":
    main()
