r"""``Tagger``: a BiLSTM sequence tagger with a character-level word encoder (Lample et al. 2016).

Each token :math:`w_t` of a sentence is represented by its word embedding and, when characters
are on, the final states of a bidirectional recurrent layer run over its characters:

.. math::
    x_t = [E_w w_t ;\ \overrightarrow{h}^{c}_{|w_t|} ;\ \overleftarrow{h}^{c}_{1}],\qquad
    y_{1..L} = \mathrm{BiRNN}(x_{1..L}),\qquad
    p(\mathrm{tag}_t) = \mathrm{softmax}(W y_t + b)

trained with the cross-entropy of the gold tags averaged over the valid tokens (padding has
target -100). The character encoder follows ``cell`` (LSTM: the final ``h`` of each direction)
and runs once per batch over the M tokens as M sequences of their own lengths, so no padded
character and no padded sentence position ever enters it; its outputs are scattered into the
(L, N) token grid at :func:`~rnnkit.data.tagging.token_positions` (and the gradient gathered
back: that gather/scatter is the only backward written here, the rest replays the modules).
``dropout`` is applied to ``x_t``, between stacked layers and to ``y_t`` (Lample et al. use 0.5
on ``x_t``).

Rare words: the training adapter (:class:`~rnnkit.data.tagging.TaggedBatches`, ``word_dropout``
alpha) replaces a word seen ``c`` times by ``<unk>`` with probability alpha / (alpha + c)
(Kiperwasser & Goldberg 2016), keeping its characters. The ``<unk>`` embedding is thus trained on
rare words, which is what unknown words at test time resemble, while the character encoder
learns to carry such tokens; frequent words are almost never dropped. It lives in the data
adapter because it needs the training counts and must be a pure function of (epoch, batch) for
bit-exact resume; evaluation and prediction see the words unchanged.

Vocabularies (word, character, tag) are part of the config as ``Vocab.to_dict()``, so a loaded
run predicts from raw tokens (:meth:`Tagger.predict`).
"""
from __future__ import annotations

import sys

import numpy as np

from .._validate import check_positive_int, check_token_lists
from ..data.tagging import IGNORE, check_sentence, make_batch, token_positions
from ..data.vocab import Vocab
from ..errors import UserError
from ..functional.losses import cross_entropy, cross_entropy_backward
from ..nn import Dropout, Embedding, Linear
from .base import TaskModel, register
from .common import canonical_cell, child_seeds, first, make_rnn

TAG_SPECIALS = ()  # tags have no specials: every output of the head is a real tag


def _vocab(v, what):
    if v is None or isinstance(v, Vocab):
        return v
    if isinstance(v, dict):
        return Vocab.from_dict(v)
    raise TypeError(f"{what}: expected a Vocab or its to_dict(), got {type(v).__name__}")


