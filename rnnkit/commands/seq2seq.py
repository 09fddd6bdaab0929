"""``rnnkit seq2seq train|translate|attention``: attention encoder-decoders on your own
``source<TAB>target`` pairs, or on a generated task (dates, reversal, sorting)."""
from __future__ import annotations

from ._args import (OneLineParser, add_replace_arg, add_fit_args, add_parser, add_rnn_args, add_run_args, fit_config, fraction,
                    positive_float, positive_int)

TOKENS = ("chars", "words")


def register(sub):
    p = add_parser(sub, "seq2seq", "sequence-to-sequence with attention on your own pairs (or dates, reversal, sorting)")
    s2 = p.add_subparsers(dest="action", metavar="ACTION", parser_class=OneLineParser, required=True)

    t = add_parser(s2, "train", "train an attention encoder-decoder on source<TAB>target pairs or a generated task")
    d = t.add_argument_group("data")
    d.add_argument("--train", metavar="PAIRS", default=None,
                   help="UTF-8 file of source<TAB>target lines (without it: --task)")
    d.add_argument("--valid", metavar="PAIRS", default=None,
                   help="validation pairs (default: a seeded --valid-fraction of the training sources)")
    d.add_argument("--valid-fraction", "--val-fraction", type=fraction, default=0.05,
                   help="share of the distinct training sources held out when there is no --valid")
    d.add_argument("--task", choices=("dates", "reverse", "sort"), default=None,
                   help="a generated task instead of --train (default: dates)")
    d.add_argument("--n-train", type=positive_int, default=20_000, help="generated training pairs (--task)")
    d.add_argument("--n-valid", type=positive_int, default=1000, help="generated validation pairs (--task)")
    d.add_argument("--n-test", type=positive_int, default=2000, help="held-out dates for the per-format report")
    d.add_argument("--tokens", choices=TOKENS, default=None, help="how both sides are cut into tokens (default chars)")
    d.add_argument("--src-tokens", choices=TOKENS, default=None, help="tokens of the source side")
    d.add_argument("--tgt-tokens", choices=TOKENS, default=None, help="tokens of the target side")
    d.add_argument("--max-len", type=positive_int, default=None,
                   help="the decoder's length limit (default: longest training target + max(10, half of it))")
    g = add_rnn_args(t, cell="gru", hidden_size=64, cells=("gru", "lstm"))
    g.add_argument("--embed-size", "--embed", dest="embed_size", type=positive_int, default=32,
                   help="token embedding size (source and target)")
    g.add_argument("--attention", choices=("general", "dot", "concat", "additive"), default="general",
                   help="Luong's general, dot or concat scores, or Bahdanau's additive (dot needs --unidirectional)")
    g.add_argument("--unidirectional", dest="bidirectional", action="store_false", help="one-directional encoder")
    g.add_argument("--teacher-forcing", type=float, default=1.0, help="probability of feeding the true previous token")
    add_fit_args(t, steps=3000, batch_size=64, lr=3e-3, eval_every=200, schedule="cosine")
    add_run_args(t, out="runs/seq2seq")
    t.set_defaults(run=run_train)

    tr = add_parser(s2, "translate", "decode sources with a trained run: one TEXT, or one source a line from --input")
    tr.add_argument("run_dir", metavar="RUN_DIR")
    tr.add_argument("text", metavar="TEXT", nargs="?", default=None, help="one source (or use --input)")
    tr.add_argument("--input", metavar="FILE", default=None,
                    help="one source a line ('-': stdin); source<TAB>target lines are scored too")
    tr.add_argument("--output", metavar="FILE", default=None, help="write the outputs here (default, or '-': stdout)")
    add_replace_arg(tr)
    tr.add_argument("--scores", metavar="JSON", default=None, help="write the scores here (labelled --input)")
    tr.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    _decoding_args(tr)
    tr.set_defaults(run=run_translate, text_output=True)

    a = add_parser(s2, "attention", "write the attention map of one source as PNG")
    a.add_argument("run_dir", metavar="RUN_DIR")
    a.add_argument("text", metavar="TEXT")
    a.add_argument("--png", default=None, help="output file (default RUN_DIR/attention.png)")
    add_replace_arg(a)
    _decoding_args(a)
    a.set_defaults(run=run_attention)


def _decoding_args(p):
    p.add_argument("--beam", type=positive_int, default=1, help="beam size (1: greedy)")
    p.add_argument("--length-penalty", type=positive_float, default=0.7, help="beam score / length ** this")


def _token_modes(args):
    from ..errors import UserError

    if args.tokens and (args.src_tokens or args.tgt_tokens):
        raise UserError("--tokens sets both sides: expected it or --src-tokens/--tgt-tokens, got both")
    if args.train is None and (args.tokens or args.src_tokens or args.tgt_tokens or args.valid):
        raise UserError("--tokens, --src-tokens, --tgt-tokens and --valid describe a --train file; got them without one")
    if args.train is not None and args.task is not None:
        raise UserError(f"--train and --task: expected one data source, got both (--task {args.task})")
    return (args.src_tokens or args.tokens or "chars"), (args.tgt_tokens or args.tokens or "chars")


def run_train(args):
    from ..apps.seq2seq import train
    from ..errors import UserError

    if not 0.0 <= args.teacher_forcing <= 1.0:
        raise UserError(f"--teacher-forcing: expected a probability in [0, 1], got {args.teacher_forcing}")
    src_tokens, tgt_tokens = _token_modes(args)
    model_kw = dict(embed_size=args.embed_size, hidden_size=args.hidden_size, cell=args.cell,
                    num_layers=args.num_layers, dropout=args.dropout, attention=args.attention,
                    bidirectional=args.bidirectional, teacher_forcing=args.teacher_forcing)
    train(train_path=args.train, valid_path=args.valid, task=args.task, src_tokens=src_tokens, tgt_tokens=tgt_tokens,
          valid_fraction=args.valid_fraction, n_train=args.n_train, n_valid=args.n_valid, n_test=args.n_test,
          batch_size=args.batch_size, max_len=args.max_len, model_kw=model_kw, config=fit_config(args, stateful=False),
          out=args.out, resume=args.resume, changes=getattr(args, "changes", None), overwrite=args.overwrite,
          progress=args.progress)
    return 0


def run_translate(args):
    from ..apps.seq2seq import translate
    from ..errors import UserError

    if (args.text is None) == (args.input is None):
        raise UserError("expected one source TEXT or --input FILE, got "
                        + ("both" if args.text is not None else "neither"))
    translate(args.run_dir, text=args.text, input_path=args.input, output=args.output, beam=args.beam,
              alpha=args.length_penalty, progress=args.progress, scores_path=args.scores)
    return 0


def run_attention(args):
    import os

    from ..apps.seq2seq import attention

    out, png = attention(args.run_dir, args.text, args.png or os.path.join(args.run_dir, "attention.png"),
                         beam=args.beam, alpha=args.length_penalty)
    print(out)
    print(f"wrote {png}")
    return 0
