"""``rnnkit seq2seq train|translate|attention``: attention encoder-decoders on generated tasks."""
from __future__ import annotations

from ._args import OneLineParser, add_parser, positive_float, positive_int


def register(sub):
    p = add_parser(sub, "seq2seq", "sequence-to-sequence with attention: dates, reversal, sorting")
    s2 = p.add_subparsers(dest="action", metavar="ACTION", parser_class=OneLineParser, required=True)

    t = add_parser(s2, "train", "train an attention encoder-decoder on a generated task")
    t.add_argument("--task", choices=("dates", "reverse", "sort"), default="dates")
    t.add_argument("--out", default="runs/dates", help="run directory (model.npz, metrics.json)")
    t.add_argument("--cell", choices=("gru", "lstm"), default="gru")
    t.add_argument("--attention", choices=("general", "dot", "concat", "additive"), default="general")
    t.add_argument("--unidirectional", dest="bidirectional", action="store_false", help="one-directional encoder")
    t.add_argument("--hidden", type=positive_int, default=64)
    t.add_argument("--embed", type=positive_int, default=32)
    t.add_argument("--steps", type=positive_int, default=3000, help="training steps (learning rate decays to 0 along a cosine)")
    t.add_argument("--batch-size", type=positive_int, default=64)
    t.add_argument("--lr", type=positive_float, default=3e-3)
    t.add_argument("--teacher-forcing", type=float, default=1.0, help="probability of feeding the true previous token")
    t.add_argument("--n-test", type=positive_int, default=2000, help="held-out examples for the final evaluation")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-progress", dest="progress", action="store_false")
    t.set_defaults(run=run_train)

    for name, helptext in (("translate", "decode a source string with a trained model"),
                           ("attention", "write the attention map of one source string as PNG")):
        a = add_parser(s2, name, helptext)
        a.add_argument("run_dir", metavar="RUN_DIR")
        a.add_argument("text", metavar="TEXT")
        a.add_argument("--beam", type=positive_int, default=1, help="beam size (1: greedy)")
        a.add_argument("--length-penalty", type=float, default=0.7, help="score / length ** this")
        if name == "attention":
            a.add_argument("--png", default=None, help="output file (default RUN_DIR/attention.png)")
        a.set_defaults(run=run_translate if name == "translate" else run_attention)


def run_train(args):
    from ..seq2seq_app import train

    if not 0.0 <= args.teacher_forcing <= 1.0:
        raise ValueError(f"teacher-forcing: expected a probability in [0, 1], got {args.teacher_forcing}")
    train(task=args.task, out_dir=args.out, cell=args.cell, attention=args.attention, bidirectional=args.bidirectional,
          hidden=args.hidden, embed=args.embed, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
          teacher_forcing=args.teacher_forcing, n_test=args.n_test, seed=args.seed, progress=args.progress)
    return 0


def run_translate(args):
    from ..seq2seq_app import load, translate

    model, run = load(args.run_dir)
    out, _, score = translate(model, run, args.text, beam=args.beam, alpha=args.length_penalty)
    print(out)
    return 0


def run_attention(args):
    import os

    from ..seq2seq_app import load, plot_attention, translate

    model, run = load(args.run_dir)
    out, weights, _ = translate(model, run, args.text, beam=args.beam, alpha=args.length_penalty)
    png = args.png or os.path.join(args.run_dir, "attention.png")
    plot_attention(args.text, out, weights, png)
    print(out)
    print(f"wrote {png}")
    return 0
