"""Sequence-to-sequence on the user's own pairs (``rnnkit seq2seq``): read -> Seq2Seq -> fit ->
decode and score.

* :func:`train`: pairs from a ``source<TAB>target`` file (or a generated task: dates, reverse,
  sort), validation from a second file or a seeded 5 % of the distinct sources, vocabularies and
  the decoder's length limit from the training pairs, training through
  :func:`rnnkit.apps.common.fit` (run directory, ``--resume`` bit for bit, Ctrl-C, early
  stopping, progress). Afterwards the best weights greedy-decode the validation sources and
  ``scores.json`` gets exact match and token error rate (and, for dates, exact match per format
  on held-out dates).
* :func:`translate`: one source a line in, one output a line out; with targets in the input,
  exact match and token error rate.

Scoring: the references of a source are all the targets it has (a word with two
pronunciations); an output is an exact match when it equals any of them. Token error rate is
the Levenshtein distance to the closest reference, summed over sources, divided by the summed
lengths of those closest references.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from .. import runs
from ..data import seq2seq as S
from ..data.readers import read_pairs, read_sources
from ..errors import UserError
from ..io import atomic_write_text, json_text, to_stdout, write_output
from ..models.base import model_from_config
from ..models.seq2seq import Seq2Seq
from .common import file_digest, fit, resumed_config, saved_run

KIND = "seq2seq"
VALID_BATCH = 256      # validation and decoding batch size (no gradients: larger is faster)
PROGRESS_OVER = 300    # a progress bar for inputs longer than this


def _warn(msg: str) -> None:
    print(f"rnnkit seq2seq: warning: {msg}", file=sys.stderr)


# -- reading ---------------------------------------------------------------------------------------


def _retokenize(records, targets, src_tokens, tgt_tokens):
    """Records read as characters -> (source, target) token lists in each side's own mode; a side
    of nothing but spaces is an error naming file and line."""
    pairs = []
    for i, src in enumerate(records):
        s = S.tokenize("".join(src), src_tokens)
        t = None if targets is None else S.tokenize("".join(targets[i]), tgt_tokens)
        for side, toks in (("source", s), ("target", t)):
            if toks is not None and not "".join(toks).strip():
                raise UserError(f"{records.where(i)}: expected a non-empty {side}, got only spaces")
        pairs.append((s, t))
    return pairs


def read_pair_file(path, src_tokens="chars", tgt_tokens="chars") -> list:
    """``source<TAB>target`` lines -> list of (source tokens, target tokens)."""
    records = read_pairs(path, tokens="chars")
    return _retokenize(type(records)([s for s, _ in records], records.lines, records.path),
                       [t for _, t in records], src_tokens, tgt_tokens)


def load_data(data: dict) -> tuple[list, list]:
    """The (train, valid) pairs a run's data description names: a generated task or files."""
    if data["task"] is not None:
        return (S.generated_pairs(data["task"], data["n_train"], [data["seed"], 1]),
                S.generated_pairs(data["task"], data["n_valid"], [data["seed"], 2]))
    train = read_pair_file(data["train"], data["src_tokens"], data["tgt_tokens"])
    if data["valid"] is not None:
        return train, read_pair_file(data["valid"], data["src_tokens"], data["tgt_tokens"])
    return S.split_by_source(train, data["valid_fraction"], data["seed"])


def _check_unchanged(data: dict, out) -> None:
    for key in ("train", "valid"):
        path = data.get(key)
        if path is not None and data.get(f"{key}_sha256") not in (None, file_digest(path)):
            raise UserError(f"--resume: {path} is not the file the run in {out} was trained on (its content changed)")


# -- training --------------------------------------------------------------------------------------


