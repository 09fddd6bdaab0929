"""Real sequences, one command: every forecasting set beside its naive and linear baselines, every
classification set on its own split, and the DNA task uni- vs bidirectional.

    python benchmarks/real_data.py            # about 10 minutes on 2 cores
    python benchmarks/real_data.py --quick    # a smoke run with tiny budgets

Prints Markdown tables and writes ``benchmarks/results/real_data.json`` and ``real_data.md``.
Needs the datasets extra (``pip install -e '.[datasets]'``; the dev extra includes it).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

from rnnkit.apps.classify import builtin, train_classifier
from rnnkit.apps.forecast import run_forecast
from rnnkit.cli import main as rnnkit_main
from rnnkit.train import TrainConfig

HERE = os.path.dirname(os.path.abspath(__file__))

FORECASTS = [  # (dataset, horizon, window, strategy); one step ahead both strategies are the same model
    ("sunspots", 1, 24, "direct"), ("co2", 1, 24, "direct"), ("airline", 1, 24, "direct"),
    ("mackey-glass", 1, 24, "direct"),
    ("sunspots", 5, 24, "recursive"), ("sunspots", 5, 24, "direct"),
    ("airline", 12, 24, "recursive"), ("airline", 12, 24, "direct"),
]
CLASSIFY = ["japanese-vowels", "digits", "basic-motions"]
# Published figures, only where the source is known; anything else is left blank rather than guessed.
PUBLISHED = {
    "japanese-vowels": "94.1% (Kudo, Toyama & Shimbo 1999, the dataset's authors; not a recurrent model)",
}


def classify(name, steps, out, log, **kw):
    """The built-in set through the same path as a user's files (``rnnkit classify train``)."""
    train, test = builtin(name)
    config = TrainConfig(steps=steps, lr=3e-3, clip=5.0, stateful=False, eval_every=100)
    r = train_classifier(train, test, config=config, out_dir=out, log=log, names={"train": name}, **kw)
    return {"dataset": name, **r}


def run_dna(steps, tmp, log, T=100):
    """The generated DNA task: motif classification (``classify train --dataset dna``) and motif-start
    tagging (``tag train``, its default task), unidirectional and bidirectional GRUs side by side."""
    rows = []
    for bi in (False, True):
        name = f"{'bi' if bi else 'uni'}directional gru"
        train, test = builtin("dna", T)
        config = TrainConfig(steps=steps, lr=3e-3, clip=5.0, stateful=False, eval_every=250)
        r = train_classifier(train, test, cell="gru", hidden_size=32, bidirectional=bi, pooling="attention",
                             config=config, out_dir=os.path.join(tmp, f"dna-c-{bi}"), log=log)
        rows.append({"task": "dna classification", "model": name, "accuracy": r["accuracy"]})
    for bi in (False, True):
        out = os.path.join(tmp, f"dna-t-{bi}")
        argv = ["tag", "train", "--dna-length", str(T), "--cell", "gru", "--hidden-size", "32", "--steps", str(steps),
                "--out", out, "--no-progress"] + ([] if bi else ["--unidirectional"])
        assert rnnkit_main(argv) == 0
        with open(os.path.join(out, "scores.json")) as f:
            s = json.load(f)
        s = s.get("test", s)
        rows.append({"task": "dna tagging", "model": f"{'bi' if bi else 'uni'}directional gru",
                     "accuracy": s["accuracy"], "f1": s["per_tag"]["1"]["f1"]})
    return {"T": T, "rows": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny budgets (checks the script, not the models)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    f_steps, c_steps, d_steps = (30, 20, 10) if args.quick else (1500, 800, 1000)
    t0 = time.time()
    log = lambda msg: print(msg, flush=True)  # noqa: E731

    fcfg = lambda: TrainConfig(steps=f_steps, lr=3e-3, clip=1.0, stateful=False, eval_every=100)  # noqa: E731
    forecasts = [run_forecast(d, horizon=h, window=w, strategy=st, config=fcfg(), log=log) for d, h, w, st in FORECASTS]
    with tempfile.TemporaryDirectory() as tmp:
        classes = [classify(d, c_steps, os.path.join(tmp, d), log) for d in CLASSIFY]
        dna = run_dna(d_steps, tmp, log)

    md = ["# Real sequences: rnnkit beside baselines", "",
          f"`python benchmarks/real_data.py` on {platform.machine()}, {os.cpu_count()} cores, "
          f"{time.time() - t0:.0f} s in all. Forecasts: RMSE / MAE on the held-out last 20% "
          "(rolling origin, true history), original units; models and scalers fitted on the rest.", "",
          "## Forecasting", "",
          "| dataset | horizon | strategy | rnnkit LSTM | last value | seasonal naive | linear AR (NumPy lstsq) | beats naive |",
          "|---|---|---|---|---|---|---|---|"]
    for r in forecasts:
        s = r["scores"]
        seas = next((v for k, v in s.items() if k.startswith("seasonal")), None)
        naive = min(v["rmse"] for k, v in s.items() if k == "last value" or k.startswith("seasonal"))
        cell = lambda v: "-" if v is None else f"{v['rmse']:.4g} / {v['mae']:.4g}"  # noqa: E731
        md.append(f"| {r['dataset']} | {r['horizon']} | {r['strategy'] if r['horizon'] > 1 else '-'} | {cell(s['rnnkit'])} | {cell(s['last value'])} | {cell(seas)} | "
                  f"{cell(s['linear AR'])} | {'yes' if s['rnnkit']['rmse'] < naive else 'NO'} |")
    md += ["", "## Classification (the dataset's own train/test split)", "",
           "| dataset | train / test | rnnkit LSTM accuracy | majority class | published |", "|---|---|---|---|---|"]
    for r in classes:
        md.append(f"| {r['dataset']} | {r['n_train']} / {r['n_test']} | {r['accuracy']:.4f} | "
                  f"{r['majority_baseline']:.4f} | {PUBLISHED.get(r['dataset'], '-')} |")
    md += ["", f"## DNA (generated, length {dna['T']}, planted motif TATAAT with one-letter-off distractors)", "",
           "| task | model | accuracy | motif-start F1 |", "|---|---|---|---|"]
    for r in dna["rows"]:
        md.append(f"| {r['task']} | {r['model']} | {r['accuracy']:.4f} | {r.get('f1', float('nan')):.4f} |")
    text = "\n".join(md) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    name = "real_data_quick" if args.quick else "real_data"
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump({"forecasts": forecasts, "classification": classes, "dna": dna}, f, indent=1)
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
