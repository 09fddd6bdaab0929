"""One vocabulary for every task: tokens (characters, words, tags) <-> integer ids.

Ids ``0 .. len(specials) - 1`` are the special tokens, in the order given; the ordinary tokens
follow, sorted. With the default specials the ids are ``PAD, BOS, EOS, UNK = 0, 1, 2, 3``, the
layout sequence-to-sequence models use; the character language model uses
``specials=("\\ufffd",)`` (see :class:`rnnkit.data.text.CharVocab`). Saved as JSON by
:meth:`Vocab.to_dict`.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..errors import UserError

DEFAULT_SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
EOS_TOKEN = "<eos>"  # decoding stops here when the vocabulary has it among its specials


class Vocab:
    """Tokens <-> ids: ``itos`` is the specials, then the sorted unique tokens.

    Args:
        tokens: an iterable of tokens (a string is an iterable of characters).
        specials: special tokens, given the first ids in this order.
        unk: the special that unknown tokens map to, or None (then unknown tokens are an error).
    """

    PAD, BOS, EOS, UNK = 0, 1, 2, 3  # valid for the default specials
    SPECIALS = DEFAULT_SPECIALS

    def __init__(self, tokens=(), specials=DEFAULT_SPECIALS, unk="<unk>"):
        specials = tuple(specials)
        self._setup(list(specials) + sorted(set(tokens) - set(specials)), specials, unk)

    def _setup(self, itos, specials, unk):
        bad = [t for t in itos if not isinstance(t, str)]
        if bad:
            raise UserError(f"vocabulary: expected string tokens, got {bad[0]!r} ({type(bad[0]).__name__})")
        if len(set(itos)) != len(itos):
            twice = sorted(t for t, n in Counter(itos).items() if n > 1)
            raise UserError(f"vocabulary: expected unique tokens, got {twice[:5]} more than once")
        if tuple(itos[: len(specials)]) != specials:
            raise UserError(f"vocabulary: expected the specials {list(specials)} first, got {itos[: len(specials)]}")
        if unk is not None and unk not in specials:
            raise UserError(f"vocabulary: expected unk to be one of the specials {list(specials)} or None, got {unk!r}")
        self.itos, self.specials, self.unk = itos, specials, unk
        self.stoi = {t: i for i, t in enumerate(itos)}
        self.unk_id = None if unk is None else self.stoi[unk]
        self.eos_id = self.stoi[EOS_TOKEN] if EOS_TOKEN in specials else None
        self._table = None  # code point -> id, built on the first encode_array

    @classmethod
    def build(cls, sequences, min_count=1, specials=DEFAULT_SPECIALS, unk="<unk>") -> "Vocab":
        """The tokens occurring at least ``min_count`` times over an iterable of token sequences."""
        if not isinstance(min_count, (int, np.integer)) or min_count < 1:
            raise UserError(f"min_count: expected an integer >= 1, got {min_count!r}")
        counts = Counter()
        for seq in sequences:
            counts.update(seq)
        return cls([t for t, n in counts.items() if n >= min_count], specials, unk)

    @classmethod
    def from_itos(cls, itos, specials=DEFAULT_SPECIALS, unk="<unk>") -> "Vocab":
        """The vocabulary whose id -> token list is exactly ``itos`` (specials first, in order)."""
        v = cls.__new__(cls)
        Vocab._setup(v, list(itos), tuple(specials), unk)
        return v

    def to_dict(self) -> dict:
        """JSON-able: ``{"itos": [...], "specials": [...], "unk": str or None}``."""
        return {"itos": list(self.itos), "specials": list(self.specials), "unk": self.unk}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        try:
            return cls.from_itos(d["itos"], d["specials"], d["unk"])
        except (KeyError, TypeError):
            raise UserError(f"vocabulary: expected a dict with 'itos', 'specials' and 'unk', got {str(d)[:80]}") from None

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and (self.itos, self.specials, self.unk) == (other.itos, other.specials, other.unk)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} tokens, specials={list(self.specials)}, unk={self.unk!r})"

    def unknown(self, tokens) -> list:
        """The distinct tokens of ``tokens`` outside the vocabulary, sorted."""
        return sorted(set(tokens).difference(self.stoi))

    def _no_unk(self, tokens):
        raise UserError(f"expected tokens from the vocabulary (which has no unknown token), "
                        f"got {self.unknown(tokens)[:10]}")

    def encode(self, tokens) -> list:
        """Token sequence -> list of ids; unknown tokens -> ``unk_id``."""
        if self.unk_id is None and self.unknown(tokens):
            self._no_unk(tokens)
        return [self.stoi.get(t, self.unk_id) for t in tokens]

    def encode_array(self, text: str, dtype=np.int64) -> np.ndarray:
        """A character string -> (len(text),) ids, vectorised: code points looked up in a table
        holding every one-character token (unknown characters -> ``unk_id``)."""
        if self._table is None:
            self._table = self._code_table()
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)            # (L,)
        ids = self._table[np.minimum(codes, len(self._table) - 1)]            # (L,) last entry: unknown
        if self.unk_id is None and len(ids) and ids.min() < 0:
            self._no_unk(text)
        return ids if ids.dtype == dtype else ids.astype(dtype)

    def _code_table(self) -> np.ndarray:
        """(max code point + 2,) int64: the id of each one-character token, ``unk_id`` (or -1) elsewhere."""
        chars = [(ord(t), i) for i, t in enumerate(self.itos) if len(t) == 1]
        size = max((c for c, _ in chars), default=0) + 2
        table = np.full(size, -1 if self.unk_id is None else self.unk_id, np.int64)
        if chars:
            codes, ids = zip(*chars)
            table[list(codes)] = ids
        return table

    def decode(self, ids, stop_at_eos=True) -> list:
        """Ids -> tokens, skipping the specials and stopping at EOS (when the vocabulary has one)."""
        out, n_special = [], len(self.specials)
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise UserError(f"expected ids in [0, {len(self.itos)}), got {i}")
            if stop_at_eos and i == self.eos_id:
                break
            if i >= n_special:
                out.append(self.itos[i])
        return out

    def decode_text(self, ids, sep="", stop_at_eos=True) -> str:
        """:meth:`decode` joined with ``sep``: characters with "", words with " "."""
        return sep.join(Vocab.decode(self, ids, stop_at_eos))
