"""``rnnkit sample RUN_DIR``: generate text from a trained character model."""
from __future__ import annotations

from ._args import add_parser, nonneg_float, nonneg_int, positive_int, seed_value


def register(sub):
    p = add_parser(sub, "sample", "generate text from a trained character model")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by rnnkit train / demo")
    p.add_argument("--length", type=positive_int, default=500, help="characters to generate")
    p.add_argument("--temperature", type=nonneg_float, default=0.8, help="softmax temperature (0: greedy)")
    p.add_argument("--top-k", type=nonneg_int, default=0, help="sample among the k likeliest characters (0: all)")
    p.add_argument("--prime", default="", help="text to condition on")
    p.add_argument("--seed", type=seed_value, default=None, help="random seed")
    p.add_argument("--num", type=positive_int, default=1,
                   help="independent samples, drawn together as one batch (printed one after another, "
                        "separated by a blank line)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which weights: best validation or last checkpoint")
    p.set_defaults(run=run)


def run(args):
    import sys
    import time
    import warnings

    from ..apps.lm import load
    from ..runs import fallback_note

    model, vocab = load(args.run_dir, "best" if args.checkpoint == "best" else "last")
    fallback_note(model, args.run_dir, args.checkpoint, "rnnkit sample")
    unknown = vocab.unknown(args.prime)
    if unknown:
        print(f"note: the prime has characters the model never saw ({''.join(sorted(unknown))!r}); "
              "they are read as the unknown character", file=sys.stderr)
    t0 = time.perf_counter()
    with warnings.catch_warnings():                 # the note above said it, in the command's own words
        warnings.simplefilter("ignore", UserWarning)
        texts = model.sample(vocab, args.length, args.temperature, args.top_k, args.prime, rng=args.seed,
                             n=None if args.num == 1 else args.num)
    if args.num == 1:
        texts = [texts]
    dt = time.perf_counter() - t0
    print("\n\n".join(args.prime + t for t in texts))
    total = args.length * args.num
    print(f"[{total} characters in {dt:.2f} s, {total / dt:.0f} chars/s]", file=sys.stderr)
    return 0
