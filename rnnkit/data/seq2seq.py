"""Generated sequence-to-sequence tasks and their character vocabulary.

* ``dates``: a date written by a person in one of :data:`DATE_FORMATS` -> ISO ``YYYY-MM-DD``.
  Dates lie in 1970-2069, so a two-digit year ``yy`` means 19yy when yy >= 70, else 20yy.
* ``reverse``: a string of 1-30 digits -> the same digits reversed.
* ``sort``: a string of 1-30 digits -> the digits in ascending order.

Every generator is ``gen(n, rng) -> list of (source, target)`` strings.
"""
from __future__ import annotations

import datetime as dt

import numpy as np

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


class Vocab:
    """Characters plus PAD (0), BOS (1), EOS (2) and UNK (3)."""

    PAD, BOS, EOS, UNK = 0, 1, 2, 3
    SPECIAL = ["<pad>", "<bos>", "<eos>", "<unk>"]

    def __init__(self, chars):
        self.itos = self.SPECIAL + sorted(set(chars))
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def from_itos(cls, itos) -> "Vocab":
        """The vocabulary saved as ``vocab.itos`` (specials first, in order)."""
        v = cls([])
        v.itos = list(itos)
        v.stoi = {c: i for i, c in enumerate(v.itos)}
        return v

    def __len__(self):
        return len(self.itos)

    def encode(self, s: str) -> list:
        return [self.stoi.get(c, self.UNK) for c in s]

    def unknown(self, s: str) -> list:
        """The characters of ``s`` outside the vocabulary."""
        return sorted({c for c in s if c not in self.stoi})

    def decode(self, ids) -> str:
        out = []
        for i in ids:
            if i == self.EOS:
                break
            if i >= len(self.SPECIAL):
                out.append(self.itos[i])
        return "".join(out)


def task_vocab(task: str) -> tuple[Vocab, Vocab]:
    """Source and target vocabularies that cover everything the task can generate."""
    if task == "dates":
        letters = "abcdefghijklmnopqrstuvwxyz"
        return Vocab(letters + letters.upper() + "0123456789 ,./-"), Vocab("0123456789-")
    if task in ("reverse", "sort"):
        return Vocab("0123456789"), Vocab("0123456789")
    raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")


def batch_arrays(pairs, src_vocab: Vocab, tgt_vocab: Vocab):
    """Pairs -> ``src`` (S, N) ids, ``src_len`` (N,), ``tgt_in`` (T, N) (BOS + target),
    ``tgt_out`` (T, N) (target + EOS, PAD = -100 where ignored)."""
    src = [src_vocab.encode(s) for s, _ in pairs]
    tgt = [tgt_vocab.encode(t) for _, t in pairs]
    N = len(pairs)
    S = max(max(len(s) for s in src), 1)
    T = max(len(t) for t in tgt) + 1
    src_ids = np.zeros((S, N), np.int64)
    src_len = np.array([max(len(s), 1) for s in src])
    tgt_in = np.zeros((T, N), np.int64)
    tgt_out = np.full((T, N), -100, np.int64)
    for j, (s, t) in enumerate(zip(src, tgt)):
        src_ids[: len(s), j] = s
        tgt_in[0, j] = Vocab.BOS
        tgt_in[1: len(t) + 1, j] = t
        tgt_out[: len(t), j] = t
        tgt_out[len(t), j] = Vocab.EOS
    return src_ids, src_len, tgt_in, tgt_out
