"""``rnnkit experiment vanishing|exploding|truncation``: the gradient problems, measured."""
from __future__ import annotations

import argparse

from ._args import (OneLineParser, add_parser, finite_float, nonneg_float, nonneg_int_list, positive_float,
                    positive_int, positive_int_list, seed_value)

TASKS = ("adding", "copy", "temporal-order", "reber", "digits", "mackey-glass", "dna")
CELLS = ("rnn", "rnn-relu", "lstm", "gru")


def gain_value(text):
    """An argparse type for --gain: in (0, 1000]. Past a few units every step already explodes, and a
    gain beyond float32's range would only print overflow warnings before diverging at step 1."""
    v = positive_float(text)
    if v > 1000:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1000], got {text}")
    return v


def cell_list(text):
    """Cells, comma-separated; a cell may carry gate-variant suffixes (``lstm-ln``, ``gru-ln``,
    ``lstm-peep``, ``lstm-coupled``, combined as ``lstm-ln-peep``)."""
    from ..models.common import CELL_VARIANTS, split_cell_variant

    vals = [v.strip() for v in text.split(",") if v.strip()]
    names = CELLS + ("rnn_tanh", "rnn_relu")                # PyTorch's spellings are accepted too
    bad = []
    for v in vals:
        try:
            base, variant = split_cell_variant(v)
        except ValueError:
            base, variant = None, {}
        lstm_only = set(variant) - {"layer_norm"}
        if base not in names or (variant and base not in ("lstm", "gru")) or (base == "gru" and lstm_only):
            bad.append(v)
    if not vals or bad:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated cells from {', '.join(names)}, optionally with variant suffixes "
            f"{', '.join('-' + s for s in CELL_VARIANTS)} (LSTM; GRU: -ln), got {text!r}")
    return vals


def _common(p, out, steps, lr, clip, batch=50, hidden=64):
    p.add_argument("--out", "-o", default=out, help="output directory (tables, PNGs, runs.json)")
    p.add_argument("--steps", type=positive_int, default=steps, help="training steps per run (the same budget for every run)")
    p.add_argument("--hidden", type=positive_int, default=hidden, help="hidden units")
    p.add_argument("--lr", type=positive_float, default=lr, help="learning rate")
    p.add_argument("--batch-size", type=positive_int, default=batch, help="sequences per step (fresh ones every step)")
    p.add_argument("--clip", type=nonneg_float, default=clip, help="max gradient norm (0: no clipping)")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed (data and initialisation)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted experiment in --out (finished runs are kept, the current one "
                        "resumes from its checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="replace the experiment already in --out")


def register(sub):
    p = add_parser(sub, "experiment", "vanishing / exploding gradients and truncated BPTT, measured",
                   description="Experiments that measure the gradient problems of recurrent networks. "
                               "Each writes tables (CSV, Markdown) and PNG figures into --out.")
    exp = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=OneLineParser, required=True)

    v = add_parser(exp, "vanishing", "train RNN / LSTM / GRU on a long-range task with the same budget; "
                                     "table, gradient-flow heatmaps and loss curves")
    v.add_argument("--task", choices=TASKS, default="adding", help="long-range task")
    v.add_argument("--T", dest="Ts", type=positive_int_list, default=[100],
                   help="sequence lengths (copy: the delay), comma-separated, e.g. 50,100,200")
    v.add_argument("--cells", type=cell_list, default=["rnn", "lstm", "gru"], help="cells, comma-separated")
    v.add_argument("--eval-every", type=positive_int, default=100, help="steps between held-out evaluations")
    v.add_argument("--flow-every", type=positive_int, default=50, help="steps between gradient-flow records")
    v.add_argument("--n-test", type=positive_int, default=1000, help="held-out sequences")
    v.add_argument("--init", choices=("default", "xavier", "orthogonal", "identity"), default="default",
                   help="recurrent initialisation (identity with rnn-relu is the IRNN)")
    v.add_argument("--gate", choices=("sigmoid", "hard_sigmoid"), default="sigmoid", help="LSTM / GRU gate function")
    v.add_argument("--forget-bias", type=finite_float, default=None, help="LSTM forget-gate bias (e.g. 1.0)")
    _common(v, "runs/vanishing", 3000, 2e-3, 1.0)
    v.set_defaults(run=run_vanishing)

    e = add_parser(exp, "exploding", "a tanh RNN with a large recurrent initialisation, SGD with and without "
                                     "norm clipping; gradient-norm and loss curves")
    e.add_argument("--task", choices=TASKS, default="adding", help="task")
    e.add_argument("--T", type=positive_int, default=100, help="sequence length")
    e.add_argument("--gain", type=gain_value, default=2.0, help="recurrent weights = gain x orthogonal")
    _common(e, "runs/exploding", 600, 0.05, 1.0)
    e.set_defaults(run=run_exploding)

    t = add_parser(exp, "truncation", "full vs truncated BPTT: time and memory on a long sequence, and the "
                                      "window's effect on the adding problem")
    t.add_argument("--length", type=positive_int, default=1000, help="sequence length for the time/memory table")
    t.add_argument("--windows", type=nonneg_int_list, default=[0, 50, 100, 200],
                   help="windows for the time/memory table (0 = full BPTT)")
    t.add_argument("--T", type=positive_int, default=100, help="adding-problem length")
    t.add_argument("--task-windows", type=nonneg_int_list, default=[0, 75, 50, 25],
                   help="windows trained on the adding problem (0 = full BPTT)")
    t.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell of every run")
    _common(t, "runs/truncation", 2000, 2e-3, 1.0)
    t.set_defaults(run=run_truncation)


