"""``rnnkit forecast [train]|predict``: train a recurrent forecaster and score it beside baselines on a
held-out tail; forecast beyond the end of a series with a trained run. ``train`` is the action when
none is named (``rnnkit forecast --dataset my.csv``)."""
from __future__ import annotations

from ._args import (OneLineParser, add_fit_args, add_parser, add_replace_arg, add_rnn_args, add_run_args, fraction,
                    nonneg_int, positive_int)

DEFAULT_ACTION = "train"        # rnnkit.cli inserts it when an option follows "forecast"
DATASET_HELP = "sunspots | co2 | airline | mackey-glass | a CSV file with a header row"


def register(sub):
    p = add_parser(sub, "forecast", "forecast a time series (bundled data or your CSV): train and score it beside "
                                    "baselines, or forecast beyond its end with a trained run")
    s = p.add_subparsers(dest="action", metavar="ACTION", parser_class=OneLineParser, required=True)
    t = add_parser(s, "train", "train a forecaster, score it on the held-out tail beside baselines and forecast the "
                   "values after the series' end (the default action: rnnkit forecast --dataset my.csv)")
    t.add_argument("--dataset", default="sunspots", help=DATASET_HELP)
    t.add_argument("--column", default=None, help="CSV column to forecast (needed when several are numeric)")
    t.add_argument("--horizon", type=positive_int, default=1, help="steps ahead to forecast")
    t.add_argument("--window", type=positive_int, default=24, help="past values the model reads")
    t.add_argument("--test-size", type=nonneg_int, default=None,
                   help="held-out tail length (default: last 20%%; 0: none, nothing scored, and training reads "
                        "the whole series but its last --val-fraction, which validates; --val-fraction 0 for all of it)")
    t.add_argument("--val-fraction", "--valid-fraction", type=fraction, default=0.1,
                   help="last part of the training windows used for validation (best weights)")
    t.add_argument("--season", type=positive_int, default=None, help="seasonal period for the seasonal-naive baseline")
    t.add_argument("--strategy", choices=("direct", "recursive"), default="recursive",
                   help="multi-step strategy: feed one-step forecasts back (recursive) or predict all steps at once (direct)")
    t.add_argument("--log", action="store_true",
                   help="model log x_t instead of x_t (a positive series whose swings grow with its level)")
    t.add_argument("--difference", type=int, choices=(0, 1, 2), default=0,
                   help="model the d-th difference (1 - B)^d of the series (d = 0, 1, 2)")
    t.add_argument("--seasonal-difference", type=nonneg_int, default=0, metavar="S",
                   help="model the seasonal difference x_t - x_{t-S} (e.g. 12 for monthly data; 0: none)")
    add_rnn_args(t, hidden_size=32)
    add_fit_args(t, steps=1500, lr=3e-3, clip=1.0, eval_every=100)
    add_run_args(t, "runs/forecast")
    t.set_defaults(run=run)

    pr = add_parser(s, "predict", "forecast the values after the end of a series with a trained run",
                    description="Forecast the values after the last one of --dataset (default: the series the run "
                                "was trained on, re-read, so a CSV with newer rows gives the newer forecast) with "
                                "the forecaster in RUN_DIR. Writes CSV lines h,index[,DATE],forecast[,lo80,hi80]: "
                                "steps ahead, the row index the value would have in the series, its date when a "
                                "column of the CSV holds ISO dates at a fixed step, the forecast, and, for "
                                "the run's own series and best weights, the band holding 80% of its errors on "
                                "the test tail at that step.")
    pr.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by rnnkit forecast")
    pr.add_argument("--dataset", default=None, help=DATASET_HELP + " (default: the run's own)")
    pr.add_argument("--column", default=None, help="CSV column (default: the run's own)")
    pr.add_argument("--horizon", type=positive_int, default=None,
                    help="steps ahead (default: the run's --horizon; a --strategy direct run at most that)")
    pr.add_argument("--checkpoint", choices=("best", "last"), default="best",
                    help="which weights: best validation or last checkpoint")
    pr.add_argument("--output", default=None, help="write the CSV here instead of stdout ('-': stdout)")
    add_replace_arg(pr)
    pr.set_defaults(run=run_predict, text_output=True)


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
    import os

    kept = ", ".join(f for f in ("config.json", "best.npz", "checkpoint.npz", "metrics.jsonl")
                     if os.path.exists(os.path.join(args.out, f)))
    print(f"wrote {args.out}/scores.json, {args.out}/future.csv, {args.out}/forecast.png (run directory: {kept}); "
          f"forecast again: rnnkit forecast predict {args.out}")
    return 0


def run_predict(args):
    from ..apps.forecast import forecast_file

    forecast_file(args.run_dir, args.dataset, args.column, args.horizon, args.output, args.checkpoint)
    return 0
