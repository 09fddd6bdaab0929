"""``rnnkit forecast``: train a recurrent forecaster and score it beside baselines on a held-out tail."""
from __future__ import annotations

from ._args import add_fit_args, add_parser, add_rnn_args, add_run_args, fraction, nonneg_int, positive_int


def register(sub):
    p = add_parser(sub, "forecast", "forecast a time series (bundled data or your CSV) and score it beside baselines")
    p.add_argument("--dataset", default="sunspots",
                   help="sunspots | co2 | airline | mackey-glass | a CSV file with a header row")
    p.add_argument("--column", default=None, help="CSV column to forecast (needed when several are numeric)")
    p.add_argument("--horizon", type=positive_int, default=1, help="steps ahead to forecast")
    p.add_argument("--window", type=positive_int, default=24, help="past values the model reads")
    p.add_argument("--test-size", type=positive_int, default=None, help="held-out tail length (default: last 20%%)")
    p.add_argument("--val-fraction", type=fraction, default=0.1,
                   help="last part of the training windows used for validation (best weights)")
    p.add_argument("--season", type=positive_int, default=None, help="seasonal period for the seasonal-naive baseline")
    p.add_argument("--strategy", choices=("direct", "recursive"), default="recursive",
                   help="multi-step strategy: feed one-step forecasts back (recursive) or predict all steps at once (direct)")
    p.add_argument("--log", action="store_true",
                   help="model log x_t instead of x_t (a positive series whose swings grow with its level)")
    p.add_argument("--difference", type=int, choices=(0, 1, 2), default=0,
                   help="model the d-th difference (1 - B)^d of the series (d = 0, 1, 2)")
    p.add_argument("--seasonal-difference", type=nonneg_int, default=0, metavar="S",
                   help="model the seasonal difference x_t - x_{t-S} (e.g. 12 for monthly data; 0: none)")
    add_rnn_args(p, hidden_size=32)
    add_fit_args(p, steps=1500, lr=3e-3, clip=1.0, eval_every=100)
    add_run_args(p, "runs/forecast")
    p.set_defaults(run=run)


def run(args):
    from ..apps.forecast import run_forecast
    from ._args import fit_config

    config = fit_config(args)
    run_forecast(dataset=args.dataset, column=args.column, horizon=args.horizon, window=args.window,
                 test_size=args.test_size, cell=args.cell, hidden_size=args.hidden_size, num_layers=args.num_layers,
                 strategy=args.strategy, config=config, batch_size=args.batch_size,
                 val_fraction=args.val_fraction, season=args.season, out_dir=args.out, overwrite=args.overwrite,
                 resume=args.resume, changes=getattr(args, "changes", None), progress=args.progress,
                 log_transform=args.log, difference=args.difference, seasonal_difference=args.seasonal_difference)
    print(f"wrote {args.out}/scores.json, {args.out}/forecast.png (run directory: config.json, best.npz, "
          f"metrics.jsonl)")
    return 0
