"""argparse helpers: value checks that fail with one clear line, and a parser whose errors are one line."""
from __future__ import annotations

import argparse
import math
import sys


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line (no usage dump) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _as_int(text):
    """``int(text)`` (spaces around it allowed), or None when it is no integer."""
    try:
        return int(text)
    except ValueError:
        return None


def _integer(minimum: int, what: str, name: str, many: bool = False):
    """An argparse type: an integer of at least ``minimum`` or, with ``many``, comma-separated such
    integers as a list (as a run's config.json holds it); its errors say ``what`` was expected."""

    def parse(text):
        values = [_as_int(t) for t in text.split(",") if t.strip()] if many else [_as_int(text)]
        if not values or any(v is None or v < minimum for v in values):   # a trailing comma is no item
            shown = values[0] if not many and values[0] is not None else repr(text)
            raise argparse.ArgumentTypeError(f"expected {what}, got {shown}")
        return values if many else values[0]

    parse.__name__ = name
    return parse


positive_int = _integer(1, "a positive integer", "positive_int")
nonneg_int = _integer(0, "an integer >= 0", "nonneg_int")
# NumPy takes seeds >= 0 only, and its own refusal of -1 comes too late to name the option
seed_value = _integer(0, "a seed, an integer >= 0", "seed_value")


def finite_float(text):
    """An argparse type: any finite number."""
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return v


def nonneg_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


