"""Tagging on the user's own data (CoNLL, CoNLL-U) or on the built-in DNA motif-start task:
read -> vocabularies -> :class:`~rnnkit.models.tagger.Tagger` -> ``fit`` -> score, predict.

A run records where its data came from and how it is batched (``extra["data"]``: the files and a
digest of each, or the DNA generator's settings; the validation split, batch size and word
dropout), under the command line's option names, so ``--resume`` and ``rnnkit tag eval`` find
the same sentences again and ``--resume`` with a different setting is refused.
"""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

from .. import runs
from ..data.readers import read_conll, read_lines
from ..data.tagging import TaggedBatches, check_sentence, dna_sentences
from ..data.vocab import Vocab
from ..errors import UserError
from .common import file_digest, fit, resumed_config, saved_run

KIND = "tagger"


def warn(msg: str) -> None:
    print(msg, file=sys.stderr)


# -- data ----------------------------------------------------------------------------------------

def read_tagged(path, column=None, what="--train"):
    """Tagged sentences of a CoNLL / CoNLL-U file (a file without tags is a one-line error)."""
    records = read_conll(path, column)
    col = records.tag_column or ("the upos column" if column is None else f"column {column}")
    if records[0][1] is None:
        raise UserError(f"{what} {path}: expected tagged tokens ({col}), got a file without tags")
    if all(list(tags) == list(tokens) for tokens, tags in records):
        raise UserError(f"{what} {path}: expected tags in {col}, got the tokens themselves (--column names the "
                        f"tag column, not the token column)")
    return list(records)


def split_validation(sentences, fraction, seed):
    """``(train, val)``: a seeded ``fraction`` of the sentences held out (none when fewer than 2)."""
    n_val = int(round(fraction * len(sentences))) if len(sentences) >= 2 else 0
    n_val = min(max(n_val, 1 if fraction > 0 and len(sentences) >= 2 else 0), len(sentences) - 1)
    order = np.random.default_rng([seed, 1]).permutation(len(sentences))
    held = set(order[:n_val].tolist())
    return ([s for i, s in enumerate(sentences) if i not in held], [s for i, s in enumerate(sentences) if i in held])


def load_data(spec: dict):
    """``(train, val, test or None)`` sentence lists for a run's data description ``spec``."""
    if spec["source"] == "dna":
        seed = spec["seed"]
        sents = dna_sentences(spec["dna_train"], spec["dna_length"], seed=[seed, 11])
        test = dna_sentences(spec["dna_test"], spec["dna_length"], seed=[seed, 12])
        train, val = split_validation(sents, spec["val_fraction"], seed)
        return train, val, test
    for key in ("train", "valid", "test"):
        if spec.get(key) and spec.get(f"{key}_digest") and os.path.exists(spec[key]) \
                and file_digest(spec[key], 16) != spec[f"{key}_digest"]:
            raise UserError(f"--{key} {spec[key]}: expected the file the run was trained with, got one whose "
                            f"content has changed")
    sents = read_tagged(spec["train"], spec.get("column"), "--train")
    if spec.get("valid"):
        train, val = sents, read_tagged(spec["valid"], spec.get("column"), "--valid")
    else:
        train, val = split_validation(sents, spec["val_fraction"], spec["seed"])
    test = read_tagged(spec["test"], spec.get("column"), "--test") if spec.get("test") else None
    return train, val, test


def data_spec(args) -> dict:
    """The data description of a new run, from the command line."""
    if args.train is None:
        for flag in ("valid", "test", "column"):
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag}: expected --train FILE with it (without --train the built-in DNA "
                                f"task is used)")
        return {"source": "dna", "dna_length": args.dna_length, "dna_train": args.dna_train,
                "dna_test": args.dna_test, "val_fraction": args.val_fraction, "seed": args.seed}
    spec = {"source": "files", "column": args.column, "val_fraction": args.val_fraction, "seed": args.seed}
    for key in ("train", "valid", "test"):
        path = getattr(args, key)
        spec[key] = None if path is None else os.path.abspath(path)
        spec[f"{key}_digest"] = None
    return spec


