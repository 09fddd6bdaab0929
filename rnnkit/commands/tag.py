"""``rnnkit tag train|eval``: per-position tagging where each label depends on later inputs (the DNA
motif-start task), a unidirectional and a bidirectional model side by side."""
from __future__ import annotations

from ._args import OneLineParser, add_parser, positive_float, positive_int


def register(sub):
    p = add_parser(sub, "tag", "bidirectional vs unidirectional tagging (motif starts in DNA-like strings)")
    s = p.add_subparsers(dest="action", metavar="ACTION", parser_class=OneLineParser, required=True)
    t = add_parser(s, "train", "train a unidirectional and a bidirectional tagger; report both")
    t.add_argument("--out", default="runs/tag", help="run directory (uni.npz, bi.npz, metrics.json)")
    t.add_argument("--length", type=positive_int, default=100, help="sequence length")
    t.add_argument("--cell", choices=("gru", "lstm", "rnn"), default="gru")
    t.add_argument("--hidden", type=positive_int, default=32)
    t.add_argument("--steps", type=positive_int, default=1000)
    t.add_argument("--lr", type=positive_float, default=3e-3)
    t.add_argument("--batch-size", type=positive_int, default=32)
    t.add_argument("--n-test", type=positive_int, default=500)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(run=run_train)
    e = add_parser(s, "eval", "score a run's two taggers on freshly generated held-out sequences")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--n", type=positive_int, default=1000, help="held-out sequences")
    e.add_argument("--seed", type=int, default=12345, help="seed of the held-out sequences")
    e.set_defaults(run=run_eval)


def _table(rows):
    print(f"{'model':<24} {'accuracy':>9} {'motif-start F1':>15}")
    for name, r in rows:
        print(f"{name:<24} {r['accuracy']:>9.4f} {r['f1']:>15.4f}")
    print(f"bidirectional - unidirectional F1: {rows[1][1]['f1'] - rows[0][1]['f1']:+.4f}")


def run_train(args):
    import json
    import os

    from .. import io
    from ..applications import score_dna_model, train_dna_model
    from ..data.tasks import dna_motifs
    from ..io import atomic_write_text

    os.makedirs(args.out, exist_ok=True)
    test = dna_motifs(args.n_test, args.length, rng=[args.seed, 2], tagging=True)
    rows = []
    for name, bi in (("uni", False), ("bi", True)):
        m = train_dna_model(True, bi, args.length, args.cell, args.hidden, args.steps, args.lr, args.batch_size,
                            args.seed)
        io.save(os.path.join(args.out, f"{name}.npz"), {"model": m.state_dict(), "model_config": m.config})
        rows.append((f"{name}directional {args.cell}", score_dna_model(m, test)))
    _table(rows)
    atomic_write_text(os.path.join(args.out, "metrics.json"),
                      json.dumps({"length": args.length, "rows": {n: r for n, r in rows}}, indent=2))
    print(f"wrote {args.out}/uni.npz, bi.npz, metrics.json")
    return 0


def run_eval(args):
    import json
    import os

    from .. import io
    from ..applications import score_dna_model
    from ..errors import UserError
    from ..data.tasks import dna_motifs
    from ..models.sequence import SequenceModel

    meta = os.path.join(args.run_dir, "metrics.json")
    if not os.path.exists(os.path.join(args.run_dir, "bi.npz")) or not os.path.exists(meta):
        raise UserError(f"{args.run_dir} is not a tag run directory (no bi.npz / metrics.json in it)")
    length = json.load(open(meta))["length"]
    test = dna_motifs(args.n, length, rng=args.seed, tagging=True)
    rows = []
    for name in ("uni", "bi"):
        tree = io.load(os.path.join(args.run_dir, f"{name}.npz"))
        c = dict(tree["model_config"])
        m = SequenceModel(c["input_size"], c["hidden_size"], c["n_out"], c["task"], cell=c["cell"],
                          bidirectional=c["bidirectional"])
        m.load_state_dict(tree["model"])
        m.eval()
        rows.append((f"{name}directional {c['cell']}", score_dna_model(m, test)))
    _table(rows)
    return 0
