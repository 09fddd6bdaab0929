"""Tagged tokens for :class:`~rnnkit.models.tagger.Tagger`: padded batches, the Trainer's adapter,
and the built-in DNA motif-start task as tagged token sequences.

A sentence is ``(tokens, tags)``: two lists of strings of one length (``tags`` None when there
are none). A batch of N sentences (:class:`TaggedBatch`) is time-major, like every sequence in
rnnkit:

* ``words`` (L, N) word ids, ``<pad>`` past each sentence's end; ``lengths`` (N,);
* ``chars`` (C, M) character ids of the M = ``lengths.sum()`` tokens, one column per token in
  the order of :func:`token_positions` (time-major: every sentence's first token, then every
  second token, ...), ``<pad>`` past each word's end; ``char_lengths`` (M,); both None when the
  model reads no characters;
* ``tags`` (L, N) tag ids, -100 (ignored by the loss) past each sentence's end and for tags the
  tag vocabulary does not know.
"""
from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np

from ..errors import UserError
from .vocab import Vocab

IGNORE = -100  # target id of padding (and of tags outside the tag vocabulary): no loss, not scored


class TaggedBatch(NamedTuple):
    words: np.ndarray                 # (L, N) int64
    lengths: np.ndarray               # (N,) int64, each in [1, L]
    chars: np.ndarray | None          # (C, M) int64, M = lengths.sum()
    char_lengths: np.ndarray | None   # (M,) int64, each in [1, C]
    tags: np.ndarray | None           # (L, N) int64, IGNORE at padding


def token_positions(lengths, L: int) -> tuple[np.ndarray, np.ndarray]:
    """``(t, n)`` index arrays (M,) of the valid positions of an (L, N) batch, time-major: the
    order the columns of ``TaggedBatch.chars`` follow."""
    lengths = np.asarray(lengths)
    return np.nonzero(np.arange(L)[:, None] < lengths[None, :])


def check_sentence(tokens, tags=None, at="sentence") -> None:
    """One line about the first thing wrong with a sentence (no tokens, an empty token, a tag
    count that differs from the token count)."""
    if len(tokens) == 0:
        raise UserError(f"{at}: expected at least one token, got an empty sentence")
    bad = next((t for t in tokens if not isinstance(t, str) or not t), None)
    if bad is not None:
        raise UserError(f"{at}: expected non-empty string tokens, got {bad!r}")
    if tags is not None and len(tags) != len(tokens):
        raise UserError(f"{at}: expected one tag per token ({len(tokens)}), got {len(tags)} tags")


def encode_sentence(tokens, tags, word_vocab: Vocab, char_vocab: Vocab | None, tag_vocab: Vocab | None):
    """``(word ids (L,), [char ids (len(token),) per token] or None, tag ids (L,) or None)``;
    unknown words and characters -> ``<unk>``, tags the vocabulary lacks -> :data:`IGNORE`."""
    words = np.array(word_vocab.encode(tokens), np.int64)
    chars = None if char_vocab is None else [np.array(char_vocab.encode(t), np.int64) for t in tokens]
    tag_ids = None
    if tags is not None and tag_vocab is not None:
        tag_ids = np.array([tag_vocab.stoi.get(t, IGNORE) for t in tags], np.int64)
    return words, chars, tag_ids


def pad_batch(encoded, word_ids=None) -> TaggedBatch:
    """Encoded sentences (from :func:`encode_sentence`) -> a :class:`TaggedBatch`. ``word_ids``
    replaces the word ids (a list of (L_i,) arrays, e.g. after word dropout)."""
    words = [e[0] for e in encoded] if word_ids is None else word_ids
    lengths = np.array([len(w) for w in words], np.int64)                  # (N,)
    L, N = int(lengths.max()), len(words)
    W = np.full((L, N), Vocab.PAD, np.int64)
    tagged = encoded[0][2] is not None
    T = np.full((L, N), IGNORE, np.int64) if tagged else None
    for n, (w, e) in enumerate(zip(words, encoded)):
        W[: len(w), n] = w
        if tagged:
            T[: len(w), n] = e[2]
    chars = char_lengths = None
    if encoded[0][1] is not None:
        t_idx, n_idx = token_positions(lengths, L)
        toks = [encoded[n][1][t] for t, n in zip(t_idx, n_idx)]           # M token char arrays
        char_lengths = np.array([len(c) for c in toks], np.int64)          # (M,)
        chars = np.full((int(char_lengths.max()), len(toks)), Vocab.PAD, np.int64)   # (C, M)
        for m, c in enumerate(toks):
            chars[: len(c), m] = c
    return TaggedBatch(W, lengths, chars, char_lengths, T)