def train(*, train_path=None, valid_path=None, task=None, src_tokens="chars", tgt_tokens="chars", valid_fraction=0.05,
          n_train=20_000, n_valid=1000, n_test=2000, batch_size=64, max_len=None, model_kw=None, config=None,
          out="runs/seq2seq", resume=False, changes=None, overwrite=False, progress=True, log=print):
    """Train a Seq2Seq run in ``out`` with the :class:`~rnnkit.train.TrainConfig` ``config``, or
    (``resume``) continue the one there with its own data, model and settings, ``changes``
    (TrainConfig fields such as ``steps`` or ``lr``) applied. Returns ``(model with the best weights, scores)``."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite: expected one of them, got both")
    if resume:
        ckpt = saved_run(out, KIND)
        data = ckpt["extra"]["data"]
        _check_unchanged(data, out)
        train_pairs, valid_pairs = load_data(data)
        model = model_from_config(ckpt["model_config"])
        config = resumed_config(ckpt, changes)
    else:
        ckpt = None
        runs.prepare(out, KIND, overwrite=overwrite, delete=False)   # before reading a large file; fit deletes an old run
        task = None if train_path is not None else (task or "dates")
        data = dict(task=task, train=None if task else os.fspath(train_path),
                    valid=None if task or valid_path is None else os.fspath(valid_path), src_tokens=src_tokens,
                    tgt_tokens=tgt_tokens, valid_fraction=valid_fraction, n_train=n_train, n_valid=n_valid,
                    seed=config.seed, batch_size=batch_size)
        train_pairs, valid_pairs = load_data(data)
        for key in ("train", "valid"):
            if data[key] is not None:
                data[f"{key}_sha256"] = file_digest(data[key])
        src_vocab, tgt_vocab = S.task_vocab(task) if task else S.build_vocabs(train_pairs)
        data["max_src_len"] = max(len(s) for s, _ in train_pairs)
        model = Seq2Seq(src_vocab, tgt_vocab, **(model_kw or {}), src_tokens=src_tokens, tgt_tokens=tgt_tokens,
                        max_len=max_len or S.default_max_len(train_pairs), seed=config.seed)
    _warn_unseen_targets(model, valid_pairs, "the validation pairs")
    train_data = S.PairBatches(train_pairs, model.src_vocab, model.tgt_vocab, data["batch_size"], seed=data["seed"])
    valid_data = S.PairBatches(valid_pairs, model.src_vocab, model.tgt_vocab, VALID_BATCH, shuffle=False)
    what = data["task"] or os.path.basename(data["train"])
    log(f"seq2seq on {what}: {len(train_pairs):,} training pairs, {len(valid_pairs):,} validation pairs; "
        f"vocabularies {len(model.src_vocab)} -> {len(model.tgt_vocab)} ({model.src_tokens} -> {model.tgt_tokens}); "
        f"{model.num_parameters():,} parameters; decoder limit {model.max_len} tokens")
    trainer, result = fit(model, train_data, valid_data, config, out, extra={"data": data}, ckpt=ckpt,
                          overwrite=overwrite, progress=progress, log=log)
    # trainer.step, not result["step"]: the result's last log record (a few steps back) overrides its step
    log(f"{result['stop_reason']} at step {trainer.step}; best validation loss {result['best_val_loss']:.4f}")
    best = runs.load(out, kinds=(KIND,))
    scores = {"step": trainer.step, "valid": score_pairs(best, valid_pairs, progress=progress)}
    log(f"validation: exact match {scores['valid']['exact_match']:.4f}, token error rate "
        f"{scores['valid']['token_error_rate']:.4f} ({scores['valid']['sources']} sources, greedy)")
    if data["task"] == "dates":
        scores["dates_by_format"] = date_formats(best, n_test, data["seed"], log)
    atomic_write_text(os.path.join(out, "scores.json"), json_text(scores, indent=2))
    log(f"wrote {os.path.join(out, 'scores.json')}  (rnnkit seq2seq translate {out} TEXT | --input FILE)")
    return best, scores


def _warn_unseen_targets(model, pairs, what) -> int:
    """One warning when references use target tokens the model cannot produce; returns how many pairs do."""
    unseen = [t for _, t in pairs if model.tgt_vocab.unknown(t)]
    if unseen:
        toks = sorted({u for t in unseen for u in model.tgt_vocab.unknown(t)})
        _warn(f"{len(unseen)} targets in {what} use tokens never seen in training ({_list(toks)}); they count as wrong")
    return len(unseen)


def _list(tokens, n=10) -> str:
    return ", ".join(repr(t) for t in tokens[:n]) + (", ..." if len(tokens) > n else "")


def date_formats(model, n_test, seed, log=print) -> dict:
    """Exact match per date format on held-out dates (a generator stream training never drew from)."""
    rng = np.random.default_rng([seed, 3])
    per = {}
    for k, (name, _) in enumerate(S.DATE_FORMATS):
        pairs = [(list(s), list(t)) for s, t in S.dates(max(n_test // len(S.DATE_FORMATS), 1), rng, formats=[k])]
        per[name] = score_pairs(model, pairs)["exact_match"]
        log(f"  {name:<24} exact match {per[name]:.4f}")
    log(f"dates: held-out exact match {np.mean(list(per.values())):.4f} (mean over {len(per)} formats)")
    return per


# -- decoding and scoring --------------------------------------------------------------------------


def edit_distance(a, b) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute: cost 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def score(outputs: dict, references: dict) -> dict:
    """``outputs`` {source: tokens}, ``references`` {source: [tokens, ...]} -> exact match over
    sources and token error rate against each source's closest reference."""
    right = errors = ref_tokens = 0
    for src, refs in references.items():
        hyp = list(outputs[src])
        right += any(hyp == r for r in refs)
        d, r = min((edit_distance(hyp, r), len(r)) for r in refs)
        errors, ref_tokens = errors + d, ref_tokens + r
    n = len(references)
    return {"exact_match": right / n, "token_error_rate": errors / max(ref_tokens, 1), "sources": n,
            "correct": right, "token_errors": errors, "reference_tokens": ref_tokens}