@register("tagger")
class Tagger(TaskModel):
    """Args: ``word_vocab``, ``tag_vocab``, ``char_vocab`` (each a Vocab or its ``to_dict()``;
    ``char_vocab`` None without characters); ``embed_size`` (word embedding), ``char_embed_size`` and ``char_hidden_size`` (per
    direction; ``char_embed_size=0`` or ``chars=False`` turns the character encoder off),
    ``hidden_size`` (per direction), ``num_layers``, ``cell`` (``lstm``, ``gru``, ``rnn_tanh``,
    ``rnn_relu``; both encoders), ``bidirectional`` (the sentence layers), ``dropout``.

    Shapes: batch of N sentences, L tokens at most, M = sum of lengths, C characters at most;
    logits (L, N, n_tags), sentence layers' outputs (L, N, D * hidden_size)."""

    def __init__(self, word_vocab, tag_vocab, char_vocab=None, embed_size=64, char_embed_size=24,
                 char_hidden_size=24, hidden_size=64, num_layers=1, cell="lstm", bidirectional=True, dropout=0.0,
                 chars=True, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.word_vocab, self.tag_vocab = _vocab(word_vocab, "word_vocab"), _vocab(tag_vocab, "tag_vocab")
        self.char_vocab = _vocab(char_vocab, "char_vocab")
        self.chars = bool(chars) and char_embed_size > 0
        if self.chars and self.char_vocab is None:
            raise ValueError("char_vocab: expected a character vocabulary when chars=True and char_embed_size > 0")
        self.config = dict(kind="tagger", word_vocab=self.word_vocab.to_dict(), tag_vocab=self.tag_vocab.to_dict(),
                           char_vocab=None if self.char_vocab is None else self.char_vocab.to_dict(),
                           embed_size=embed_size, char_embed_size=char_embed_size,
                           char_hidden_size=char_hidden_size, hidden_size=hidden_size, num_layers=num_layers,
                           cell=canonical_cell(cell), bidirectional=bidirectional, dropout=dropout, chars=bool(chars))
        s = child_seeds(seed, 7)
        width = embed_size
        self.word_embed = Embedding(len(self.word_vocab), embed_size, dtype=dtype, seed=s[0])
        if self.chars:
            self.char_embed = Embedding(len(self.char_vocab), char_embed_size, dtype=dtype, seed=s[1])
            self.char_rnn = make_rnn(cell, char_embed_size, char_hidden_size, 1, bidirectional=True, dtype=dtype,
                                     seed=s[2])
            width += 2 * char_hidden_size
        self.in_drop = Dropout(dropout, dtype=dtype, seed=s[3])
        self.rnn = make_rnn(cell, width, hidden_size, num_layers, bidirectional=bidirectional, dropout=dropout,
                            dtype=dtype, seed=s[4])
        self.out_drop = Dropout(dropout, dtype=dtype, seed=s[5])
        self.head = Linear(hidden_size * (2 if bidirectional else 1), len(self.tag_vocab), dtype=dtype, seed=s[6])

    def token_counts(self, batch) -> dict:
        """For the memory estimate: the character encoder runs over C x M characters."""
        return {"char_embed": batch.chars.size, "char_rnn": batch.chars.size} if self.chars else {}

    # -- forward / backward --------------------------------------------------------------------
    def _char_features(self, chars, char_lengths, lengths, L):
        """The character encoding of every token, scattered into the (L, N, 2 * H_c) grid."""
        e = self.char_embed(chars)                                          # (C, M, E_c)
        _, final = self.char_rnn(e, lengths=char_lengths)
        h_n = final[0] if isinstance(final, tuple) else final               # (2, M, H_c)
        enc = np.concatenate([h_n[0], h_n[1]], axis=1)                      # (M, 2 H_c): forward | backward
        t, n = token_positions(lengths, L)
        grid = np.zeros((L, len(lengths), enc.shape[1]), self.dtype)       # (L, N, 2 H_c)
        grid[t, n] = enc
        return grid, (t, n)

    def forward(self, batch):
        """A :class:`~rnnkit.data.tagging.TaggedBatch` -> logits (L, N, n_tags); caches for backward."""
        L, N = batch.words.shape
        x = self.word_embed(batch.words)                                    # (L, N, E)
        pos, char_shape = None, None
        if self.chars:
            if batch.chars is None:
                raise ValueError("Tagger.forward: this tagger reads characters; the batch has none")
            grid, pos = self._char_features(batch.chars, batch.char_lengths, batch.lengths, L)
            char_shape = batch.chars.shape
            x = np.concatenate([x, grid], axis=2)                            # (L, N, E + 2 H_c)
        x = self.in_drop(x)
        y, _ = self.rnn(x, lengths=batch.lengths)                          # (L, N, D H)
        self._cache = (pos, self.word_embed.embedding_dim, char_shape)
        return self.head(self.out_drop(y))                                  # (L, N, n_tags)

    def backward(self, dlogits):
        pos, E, char_shape = self._take_cache()
        dy = self.out_drop.backward(self.head.backward(dlogits))           # (L, N, D H)
        dx = self.in_drop.backward(first(self.rnn.backward(dy)))            # (L, N, E [+ 2 H_c])
        self.word_embed.backward(dx[:, :, :E])
        if pos is not None:
            denc = dx[:, :, E:][pos]                                        # (M, 2 H_c): the gather
            H = denc.shape[1] // 2
            dh_n = np.stack([denc[:, :H], denc[:, H:]])                     # (2, M, H_c)
            C, M = char_shape
            dout = np.zeros((C, M, 2 * H), self.dtype)                      # only the final states are used
            dstate = (dh_n, None) if self.char_rnn.ops.n_states == 2 else dh_n
            self.char_embed.backward(first(self.char_rnn.backward(dout, dstate)))

    # -- the contract ----------------------------------------------------------------------------
    def train_step(self, batch, state=None):
        logits = self.forward(batch)
        loss, cache = cross_entropy(logits, batch.tags, ignore_index=IGNORE)
        self.backward(cross_entropy_backward(cache).astype(self.dtype, copy=False))
        return loss, None, int(batch.lengths.sum())

    def evaluate(self, batch, state=None):
        logits = self.forward(batch)
        self.clear_cache()
        loss, _ = cross_entropy(logits, batch.tags, ignore_index=IGNORE, reduction="sum")
        scored = batch.tags != IGNORE
        correct = int((logits.argmax(-1) == batch.tags)[scored].sum())
        n = int(scored.sum())
        return loss, None, n, {"correct": correct, "n": n}

    def metrics(self, mean_loss, sums=None) -> dict:
        if not sums or not sums.get("n"):
            return {}
        return {"accuracy": sums["correct"] / sums["n"]}

    # -- prediction ------------------------------------------------------------------------------
    def predict(self, sentences, batch_size=64, progress=False) -> list:
        """Tag lists for ``sentences`` (lists of token strings), in eval mode, ``batch_size``
        sentences at a time (a progress bar on stderr with ``progress``). Unknown words and
        characters are read as ``<unk>``."""
        from tqdm.auto import tqdm

        sentences = check_token_lists(sentences, "sentences", "sentences")
        batch_size = check_positive_int(batch_size, "batch_size")
        for i, tokens in enumerate(sentences):
            check_sentence(tokens, None, f"sentence {i}")
        out = []
        with self.evaluating(), tqdm(total=len(sentences), disable=not progress, unit="sent", desc="tagging",
                                     file=sys.stderr, dynamic_ncols=True, leave=False) as bar:
            for s in range(0, len(sentences), batch_size):
                chunk = sentences[s:s + batch_size]
                batch = make_batch([(tokens, None) for tokens in chunk], self.word_vocab,
                                   self.char_vocab if self.chars else None)
                ids = self.forward(batch).argmax(-1)                        # (L, N)
                self.clear_cache()
                out.extend([self.tag_vocab.itos[i] for i in ids[: len(tokens), n]] for n, tokens in enumerate(chunk))
                bar.update(len(chunk))
        return out

    def unknown_words(self, sentences) -> int:
        """How many tokens of ``sentences`` the word vocabulary does not know."""
        return sum(t not in self.word_vocab.stoi for tokens in sentences for t in tokens)


def tag_vocab(tags) -> Vocab:
    """The tag vocabulary of an iterable of tag sequences (no specials, no unknown tag)."""
    tags = list(tags)
    if not any(len(t) for t in tags):
        raise UserError("tags: expected at least one tag, got none")
    return Vocab.build(tags, specials=TAG_SPECIALS, unk=None)