def saved_settings(args, renamed=None) -> None:
    """On ``--resume``: every setting the command line did not give is the experiment's own (its
    ``config.json``), so ``rnnkit experiment NAME --out DIR --resume`` continues it as it was;
    given ones are compared with it by the experiment (a difference is refused). ``renamed``: setting
    name -> option destination where they differ."""
    if not getattr(args, "resume", False):
        return
    import os

    from ..runs import read_config

    cfg = read_config(args.out) if os.path.isdir(args.out) else None
    saved = (cfg or {}).get("settings") or {}
    given = getattr(args, "given", set())
    for key, value in saved.items():
        dest = (renamed or {}).get(key, key)
        if hasattr(args, dest) and dest not in given:
            setattr(args, dest, value)


def run_vanishing(args):
    from ..apps.experiments import run_vanishing as go

    saved_settings(args)
    go(task=args.task, Ts=args.Ts, cells=args.cells, steps=args.steps, out_dir=args.out, hidden=args.hidden,
       lr=args.lr, batch_size=args.batch_size, clip=args.clip, seed=args.seed, eval_every=args.eval_every,
       flow_every=args.flow_every, n_test=args.n_test, progress=args.progress, init=args.init, gate=args.gate,
       forget_bias=args.forget_bias, resume=args.resume, overwrite=args.overwrite)
    print(f"wrote {args.out}/results.csv, results.md, gradient_flow.png, gradient_flow_profile.png, loss_curves.png")
    return 0


def run_exploding(args):
    from ..apps.experiments import run_exploding as go
    from ..errors import UserError

    saved_settings(args)
    if args.clip == 0:
        raise UserError("--clip: expected a clipping norm > 0 for the clipped run (the experiment trains a run "
                        "without clipping beside it), got 0")
    go(task=args.task, T=args.T, steps=args.steps, out_dir=args.out, hidden=args.hidden, gain=args.gain, lr=args.lr,
       clip=args.clip, batch_size=args.batch_size, seed=args.seed, progress=args.progress, resume=args.resume,
       overwrite=args.overwrite)
    print(f"wrote {args.out}/exploding.csv, exploding.md, exploding.png")
    return 0


def run_truncation(args):
    from ..apps.experiments import run_truncation as go

    saved_settings(args, {"L": "length"})
    go(L=args.length, windows=args.windows, T=args.T, task_windows=args.task_windows, cell=args.cell,
       steps=args.steps, out_dir=args.out, hidden=args.hidden, lr=args.lr, batch_size=args.batch_size,
       clip=args.clip, seed=args.seed, progress=args.progress, resume=args.resume, overwrite=args.overwrite)
    print(f"wrote {args.out}/truncation_cost.md, truncation_adding.md, truncation.png")
    return 0