def fraction(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return v


positive_int_list = _integer(1, "comma-separated positive integers such as 128,256,128", "positive_int_list", many=True)
nonneg_int_list = _integer(0, "comma-separated integers >= 0 such as 0,50,100", "nonneg_int_list", many=True)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's real default, except for on/off flags (``--no-progress`` is not
    "default: True") and options without one."""

    def _get_help_string(self, action):
        if (action.nargs == 0 or action.default in (None, argparse.SUPPRESS, "")
                or "%(default)" in (action.help or "") or "(default:" in (action.help or "")):
            return action.help
        if isinstance(action.default, (list, tuple)):       # as typed on the command line: 0,75,50,25
            return f"{action.help or ''} (default: {','.join(map(str, action.default))})".lstrip()
        return super()._get_help_string(action)


def add_parser(sub, name, help, description=None):
    """Add a subcommand parser that prints one-line errors."""
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter)


def given_options(parser, argv) -> set:
    """The destinations the command line set explicitly (not left at their defaults): the
    arguments are parsed once more with every default suppressed."""
    def suppress(p):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for child in a.choices.values():
                    suppress(child)
            elif a.dest != "help":
                a.default = argparse.SUPPRESS
        p._defaults.clear()
    suppress(parser)
    return set(vars(parser.parse_args(argv)))


# Training settings a resumed run may change: they apply from the resumed step on and are logged
# in metrics.jsonl (rnnkit.train.Trainer.restore). The run's model, data and the settings the steps
# already taken depend on (seed, optimizer, batch size) must match, or resuming is refused.
CHANGEABLE = {"steps", "epochs", "lr", "weight_decay", "clip", "schedule", "warmup", "eval_every", "checkpoint_every",
              "log_every", "patience", "time_limit", "on_divergence", "divergence_factor", "divergence_steps",
              "no_decay", "freeze"}
RESUMABLE = CHANGEABLE | {"progress", "resume", "out"}
WHY_FIXED = {"batch_size": "the order of the remaining batches depends on it",
             "seed": "it drew the data order and dropout masks of the steps already taken",
             "optimizer": "the saved optimizer moments belong to the first one"}


# The kind of run each training command writes: resuming a run of another kind is refused for that,
# before its settings (another model's) are compared with the options given
RUN_KINDS = {"train": "charlm", "classify": "classifier", "tag": "tagger", "seq2seq": "seq2seq",
             "forecast": "forecaster", "handwriting": "handwriting"}


def check_resume(args, given: set) -> None:
    """Refuse ``--resume`` of a run of another kind than the command trains, or with options that
    differ from the run's saved model, data or fixed training settings, naming each difference (the
    run would not be the run it continues); set ``args.changes`` to the training settings given,
    which the resumed run applies and logs."""
    import os

    from .. import io, runs
    from ..errors import UserError

    args.given = given                                  # what the command line set (experiments' resume reads it)
    args.changes = {dest: getattr(args, dest) for dest in sorted(given & CHANGEABLE) if hasattr(args, dest)}
    path = os.path.join(str(args.out), "checkpoint.npz")
    if not os.path.isfile(path):
        return                                          # the app says there is nothing to resume
    kind = RUN_KINDS.get(getattr(args, "command", None))
    if kind is not None:
        runs.prepare(args.out, kind, resume=True)       # "holds a classifier run, not a charlm run"
    try:
        ckpt = io.load(path)
    except ValueError:
        return
    saved = {}
    for part in (ckpt.get("extra", {}).get("data", {}), ckpt.get("model_config", {}), ckpt.get("config", {})):
        if isinstance(part, dict):
            saved.update(part)
    diffs = []
    for dest in sorted(given - RESUMABLE):
        if dest in saved and saved[dest] != getattr(args, dest) and not _same_path(saved[dest], getattr(args, dest)):
            why = f": {WHY_FIXED[dest]}" if dest in WHY_FIXED else ""
            diffs.append(f"{dest.replace('_', '-')} {getattr(args, dest)!r} (the run has {saved[dest]!r}{why})")
    if diffs:
        raise UserError(f"--resume: {args.out} was trained with other settings; these cannot change on resume: "
                        f"{'; '.join(diffs)}. Drop them, or start a new run (another --out, or --overwrite)")


def _same_path(saved, given) -> bool:
    """The run's file: its path, a file of the same content, or, when the run's file is gone, the
    file given in its place (the run's data, moved), whose content the application then checks
    against the digest it recorded."""
    import filecmp
    import os

    if not (isinstance(saved, str) and isinstance(given, str)):
        return False
    if os.path.abspath(saved) == os.path.abspath(given):
        return True
    if not os.path.isfile(given):
        return False
    return not os.path.exists(saved) or (os.path.isfile(saved) and filecmp.cmp(saved, given, shallow=False))


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


# -- arguments every training command shares ----------------------------------------------------

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
CELL_ALIASES = {"rnn": "rnn_tanh", "rnn-relu": "rnn_relu", "rnn-tanh": "rnn_tanh"}


def cell_name(text):
    """A cell type in PyTorch's spelling (``lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu``); ``rnn`` and
    ``rnn-relu`` are accepted as aliases."""
    name = CELL_ALIASES.get(text, text)
    if name not in CELLS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(CELLS)}, got {text!r}")
    return name


def add_replace_arg(p):
    """--overwrite for a command that writes files the user names (checked in ``cli`` before any work)."""
    p.add_argument("--overwrite", action="store_true", help="replace an output file that already exists")


def add_run_args(p, out):
    """--out, --resume, --overwrite."""
    g = p.add_argument_group("run directory")
    g.add_argument("--out", "-o", default=out, help="run directory (config.json, checkpoint.npz, best.npz, metrics.jsonl)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    g.add_argument("--overwrite", action="store_true", help="replace the run in --out (it is deleted first; refused when files "
                   "that are not the run's own are beside it)")
    return g


def add_rnn_args(p, cell="lstm", hidden_size=64, num_layers=1, dropout=0.0, cells=CELLS):
    """--cell, --hidden-size (--hidden), --num-layers (--layers), --dropout."""
    g = p.add_argument_group("model")
    g.add_argument("--cell", type=cell_name, choices=cells, default=cell, help="recurrent cell")
    g.add_argument("--hidden-size", "--hidden", dest="hidden_size", type=positive_int, default=hidden_size,
                   help="hidden units per layer and direction")
    g.add_argument("--num-layers", "--layers", dest="num_layers", type=positive_int, default=num_layers,
                   help="stacked recurrent layers")
    g.add_argument("--dropout", type=fraction, default=dropout, help="dropout between recurrent layers")
    return g


def zoneout_value(text):
    """``Z`` (h and c) or ``ZH,ZC`` (an LSTM's h and c), each in [0, 1): a float, or a list when they differ."""
    parts = text.split(",")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected Z or ZH,ZC, got {text!r}")
    values = [fraction(v) for v in parts]
    return values[0] if len(values) == 1 or values[0] == values[1] else values


# The recurrent layers' initialisation and regularisation options, in the models' config spelling
RNN_OPTIONS = {"recurrent_dropout": 0.0, "input_dropout": 0.0, "zoneout": 0.0, "weight_dropout": 0.0,
               "forget_bias": None, "recurrent_init": "default", "layer_norm": False, "peepholes": False,
               "coupled_gates": False, "cell_clip": None}


def add_rnn_option_args(g):
    """--recurrent-dropout, --input-dropout, --zoneout, --weight-dropout, --forget-bias, --recurrent-init and
    the gate variants --layer-norm, --peepholes, --coupled-gates, --cell-clip (the options of rnnkit.nn.RNN /
    LSTM / GRU), on the model argument group ``g``."""
    g.add_argument("--recurrent-dropout", type=fraction, default=0.0,
                   help="dropout on h_{t-1} where it enters the recurrent product, one mask per sequence "
                        "(Gal & Ghahramani 2016)")
    g.add_argument("--input-dropout", type=fraction, default=0.0,
                   help="dropout on each recurrent layer's input, one mask per sequence for every step")
    g.add_argument("--zoneout", type=zoneout_value, default=0.0, metavar="Z[,ZC]",
                   help="probability that a unit keeps its previous value at a step (Krueger et al. 2017); "
                        "ZH,ZC gives an LSTM's cell state its own")
    g.add_argument("--weight-dropout", type=fraction, default=0.0,
                   help="DropConnect on the recurrent weights, one mask per window (AWD-LSTM)")
    g.add_argument("--forget-bias", type=float, default=None,
                   help="initial forget-gate bias of an LSTM (default: PyTorch's random one)")
    g.add_argument("--recurrent-init", choices=("default", "orthogonal", "identity"), default="default",
                   help="initial recurrent weights: PyTorch's uniform, orthogonal, or the identity (RNN cells)")
    g.add_argument("--layer-norm", action="store_true",
                   help="layer normalisation of the input and recurrent projections per gate block, and of an "
                        "LSTM's cell state (Ba et al. 2016); LSTM and GRU")
    g.add_argument("--peepholes", action="store_true",
                   help="LSTM peephole connections from the cell state to the gates (Gers & Schmidhuber 2000)")
    g.add_argument("--coupled-gates", action="store_true",
                   help="LSTM input gate coupled to the forget gate, i = 1 - f (three weight blocks)")
    g.add_argument("--cell-clip", type=positive_float, default=None, metavar="X",
                   help="clip an LSTM's cell state to [-X, X] (no gradient through a clipped unit)")
    return g


def rnn_options(args, set_only=False) -> dict:
    """The recurrent options the parsed arguments give, as the model takes them (``set_only``:
    only those that differ from the layer's defaults)."""
    return {k: getattr(args, k) for k, v in RNN_OPTIONS.items() if not set_only or getattr(args, k) != v}


def add_fit_args(p, steps=1000, batch_size=32, lr=3e-3, clip=5.0, eval_every=100, checkpoint_every=None,
                 schedule="none", patience=0):
    """Optimisation and bookkeeping: the fields of :class:`rnnkit.train.TrainConfig`."""
    g = p.add_argument_group("training")
    n = g.add_mutually_exclusive_group()
    n.add_argument("--steps", type=positive_int, default=None, help=f"optimizer steps (default: {steps})")
    n.add_argument("--epochs", type=positive_int, default=None, help="passes over the training data instead of --steps")
    g.add_argument("--batch-size", type=positive_int, default=batch_size, help="sequences per training step")
    g.add_argument("--lr", type=positive_float, default=lr, help="learning rate")
    g.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "rmsprop", "adagrad"), default="adam",
                   help="the update rule (adamw: Adam with decoupled weight decay)")
    g.add_argument("--weight-decay", type=nonneg_float, default=0.0,
                   help="L2 penalty on every parameter (decoupled for adamw); --no-decay-bias-norm exempts "
                        "biases and normalisation gains")
    g.add_argument("--no-decay-bias-norm", dest="no_decay", action="store_const", const="bias,norm", default="",
                   help="no weight decay on biases and normalisation gains (parameters named *bias*, *norm* "
                        "or ln_* (layer norm))")
    g.add_argument("--freeze", default="", metavar="PATTERNS",
                   help="train with these parameters fixed (no update, no weight-gradient product): "
                        "comma-separated name patterns, e.g. 'embed.*' (default: none)")
    g.add_argument("--clip", type=nonneg_float, default=clip, help="max gradient norm (0: no clipping)")
    g.add_argument("--schedule", choices=("none", "cosine", "step", "exponential", "plateau"), default=schedule,
                   help="learning-rate schedule")
    g.add_argument("--warmup", type=nonneg_int, default=0, help="warm-up steps (cosine schedule)")
    g.add_argument("--eval-every", type=positive_int, default=eval_every, help="steps between validations")
    g.add_argument("--checkpoint-every", type=positive_int, default=checkpoint_every,
                   help="steps between checkpoints (default: as --eval-every)")
    g.add_argument("--log-every", type=positive_int, default=10, help="steps between metric log lines")
    g.add_argument("--patience", type=nonneg_int, default=patience,
                   help="validations without improvement before stopping (0: never)")
    g.add_argument("--time-limit", type=nonneg_float, default=0.0, help="stop when training has run this many seconds in all: a resumed "
                   "run counts its earlier sessions, as --steps counts their steps (0: no limit)")
    g.add_argument("--seed", type=seed_value, default=0, help="random seed (initialisation, shuffling, dropout)")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=True, help="hide the progress bar")
    g.add_argument("--on-divergence", choices=("stop", "skip", "rollback"), default="stop",
                   help="when the loss or gradient becomes NaN/inf (or see --divergence-factor): stop with the last "
                        "checkpoint kept; skip that step's update; or reload the last checkpoint with half the "
                        "learning rate")
    g.add_argument("--divergence-factor", type=nonneg_float, default=0.0,
                   help="also treat as divergence a smoothed loss above this many times its lowest value (0: off)")
    g.add_argument("--divergence-steps", type=positive_int, default=20,
                   help="... for this many steps in a row")
    p.set_defaults(default_steps=steps)
    return g


