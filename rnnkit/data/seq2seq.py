"""Sequence-to-sequence data: string pairs -> the batches :class:`~rnnkit.models.seq2seq.Seq2Seq`
trains on, and three generated tasks.

A pair is ``(source tokens, target tokens)``: lists of characters (``tokens="chars"``) or of
whitespace-separated words (``"words"``), possibly a different mode on each side (letters in,
phonemes out). Vocabularies are the one :class:`~rnnkit.data.vocab.Vocab` with its default
specials ``PAD, BOS, EOS, UNK = 0, 1, 2, 3``.

* :class:`PairBatches` is the adapter the Trainer reads: ``len()`` batches per epoch and
  ``batch(i, epoch)``, a pure function of ``(i, epoch)`` (so a resumed run is bit for bit an
  uninterrupted one). Each epoch's order is a permutation from
  ``np.random.default_rng([seed, epoch])``, cut into pools of :data:`POOL` batches; inside a pool
  pairs are sorted by length before they are cut into batches (little padding), and the
  batches of the epoch are then shuffled by the same generator.
* :func:`split_by_source` holds out a seeded fraction of the distinct SOURCES, so a source with
  several targets (a word with two pronunciations) is never on both sides.
* :func:`default_max_len`: the decoder's length limit, the longest training target plus half
  of it (at least 10 more tokens).

Generated tasks (``gen(n, rng) -> list of (source, target)`` strings):

* ``dates``: a date written by a person in one of :data:`DATE_FORMATS` -> ISO ``YYYY-MM-DD``.
  Dates lie in 1970-2069, so a two-digit year ``yy`` means 19yy when yy >= 70, else 20yy.
* ``reverse``: a string of 1-30 digits -> the same digits reversed.
* ``sort``: a string of 1-30 digits -> the digits in ascending order.
"""
from __future__ import annotations

import datetime as dt

import numpy as np

from ..errors import UserError
from .vocab import Vocab

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
START, SPAN = dt.date(1970, 1, 1), (dt.date(2069, 12, 31) - dt.date(1970, 1, 1)).days + 1


def _ordinal(d: int) -> str:
    suffix = "th" if 11 <= d <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suffix}"


def _cap(s, style):
    return s.capitalize() if style == 0 else (s.upper() if style == 1 else s)


# Each format: (name, function(date, rng) -> text); every one of them is covered by the held-out test.
DATE_FORMATS = [
    ("d Month yyyy", lambda d, r: f"{d.day} {_cap(MONTHS[d.month - 1], r.integers(3))} {d.year}"),
    ("Mon d, yyyy", lambda d, r: f"{_cap(MONTHS[d.month - 1][:3], r.integers(3))} {d.day}, {d.year}"),
    ("Month d, yyyy", lambda d, r: f"{_cap(MONTHS[d.month - 1], r.integers(3))} {d.day}, {d.year}"),
    ("dd/mm/yyyy", lambda d, r: f"{d.day:02d}/{d.month:02d}/{d.year}"),
    ("d/m/yyyy", lambda d, r: f"{d.day}/{d.month}/{d.year}"),
    ("dd.mm.yyyy", lambda d, r: f"{d.day:02d}.{d.month:02d}.{d.year}"),
    ("yyyy.mm.dd", lambda d, r: f"{d.year}.{d.month:02d}.{d.day:02d}"),
    ("yyyy-mm-dd", lambda d, r: f"{d.year}-{d.month:02d}-{d.day:02d}"),
    ("weekday, month d yyyy", lambda d, r: f"{_cap(DAYS[d.weekday()], r.integers(3))}, "
                                           f"{_cap(MONTHS[d.month - 1], r.integers(3))} {d.day} {d.year}"),
    ("Wkd d Mon yyyy", lambda d, r: f"{_cap(DAYS[d.weekday()][:3], r.integers(3))} {d.day} "
                                    f"{_cap(MONTHS[d.month - 1][:3], r.integers(3))} {d.year}"),
    ("dth of Mon yy", lambda d, r: f"{_ordinal(d.day)} of {_cap(MONTHS[d.month - 1][:3], r.integers(3))} "
                                   f"{d.year % 100:02d}"),
    ("the dth of Month yyyy", lambda d, r: f"the {_ordinal(d.day)} of {_cap(MONTHS[d.month - 1], r.integers(3))} "
                                           f"{d.year}"),
    ("d-mon-yy", lambda d, r: f"{d.day}-{MONTHS[d.month - 1][:3]}-{d.year % 100:02d}"),
    ("yyyymmdd", lambda d, r: f"{d.year}{d.month:02d}{d.day:02d}"),
]


