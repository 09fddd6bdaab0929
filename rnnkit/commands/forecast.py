"""``rnnkit forecast``: train a recurrent forecaster and score it beside baselines on a held-out tail."""
from __future__ import annotations

from ._args import add_parser, positive_float, positive_int

CELLS = ("lstm", "gru", "rnn", "rnn-relu")


def register(sub):
    p = add_parser(sub, "forecast", "forecast a time series (bundled data or your CSV) and score it beside baselines")
    p.add_argument("--dataset", default="sunspots",
                   help="sunspots | co2 | airline | mackey-glass | a CSV file with a header row")
    p.add_argument("--column", default=None, help="CSV column to forecast (needed when several are numeric)")
    p.add_argument("--horizon", type=positive_int, default=1, help="steps ahead to forecast")
    p.add_argument("--window", type=positive_int, default=24, help="past values the model reads")
    p.add_argument("--test-size", type=positive_int, default=None, help="held-out tail length (default: last 20%%)")
    p.add_argument("--season", type=positive_int, default=None, help="seasonal period for the seasonal-naive baseline")
    p.add_argument("--strategy", choices=("direct", "recursive"), default="recursive",
                   help="multi-step strategy: feed one-step forecasts back (recursive) or predict all steps at once (direct)")
    p.add_argument("--cell", choices=CELLS, default="lstm")
    p.add_argument("--hidden", type=positive_int, default=32)
    p.add_argument("--layers", type=positive_int, default=1)
    p.add_argument("--steps", type=positive_int, default=1500, help="training steps")
    p.add_argument("--lr", type=positive_float, default=3e-3)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/forecast", help="output directory (metrics.json, forecast.png)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(run=run)


def run(args):
    from ..applications import run_forecast

    run_forecast(dataset=args.dataset, column=args.column, horizon=args.horizon, window=args.window,
                 test_size=args.test_size, cell=args.cell, hidden=args.hidden, layers=args.layers,
                 strategy=args.strategy, steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                 season=args.season, out_dir=args.out, progress=args.progress)
    print(f"wrote {args.out}/metrics.json, {args.out}/forecast.png")
    return 0
