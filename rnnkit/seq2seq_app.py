"""Training, saving, loading and decoding attention encoder-decoders (``rnnkit seq2seq``)."""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from . import io
from .data import seq2seq as S
from .io import atomic_write_text
from .plots import _pyplot, save_figure


def evaluate(model, pairs, src_vocab, tgt_vocab, max_len=40, chunk=500) -> float:
    """Exact-match accuracy of greedy decoding."""
    right = 0
    for s in range(0, len(pairs), chunk):
        part = pairs[s:s + chunk]
        src, src_len, _, _ = S.batch_arrays(part, src_vocab, tgt_vocab)
        ids, _, _ = model.greedy(src, src_len, max_len)
        right += sum(tgt_vocab.decode(list(ids[j])) == t for j, (_, t) in enumerate(part))
    return right / len(pairs)


def train(task="dates", out_dir="runs/dates", cell="gru", attention="general", bidirectional=True, hidden=64, embed=32,
          steps=2000, batch_size=64, lr=3e-3, teacher_forcing=1.0, n_test=2000, seed=0, progress=True, log=print):
    from tqdm.auto import tqdm

    from .models.seq2seq import Seq2Seq
    from .optim import Adam, CosineWarmup, clip_grad_norm

    gen = S.TASKS[task]
    src_vocab, tgt_vocab = S.task_vocab(task)
    model = Seq2Seq(len(src_vocab), len(tgt_vocab), embed, hidden, cell=cell, attention=attention,
                    bidirectional=bidirectional, teacher_forcing=teacher_forcing, seed=seed)
    opt = Adam(model, lr=lr)
    schedule = CosineWarmup(opt, warmup_steps=0, total_steps=steps)   # settle at the end: the final weights are kept
    rng = np.random.default_rng([seed, 1])
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.perf_counter()
    max_src = 0
    bar = tqdm(total=steps, disable=not progress, unit="step", desc=f"seq2seq {task}", dynamic_ncols=True)
    for step in range(1, steps + 1):
        pairs = gen(batch_size, rng)
        max_src = max(max_src, max(len(s) for s, _ in pairs))
        model.zero_grad()
        loss, _, _ = model.train_step(S.batch_arrays(pairs, src_vocab, tgt_vocab))
        clip_grad_norm(model, 5.0)
        opt.step()
        schedule.step()
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss:.4f}")
    bar.close()
    wall = time.perf_counter() - t0
    model.eval()
    test_rng = np.random.default_rng([seed, 2])         # held out: a stream the training never drew from
    result = {"task": task, "steps": steps, "train_time": wall, "final_loss": float(loss)}
    if task == "dates":
        per = {}
        for k, (name, _) in enumerate(S.DATE_FORMATS):
            pairs = S.dates(max(n_test // len(S.DATE_FORMATS), 1), test_rng, formats=[k])
            per[name] = evaluate(model, pairs, src_vocab, tgt_vocab)
        result["accuracy_by_format"] = per
        result["accuracy"] = float(np.mean(list(per.values())))
        for name, acc in per.items():
            log(f"  {name:<24} exact match {acc:.4f}")
    else:
        result["accuracy"] = evaluate(model, gen(n_test, test_rng), src_vocab, tgt_vocab)
    log(f"{task}: held-out exact match {result['accuracy']:.4f} after {steps} steps ({wall:.0f} s)")
    io.save(os.path.join(out_dir, "model.npz"),
            {"model": model.state_dict(), "model_config": model.config, "task": task,
             "src_vocab": src_vocab.itos, "tgt_vocab": tgt_vocab.itos, "max_src_len": max_src})
    atomic_write_text(os.path.join(out_dir, "metrics.json"), json.dumps(result, indent=2))
    log(f"wrote {out_dir}/model.npz, {out_dir}/metrics.json")
    return model, result


def load(run_dir):
    from .errors import UserError
    from .models.seq2seq import Seq2Seq

    path = os.path.join(run_dir, "model.npz")
    if not os.path.isdir(run_dir):
        raise UserError(f"run directory not found: {run_dir}")
    if not os.path.exists(path):
        raise UserError(f"{run_dir} is not a seq2seq run directory (no model.npz in it)")
    tree = io.load(path)
    if tree.get("model_config", {}).get("kind") != "seq2seq":
        raise UserError(f"{path} does not hold a seq2seq model")
    model = Seq2Seq.from_config(tree["model_config"])
    model.load_state_dict(tree["model"])
    model.eval()
    src_vocab, tgt_vocab = S.Vocab.from_itos(tree["src_vocab"]), S.Vocab.from_itos(tree["tgt_vocab"])
    return model, {"src_vocab": src_vocab, "tgt_vocab": tgt_vocab, "max_src_len": int(tree["max_src_len"]),
                   "task": tree["task"]}


def translate(model, run, text, beam=1, alpha=0.7, max_len=40, warn=None):
    """Decode ``text``. Characters outside the training vocabulary are read as <unk> and a source
    longer than any seen in training is decoded anyway, each with a warning (to stderr)."""
    warn = warn or (lambda m: print(f"rnnkit seq2seq: warning: {m}", file=sys.stderr))
    if not text.strip():
        raise ValueError("source text: expected at least one non-space character, got an empty string")
    sv, tv = run["src_vocab"], run["tgt_vocab"]
    unknown = sv.unknown(text)
    if unknown:
        warn(f"characters never seen in training are read as <unk>: {''.join(unknown)!r}")
    if len(text) > run["max_src_len"]:
        warn(f"the source has {len(text)} characters, more than any training source ({run['max_src_len']}); "
             f"the output may be wrong")
    ids, weights, score = model.beam_search(sv.encode(text), beam=beam, max_len=max_len, alpha=alpha)
    return tv.decode(ids), np.asarray(weights), score


def plot_attention(source, output, weights, out_png):
    """Heatmap: output characters (rows, plus <eos>) x source characters (columns)."""
    plt = _pyplot()
    rows = list(output) + ["<eos>"]
    w = np.asarray(weights)[: len(rows), : len(source)]
    fig, ax = plt.subplots(figsize=(max(4, 0.32 * len(source) + 1.5), max(3, 0.32 * len(rows) + 1.2)),
                           layout="constrained")
    im = ax.imshow(w, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(source)), [c if c != " " else "\u2423" for c in source])
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(f"{source!r} -> {output!r}", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
    save_figure(fig, plt, out_png)
