"""``rnnkit classify train|predict``: sequence classification on your .npz / .ts files or a built-in set."""
from __future__ import annotations

import os

from ._args import (OneLineParser, add_replace_arg, add_engine_args, add_fit_args, add_parser, add_rnn_args, add_rnn_option_args,
                    add_run_args, fraction, nonneg_float, positive_int, positive_int_list)

BUILTIN = ("japanese-vowels", "basic-motions", "digits", "dna", "spoken-digits", "splice-junctions")


def register(sub):
    p = add_parser(sub, "classify", "classify whole sequences: train on your .npz / .ts files (or a built-in set), "
                                    "predict new files")
    s = p.add_subparsers(dest="action", metavar="ACTION", parser_class=OneLineParser, required=True)
    t = add_parser(s, "train", "train a sequence classifier and score it on a test set",
                   description="Train on --train (.npz: x (N, L, D) padded + lengths + y, or x_0, x_1, ... + y; "
                               ".ts: UEA/sktime format) or on a built-in --dataset; validate on --valid or a "
                               "seeded stratified --valid-fraction of the training set; score --test.")
    d = t.add_argument_group("data")
    d.add_argument("--train", default=None, help="training file (.npz or .ts); default: the built-in --dataset")
    d.add_argument("--test", default=None, help="test file, scored after training")
    d.add_argument("--valid", default=None, help="validation file (default: a split of the training file)")
    d.add_argument("--valid-fraction", "--val-fraction", type=fraction, default=0.1, help="share of the training set held out for "
                                                                         "validation when there is no --valid")
    d.add_argument("--dataset", choices=BUILTIN, default="japanese-vowels",
                   help="built-in set used when no --train is given (dna: generated motif sequences; "
                        "splice-junctions: a Debian package's file, see README)")
    d.add_argument("--length", type=positive_int, default=100, help="sequence length (dna only)")
    g = add_rnn_args(t, hidden_size=64)
    g.add_argument("--bidirectional", action="store_true")
    g.add_argument("--pooling", choices=("last", "mean", "attention", "max", "positions"), default="last",
                   help="pooling over the valid steps: the last one, their mean, attention weights, the maximum "
                        "of each unit, or positions: no pooling, every step's outputs concatenated into the "
                        "head (fixed-length windows only, where the position matters)")
    g.add_argument("--head-dropout", type=fraction, default=0.0,
                   help="dropout on the pooled features before the linear head (training only)")
    g.add_argument("--input-jitter", type=nonneg_float, default=0.0, metavar="SIGMA",
                   help="training-time augmentation: Gaussian noise of this std added to every step's "
                        "standardised features (Um et al. 2017)")
    g.add_argument("--input-scale", type=nonneg_float, default=0.0, metavar="SIGMA",
                   help="training-time augmentation: each sequence's features multiplied by 1 + SIGMA * N(0, 1), "
                        "one factor per sequence and feature (Um et al. 2017)")
    g.add_argument("--conv-channels", type=positive_int_list, default=None, metavar="C1,C2,...",
                   help="add a fully convolutional branch beside the recurrent layers (LSTM-FCN, Karim et al. "
                        "2017): blocks of convolution with these numbers of filters, batch norm and ReLU, averaged "
                        "over time and concatenated with the pooled recurrent features; e.g. 128,256,128")
    g.add_argument("--conv-kernels", type=positive_int_list, default=None, metavar="K1,K2,...",
                   help="the kernel size of each block of --conv-channels, e.g. 8,5,3")
    add_rnn_option_args(g)
    add_fit_args(t, steps=800, lr=3e-3, eval_every=100)
    add_run_args(t, "runs/classify")
    add_engine_args(t)
    t.set_defaults(run=run_train)

    pr = add_parser(s, "predict", "predict the class of every sequence of a file with a trained run, or with "
                    "several runs as an ensemble (their class probabilities averaged)")
    pr.add_argument("runs", metavar="RUN_DIR", nargs="+", help="one run directory, or several: an ensemble")
    pr.add_argument("file", metavar="FILE", help=".npz or .ts file; when it has labels, the accuracy is printed")
    pr.add_argument("--output", default=None, help="write the labels here (one a line) instead of stdout ('-': stdout)")
    pr.add_argument("--probabilities", action="store_true",
                    help="write CSV instead: a header label,<class>,... and for each sequence its label and the "
                         "probability of every class (an ensemble's averaged)")
    add_replace_arg(pr)
    pr.set_defaults(run=run_predict, text_output=True)