def random_date(rng) -> dt.date:
    return START + dt.timedelta(days=int(rng.integers(SPAN)))


def dates(n, rng=None, formats=None):
    """``n`` (human-written date, ISO date) pairs, formats drawn uniformly from ``formats`` (indices)."""
    rng = np.random.default_rng(rng)
    formats = range(len(DATE_FORMATS)) if formats is None else formats
    formats = list(formats)
    out = []
    for _ in range(n):
        d = random_date(rng)
        f = DATE_FORMATS[formats[rng.integers(len(formats))]][1]
        out.append((f(d, rng), d.isoformat()))
    return out


def _digit_pairs(n, rng, max_len, target):
    """``n`` random digit strings of length 1..``max_len``, each paired with ``target(s)``."""
    rng = np.random.default_rng(rng)
    out = []
    for _ in range(n):
        s = "".join(str(c) for c in rng.integers(0, 10, rng.integers(1, max_len + 1)))
        out.append((s, target(s)))
    return out


def reverse(n, rng=None, max_len=30):
    return _digit_pairs(n, rng, max_len, lambda s: s[::-1])


def sort(n, rng=None, max_len=30):
    return _digit_pairs(n, rng, max_len, lambda s: "".join(sorted(s)))


TASKS = {"dates": dates, "reverse": reverse, "sort": sort}


# -- tokens ------------------------------------------------------------------------------------

TOKEN_MODES = ("chars", "words")
SEPARATOR = {"chars": "", "words": " "}


def tokenize(text: str, mode: str) -> list:
    """``'chars'``: the characters of ``text``; ``'words'``: its whitespace-separated words."""
    if mode not in TOKEN_MODES:
        raise UserError(f"tokens: expected one of {', '.join(TOKEN_MODES)}, got {mode!r}")
    return list(text) if mode == "chars" else text.split()


def detokenize(tokens, mode: str) -> str:
    """Tokens -> text: characters joined by ``""``, words by ``" "``."""
    return SEPARATOR[mode].join(tokens)


# -- generated tasks as pairs ----------------------------------------------------------------------


def task_vocab(task: str) -> tuple[Vocab, Vocab]:
    """Source and target vocabularies that cover everything the task can generate."""
    if task == "dates":
        letters = "abcdefghijklmnopqrstuvwxyz"
        return Vocab(letters + letters.upper() + "0123456789 ,./-"), Vocab("0123456789-")
    if task in ("reverse", "sort"):
        return Vocab("0123456789"), Vocab("0123456789")
    raise UserError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")


def generated_pairs(task: str, n: int, seed) -> list:
    """``n`` pairs of the generated ``task`` as character lists, from ``default_rng(seed)``."""
    if task not in TASKS:
        raise UserError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")
    return [(list(s), list(t)) for s, t in TASKS[task](n, np.random.default_rng(seed))]


# -- pairs -----------------------------------------------------------------------------------------


def split_by_source(pairs, fraction: float, seed=0) -> tuple[list, list]:
    """``(train, valid)``: a seeded ``fraction`` of the distinct sources (at least one) goes to
    ``valid`` with all their targets; pairs keep their file order on both sides."""
    keys = list(dict.fromkeys(tuple(s) for s, _ in pairs))
    if len(keys) < 2:
        raise UserError(f"validation split: expected at least 2 distinct sources to hold some out, got "
                        f"{len(keys)}; give a validation file")
    n_valid = min(max(1, int(round(fraction * len(keys)))), len(keys) - 1)
    order = np.random.default_rng([seed, 7]).permutation(len(keys))
    held = {keys[k] for k in order[:n_valid]}
    train = [p for p in pairs if tuple(p[0]) not in held]
    valid = [p for p in pairs if tuple(p[0]) in held]
    return train, valid


def build_vocabs(pairs) -> tuple[Vocab, Vocab]:
    """Source and target vocabularies of every token in ``pairs``."""
    return Vocab.build(s for s, _ in pairs), Vocab.build(t for _, t in pairs)


