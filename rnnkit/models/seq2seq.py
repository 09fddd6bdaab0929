r"""``Seq2Seq``: an RNN encoder-decoder with attention (Luong et al. 2015, with input feeding).

Encoder: embedding, a (bidirectional) GRU or LSTM over the source with ``lengths``. Bridge:
:math:`s_0 = \tanh(W_b [\overrightarrow{h}_S; \overleftarrow{h}_1])` (an LSTM decoder starts
with :math:`c_0 = 0`). Decoder step t:

.. math::
    h_t = \mathrm{cell}([E y_{t-1}; \tilde h_{t-1}], h_{t-1}),\quad
    c_t = \mathrm{attn}(h_t, \mathrm{enc}),\quad
    \tilde h_t = \tanh(W_c [c_t; h_t]),\quad
    p(y_t) = \mathrm{softmax}(W_o \tilde h_t)

Training uses teacher forcing with probability ``teacher_forcing`` per sequence and step (else
the model's own previous prediction is fed); backward runs through the decoder steps by hand,
then through the attention into the encoder outputs, and through the bridge into the encoder's
final states. Decoding: greedy or beam search with length normalisation; both return the
attention weights of every output step.

The model carries what prediction needs in its ``config``: the source and target vocabularies
(:meth:`Vocab.to_dict <rnnkit.data.vocab.Vocab.to_dict>`), how text is cut into tokens on each
side (``src_tokens`` / ``tgt_tokens``: ``chars`` or ``words``) and ``max_len``, the decoder's
length limit (the application takes it from the training targets; None means twice the
longest source in the batch plus 10). So ``rnnkit.runs.load(run).predict(["hello"])`` works
from a run directory alone.

``num_layers`` and ``dropout`` apply to the encoder (dropout between its layers); the bridge
reads the top layer's final states. The decoder is one cell.
"""
from __future__ import annotations

import math

import numpy as np

from ..data.seq2seq import TOKEN_MODES, detokenize, source_arrays, tokenize
from ..data.vocab import DEFAULT_SPECIALS, Vocab
from .._validate import (check_lengths, check_positive_int, check_text_list, check_token_ids, check_token_lists,
                         is_real)
from ..errors import UserError
from ..functional.losses import cross_entropy, cross_entropy_backward, log_softmax
from ..nn import Attention, Embedding, GRUCell, Linear, LSTMCell
from .base import TaskModel, register
from .common import child_seeds, make_rnn

PAD, BOS, EOS = Vocab.PAD, Vocab.BOS, Vocab.EOS


