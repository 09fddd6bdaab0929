"""``rnnkit train TEXT_FILE``: train a character-level language model."""
from __future__ import annotations

from ..errors import UserError
from ._args import (add_engine_args, add_fit_args, add_parser, add_rnn_args, add_rnn_option_args, add_run_args,
                    fraction, positive_int)


def register(sub):
    p = add_parser(sub, "train", "train a character-level language model on a UTF-8 text file")
    p.add_argument("text_file", metavar="TEXT_FILE",
                   help="UTF-8 text to learn, or a corpus directory made by `rnnkit prepare` (read as needed)")
    add_run_args(p, "runs/charlm")
    g = add_rnn_args(p, hidden_size=256, num_layers=2)
    g.add_argument("--embed-size", "--embed", dest="embed_size", type=positive_int, default=64,
                   help="character embedding size")
    g.add_argument("--tie-weights", action="store_true",
                   help="the output layer's weight is the embedding matrix (needs --embed-size equal to --hidden-size)")
    add_rnn_option_args(g)
    f = add_fit_args(p, steps=1000, lr=2e-3, eval_every=200)
    f.add_argument("--seq-len", type=positive_int, default=64, help="characters per window (TBPTT length)")
    f.add_argument("--no-stateful", dest="stateful", action="store_false", default=True,
                   help="start every window from a zero state (full BPTT per window) instead of carrying it")
    f.add_argument("--val-fraction", "--valid-fraction", type=fraction, default=0.1, help="tail of the text held out for validation")
    p.add_argument("--dry-run", action="store_true",
                   help="print the parameter count and the memory a training step needs, then exit")
    add_engine_args(p)
    p.set_defaults(run=run)


def run(args):
    from ..apps import lm
    from ..data.corpus import load_corpus
    from ._args import fit_config, rnn_options

    text = load_corpus(args.text_file)           # a text file, or a corpus made by `rnnkit prepare` (mapped)
    if args.dry_run:
        vocab = text.vocab
        est = lm.memory_estimate(len(vocab), args.embed_size, args.hidden_size, args.num_layers, args.cell,
                                 args.batch_size, args.seq_len, args.optimizer, tie_weights=args.tie_weights)
        from ..apps.common import available_memory

        free = available_memory()
        print(f"{est['parameters']:,} parameters (vocabulary {len(vocab)}); memory for training: "
              f"{est['weights'] / 2**20:,.1f} MiB of weights, gradients and optimizer moments + "
              f"{est['activations'] / 2**20:,.1f} MiB of activations kept for BPTT + "
              f"{est['backward'] / 2**20:,.1f} MiB for their gradients = {est['total'] / 2**20:,.1f} MiB"
              + (f" ({free / 2**30:.1f} GiB free here)" if free else ""))
        return 0
    config = fit_config(args, stateful=args.stateful)
    if args.engine == "torch":
        return _run_torch(args, text, config)
    if args.nproc > 1:
        raise UserError("--nproc: more than one process needs --engine torch")
    _, result, _ = lm.train_lm(text, args.out, cell=args.cell, hidden_size=args.hidden_size,
                               num_layers=args.num_layers, embed_size=args.embed_size, dropout=args.dropout,
                               seq_len=args.seq_len, batch_size=args.batch_size, val_fraction=args.val_fraction,
                               rnn_options=rnn_options(args), tie_weights=args.tie_weights, config=config,
                               resume=args.resume, changes=getattr(args, "changes", None),
                               overwrite=args.overwrite, progress=args.progress)
    print(lm.summary(result, args.out))
    return 0


def _run_torch(args, text, config):
    """``--engine torch``: check the run directory and the data here, then train on PyTorch."""
    from dataclasses import asdict

    from .. import runs
    from ..apps import lm
    from ..apps.common import check_steps_left, resumed_config, saved_run
    from ..data.text import CharVocab
    from ..distributed import launch, train_lm_process

    import os

    from ._args import RNN_OPTIONS, rnn_options

    world = int(os.environ.get("WORLD_SIZE", args.nproc))     # a launcher such as torchrun says how many
    asked = [rnn_options(args)] + ([saved_run(args.out, lm.KIND)["model_config"]] if args.resume else [])
    for options in asked:                                       # the options given, and the run's
        used = [k.replace("_", "-") for k, v in RNN_OPTIONS.items() if options.get(k, v) != v]
        if used:
            raise UserError(f"--engine torch: torch.nn's recurrent layers have no {', '.join('--' + k for k in used)}; "
                            f"train with --engine numpy")
    if args.batch_size % world:
        raise UserError(f"--batch-size {args.batch_size}: expected a multiple of --nproc {world} "
                        f"(each process takes an equal share of every batch)")
    if world > 1 and config.time_limit:
        raise UserError("--time-limit: not with --nproc > 1 (each process has its own clock; stop by --steps)")
    if args.resume:
        ckpt = saved_run(args.out, lm.KIND)
        if ckpt["extra"].get("text_digest") != text.digest:
            raise UserError(f"--resume: this is not the text the run in {args.out} was trained on")
        if ckpt["extra"]["data"]["batch_size"] % world:
            raise UserError(f"--nproc {world}: the run's batch of {ckpt['extra']['data']['batch_size']} rows "
                            f"does not split evenly between {world} processes")
        resumed = resumed_config(ckpt, getattr(args, "changes", None))     # what the processes will train to
        total = resumed.steps
        if resumed.epochs is not None:
            d = ckpt["extra"]["data"]
            total = resumed.epochs * len(lm.stream_data(text, CharVocab.from_dict(ckpt["extra"]["vocab"]), d["seq_len"],
                                                        d["batch_size"], d["val_fraction"])[0])
        check_steps_left(ckpt, total, resumed, args.out)               # here: one line, not a process's traceback
    else:
        runs.prepare(args.out, lm.KIND, overwrite=args.overwrite, delete=False)   # process 0 deletes an old run
    spec = {"text_file": args.text_file, "out": args.out, "resume": args.resume, "overwrite": args.overwrite,
            "changes": getattr(args, "changes", None), "config": asdict(config), "progress": args.progress,
            "model": {"embed_size": args.embed_size, "hidden_size": args.hidden_size, "num_layers": args.num_layers,
                      "cell": args.cell, "dropout": args.dropout, "tie_weights": args.tie_weights},
            "data": {"seq_len": args.seq_len, "batch_size": args.batch_size, "val_fraction": args.val_fraction}}
    launch(train_lm_process, (spec,), args.nproc)
    return 0