def make_batch(sentences, word_vocab, char_vocab=None, tag_vocab=None) -> TaggedBatch:
    """A padded batch straight from ``[(tokens, tags or None), ...]`` (checked)."""
    for i, (tokens, tags) in enumerate(sentences):
        check_sentence(tokens, tags, f"sentence {i}")
    return pad_batch([encode_sentence(tok, tags, word_vocab, char_vocab, tag_vocab) for tok, tags in sentences])


class TaggedBatches:
    r"""The Trainer's adapter over tagged sentences: ``len()`` batches per epoch and
    ``batch(i, epoch)``, a pure function of its arguments (resume is bit-exact).

    Epoch ``e`` visits the sentences in the order of ``np.random.default_rng([seed, e])``'s
    permutation (``shuffle=False``: file order), ``batch_size`` at a time (the last batch may be
    smaller).

    Word dropout (``word_dropout=alpha > 0``, for training data): each occurrence of a word seen
    ``c`` times in ``sentences`` is replaced by ``<unk>`` with probability
    :math:`\alpha / (\alpha + c)` (Kiperwasser & Goldberg 2016), drawn from
    ``default_rng([seed, epoch, i])``. Rare words are replaced often, frequent ones almost never,
    so the ``<unk>`` embedding is trained on words like the ones it will meet at test time; the
    characters of the word are kept, so the character encoder learns to carry those tokens.
    """

    def __init__(self, sentences, word_vocab: Vocab, char_vocab: Vocab | None, tag_vocab: Vocab | None,
                 batch_size: int, shuffle=True, seed=0, word_dropout=0.0):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UserError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        if not word_dropout >= 0:
            raise UserError(f"word_dropout: expected a number >= 0, got {word_dropout!r}")
        sentences = list(sentences)
        if not sentences:
            raise UserError("tagged sentences: expected at least one sentence, got none")
        for i, (tokens, tags) in enumerate(sentences):
            check_sentence(tokens, tags, f"sentence {i}")
        self.encoded = [encode_sentence(tok, tags, word_vocab, char_vocab, tag_vocab) for tok, tags in sentences]
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), seed
        self.word_dropout = float(word_dropout)
        self.unk_id = word_vocab.unk_id
        if self.word_dropout > 0:
            counts = Counter(w for tokens, _ in sentences for w in tokens)
            self.p_unk = [np.array([word_dropout / (word_dropout + counts[w]) for w in tokens])
                          for tokens, _ in sentences]

    def __len__(self) -> int:
        return -(-len(self.encoded) // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        n = len(self.encoded)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def batch(self, i: int, epoch: int = 0) -> TaggedBatch:
        idx = self.order(epoch)[i * self.batch_size:(i + 1) * self.batch_size]
        encoded = [self.encoded[j] for j in idx]
        words = None
        if self.word_dropout > 0:
            rng = np.random.default_rng([self.seed, epoch, i])
            words = [np.where(rng.random(len(e[0])) < self.p_unk[j], self.unk_id, e[0]) for j, e in zip(idx, encoded)]
        return pad_batch(encoded, words)


# -- the built-in task ---------------------------------------------------------------------------


def dna_sentences(n: int, length: int = 100, seed=0) -> list:
    """``n`` sequences of :func:`rnnkit.data.tasks.dna_motifs` as tagged token sequences: tokens
    the bases ``"A" "C" "G" "T"``, tag ``"1"`` where the motif starts, ``"0"`` elsewhere."""
    from .tasks import DNA, dna_motifs

    task = dna_motifs(n, length, rng=seed, tagging=True)
    bases = task.x.argmax(-1)                                              # (L, n)
    return [([DNA[b] for b in bases[:, j]], [str(int(y)) for y in task.y[:, j]]) for j in range(n)]
