"""``rnnkit eval RUN_DIR TEXT_FILE``: loss and bits per character of a trained model on a text."""
from __future__ import annotations

from ._args import add_parser, positive_int


def register(sub):
    p = add_parser(sub, "eval", "loss and bits per character of a trained character model on a text file")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("text_file", metavar="TEXT_FILE", help="UTF-8 text, or a corpus directory made by `rnnkit prepare`")
    p.add_argument("--batch-size", type=positive_int, default=16,
                   help="parallel streams: the text is cut into this many rows, each read with its carried state, "
                        "and the last (length - 1) %% batch-size characters are left out (1 scores every one)")
    p.add_argument("--seq-len", type=positive_int, default=128, help="characters per window")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="the best validation weights (the last checkpoint when the run has none) or the last")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=True, help="hide the progress bar")
    p.set_defaults(run=run)


def run(args):
    from ..apps.lm import evaluate_text, load
    from ..data.corpus import load_corpus

    from ..runs import fallback_note

    model, vocab = load(args.run_dir, "best" if args.checkpoint == "best" else "last")
    fallback_note(model, args.run_dir, args.checkpoint, "rnnkit eval")
    text = load_corpus(args.text_file, purpose="to evaluate the model on")
    r = evaluate_text(model, vocab, text, args.batch_size, args.seq_len, progress=args.progress,
                      source=args.text_file)
    print(f"loss {r['loss']:.4f} nats/char, {r['bpc']:.4f} bits/char over {r['characters']:,} characters")
    if r["unknown"]:
        print(f"({r['unknown']:,} characters outside the model's vocabulary were read as unknown)")
    return 0
