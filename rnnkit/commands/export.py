"""``rnnkit export RUN_DIR --format onnx -o model.onnx``: a trained model as ONNX graphs."""
from __future__ import annotations

from ._args import add_parser, add_replace_arg


def register(sub):
    p = add_parser(sub, "export", "export a trained model as ONNX graphs (checked with onnx.checker)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by any training command")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="file format")
    p.add_argument("-o", "--output", default=None,
                   help="output file (default RUN_DIR/model.onnx); a model with several graphs (charlm: sequence "
                        "and step; seq2seq: encoder and decoder) writes OUTPUT's stem.<graph>.onnx for each")
    add_replace_arg(p)
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which weights: best validation or last checkpoint")
    p.set_defaults(run=run, checks_own_outputs=True)     # each graph's file: stem.<graph>.onnx for several


def run(args):
    import os

    from ..onnx import graphs, paths_for, write
    from ..runs import load, refuse_existing

    model = load(args.run_dir, args.checkpoint)
    built = graphs(model)
    target = args.output or os.path.join(args.run_dir, "model.onnx")
    if args.output is not None:        # each graph's file is kept unless --overwrite; RUN_DIR/model.onnx is the run's own
        refuse_existing(paths_for(target, list(built)).values(), args.overwrite, "-o")
    written = write(built, target)
    for name, path in written.items():
        print(f"wrote {path} ({model.kind}, {name} graph)")
    return 0
