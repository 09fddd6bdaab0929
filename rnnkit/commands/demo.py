"""``rnnkit demo``: a character LSTM learns Python's own documentation in about two minutes."""
from __future__ import annotations

from ._args import add_parser, positive_float, positive_int, seed_value


def register(sub):
    p = add_parser(sub, "demo", "train a small character LSTM on Python's documentation text "
                                "(pydoc_data.topics), printing samples as it learns")
    p.add_argument("--minutes", type=positive_float, default=2.0,
                   help="training time, in all (a resumed demo counts the minutes it already trained)")
    p.add_argument("--out", "-o", default=None, help="run directory (default: a new runs/demo*)")
    p.add_argument("--resume", action="store_true", help="continue the demo run in --out (after Ctrl-C)")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out (it is deleted first)")
    p.add_argument("--hidden", type=positive_int, default=256, help="hidden units of the LSTM")
    p.add_argument("--layers", type=positive_int, default=1, help="stacked LSTM layers")
    p.add_argument("--sample-every", type=positive_float, default=20.0, help="seconds between samples")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the weights, batches and samples")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(run=run)


def fresh_dir(base: str) -> str:
    import os

    path, i = base, 1
    while os.path.exists(path):
        path, i = f"{base}-{i}", i + 1
    return path


def run(args):
    import os

    from tqdm.auto import tqdm

    from .. import runs, threads
    from ..apps import lm
    from ..data.text import pydoc_topics_text
    from ..train import TrainConfig

    from ..errors import UserError

    if (args.resume or args.overwrite) and args.out is None:
        flag = "--resume" if args.resume else "--overwrite"
        raise UserError(f"{flag}: expected --out RUN_DIR, the demo run to {'continue' if args.resume else 'replace'}")
    if args.out is not None:
        runs.prepare(args.out, lm.KIND, resume=args.resume, overwrite=args.overwrite, delete=False,
                     remedy=f"pass --resume to continue it, --overwrite to replace it, or drop --out for a fresh "
                            f"directory ({fresh_dir('runs/demo')} here)")
    if args.resume:
        _resumed_settings(args)
    if "RNNKIT_NUM_THREADS" not in os.environ:
        # a timed run on whatever machine a newcomer has: on a busy one, BLAS on every core made the
        # demo ten times slower (133 steps in 2 minutes against 1,283 quiet); auto measures instead
        threads.set_num_threads("auto")
    text = pydoc_topics_text()
    out = args.out or fresh_dir("runs/demo")
    config = TrainConfig(steps=100000, lr=3e-3, clip=5.0, stateful=True, eval_every=250, checkpoint_every=250,
                         log_every=10, time_limit=args.minutes * 60, seed=args.seed)
    next_sample = [0.0]

    def show_sample(trainer):
        if trainer.elapsed < next_sample[0]:
            return
        next_sample[0] = trainer.elapsed + args.sample_every
        s = trainer.model.sample(vocab, 160, temperature=0.7, prime="The ", rng=trainer.step)
        loss = trainer.last.get("bpc")
        head = f"--- step {trainer.step}, {trainer.elapsed:.0f} s" + (f", {loss:.2f} bits/char" if loss else "")
        tqdm.write(f"{head} ---\nThe {s}\n")

    banner = [f"rnnkit demo: a {args.layers}-layer LSTM (hidden {args.hidden}) learns {len(text):,} characters of "
              f"Python's documentation for {args.minutes:g} minutes, in {out}."]

    def announce(message):
        """train_lm's first message comes once the run is accepted (a resumed run's spent --minutes
        is refused before it): the banner is printed then, not above a refusal."""
        if banner:
            print(banner.pop())

    vocab = lm.CharVocab.from_text(text)        # the vocabulary train_lm builds from the same text
    trainer, result, vocab = lm.train_lm(text, out, hidden_size=args.hidden, num_layers=args.layers, embed_size=48,
                                         seq_len=64, batch_size=32, val_fraction=0.05, config=config,
                                         resume=args.resume, changes={"time_limit": args.minutes * 60},
                                         overwrite=args.overwrite, progress=args.progress, callbacks=[show_sample],
                                         log=announce, time_flag=("--minutes", 60.0))
    from ..io import read_jsonl
    from ..plots import plot_metrics

    print("--- final sample (temperature 0.7) ---")
    print("The " + trainer.model.sample(vocab, 400, temperature=0.7, prime="The ", rng=0))
    print(lm.summary(result, out))
    log = f"{out}/metrics.jsonl"
    print(f"curves: {plot_metrics([r for _, r in read_jsonl(log, '; left out of the plot')], log, f'{out}/curves.png')}")
    return 0


def _resumed_settings(args) -> None:
    """A resumed demo is the run's own model (``--hidden``/``--layers`` given otherwise are refused)
    and trains until ``--minutes`` in all (the training path refuses minutes already spent)."""
    from .. import runs
    from ..errors import UserError

    model = (runs.read_config(args.out) or {}).get("model", {})
    given = getattr(args, "given", set())
    for dest, key in (("hidden", "hidden_size"), ("layers", "num_layers")):
        if key in model:
            if dest in given and getattr(args, dest) != model[key]:
                raise UserError(f"--resume: the demo in {args.out} has --{dest} {model[key]}, not "
                                f"{getattr(args, dest)}; drop --{dest}")
            setattr(args, dest, model[key])
