"""``rnnkit handwriting train|sample|eval``: pen-movement generation (Graves 2013) on kanjivg's
characters or your own strokes."""
from __future__ import annotations

from ._args import (OneLineParser, add_replace_arg, add_fit_args, add_parser, add_rnn_args, add_run_args, fraction, nonneg_float,
                    positive_float, positive_int, seed_value)


# the built-in kanjivg strokes' options (apps.handwriting's DEFAULT_CHARACTERS and data.handwriting's
# STEP; written out here so that --help imports neither): not options of the user's --data
KANJIVG_DEFAULTS = {"characters": 2000, "step": 6.0}


def register(sub):
    p = add_parser(sub, "handwriting", "handwriting as pen movement: an LSTM with a mixture density output "
                                       "(Graves 2013) on kanjivg's characters or your strokes")
    s = p.add_subparsers(dest="action", metavar="ACTION", parser_class=OneLineParser, required=True)
    t = add_parser(s, "train", "train on kanjivg (the handwriting extra) or --data FILE, score held-out "
                               "characters beside two baselines, draw samples",
                   description="Train a handwriting model. Data: kanjivg's characters (pip install "
                               "'rnnkit[handwriting]') or --data FILE (.npz: x (N, L, 3) + lengths, or x_0, x_1, ...; "
                               ".csv: header sequence,dx,dy,pen and one point a row). Seeded split by sequence: "
                               "--test-fraction held out, --valid-fraction for validation.")
    d = t.add_argument_group("data")
    d.add_argument("--data", default=None, help="your strokes (.npz or .csv of dx, dy, pen); default: kanjivg")
    d.add_argument("--characters", type=positive_int, default=KANJIVG_DEFAULTS["characters"],
                   help="kanjivg characters to use, drawn by --seed (of 6,703)")
    d.add_argument("--step", type=positive_float, default=KANJIVG_DEFAULTS["step"],
                   help="kanjivg: points every this many units of arc length (the box is 109 units)")
    d.add_argument("--test-fraction", type=fraction, default=0.1, help="share of the sequences held out for the score")
    d.add_argument("--valid-fraction", "--val-fraction", type=fraction, default=0.1, help="share used for validation (best weights)")
    g = add_rnn_args(t, hidden_size=128)
    g.add_argument("--components", dest="n_components", type=positive_int, default=10,
                   help="mixture components M of the output (1 + 6M outputs a point)")
    add_fit_args(t, steps=1500, batch_size=32, lr=3e-3, clip=5.0, eval_every=100)
    add_run_args(t, "runs/handwriting")
    t.set_defaults(run=run_train)

    sm = add_parser(s, "sample", "draw sampled characters of a trained run as a PNG grid")
    sm.add_argument("run_dir", metavar="RUN_DIR")
    sm.add_argument("--num", type=positive_int, default=16, help="samples to draw")
    sm.add_argument("--length", type=positive_int, default=None, help="points a sample (default: the training "
                                                                       "sequences' median length)")
    sm.add_argument("--bias", type=nonneg_float, default=0.0,
                    help="sampling bias b (Graves 2013 sec. 5.4): sigma * exp(-b), weights softmax((1 + b) pi); "
                         "0 samples the model as trained")
    sm.add_argument("--seed", type=seed_value, default=0)
    sm.add_argument("--output", "-o", default=None,
                    help="PNG to write (default RUN_DIR/samples-n<NUM>-len<LENGTH>-bias<B>-seed<S>.png: the same draw "
                         "is the same file)")
    add_replace_arg(sm)
    sm.set_defaults(run=run_sample)

    ex = add_parser(s, "radicals", "write a recognition task from kanjivg: each character's pen sequence labelled with "
                                   "its radical, as .npz files for rnnkit classify train",
                    description="Characters whose general radical (kanjivg's kvg:radical='general') is among the "
                                "--top most frequent, split by character (seeded, stratified) into PREFIX-train.npz "
                                "and PREFIX-test.npz: x (N, L, 3) + lengths + y.")
    ex.add_argument("prefix", metavar="PREFIX", help="output path prefix")
    add_replace_arg(ex)
    ex.add_argument("--top", type=positive_int, default=10, help="the most frequent radicals to keep")
    ex.add_argument("--test-fraction", type=fraction, default=0.2)
    ex.add_argument("--step", type=positive_float, default=KANJIVG_DEFAULTS["step"],
                    help="points every this many units of arc length")
    ex.add_argument("--seed", type=seed_value, default=0)
    ex.set_defaults(run=run_radicals)

    ev = add_parser(s, "eval", "print the held-out negative log-likelihood per point beside the baselines")
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("--data", default=None, metavar="FILE",
                    help="the run's stroke file, if it has moved (default: the file the run recorded)")
    ev.set_defaults(run=run_eval)


def run_train(args):
    from ..apps.handwriting import train_handwriting
    from ..errors import UserError
    from ._args import fit_config

    kanjivg_only = [f"--{k}" for k, default in KANJIVG_DEFAULTS.items() if getattr(args, k) != default]
    if args.data is not None and kanjivg_only and not args.resume:
        raise UserError(f"{', '.join(kanjivg_only)}: options of the built-in kanjivg strokes, not of --data "
                        f"{args.data} (your strokes are read as they are); drop them")

    train_handwriting(args.data, args.characters, args.step, args.test_fraction, args.valid_fraction,
                      hidden_size=args.hidden_size, num_layers=args.num_layers, n_components=args.n_components,
                      cell=args.cell, dropout=args.dropout, batch_size=args.batch_size, config=fit_config(args),
                      out_dir=args.out, resume=args.resume, changes=getattr(args, "changes", None),
                      overwrite=args.overwrite, progress=args.progress)
    print(f"run directory: {args.out} (scores.json, samples.png; rnnkit handwriting sample|eval {args.out})")
    return 0


def run_sample(args):
    import os

    from ..apps.handwriting import draw_samples

    name = f"samples-n{args.num}-len{args.length or 'median'}-bias{args.bias:g}-seed{args.seed}.png"
    out = args.output or os.path.join(args.run_dir, name)
    print(f"wrote {draw_samples(args.run_dir, out, args.num, args.length, args.bias, args.seed)}")
    return 0


def run_eval(args):
    from ..apps.handwriting import eval_handwriting

    eval_handwriting(args.run_dir, data=args.data)
    return 0


def run_radicals(args):
    from ..apps.handwriting import export_radicals
    from ..runs import check_output, refuse_existing

    paths = (f"{args.prefix}-train.npz", f"{args.prefix}-test.npz")
    for path in paths:
        check_output(path, False, "PREFIX")
    refuse_existing(paths, args.overwrite, "PREFIX")
    export_radicals(args.prefix, args.top, args.test_fraction, args.seed, args.step)
    return 0
