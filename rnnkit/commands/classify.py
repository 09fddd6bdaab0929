"""``rnnkit classify``: sequence classification on bundled real data (speech, handwriting, motion)."""
from __future__ import annotations

from ._args import add_parser, nonneg_float, positive_float, positive_int

CELLS = ("lstm", "gru", "rnn", "rnn-relu")


def register(sub):
    p = add_parser(sub, "classify", "classify sequences (japanese-vowels, digits, basic-motions) with the dataset's split")
    p.add_argument("--dataset", choices=("japanese-vowels", "digits", "basic-motions"), default="japanese-vowels")
    p.add_argument("--cell", choices=CELLS, default="lstm")
    p.add_argument("--hidden", type=positive_int, default=64)
    p.add_argument("--layers", type=positive_int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--pooling", choices=("last", "mean", "attention"), default="last", help="pooling over time")
    p.add_argument("--steps", type=positive_int, default=800, help="training steps")
    p.add_argument("--lr", type=positive_float, default=3e-3)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--clip", type=nonneg_float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/classify", help="output directory (metrics.json, confusion.png)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(run=run)


def run(args):
    from ..applications import run_classify

    run_classify(dataset=args.dataset, cell=args.cell, hidden=args.hidden, layers=args.layers,
                 bidirectional=args.bidirectional, pooling=args.pooling, steps=args.steps, lr=args.lr,
                 batch_size=args.batch_size, clip=args.clip or 1e30, seed=args.seed, out_dir=args.out,
                 progress=args.progress)
    print(f"wrote {args.out}/metrics.json, {args.out}/confusion.png")
    return 0
