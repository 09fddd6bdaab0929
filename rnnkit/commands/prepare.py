"""``rnnkit prepare TEXT_FILE -o DIR``: encode a text once, for training and evaluating on it
without reading it into memory."""
from __future__ import annotations

from ._args import add_parser


def register(sub):
    p = add_parser(sub, "prepare", "encode a large text file into a memory-mapped corpus for train / eval",
                   description="Encode a UTF-8 text file into DIR (ids.bin: one byte per character for up to 256 "
                               "distinct characters; corpus.json: the vocabulary), reading it in chunks. "
                               "`rnnkit train DIR` and `rnnkit eval RUN DIR` then read only the windows they use.")
    p.add_argument("text_file", metavar="TEXT_FILE")
    p.add_argument("--out", "-o", metavar="DIR", required=True, help="the corpus directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace a corpus already prepared in DIR")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(run=run)


def run(args):
    import time

    from ..data.corpus import prepare

    t0 = time.perf_counter()
    r = prepare(args.text_file, args.out, progress=args.progress, overwrite=args.overwrite)
    dt = time.perf_counter() - t0
    print(f"{r['characters']:,} characters, vocabulary {r['vocabulary']}, {r['dtype']} ids "
          f"({r['bytes'] / 2**20:,.1f} MiB) in {args.out}; {dt:.1f} s ({r['source_bytes'] / 2**20 / max(dt, 1e-9):,.0f} "
          f"MB/s)\ntrain with: rnnkit train {args.out} --out RUN")
    return 0