def run_train(args):
    from ..apps import classify as app
    from ..errors import UserError
    from ._args import fit_config, rnn_options

    if args.valid is None and args.valid_fraction == 0 and not args.resume:
        raise UserError("--valid-fraction: expected a number in (0, 1) without --valid FILE (the run keeps the "
                        "weights that do best on the held-out part), got 0")
    config = fit_config(args)
    conv_branch(args)                                           # refused before anything is read
    data_options(args)
    valid = test = None
    if args.train is not None:
        names = {"train": args.train}
        train = app.read_labelled(args.train)
    else:
        names = {"train": args.dataset, "test": f"{args.dataset} (test split)"}
        train, test = app.builtin(args.dataset, args.length, args.seed)
    if args.test is not None:
        names["test"], test = args.test, app.read_labelled(args.test)
    if args.valid is not None:
        names["valid"], valid = args.valid, app.read_labelled(args.valid)
    app.train_classifier(train, test, valid, args.valid_fraction, cell=args.cell, hidden_size=args.hidden_size,
                         num_layers=args.num_layers, bidirectional=args.bidirectional, pooling=args.pooling,
                         dropout=args.dropout, head_dropout=args.head_dropout, batch_size=args.batch_size,
                         config=config, out_dir=args.out, resume=args.resume, changes=getattr(args, "changes", None), overwrite=args.overwrite,
                         progress=args.progress, names=names, engine=args.engine, nproc=args.nproc,
                         rnn_options={**rnn_options(args, set_only=True), **augmentation(args)})
    figure = ", confusion.png" if os.path.exists(os.path.join(args.out, "confusion.png")) else ""   # with a test set
    print(f"run directory: {args.out} (scores.json{figure}; rnnkit classify predict {args.out} FILE)")
    return 0


def augmentation(args) -> dict:
    """The input augmentation and convolutional branch options that are set (so a run without them
    keeps its old config)."""
    names = ("input_jitter", "input_scale", "conv_channels", "conv_kernels")
    return {k: getattr(args, k) for k in names if getattr(args, k, None)}


def data_options(args) -> None:
    """--length fits the dna task (an empty --train, --test or --valid is refused by the CLI)."""
    from ..errors import UserError

    if args.train is None and args.dataset == "dna" and args.length < 18:
        raise UserError(f"--length: expected at least 18 (three motif lengths) for --dataset dna, got {args.length}")


def conv_branch(args) -> None:
    """--conv-channels and --conv-kernels come together, one kernel size per block."""
    from ..errors import UserError

    c, k = args.conv_channels, args.conv_kernels
    if (c is None) != (k is None):
        given, missing = ("--conv-channels", "--conv-kernels") if k is None else ("--conv-kernels", "--conv-channels")
        raise UserError(f"{given}: expected {missing} too (the branch needs filters and kernel sizes), got none")
    if c is not None and len(c) != len(k):
        raise UserError(f"--conv-kernels: expected {len(c)} kernel sizes (one per block of --conv-channels "
                        f"{','.join(map(str, c))}), got {len(k)}")


def run_predict(args):
    from ..apps.classify import predict_file

    r = predict_file(args.runs, args.file, args.output, args.probabilities)
    if "accuracy" in r:
        import sys

        print(f"accuracy {r['accuracy']:.4f} on {r['n_test']} labelled sequences", file=sys.stderr)
    return 0