def default_max_len(pairs) -> int:
    """The decoder's length limit: the longest target plus half of it, at least 10 tokens more."""
    longest = max(len(t) for _, t in pairs)
    return longest + max(10, longest // 2)


def group_references(sources, targets) -> dict:
    """``{source tuple: [target, ...]}`` in first-seen order: the references of each distinct source."""
    refs: dict = {}
    for s, t in zip(sources, targets):
        refs.setdefault(tuple(s), []).append(list(t))
    return refs


# -- batches ---------------------------------------------------------------------------------------


def _arrays(src, tgt):
    """Id lists -> ``src`` (S, N), ``src_len`` (N,), ``tgt_in`` (T, N) = BOS + target, ``tgt_out``
    (T, N) = target + EOS with -100 (ignored by the loss) after it."""
    N = len(src)
    S = max(max(len(s) for s in src), 1)
    T = max(len(t) for t in tgt) + 1
    src_ids = np.zeros((S, N), np.int64)                  # PAD = 0
    src_len = np.array([max(len(s), 1) for s in src])
    tgt_in = np.zeros((T, N), np.int64)
    tgt_out = np.full((T, N), -100, np.int64)
    tgt_in[0] = Vocab.BOS
    for j, (s, t) in enumerate(zip(src, tgt)):
        src_ids[: len(s), j] = s
        tgt_in[1: len(t) + 1, j] = t
        tgt_out[: len(t), j] = t
        tgt_out[len(t), j] = Vocab.EOS
    return src_ids, src_len, tgt_in, tgt_out


def batch_arrays(pairs, src_vocab: Vocab, tgt_vocab: Vocab):
    """Pairs of token sequences (a string is a sequence of characters) -> the 4 arrays of
    :meth:`Seq2Seq.train_step <rnnkit.models.seq2seq.Seq2Seq.train_step>`."""
    return _arrays([src_vocab.encode(s) for s, _ in pairs], [tgt_vocab.encode(t) for _, t in pairs])


def source_arrays(id_lists):
    """Source id lists -> ``src`` (S, N) zero-padded, ``src_len`` (N,)."""
    S = max(len(s) for s in id_lists)
    src = np.zeros((S, len(id_lists)), np.int64)
    for j, s in enumerate(id_lists):
        src[: len(s), j] = s
    return src, np.array([len(s) for s in id_lists])


POOL = 32   # batches per length-sorted pool


class PairBatches:
    """The Trainer's adapter for pairs: ``len()`` batches per epoch, ``batch(i, epoch)`` -> ``(src,
    src_len, tgt_in, tgt_out)``.

    With ``shuffle`` every epoch has its own order (see the module docstring: a seeded
    permutation, length-sorted pools, shuffled batches); without it (validation) the pairs are
    sorted by length once, which changes no summed loss and wastes the least padding.
    """

    def __init__(self, pairs, src_vocab: Vocab, tgt_vocab: Vocab, batch_size: int, shuffle=True, seed=0):
        if not pairs:
            raise UserError("pairs: expected at least one (source, target) pair, got none")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UserError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        self.src = [src_vocab.encode(s) for s, _ in pairs]
        self.tgt = [tgt_vocab.encode(t) for _, t in pairs]
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), seed
        self.lengths = np.array([len(s) * 1000 + len(t) for s, t in zip(self.src, self.tgt)])
        self._epoch, self._batches = None, None

    def __len__(self):
        return -(-len(self.src) // self.batch_size)

    def _order(self, epoch):
        """The batches (index arrays) of ``epoch``: a pure function of ``(seed, epoch)``."""
        B = self.batch_size
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return [order[k:k + B] for k in range(0, len(order), B)]
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(len(self.src))
        batches = []
        for p in range(0, len(perm), B * POOL):
            pool = perm[p:p + B * POOL]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[k:k + B] for k in range(0, len(pool), B)]
        return [batches[k] for k in rng.permutation(len(batches))]

    def batch(self, i, epoch=0):
        if not 0 <= i < len(self):
            raise IndexError(f"batch index: expected 0 <= i < {len(self)}, got {i}")
        if self._epoch != epoch:
            self._epoch, self._batches = epoch, self._order(epoch)
        idx = self._batches[i]
        return _arrays([self.src[k] for k in idx], [self.tgt[k] for k in idx])
