"""``rnnkit train TEXT_FILE``: train a character-level language model."""
from __future__ import annotations

from ._args import add_parser, fraction, nonneg_float, nonneg_int, positive_float, positive_int

CELLS = ("lstm", "gru", "rnn", "rnn-relu")


def add_model_args(p, hidden=256, layers=2, embed=64, dropout=0.0):
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell")
    g.add_argument("--hidden", type=positive_int, default=hidden, help="hidden units per layer")
    g.add_argument("--layers", type=positive_int, default=layers, help="recurrent layers (1-3 recommended)")
    g.add_argument("--embed", type=positive_int, default=embed, help="character embedding size")
    g.add_argument("--dropout", type=fraction, default=dropout, help="dropout between and after recurrent layers")


def add_training_args(p, seq_len=64, batch_size=32, lr=2e-3, steps=None, eval_every=200):
    g = p.add_argument_group("training")
    g.add_argument("--seq-len", type=positive_int, default=seq_len, help="characters per window (TBPTT length)")
    g.add_argument("--batch-size", type=positive_int, default=batch_size, help="parallel streams per batch")
    g.add_argument("--lr", type=positive_float, default=lr, help="learning rate")
    g.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "rmsprop", "adagrad"), default="adam")
    g.add_argument("--weight-decay", type=nonneg_float, default=0.0)
    g.add_argument("--clip", type=nonneg_float, default=5.0, help="max gradient norm (0: no clipping)")
    g.add_argument("--schedule", choices=("none", "cosine", "step", "exponential", "plateau"), default="none",
                   help="learning-rate schedule")
    g.add_argument("--warmup", type=nonneg_int, default=0, help="warm-up steps (cosine schedule)")
    n = g.add_mutually_exclusive_group()
    n.add_argument("--steps", type=positive_int, default=steps, help="optimizer steps (default 1000)")
    n.add_argument("--epochs", type=positive_int, default=None, help="passes over the training text")
    g.add_argument("--no-stateful", dest="stateful", action="store_false",
                   help="start every window from a zero state (full BPTT per window) instead of carrying it")
    g.add_argument("--val-fraction", type=fraction, default=0.1, help="tail of the text held out for validation")
    g.add_argument("--eval-every", type=positive_int, default=eval_every, help="steps between evaluations")
    g.add_argument("--checkpoint-every", type=positive_int, default=200, help="steps between checkpoints")
    g.add_argument("--log-every", type=positive_int, default=10, help="steps between metric log lines")
    g.add_argument("--patience", type=nonneg_int, default=0, help="evaluations without improvement before stopping (0: never)")
    g.add_argument("--time-limit", type=nonneg_float, default=0.0, help="stop after this many seconds (0: none)")
    g.add_argument("--seed", type=int, default=0, help="random seed (initialisation, dropout)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def register(sub):
    p = add_parser(sub, "train", "train a character-level language model on a UTF-8 text file")
    p.add_argument("text_file", metavar="TEXT_FILE", help="UTF-8 text to learn")
    p.add_argument("--out", default="runs/charlm", help="run directory (checkpoints, logs, plots)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_model_args(p)
    add_training_args(p)
    p.set_defaults(run=run)


def build(args, text, on_step=()):
    """Build ``(trainer, vocab)`` from parsed arguments and the text."""
    import numpy as np

    from ..data.text import CharVocab, StreamBatches, split_ids
    from ..models import CharLM
    from ..train import Trainer, TrainConfig
    from ._lm import text_digest

    vocab = CharVocab.from_text(text)
    train_ids, val_ids = split_ids(vocab.encode(text), args.val_fraction)
    train = StreamBatches(train_ids, args.batch_size, args.seq_len)
    val = None
    if len(val_ids) > 1:
        val = StreamBatches(val_ids, max(1, min(args.batch_size, (len(val_ids) - 1) // args.seq_len)), args.seq_len)
    config = TrainConfig(steps=args.steps or 1000, epochs=args.epochs, lr=args.lr, optimizer=args.optimizer,
                         weight_decay=args.weight_decay, clip=args.clip, schedule=args.schedule, warmup=args.warmup,
                         stateful=args.stateful, eval_every=args.eval_every, checkpoint_every=args.checkpoint_every,
                         log_every=args.log_every, patience=args.patience, time_limit=args.time_limit, seed=args.seed)
    model = CharLM(len(vocab), args.embed, args.hidden, args.layers, args.cell, args.dropout, dtype=np.float32,
                   seed=args.seed)
    extra = {"vocab": vocab.to_dict(), "text_digest": text_digest(text),
             "data": {"seq_len": args.seq_len, "batch_size": args.batch_size, "val_fraction": args.val_fraction}}
    trainer = Trainer(model, train, val, config, args.out, extra=extra, progress=args.progress, callbacks=on_step)
    return trainer, vocab


def resume_args(args, ckpt):
    """Overwrite ``args`` with the settings a checkpoint was trained with (keeping an explicit --steps)."""
    m, t, d = ckpt["model_config"], ckpt["config"], ckpt["extra"]["data"]
    args.cell, args.hidden, args.layers, args.embed, args.dropout = (m["cell"], m["hidden_size"], m["num_layers"],
                                                                     m["embed_size"], m["dropout"])
    args.seq_len, args.batch_size, args.val_fraction = d["seq_len"], d["batch_size"], d["val_fraction"]
    steps = args.steps
    for k in ("lr", "optimizer", "weight_decay", "clip", "schedule", "warmup", "stateful", "eval_every",
              "checkpoint_every", "log_every", "patience", "time_limit", "seed", "steps", "epochs"):
        setattr(args, k, t[k])
    if steps is not None:
        args.steps, args.epochs = steps, None


def run(args):
    import os

    from .. import io
    from ..errors import UserError
    from ..data.text import read_text
    from ._lm import text_digest

    text = read_text(args.text_file)
    ckpt = None
    if args.resume:
        path = os.path.join(args.out, "checkpoint.npz")
        if not os.path.exists(path):
            raise UserError(f"--resume: no checkpoint to resume from at {path}")
        ckpt = io.load(path)
        if ckpt["extra"].get("text_digest") != text_digest(text):
            raise UserError(f"--resume: {args.text_file} is not the text the run in {args.out} was trained on")
        resume_args(args, ckpt)
    elif os.path.exists(os.path.join(args.out, "checkpoint.npz")):
        raise UserError(f"{args.out} already holds a run; pass --resume to continue it or choose another --out")
    trainer, vocab = build(args, text)
    if ckpt is not None:
        trainer.restore(ckpt)
        print(f"resuming {args.out} at step {trainer.step}")
    print(f"training a {args.layers}-layer {args.cell.upper()} (hidden {args.hidden}, "
          f"{trainer.model.num_parameters():,} parameters) on {len(text):,} characters, vocabulary {len(vocab)}")
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {trainer.step}; checkpoint saved. Continue with: "
              f"rnnkit train {args.text_file} --out {args.out} --resume")
        return 130
    summary(result, args.out)
    return 0


def summary(result, out):
    import math

    line = f"{result['stop_reason']} at step {result['step']}"
    if "loss" in result:
        line += f"; train loss {result['loss']:.4f} ({result['bpc']:.3f} bits/char)"
    if math.isfinite(result["best_val_loss"]):
        line += f"; best validation {result['best_val_loss'] / math.log(2):.3f} bits/char"
    print(line)
    print(f"run directory: {out}  (rnnkit sample {out}; rnnkit plot {out})")
