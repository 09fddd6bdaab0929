"""``rnnkit classify``: sequence classification on bundled real data (speech, handwriting, motion)."""
from __future__ import annotations

from ._args import add_parser, nonneg_float, positive_float, positive_int

CELLS = ("lstm", "gru", "rnn", "rnn-relu")


def register(sub):
    p = add_parser(sub, "classify", "classify sequences (japanese-vowels, digits, basic-motions, dna) with the dataset's split")
    p.add_argument("--dataset", choices=("japanese-vowels", "digits", "basic-motions", "dna"), default="japanese-vowels",
                   help="dna: generated genome-like sequences with planted motifs; runs motif classification and "
                        "motif-start tagging, unidirectional and bidirectional side by side")
    p.add_argument("--length", type=positive_int, default=100, help="sequence length (dna only)")
    p.add_argument("--cell", choices=CELLS, default=None, help="recurrent cell (default: lstm; gru for dna)")
    p.add_argument("--hidden", type=positive_int, default=None, help="hidden units (default: 64; 32 for dna)")
    p.add_argument("--layers", type=positive_int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--pooling", choices=("last", "mean", "attention"), default="last", help="pooling over time")
    p.add_argument("--steps", type=positive_int, default=None, help="training steps (default: 800; 1000 for dna)")
    p.add_argument("--lr", type=positive_float, default=3e-3)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--clip", type=nonneg_float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/classify", help="output directory (metrics.json, confusion.png)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(run=run)


def run(args):
    from ..applications import run_classify, run_dna

    dna = args.dataset == "dna"
    cell = args.cell or ("gru" if dna else "lstm")
    hidden = args.hidden or (32 if dna else 64)
    steps = args.steps or (1000 if dna else 800)
    if dna:
        run_dna(T=args.length, cell=cell, hidden=hidden, steps=steps, lr=args.lr, batch_size=args.batch_size,
                seed=args.seed, out_dir=args.out)
        print(f"wrote {args.out}/metrics.json")
        return 0
    run_classify(dataset=args.dataset, cell=cell, hidden=hidden, layers=args.layers,
                 bidirectional=args.bidirectional, pooling=args.pooling, steps=steps, lr=args.lr,
                 batch_size=args.batch_size, clip=args.clip or 1e30, seed=args.seed, out_dir=args.out,
                 progress=args.progress)
    print(f"wrote {args.out}/metrics.json, {args.out}/confusion.png")
    return 0
