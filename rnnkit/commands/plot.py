"""``rnnkit plot RUN_DIR``: training curves from a run's metrics log, as PNG."""
from __future__ import annotations

from ._args import add_parser, add_replace_arg


# what each kind of run logs as its loss: cross-entropy (nats) unless named here
LOSS_LABELS = {"forecaster": "loss (mean squared error, scaled units)",
               "handwriting": "loss (negative log-likelihood per point, nats)"}


def register(sub):
    p = add_parser(sub, "plot", "plot a run's loss and bits-per-character curves as PNG")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--png", default=None, help="output file (default RUN_DIR/curves.png)")
    add_replace_arg(p)
    p.set_defaults(run=run)


def run(args):
    import os

    from ..errors import UserError
    from ..io import read_jsonl
    from ..plots import plot_metrics

    from ..runs import config_kind, require_kind

    log = os.path.join(args.run_dir, "metrics.jsonl")
    if not os.path.isdir(args.run_dir):
        raise UserError(f"run directory not found: {args.run_dir}")
    has_config = os.path.exists(os.path.join(args.run_dir, "config.json"))
    cfg = require_kind(args.run_dir, ()) if has_config else None     # an experiment's directory is named as one
    if not os.path.isfile(log):
        if cfg is not None:
            raise UserError(f"{args.run_dir}: the run has logged nothing yet (no metrics.jsonl); plot it once it has "
                            f"trained past its first --log-every steps")
        raise UserError(f"{args.run_dir} is not an rnnkit run directory (no metrics.jsonl file in it)")
    out = args.png or os.path.join(args.run_dir, "curves.png")
    kind = config_kind(cfg, args.run_dir) if cfg is not None else None
    regression = kind == "sequence" and (cfg.get("model") or {}).get("task") == "regression"
    label = "loss (mean squared error)" if regression else LOSS_LABELS.get(kind, "loss (nats)")
    plot_metrics([r for _, r in read_jsonl(log, "; left out of the plot")], log, out, loss_label=label)
    print(f"wrote {out}")
    return 0
