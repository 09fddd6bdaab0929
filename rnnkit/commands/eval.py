"""``rnnkit eval RUN_DIR TEXT_FILE``: loss and bits per character of a trained model on a text."""
from __future__ import annotations

from ._args import add_parser, positive_int


def register(sub):
    p = add_parser(sub, "eval", "loss and bits per character of a trained character model on a text file")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("text_file", metavar="TEXT_FILE")
    p.add_argument("--batch-size", type=positive_int, default=16, help="parallel streams")
    p.add_argument("--seq-len", type=positive_int, default=128, help="characters per window")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.set_defaults(run=run)


def run(args):
    import math

    from ..errors import UserError
    from ..data.text import StreamBatches, read_text
    from ._lm import load_run

    model, vocab, _ = load_run(args.run_dir, args.checkpoint)
    text = read_text(args.text_file)
    if len(text) < 2:
        raise UserError(f"{args.text_file}: expected at least 2 characters to evaluate, got {len(text)}")
    unknown = vocab.unknown(text)
    ids = vocab.encode(text)
    batch = max(1, min(args.batch_size, (len(ids) - 1) // 2))
    data = StreamBatches(ids, batch, args.seq_len)
    total, count, state = 0.0, 0, None
    for i in range(len(data)):
        loss, state, n = model.evaluate(data.batch(i, 0), state)
        total, count = total + loss, count + n
    mean = total / count
    print(f"loss {mean:.4f} nats/char, {mean / math.log(2):.4f} bits/char over {count:,} characters")
    if unknown:
        print(f"({sum(text.count(c) for c in unknown):,} characters outside the model's vocabulary were read as unknown)")
    return 0