def with_digests(spec: dict) -> dict:
    out = dict(spec)
    for key in ("train", "valid", "test"):
        if out.get(key):
            out[f"{key}_digest"] = file_digest(out[key], 16)
    return out


def build_vocabs(train, chars=True):
    """Word, character (None without characters) and tag vocabularies of the training sentences."""
    from ..models.tagger import tag_vocab

    words = Vocab.build([t for t, _ in train])
    char_vocab = Vocab.build([c for t, _ in train for c in t]) if chars else None
    return words, char_vocab, tag_vocab([g for _, g in train])


# -- training ------------------------------------------------------------------------------------

def _resumed(out, paths, changes):
    """``(model, extra, config, data)`` of the run in ``out``, its data read again (from ``paths``
    where given: moved copies, checked against the recorded digests)."""
    from ..models.base import model_from_config

    ckpt = saved_run(out, KIND)
    spec = dict(ckpt["extra"]["data"])
    for key, path in (paths or {}).items():
        if path and not spec.get(key):
            raise UserError(f"--{key}: the run in {out} was trained without it; resume without --{key}")
        if path:
            spec[key] = os.path.abspath(path)
    data = load_data(spec)
    model = model_from_config(ckpt["model_config"])
    return model, dict(ckpt["extra"], data=spec), resumed_config(ckpt, changes), data, ckpt


def _new(spec, out, model_kw, config, batch_size, word_dropout, overwrite, log):
    """``(model, extra, data)`` of a new run: data read and checked before ``out`` is touched."""
    from ..models.tagger import Tagger

    train, val, test = load_data(spec)
    distinct = sorted({t for _, tags in train for t in tags})
    if len(distinct) < 2:
        raise UserError(f"--train {spec.get('train') or spec['source']}: expected at least 2 distinct tags to tell "
                        f"apart, got {len(distinct)}{f': {distinct[0]!r}' if distinct else ''} (does --column name "
                        f"the tag column?)")
    spec = with_digests(spec)
    runs.prepare(out, KIND, overwrite=overwrite, delete=False)     # fit deletes an old run, after every check
    kw = dict(model_kw or {})
    if spec["source"] == "dna":
        kw["chars"] = False       # one-letter tokens: their characters add nothing
    words, chars, tags = build_vocabs(train, kw.get("chars", True) and kw.get("char_embed_size", 1) > 0)
    model = Tagger(words, tags, chars, **kw, seed=config.seed)
    m = model.config
    log(f"training a {'bi' if m['bidirectional'] else 'uni'}directional {m['num_layers']}-layer "
        f"{m['cell'].upper()} tagger ({'with' if model.chars else 'without'} characters, "
        f"{model.num_parameters():,} parameters) on {len(train):,} sentences "
        f"({sum(len(t) for t, _ in train):,} tokens); {len(val):,} for validation; "
        f"{len(words) - len(words.specials):,} words, {len(tags)} tags")
    return model, {"data": dict(spec, batch_size=batch_size, word_dropout=word_dropout)}, (train, val, test)