@register("seq2seq")
class Seq2Seq(TaskModel):
    """Args: ``src_vocab``, ``tgt_vocab`` (:class:`Vocab` or its ``to_dict()``, default specials);
    ``embed_size`` E (both sides), ``hidden_size`` H, ``cell`` 'gru' or 'lstm', ``num_layers`` and
    ``dropout`` (encoder), ``attention`` (see :class:`~rnnkit.nn.Attention`), ``bidirectional``
    encoder, ``teacher_forcing`` probability, ``src_tokens`` / ``tgt_tokens`` ('chars' or 'words'),
    ``max_len`` (decoder limit, or None).

    Batches: ``src`` (S, N) ids, ``src_len`` (N,), ``tgt_in`` (T, N) = BOS + target, ``tgt_out``
    (T, N) = target + EOS, -100 where ignored (see :mod:`rnnkit.data.seq2seq`)."""

    def __init__(self, src_vocab, tgt_vocab, embed_size=32, hidden_size=64, cell="gru", num_layers=1, dropout=0.0,
                 attention="general", bidirectional=True, teacher_forcing=1.0, src_tokens="chars", tgt_tokens="chars",
                 max_len=None, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell: expected 'gru' or 'lstm', got {cell!r}")
        if not (is_real(teacher_forcing) and 0.0 <= teacher_forcing <= 1.0):
            raise ValueError(f"teacher_forcing: expected a probability in [0, 1], got {teacher_forcing!r}")
        for name, mode in (("src_tokens", src_tokens), ("tgt_tokens", tgt_tokens)):
            if mode not in TOKEN_MODES:
                raise ValueError(f"{name}: expected one of {', '.join(TOKEN_MODES)}, got {mode!r}")
        if max_len is not None and (not isinstance(max_len, (int, np.integer)) or max_len < 1):
            raise ValueError(f"max_len: expected an integer >= 1 or None, got {max_len!r}")
        self.src_vocab, self.tgt_vocab = _vocab(src_vocab, "src_vocab"), _vocab(tgt_vocab, "tgt_vocab")
        H, E, D = hidden_size, embed_size, 2 if bidirectional else 1
        if attention == "dot" and D * H != H:
            raise ValueError("dot attention needs keys as wide as the decoder state: use a one-directional "
                             "encoder (bidirectional=False; --unidirectional) or another kind (general, concat, "
                             "additive)")
        s = child_seeds(seed, 7)
        self.config = dict(kind="seq2seq", src_vocab=self.src_vocab.to_dict(), tgt_vocab=self.tgt_vocab.to_dict(),
                           embed_size=E, hidden_size=H, cell=cell, num_layers=num_layers, dropout=dropout,
                           attention=attention, bidirectional=bidirectional, teacher_forcing=teacher_forcing,
                           src_tokens=src_tokens, tgt_tokens=tgt_tokens,
                           max_len=None if max_len is None else int(max_len))
        self.cell_kind, self.H, self.E, self.D = cell, H, E, D
        self.teacher_forcing, self.max_len = teacher_forcing, max_len
        self.src_tokens, self.tgt_tokens = src_tokens, tgt_tokens
        V_src, V_tgt = len(self.src_vocab), len(self.tgt_vocab)
        self.src_embed = Embedding(V_src, E, dtype=dtype, seed=s[0])
        self.encoder = make_rnn(cell, E, H, num_layers, bidirectional=bidirectional, dropout=dropout, dtype=dtype,
                                seed=s[1])
        self.bridge = Linear(D * H, H, dtype=dtype, seed=s[2])
        self.tgt_embed = Embedding(V_tgt, E, dtype=dtype, seed=s[3])
        self.cell = (GRUCell if cell == "gru" else LSTMCell)(E + H, H, dtype=dtype, seed=s[4])
        self.attn = Attention(H, D * H, kind=attention, dtype=dtype, seed=s[5])
        self.combine = Linear(D * H + H, H, dtype=dtype, seed=s[6])
        self.out = Linear(H, V_tgt, dtype=dtype, seed=s[6] + 1)

    # -- encoder -------------------------------------------------------------------------
    def encode(self, src, src_len):
        """``src`` (S, N) ids -> encoder outputs (S, N, D*H), mask (S, N), decoder state, bridge cache."""
        src_len = np.asarray(src_len)
        emb = self.src_embed(src)
        enc, final = self.encoder(emb, lengths=src_len)
        h_n = (final[0] if self.cell_kind == "lstm" else final)[-self.D:]  # top layer (D, N, H)
        hcat = np.concatenate(list(h_n), axis=1)                          # (N, D*H)
        s0 = np.tanh(self.bridge(hcat))
        state = (s0, np.zeros_like(s0)) if self.cell_kind == "lstm" else s0
        mask = np.arange(src.shape[0])[:, None] < src_len[None, :]
        return enc, mask, state, s0

    def _h(self, state):
        return state[0] if self.cell_kind == "lstm" else state

    def step(self, tok, state, htilde, enc, mask):
        """One decoder step: returns ``(logits, state, htilde, alpha, cache)``."""
        e, ec = self.tgt_embed.forward_cached(tok)
        state, cc = self.cell.forward_cached(np.concatenate([e, htilde], axis=1), state)
        h = self._h(state)
        ctx, alpha, ac = self.attn.forward_cached(h, enc, mask)
        z, lc = self.combine.forward_cached(np.concatenate([ctx, h], axis=1))
        ht = np.tanh(z)
        logits, oc = self.out.forward_cached(ht)
        return logits, state, ht, alpha, (ec, cc, ac, lc, oc, ht)

    # -- training --------------------------------------------------------------------------
    def forward(self, src, src_len, tgt_in, rng=None, teacher_forcing=None):
        """Logits (T, N, V) with teacher forcing; keeps the caches for :meth:`backward`."""
        r = self.teacher_forcing if teacher_forcing is None else teacher_forcing
        rng = self.rng if rng is None else rng
        enc, mask, state, s0 = self.encode(src, src_len)
        T, N = tgt_in.shape
        htilde = np.zeros((N, self.H), self.dtype)
        logits, caches = [], []
        tok = tgt_in[0]
        for t in range(T):
            if t > 0:
                tok = tgt_in[t] if r >= 1.0 else np.where(rng.random(N) < r, tgt_in[t], logits[-1].argmax(-1))
            lg, state, htilde, _, c = self.step(tok, state, htilde, enc, mask)
            logits.append(lg)
            caches.append(c)
        self._cache = (caches, enc.shape, s0)
        return np.stack(logits)

    def backward(self, dlogits):
        caches, enc_shape, s0 = self._take_cache()
        N, H = dlogits.shape[1], self.H
        dK = np.zeros(enc_shape, self.dtype)
        d_ht_next = np.zeros((N, H), self.dtype)
        lstm = self.cell_kind == "lstm"
        dstate = (np.zeros((N, H), self.dtype),) * 2 if lstm else np.zeros((N, H), self.dtype)
        W = enc_shape[2]
        for t in range(len(caches) - 1, -1, -1):
            ec, cc, ac, lc, oc, ht = caches[t]
            dht = self.out.backward_cached(dlogits[t], oc) + d_ht_next
            dcat = self.combine.backward_cached(dht * (1.0 - ht * ht), lc)
            dq, dKt = self.attn.backward_cached(dcat[:, :W], ac)
            dK += dKt
            dh = dcat[:, W:] + dq
            dstate = (dstate[0] + dh, dstate[1]) if lstm else dstate + dh
            dinp, dstate = self.cell.backward_cached(dstate, cc)
            self.tgt_embed.backward_cached(dinp[:, :self.E], ec)
            d_ht_next = dinp[:, self.E:]
        ds0 = (dstate[0] if lstm else dstate) * (1.0 - s0 * s0)           # c_0 is a constant zero
        dhcat = self.bridge.backward(ds0)                                 # (N, D*H)
        dh_n = np.zeros((self.encoder.num_layers * self.D, N, H), self.dtype)   # (L*D, N, H)
        dh_n[-self.D:] = np.stack(np.split(dhcat, self.D, axis=1))        # only the top layer feeds the bridge
        dx = self.encoder.backward(dK, (dh_n, None) if lstm else dh_n)
        self.src_embed.backward(dx)

    def train_step(self, batch, state=None):
        """``batch = (src (S, N), src_len (N,), tgt_in (T, N), tgt_out (T, N))`` as made by
        :class:`~rnnkit.data.seq2seq.PairBatches`; the loss is the mean over target tokens."""
        src, src_len, tgt_in, tgt_out = self.unpack(batch, "src, src_len, tgt_in, tgt_out")
        logits = self.forward(src, src_len, tgt_in)
        loss, cache = cross_entropy(logits, tgt_out)
        self.backward(cross_entropy_backward(cache))
        return loss, None, int((tgt_out != -100).sum())

    def evaluate(self, batch, state=None):
        """Teacher-forced summed loss over the target tokens (always feeding the true previous
        token), and the counts for token accuracy."""
        src, src_len, tgt_in, tgt_out = self.unpack(batch, "src, src_len, tgt_in, tgt_out")
        logits = self.forward(src, src_len, tgt_in, teacher_forcing=1.0)
        self.clear_cache()
        loss, _ = cross_entropy(logits, tgt_out, reduction="sum")
        keep = tgt_out != -100
        n = int(keep.sum())
        return loss, None, n, {"correct": int(((logits.argmax(-1) == tgt_out) & keep).sum()), "tokens": n}

    def metrics(self, mean_loss: float, sums: dict | None = None) -> dict:
        """Perplexity per target token and, from the validation sums, teacher-forced token accuracy."""
        out = {"ppl": math.exp(min(mean_loss, 50.0))}
        if sums and sums.get("tokens"):
            out["token_acc"] = sums["correct"] / sums["tokens"]
        return out

    # -- decoding ----------------------------------------------------------------------------
    def limit(self, src_len) -> int:
        """The decoder's length limit: ``max_len``, or twice the longest source plus 10 without one."""
        return int(self.max_len) if self.max_len is not None else 2 * int(np.max(src_len)) + 10

    def greedy(self, src, src_len, max_len=None):
        """Greedy decoding of a batch: ``(ids (N, T), alphas (T, S, N), scores (N,))`` where a
        score is the sum of the chosen tokens' log-probabilities up to and including EOS."""
        src = check_token_ids(src, len(self.src_vocab), "src", hint="one source is ids[:, None]")
        try:
            src_len = check_lengths(src_len, src.shape[1], src.shape[0])
        except (TypeError, ValueError) as exc:          # named as the caller passed it
            raise type(exc)(str(exc).replace("lengths:", "src_len:", 1)) from None
        if src.shape[1] == 0:
            raise ValueError(f"src: expected at least one source (column), got shape {src.shape}")
        max_len = self.limit(src_len) if max_len is None else check_positive_int(max_len, "max_len")
        enc, mask, state, _ = self.encode(src, src_len)
        self.clear_cache()
        N = src.shape[1]
        tok = np.full(N, BOS)
        htilde = np.zeros((N, self.H), self.dtype)
        done = np.zeros(N, bool)
        ids, alphas, score = [], [], np.zeros(N)
        for _ in range(max_len):
            lg, state, htilde, alpha, _ = self.step(tok, state, htilde, enc, mask)
            lp = log_softmax(lg.astype(np.float64))
            tok = lp.argmax(-1)
            score += np.where(done, 0.0, lp[np.arange(N), tok])
            ids.append(tok)
            alphas.append(alpha)
            done |= tok == EOS
            if done.all():
                break
        return np.stack(ids, axis=1), np.stack(alphas), score

    def beam_search(self, src_ids, beam=5, max_len=None, alpha=0.7):
        """Beam search for one source (a list of ids). Returns ``(ids, attention (T, S), score)``
        where ``score`` is the summed log-probability divided by ``len ** alpha`` (Wu et al. 2016
        use a similar normalisation). The greedy answer is a candidate too, so the result never
        scores below it."""
        beam = check_positive_int(beam, "beam")
        src = check_token_ids(src_ids, len(self.src_vocab), "src_ids", ndim=1,
                              hint="beam_search takes one source; translate() takes many")
        if len(src) == 0:
            raise ValueError("src_ids: expected at least one token, got an empty source")
        src, src_len = src.astype(np.int64)[:, None], np.array([len(src)])
        max_len = self.limit(src_len) if max_len is None else check_positive_int(max_len, "max_len")
        g_ids, g_alpha, g_score = self.greedy(src, src_len, max_len)
        g_ids = list(g_ids[0])
        g_len = g_ids.index(EOS) + 1 if EOS in g_ids else len(g_ids)
        best = (g_score[0] / g_len ** alpha, g_ids[:g_len], g_alpha[:g_len, :, 0])
        if beam <= 1:
            return best[1], best[2], best[0]
        enc, mask, state, _ = self.encode(src, src_len)
        self.clear_cache()
        B = beam
        enc = np.repeat(enc, B, axis=1)
        mask = np.repeat(mask, B, axis=1)
        state = tuple(np.repeat(s, B, axis=0) for s in state) if self.cell_kind == "lstm" else np.repeat(state, B, 0)
        htilde = np.zeros((B, self.H), self.dtype)
        tok = np.full(B, BOS)
        scores = np.full(B, -np.inf)
        scores[0] = 0.0
        hist = [[] for _ in range(B)]
        att = [[] for _ in range(B)]
        finished = []
        for t in range(max_len):
            lg, state, htilde, a, _ = self.step(tok, state, htilde, enc, mask)
            lp = log_softmax(lg.astype(np.float64))
            cand = (scores[:, None] + lp).ravel()
            order = np.argsort(-cand)
            keep = []
            for flat in order:
                if not np.isfinite(cand[flat]) or len(keep) == B:
                    break
                b, v = divmod(int(flat), lp.shape[1])
                if v == EOS:
                    ids = hist[b] + [v]
                    finished.append((cand[flat] / len(ids) ** alpha, ids, np.array(att[b] + [a[:, b]])))
                else:
                    keep.append((b, v, cand[flat]))
            if not keep or len(finished) >= B:
                break
            idx = np.array([k[0] for k in keep])
            pad = B - len(keep)
            tok = np.array([k[1] for k in keep] + [PAD] * pad)
            new_scores = np.array([k[2] for k in keep] + [-np.inf] * pad)
            take = np.concatenate([idx, np.zeros(pad, int)])
            hist = [hist[b] + [v] for b, v, _ in keep] + [[] for _ in range(pad)]
            att = [att[b] + [a[:, b]] for b, _, _ in keep] + [[] for _ in range(pad)]
            state = tuple(s[take] for s in state) if self.cell_kind == "lstm" else state[take]
            htilde = htilde[take]
            scores = new_scores
        for cand_score, ids, al in finished:
            if cand_score > best[0]:
                best = (cand_score, ids, al)
        return best[1], best[2], best[0]

    # -- from tokens and text ------------------------------------------------------------------
    def translate(self, sources, beam=1, alpha=0.7, batch_size=256) -> list:
        """Source token lists -> output token lists (unknown source tokens read as ``<unk>``).
        Greedy decoding runs in batches of similar length; ``beam > 1`` searches each source alone."""
        sources = check_token_lists(sources, "sources")
        beam, batch_size = check_positive_int(beam, "beam"), check_positive_int(batch_size, "batch_size")
        ids = [self.src_vocab.encode(s) for s in sources]
        if any(not s for s in ids):
            raise UserError("source: expected at least one token, got an empty source")
        out = [None] * len(ids)
        with self.evaluating():
            if beam > 1:
                for k, s in enumerate(ids):
                    out[k] = self.tgt_vocab.decode(self.beam_search(s, beam=beam, alpha=alpha)[0])
            else:
                order = np.argsort([len(s) for s in ids], kind="stable")
                for b in range(0, len(order), batch_size):
                    part = order[b:b + batch_size]
                    got, _, _ = self.greedy(*source_arrays([ids[k] for k in part]))
                    for k, row in zip(part, got):
                        out[k] = self.tgt_vocab.decode(row)
        return out

    def predict(self, texts, beam=1, alpha=0.7) -> list:
        """Strings in, strings out: each text cut into ``src_tokens``, the outputs joined as ``tgt_tokens``."""
        sources = [tokenize(t, self.src_tokens) for t in check_text_list(texts, "texts")]
        return [detokenize(o, self.tgt_tokens) for o in self.translate(sources, beam=beam, alpha=alpha)]


def _vocab(v, name) -> Vocab:
    """A :class:`Vocab` (or its ``to_dict()``) with the default specials PAD, BOS, EOS, UNK."""
    v = Vocab.from_dict(v) if isinstance(v, dict) else v
    if not isinstance(v, Vocab):
        raise TypeError(f"{name}: expected a Vocab or its to_dict(), got {type(v).__name__}")
    if tuple(v.specials) != DEFAULT_SPECIALS or v.unk != "<unk>":
        raise ValueError(f"{name}: expected the specials {list(DEFAULT_SPECIALS)} with unk '<unk>', got "
                         f"{list(v.specials)} with unk {v.unk!r}")
    return v