def add_engine_args(p):
    """--engine numpy|torch, --nproc (training on PyTorch's DistributedDataParallel)."""
    e = p.add_argument_group("engine")
    e.add_argument("--engine", choices=("numpy", "torch"), default="numpy",
                   help="numpy: rnnkit's own kernels; torch: forward and backward on PyTorch "
                        "(DistributedDataParallel over --nproc processes), the same run directory")
    e.add_argument("--nproc", type=positive_int, default=1,
                   help="processes for --engine torch (--batch-size is the global batch, split between them)")
    return e


def fit_config(args, stateful=False):
    """The :class:`rnnkit.train.TrainConfig` the parsed arguments describe."""
    from ..train import TrainConfig

    return TrainConfig(steps=args.steps or args.default_steps, epochs=args.epochs, lr=args.lr,
                       optimizer=args.optimizer, weight_decay=args.weight_decay, clip=args.clip,
                       schedule=args.schedule, warmup=args.warmup, stateful=stateful, eval_every=args.eval_every,
                       checkpoint_every=args.checkpoint_every or args.eval_every, log_every=args.log_every,
                       patience=args.patience, time_limit=args.time_limit, seed=args.seed,
                       on_divergence=args.on_divergence, divergence_factor=args.divergence_factor,
                       divergence_steps=args.divergence_steps, no_decay=args.no_decay, freeze=args.freeze)