def train_tagger(spec, out, *, model_kw=None, config=None, batch_size=32, word_dropout=0.25, resume=False,
                 changes=None, paths=None, overwrite=False, progress=True, log=print):
    """Train (or continue) a tagger on the data ``spec`` describes; score it on the test sentences.
    On resume the model, the data description and the training settings come from the run
    (``paths`` may point at moved copies of its files; ``changes``, TrainConfig fields such as
    ``steps`` or ``lr``, are applied and logged).
    Returns ``(result, scores or None)``."""
    ckpt = None
    if resume:
        model, extra, config, (train, val, test), ckpt = _resumed(out, paths, changes)
    else:
        model, extra, (train, val, test) = _new(spec, out, model_kw, config, batch_size, word_dropout, overwrite,
                                                log)
    unseen = sorted({g for _, gs in val for g in gs} - set(model.tag_vocab.stoi))
    if unseen:
        warn(f"warning: validation tags never seen in training (not scored): {', '.join(unseen[:10])}"
             + (" ..." if len(unseen) > 10 else ""))
    vocab_args = (model.word_vocab, model.char_vocab if model.chars else None, model.tag_vocab)
    d = extra["data"]
    train_data = TaggedBatches(train, *vocab_args, d["batch_size"], shuffle=True, seed=config.seed,
                               word_dropout=d["word_dropout"])
    val_data = TaggedBatches(val, *vocab_args, d["batch_size"], shuffle=False) if val else None
    _, result = fit(model, train_data, val_data, config, out, extra=extra, ckpt=ckpt, overwrite=overwrite,
                    progress=progress, log=log)
    scores = None
    if test:
        best = runs.load(out, kinds=(KIND,))
        scores = score(best, test, progress=progress)
        write_scores(out, scores)
    return result, scores


# -- scoring -------------------------------------------------------------------------------------

def tag_scores(gold, pred) -> dict:
    """Per-tag precision, recall, F1 and support over the tags of ``gold`` and ``pred`` (flat
    lists), and their unweighted mean F1 (macro F1)."""
    gold, pred = np.asarray(gold, dtype=object), np.asarray(pred, dtype=object)
    per = {}
    for tag in sorted(set(gold.tolist()) | set(pred.tolist())):
        tp = int(((gold == tag) & (pred == tag)).sum())
        n_pred, n_gold = int((pred == tag).sum()), int((gold == tag).sum())
        p = tp / n_pred if n_pred else 0.0
        r = tp / n_gold if n_gold else 0.0
        per[tag] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": n_gold}
    return {"per_tag": per, "macro_f1": float(np.mean([v["f1"] for v in per.values()]))}


def score(model, sentences, pred=None, progress=False) -> dict:
    """Accuracy, per-tag P/R/F1, macro F1, and accuracy on the tokens the model never saw in
    training (OOV) of ``model`` on tagged ``sentences`` (``pred``: its predictions, when made
    already). Gold tags the model does not know count as errors (one warning line)."""
    for i, (tokens, tags) in enumerate(sentences):
        check_sentence(tokens, tags, f"sentence {i}")
    pred = model.predict([t for t, _ in sentences], progress=progress) if pred is None else pred
    gold_flat = [g for _, gs in sentences for g in gs]
    pred_flat = [p for ps in pred for p in ps]
    oov = np.array([t not in model.word_vocab.stoi for tokens, _ in sentences for t in tokens])
    right = np.array([g == p for g, p in zip(gold_flat, pred_flat)])
    unseen = sorted(set(gold_flat) - set(model.tag_vocab.stoi))
    if unseen:
        n = sum(g in unseen for g in gold_flat)
        warn(f"warning: {n:,} gold tags never seen in training ({', '.join(unseen[:10])}"
             f"{' ...' if len(unseen) > 10 else ''}) are counted as errors")
    out = {"tokens": len(gold_flat), "sentences": len(sentences), "accuracy": float(right.mean()),
           "oov_tokens": int(oov.sum()), "oov_accuracy": float(right[oov].mean()) if oov.any() else None,
           "unseen_tags": unseen, **tag_scores(gold_flat, pred_flat)}
    return out


def format_scores(s: dict) -> str:
    oov = "n/a" if s["oov_accuracy"] is None else f"{s['oov_accuracy']:.4f}"
    lines = [f"{s['tokens']:,} tokens in {s['sentences']:,} sentences: accuracy {s['accuracy']:.4f}, "
             f"OOV accuracy {oov} ({s['oov_tokens']:,} tokens unseen in training), macro F1 {s['macro_f1']:.4f}",
             f"{'tag':<12} {'precision':>9} {'recall':>9} {'F1':>9} {'support':>9}"]
    for tag, v in s["per_tag"].items():
        lines.append(f"{tag:<12} {v['precision']:>9.4f} {v['recall']:>9.4f} {v['f1']:>9.4f} {v['support']:>9,}")
    if set(s["per_tag"]) == {"0", "1"}:
        lines.append(f"motif-start F1 (tag 1, the rare class): {s['per_tag']['1']['f1']:.4f}")
    return "\n".join(lines)


