"""Character-level language models: train on a text (``rnnkit train``, ``rnnkit demo``), sample,
evaluate on another text. load -> model -> Trainer -> score."""
from __future__ import annotations

import math
import sys

import numpy as np

from .. import runs
from ..data.corpus import Corpus
from ..data.text import CharVocab
from ..errors import UserError
from .common import MOMENTS, TIME_LIMIT, digest, estimate, fit, refuse_if_too_big, resumed_config, saved_run

KIND = "charlm"


def text_digest(text: str) -> str:
    return digest(text, 16)


def as_corpus(text) -> Corpus:
    """A text (str) or a :class:`~rnnkit.data.corpus.Corpus` (a prepared one is memory-mapped)."""
    return text if isinstance(text, Corpus) else Corpus.from_text(text)


def stream_data(corpus: Corpus, vocab, seq_len, batch_size, val_fraction):
    """``(train, val)`` :class:`~rnnkit.data.text.StreamBatches` over the corpus's ids (views of
    them: a memory-mapped corpus stays on disk); the tail is validation. ``vocab`` is the
    model's: a corpus encoded with another is mapped to it window by window."""
    from ..data.text import StreamBatches, split_ids

    table = None
    if corpus.vocab.itos != vocab.itos:
        table = np.array([vocab.stoi.get(c, 0) for c in corpus.vocab.itos], np.int64)
    train_ids, val_ids = split_ids(corpus.ids, val_fraction)
    train = StreamBatches(train_ids, batch_size, seq_len, table)
    val = None
    if len(val_ids) > 1:
        val = StreamBatches(val_ids, max(1, min(batch_size, (len(val_ids) - 1) // seq_len)), seq_len, table)
    return train, val


def memory_estimate(vocab_size, embed_size, hidden_size, num_layers, cell, batch_size, seq_len, optimizer="adam",
                    itemsize=4, tie_weights=False) -> dict:
    """What a CharLM training step needs, in bytes, computed before anything is allocated:
    parameters, their gradients and the optimizer's moments, and the activations BPTT keeps
    (per layer and step: the gate activations, h and c; the logits and their gradient)."""
    from ..functional.recurrent import CELLS
    from ..models.common import canonical_cell

    G = CELLS[canonical_cell(cell)].n_gates
    params = vocab_size * embed_size + (0 if tie_weights else hidden_size * vocab_size) + vocab_size
    for layer in range(num_layers):
        width = embed_size if layer == 0 else hidden_size
        params += G * hidden_size * (width + hidden_size) + 2 * G * hidden_size
    tokens = batch_size * seq_len
    kept = tokens * (num_layers * (G + 2) * hidden_size + embed_size + 2 * vocab_size)
    return estimate(params, 2 + MOMENTS[optimizer], kept, itemsize)


def train_lm(text, out, *, cell="lstm", hidden_size=256, num_layers=2, embed_size=64, dropout=0.0, seq_len=64,
             batch_size=32, val_fraction=0.1, rnn_options=None, tie_weights=False, config=None, resume=False,
             changes=None, overwrite=False, progress=True, callbacks=(), log=print, time_flag=TIME_LIMIT):
    """Train (or, with ``resume``, continue) a :class:`~rnnkit.models.CharLM` on ``text`` (a
    string, or a :class:`~rnnkit.data.corpus.Corpus`: a prepared one trains without being read
    into memory) in ``out``. ``rnn_options`` are the recurrent layer's keyword options
    (``recurrent_dropout``, ``zoneout``, ...: :class:`~rnnkit.models.CharLM`); ``tie_weights`` makes
    the output layer's weight the embedding matrix. On resume every
    setting comes from the run, with ``changes`` (TrainConfig fields such as ``steps`` or ``lr``)
    applied and logged; ``time_flag`` as in :func:`~rnnkit.apps.common.fit`."""
    from ..models import CharLM
    from ..models.base import model_from_config

    corpus = as_corpus(text)
    ckpt = None
    if resume:
        ckpt = saved_run(out, KIND)
        extra = ckpt["extra"]
        if extra.get("text_digest") != corpus.digest:
            was = f" ({extra['source']})" if extra.get("source") else ""
            now = f" {corpus.source}" if corpus.source else ""
            raise UserError(f"--resume: this text{now} is not the text the run in {out} was trained on{was}: "
                            f"another file, or the same one changed")
        vocab = CharVocab.from_dict(extra["vocab"])
        d = extra["data"]
        seq_len, batch_size, val_fraction = d["seq_len"], d["batch_size"], d["val_fraction"]
        model = model_from_config(ckpt["model_config"])
        config = resumed_config(ckpt, changes)
    else:
        runs.prepare(out, KIND, overwrite=overwrite, delete=False)     # fit deletes an old run, after every check
        vocab = corpus.vocab
        refuse_if_too_big(memory_estimate(len(vocab), embed_size, hidden_size, num_layers, cell, batch_size,
                                          seq_len, config.optimizer), "--hidden-size, --batch-size or --seq-len")
        model = CharLM(len(vocab), embed_size, hidden_size, num_layers, cell, dropout, dtype=np.float32,
                       seed=config.seed, tie_weights=tie_weights, **(rnn_options or {}))
        extra = {"vocab": vocab.to_dict(), "text_digest": corpus.digest, "source": corpus.source,
                 "data": {"seq_len": seq_len, "batch_size": batch_size, "val_fraction": val_fraction}}
    train, val = stream_data(corpus, vocab, seq_len, batch_size, val_fraction)
    m = model.config
    row = train.inputs.shape[1]
    if ckpt is None and seq_len > row:       # BPTT never spans more than a row of the stream
        print(f"rnnkit train: warning: --seq-len {seq_len} is longer than a batch row: the training text is laid out "
              f"as {batch_size} rows of {row:,} characters (--batch-size), so every window is {row:,} steps; a "
              f"smaller --batch-size gives longer rows", file=sys.stderr)
    if ckpt is None:
        log(f"training a {m['num_layers']}-layer {m['cell'].upper()} (hidden {m['hidden_size']}, "
            f"{model.num_parameters():,} parameters) on {len(corpus):,} characters, vocabulary {len(vocab)}")
    trainer, result = fit(model, train, val, config, out, extra=extra, ckpt=ckpt, overwrite=overwrite, progress=progress,
                          callbacks=callbacks, log=log, time_flag=time_flag)
    return trainer, result, vocab


def load(run_dir, which="best"):
    """``(model, vocab)`` of a character-model run; a run of another kind is a one-line error."""
    model = runs.load(run_dir, which, kinds=(KIND,))
    # the vocabulary is saved beside the weights (the run's extra), not in the model: without it, or
    # with another size than the model's embedding and output, ids would not mean characters
    saved = model.run_extra.get("vocab") if isinstance(model.run_extra, dict) else None
    if not isinstance(saved, dict) or not isinstance(saved.get("chars"), list):
        raise UserError(f"{run_dir}: expected the character model's vocabulary (\"vocab\" with a list of \"chars\") "
                        f"saved with its weights, got {'none' if saved is None else str(saved)[:80]}")
    vocab = CharVocab.from_dict(saved)
    size = model.config.get("vocab_size")
    if len(vocab) != size:
        raise UserError(f"{run_dir}: the saved vocabulary has {len(vocab)} characters, the model's weights are "
                        f"for {size}; expected the same number")
    return model, vocab


def evaluate_text(model, vocab, text, batch_size=16, seq_len=128, progress=False, source=None) -> dict:
    """Mean loss (nats and bits per character) of ``model`` on ``text`` (a string or a
    :class:`~rnnkit.data.corpus.Corpus`), carried state, with a progress bar. ``characters`` is
    the number of characters predicted (each after the first, but for a tail too short to fill
    every row), ``unknown`` how many of those the model's vocabulary lacks; a text with none it
    has is refused. ``source`` names the text in messages."""
    from tqdm.auto import tqdm

    from ..data.text import StreamBatches

    corpus = as_corpus(text)
    where = f"{source}: " if source is not None else ""
    if len(corpus) < 2:
        raise UserError(f"{where}expected at least 2 characters to evaluate the model on, got {len(corpus)}")
    table = np.array([vocab.stoi.get(c, 0) for c in corpus.vocab.itos], np.int64)
    data = StreamBatches(corpus.ids, max(1, min(batch_size, (len(corpus) - 1) // 2)), seq_len, table)
    # counted over the characters predicted (data.targets), as the loss is, not over the whole text
    unknown_ids = np.flatnonzero((table == 0) & (np.array(corpus.vocab.itos) != vocab.itos[0]))
    unknown = int(np.isin(data.targets, unknown_ids).sum()) if unknown_ids.size else 0
    if unknown == data.targets.size:
        seen = "".join(corpus.vocab.itos[i] for i in unknown_ids[:8])
        raise UserError(f"{where}expected text in the model's vocabulary of {len(vocab)} characters, got none of them: "
                        f"all {unknown:,} characters to predict are outside it ({seen!r}"
                        f"{', ...' if unknown_ids.size > 8 else ''})")
    total, count, state = 0.0, 0, None
    for i in tqdm(range(len(data)), disable=not progress, unit="window", desc="eval", leave=False):
        loss, state, n = model.evaluate(data.batch(i, 0), state)[:3]
        total, count = total + loss, count + n
    mean = total / count
    return {"loss": mean, "bpc": mean / math.log(2), "characters": count, "unknown": unknown}


def summary(result, out) -> str:
    line = f"{result['stop_reason']} at step {result['step']}"
    if "loss" in result:
        line += f"; train loss {result['loss']:.4f} ({result['bpc']:.3f} bits/char)"
    if math.isfinite(result["best_val_loss"]):
        line += f"; best validation {result['best_val_loss'] / math.log(2):.3f} bits/char"
    return line + f"\nrun directory: {out}  (rnnkit sample {out}; rnnkit plot {out})"
