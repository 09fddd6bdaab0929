"""``rnnkit tag train|predict|eval``: a BiLSTM tagger (word embeddings + character encoder) on
CoNLL / CoNLL-U files, or on the built-in DNA motif-start task when no --train is given."""
from __future__ import annotations

from ._args import (OneLineParser, add_replace_arg, add_fit_args, add_parser, add_rnn_args, add_run_args, fraction, nonneg_float,
                    nonneg_int, positive_int)

PREDICT_HELP = """Tag FILE (or '-' for stdin) with the tagger in RUN and write token<TAB>tag lines, a blank line
after each sentence. FILE is read as CoNLL / CoNLL-U (one token a line, blank lines between
sentences, token in column 1; gold tags, when present, are scored) if its name ends in .conll or
.conllu or any line holds a tab; otherwise as one sentence a line with tokens separated by
whitespace (blank lines skipped). --format forces either reading."""


def register(sub):
    p = add_parser(sub, "tag", "sequence tagging (POS, NER, ...): a BiLSTM tagger with a character encoder; "
                   "train, predict, eval")
    s = p.add_subparsers(dest="action", metavar="ACTION", parser_class=OneLineParser, required=True)

    t = add_parser(s, "train", "train a tagger on CoNLL / CoNLL-U files (default: the built-in DNA motif-start task)")
    d = t.add_argument_group("data")
    d.add_argument("--train", metavar="FILE", help="tagged training sentences, CoNLL or CoNLL-U "
                   "(omitted: generated DNA with motif starts tagged 1)")
    d.add_argument("--valid", metavar="FILE", help="validation sentences (default: a seeded --val-fraction of --train)")
    d.add_argument("--test", metavar="FILE",
                   help="test sentences: accuracy, per-tag F1, OOV accuracy -> RUN/scores.json")
    d.add_argument("--column", help="tag column: a CoNLL-U field name (upos, xpos, deprel, ...) or a 1-based "
                   "index (default: upos for CoNLL-U, the last column for CoNLL)")
    d.add_argument("--val-fraction", "--valid-fraction", type=fraction, default=0.1, help="share of --train held out when no --valid")
    d.add_argument("--dna-length", type=positive_int, default=100, help="DNA task: bases per sequence (>= 18)")
    d.add_argument("--dna-train", type=positive_int, default=2000, help="DNA task: training sequences")
    d.add_argument("--dna-test", type=positive_int, default=500, help="DNA task: test sequences")
    add_rnn_args(t, cell="lstm", hidden_size=64)
    m = t.add_argument_group("tagger")
    m.add_argument("--unidirectional", dest="bidirectional", action="store_false",
                   help="left-to-right sentence layers only (default: bidirectional)")
    m.add_argument("--embed-size", type=positive_int, default=64, help="word embedding size")
    m.add_argument("--no-chars", dest="chars", action="store_false", help="no character-level word encoder")
    m.add_argument("--char-embed-size", type=nonneg_int, default=24, help="character embedding size (0: no characters)")
    m.add_argument("--char-hidden-size", type=positive_int, default=24, help="character encoder units per direction")
    m.add_argument("--word-dropout", type=nonneg_float, default=0.25,
                   help="alpha: a training word seen c times is read as <unk> with probability alpha/(alpha+c)")
    add_fit_args(t, steps=1000, batch_size=32, lr=2e-3, eval_every=100)
    add_run_args(t, "runs/tag")
    t.set_defaults(run=run_train)

    pr = add_parser(s, "predict", "tag a file with a trained tagger", description=PREDICT_HELP)
    pr.add_argument("run_dir", metavar="RUN", help="run directory of `rnnkit tag train`")
    pr.add_argument("file", metavar="FILE", help="CoNLL / CoNLL-U file, or one sentence a line; '-' reads stdin")
    pr.add_argument("--output", "-o", metavar="F", help="write the tagged tokens here instead of stdout ('-': stdout)")
    add_replace_arg(pr)
    pr.add_argument("--format", choices=("auto", "conll", "lines"), default="auto", help="how to read FILE")
    pr.add_argument("--column", help="gold tag column of a CoNLL(-U) FILE (default: upos / the last column)")
    pr.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    pr.set_defaults(run=run_predict, text_output=True)

    e = add_parser(s, "eval", "score a tagger on its own test data (its --test file or the regenerated DNA test "
                   "set) or on --test FILE")
    e.add_argument("run_dir", metavar="RUN")
    e.add_argument("--test", metavar="FILE", help="tagged CoNLL / CoNLL-U sentences to score on instead")
    e.add_argument("--column", help="tag column of --test (default: the run's)")
    e.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    e.set_defaults(run=run_eval)


def run_train(args):
    import math

    from ..apps.tag import data_spec, format_scores, train_tagger
    from ._args import fit_config

    if args.train is None and args.dna_length < 18:
        from ..errors import UserError
        raise UserError(f"--dna-length: expected at least 18 (three motif lengths), got {args.dna_length}")
    model_kw = dict(embed_size=args.embed_size, char_embed_size=args.char_embed_size,
                    char_hidden_size=args.char_hidden_size, hidden_size=args.hidden_size, num_layers=args.num_layers,
                    cell=args.cell, bidirectional=args.bidirectional, dropout=args.dropout, chars=args.chars)
    paths = {"train": args.train, "valid": args.valid, "test": args.test}
    result, scores = train_tagger(
        None if args.resume else data_spec(args), args.out, model_kw=model_kw, config=fit_config(args),
        batch_size=args.batch_size, word_dropout=args.word_dropout, resume=args.resume,
        changes=getattr(args, "changes", None), paths=paths, overwrite=args.overwrite, progress=args.progress)
    line = f"{result['stop_reason']} at step {result['step']}"
    if "loss" in result:
        line += f"; train loss {result['loss']:.4f}"
    if math.isfinite(result["best_val_loss"]):
        line += f"; best validation loss {result['best_val_loss']:.4f}"
    print(line)
    if scores is not None:
        print(format_scores(scores))
        print(f"wrote {args.out}/scores.json")
    print(f"run directory: {args.out}  (rnnkit tag predict {args.out} FILE; rnnkit tag eval {args.out})")
    return 0


def run_predict(args):
    import sys

    from ..apps.tag import format_scores, predict_file

    scores = predict_file(args.run_dir, args.file, args.output, args.format, args.column, args.progress)
    if scores is not None:
        from ..io import to_stdout

        print(format_scores(scores), file=sys.stderr if to_stdout(args.output) else sys.stdout)
    return 0


def run_eval(args):
    from ..apps.tag import evaluate_run, format_scores

    print(format_scores(evaluate_run(args.run_dir, args.test, args.column, args.progress)))
    return 0