def write_scores(out, scores) -> None:
    from ..io import atomic_write_text, json_text

    atomic_write_text(os.path.join(out, "scores.json"), json_text(scores, indent=2))


def evaluate_run(run_dir, test=None, column=None, progress=False) -> dict:
    """Scores of a run's best weights on ``test`` (a CoNLL file) or, by default, on the run's own
    test data: its ``--test`` file, or the DNA test set regenerated from its seed."""
    model = runs.load(run_dir, kinds=(KIND,))
    spec = model.run_extra.get("data", {})
    if test is not None:
        sentences = read_tagged(test, column if column is not None else spec.get("column"), "--test")
    elif spec.get("source") == "dna":
        sentences = load_data(spec)[2]
    elif spec.get("test"):
        sentences = read_tagged(spec["test"], spec.get("column"), "--test")
    else:
        raise UserError(f"{run_dir} was trained without --test: expected --test FILE to evaluate on")
    return score(model, sentences, progress=progress)


# -- prediction ----------------------------------------------------------------------------------

def _looks_conll(name: str, lines) -> bool:
    if name.lower().endswith((".conll", ".conllu")):
        return True
    return any("\t" in s for s in lines if s.strip() and not s.startswith("#"))


def read_input(path, fmt="auto", column=None):
    """``(sentences, gold tags or None)`` of a prediction input: CoNLL(-U) when ``fmt='conll'``,
    or ``'auto'`` and the name ends in .conll/.conllu or a line holds a tab; otherwise one
    sentence a line, tokens split on whitespace (blank lines skipped). ``-`` reads stdin."""
    name = "<stdin>" if path == "-" else os.fspath(path)
    lines = read_lines(path, "CoNLL token lines or one sentence a line")
    if fmt == "lines" or (fmt == "auto" and not _looks_conll(name, lines)):
        return [line.split() for line in lines if line.strip()], None
    try:
        records = read_conll(path, column) if path != "-" else _conll_from_lines(lines, column)
    except UserError as exc:
        if fmt != "auto" or name.lower().endswith((".conll", ".conllu")):
            raise
        raise UserError(f"{exc} (read as CoNLL because a line holds a tab; --format lines reads one sentence "
                        f"a line)") from None
    sentences = [t for t, _ in records]
    gold = [g for _, g in records] if records[0][1] is not None else None
    return sentences, gold


def _conll_from_lines(lines, column):
    """read_conll on stdin's lines (through a temporary file; messages name ``<stdin>``)."""
    fd, tmp = tempfile.mkstemp(suffix=".conll")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        try:
            return read_conll(tmp, column)
        except UserError as exc:
            raise UserError(str(exc).replace(tmp, "<stdin>")) from None
    finally:
        os.unlink(tmp)


def predict_file(run_dir, path, output=None, fmt="auto", column=None, progress=False) -> dict | None:
    """Tag ``path`` with the run's model; write ``token<TAB>tag`` lines, a blank line after each
    sentence, to ``output`` (stdout when None). Returns the scores when the input has gold tags."""
    model = runs.load(run_dir, kinds=(KIND,))
    sentences, gold = read_input(path, fmt, column)
    unknown = model.unknown_words(sentences)
    if unknown:
        total = sum(len(s) for s in sentences)
        warn(f"warning: {unknown:,} of {total:,} tokens are not in the run's vocabulary; read as <unk>")
    pred = model.predict(sentences, progress=progress)
    text = "".join("".join(f"{t}\t{p}\n" for t, p in zip(s, ps)) + "\n" for s, ps in zip(sentences, pred))
    from ..io import write_output

    write_output(output, text)
    if gold is None:
        return None
    return score(model, list(zip(sentences, gold)), pred)