def decode(model, sources, beam=1, alpha=0.7, progress=False) -> list:
    """Outputs for a list of source token lists, in chunks (with a bar on stderr when asked)."""
    from tqdm.auto import tqdm

    chunk = VALID_BATCH * 4 if beam <= 1 else 16
    bar = tqdm(total=len(sources), disable=not progress, unit="src", desc="decoding", file=sys.stderr,
               dynamic_ncols=True, leave=False)
    out = []
    for k in range(0, len(sources), chunk):
        out += model.translate(sources[k:k + chunk], beam=beam, alpha=alpha, batch_size=VALID_BATCH)
        bar.update(min(chunk, len(sources) - k))
    bar.close()
    return out


def score_pairs(model, pairs, beam=1, alpha=0.7, progress=False) -> dict:
    """Decode each distinct source of ``pairs`` once and score it against all its targets."""
    refs = S.group_references([s for s, _ in pairs], [t for _, t in pairs])
    keys = list(refs)
    outs = decode(model, [list(k) for k in keys], beam, alpha, progress and len(keys) > PROGRESS_OVER)
    return score(dict(zip(keys, outs)), refs)


def translate(run_dir, text=None, input_path=None, output=None, beam=1, alpha=0.7, progress=True, scores_path=None,
              log=None) -> dict | None:
    """Decode ``text`` or every line of ``input_path`` ('-' = stdin) with the run's best weights;
    write one output a line to ``output`` (stdout when None). With targets in the input, return
    (and report) the scores."""
    model = runs.load(run_dir, kinds=(KIND,))
    if text is not None:
        if scores_path is not None:
            raise UserError("--scores: expected --input with source<TAB>target lines, got one source TEXT "
                            "(nothing to score it against)")
        src = _text_source(text, model)
        pairs, targets, at, total = [(src, None)], None, [1], 1
    else:
        records, targets = read_sources(input_path, tokens="chars")
        if targets is None and scores_path is not None:
            raise UserError(f"--scores: expected source<TAB>target lines in {records.path} to score, got sources "
                            f"only")
        pairs = _retokenize(records, targets, model.src_tokens, model.tgt_tokens)
        at, total = records.lines, records.total_lines
        blank = total - len(at)
        if blank:
            _warn(f"{records.path}: {blank} blank line{'s' * (blank != 1)} (the output keeps them as empty lines, "
                  f"so its lines match the input's)")
    sources = [s for s, _ in pairs]
    _warn_inputs(model, sources)
    unique = list(dict.fromkeys(tuple(s) for s in sources))
    outs = dict(zip(unique, decode(model, [list(u) for u in unique], beam, alpha,
                                   progress and len(unique) > PROGRESS_OVER)))
    lines, last = [], 0
    for n, s in zip(at, sources):                 # a blank input line gives an empty output line
        lines.append("\n" * (n - last - 1) + S.detokenize(outs[tuple(s)], model.tgt_tokens) + "\n")
        last = n
    write_output(output, "".join(lines) + "\n" * (total - last))
    if targets is None:
        return None
    log = log or ((lambda m: print(m, file=sys.stderr)) if to_stdout(output) else print)
    _warn_unseen_targets(model, pairs, records.path)
    refs = S.group_references(sources, [t for _, t in pairs])
    result = score(outs, refs)
    log(f"exact match {result['exact_match']:.4f} ({result['correct']}/{result['sources']} sources), "
        f"token error rate {result['token_error_rate']:.4f} ({result['token_errors']}/{result['reference_tokens']} "
        f"tokens)")
    if scores_path is not None:
        atomic_write_text(scores_path, json_text({"run": os.fspath(run_dir), "input": os.fspath(input_path),
                                                   "beam": beam, **result}, indent=2))
    return result


def _text_source(text, model) -> list:
    if not text.strip():
        raise UserError(f"source text: expected at least one non-space character, got {text!r}")
    return S.tokenize(text, model.src_tokens)


def _warn_inputs(model, sources) -> None:
    """One warning for symbols outside the source vocabulary, one for sources longer than any in training."""
    unknown = sorted({u for s in sources for u in model.src_vocab.unknown(s)})
    if unknown:
        n = sum(1 for s in sources if model.src_vocab.unknown(s))
        sep = "" if model.src_tokens == "chars" else " "
        shown = repr(sep.join(unknown)) if model.src_tokens == "chars" else _list(unknown)
        _warn(f"symbols never seen in training are read as <unk>: {shown} (in {n} source{'s' * (n != 1)})")
    longest = model.run_extra.get("data", {}).get("max_src_len")
    long = [s for s in sources if longest and len(s) > longest]
    if long:
        _warn(f"{len(long)} source{'s' * (len(long) != 1)} longer than any training source ({longest} tokens); "
              f"the output may be wrong")


def attention(run_dir, text, png, beam=1, alpha=0.7):
    """Decode ``text`` and draw its attention map; returns ``(output text, png)``."""
    from ..plots import plot_attention

    model = runs.load(run_dir, kinds=(KIND,))
    src = _text_source(text, model)
    _warn_inputs(model, [src])
    ids, weights, _ = model.beam_search(model.src_vocab.encode(src), beam=beam, alpha=alpha)
    out = model.tgt_vocab.decode(ids)
    plot_attention(src, out, weights, png)
    return S.detokenize(out, model.tgt_tokens), png
