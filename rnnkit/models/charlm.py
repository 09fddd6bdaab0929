"""Character-level language model: embedding -> recurrent layers -> dropout -> linear -> softmax."""
from __future__ import annotations

import math

import numpy as np

from .._validate import check_nonneg_number, check_positive_int, check_token_ids
from ..functional.losses import cross_entropy, cross_entropy_backward, softmax
from ..nn import Dropout, Embedding, Linear
from .base import TaskModel, register
from .common import canonical_cell, child_seeds, first, make_rnn, rnn_options_config


def _banned(logits, vocab):
    """``logits`` as float64 (a copy) with the unknown character's made impossible: it is never a
    training target (a vocabulary holds its text's own characters), yet at a high temperature its
    small probability was drawn and printed as U+FFFD."""
    out = logits.astype(np.float64)
    ban = getattr(vocab, "UNK", None)
    if ban is not None and out.shape[-1] > 1:
        out[..., ban] = -np.inf
    return out


@register("charlm")
class CharLM(TaskModel):
    """Predicts the next character at every step.

    Shapes: ``x`` (L, N) int ids -> logits (L, N, V); ``state`` as the recurrent layer's
    ((num_layers, N, H), a tuple for the LSTM).

    ``recurrent_dropout``, ``input_dropout`` (on each recurrent layer's input, the embeddings
    included), ``zoneout`` (a float, or ``[z_h, z_c]`` for an LSTM), ``weight_dropout``,
    ``forget_bias`` (LSTM), ``recurrent_init`` and the gate variants ``layer_norm`` (LSTM, GRU),
    ``peepholes``, ``coupled_gates``, ``cell_clip`` (LSTM) are the recurrent layer's options
    (:class:`~rnnkit.nn.recurrent.RNNBase`); ``dropout`` acts between the recurrent layers and
    before the output layer.

    ``tie_weights=True`` makes the output layer's weight the embedding matrix itself
    (Press & Wolf 2017, "Using the Output Embedding to Improve Language Models"; Inan et al. 2017):
    ``logits_t = W_E h_t + b`` with ``W_E`` (V, E) the embedding table, so ``E`` must equal the
    recurrent output size ``H``. The one array gets the sum of both gradients,
    ``dL/dW_E = sum_t dlogits_t^T h_t + scatter(dL/de_t)``, is listed once (as ``embed.weight``) and
    stepped once.
    """

    def __init__(self, vocab_size, embed_size=64, hidden_size=256, num_layers=2, cell="lstm", dropout=0.0,
                 dtype=np.float32, seed=None, *, recurrent_dropout=0.0, input_dropout=0.0, zoneout=0.0,
                 weight_dropout=0.0, forget_bias=None, recurrent_init="default", layer_norm=False, peepholes=False,
                 coupled_gates=False, cell_clip=None, tie_weights=False):
        super().__init__(dtype, seed)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
            raise TypeError(f"vocab_size: expected an integer >= 1 (len(vocab)), got {type(vocab_size).__name__}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size: expected an integer >= 1 (len(vocab)), got {vocab_size}")
        s = child_seeds(seed, 4)
        options = dict(recurrent_dropout=recurrent_dropout, input_dropout=input_dropout, zoneout=zoneout,
                       weight_dropout=weight_dropout, forget_bias=forget_bias, recurrent_init=recurrent_init,
                       layer_norm=layer_norm, peepholes=peepholes, coupled_gates=coupled_gates, cell_clip=cell_clip)
        self.embed = Embedding(vocab_size, embed_size, dtype=dtype, seed=s[0])
        self.rnn = make_rnn(cell, embed_size, hidden_size, num_layers, dropout=dropout, dtype=dtype, seed=s[1],
                            **options)
        self.config = dict(kind="charlm", vocab_size=int(vocab_size), embed_size=int(embed_size),
                           hidden_size=int(hidden_size), num_layers=int(num_layers), cell=canonical_cell(cell),
                           dropout=float(dropout), **rnn_options_config(self.rnn, options),
                           tie_weights=bool(tie_weights))
        self.drop = Dropout(dropout, dtype=dtype, seed=s[2])
        self.head = Linear(hidden_size, vocab_size, dtype=dtype, seed=s[3])
        if tie_weights:
            if int(embed_size) != self.rnn.output_size:
                raise ValueError(f"tie_weights: expected embed_size equal to the output layer's input size "
                                 f"(hidden_size {self.rnn.output_size}), got embed_size {embed_size}")
            self.head.share_param("weight", self.embed)

    def forward(self, x, state=None):
        check_token_ids(x, self.embed.num_embeddings, "CharLM input", hint="one sequence is ids[:, None]")
        e = self.embed.tokens(x)             # (L, N) ids with the table: the first layer folds the lookup
        y, state = self.rnn(e, state)        # (L, N, H)        into its input projection (functional/tokens.py)
        logits = self.head(self.drop(y))     # (L, N, V)
        return logits, state

    def backward(self, dlogits):
        dy = self.drop.backward(self.head.backward(dlogits))
        self.embed.backward(first(self.rnn.backward(dy)))

    def train_step(self, batch, state=None):
        """Forward, loss, backward (gradients accumulate). Returns ``(loss, final_state, n_tokens)``.

        The returned state is plain arrays: carrying it into the next window carries the value
        and cuts the gradient there (truncated BPTT).
        """
        x, y = self.unpack(batch, "x, y")
        logits, state = self.forward(x, state)
        loss, cache = cross_entropy(logits, y)
        self.backward(cross_entropy_backward(cache))
        return loss, state, y.size

    def evaluate(self, batch, state=None):
        """Summed loss (nats) over the batch, without gradients. Returns ``(loss_sum, state, n_tokens)``."""
        x, y = self.unpack(batch, "x, y")
        logits, state = self.forward(x, state)
        self.clear_cache()
        loss, _ = cross_entropy(logits, y, reduction="sum")
        return loss, state, y.size

    def metrics(self, mean_loss: float, sums=None) -> dict:
        return {"bpc": mean_loss / math.log(2)}

    def sample(self, vocab=None, length=500, temperature=1.0, top_k=0, prime="", rng=None, n=None):
        """Generate ``length`` characters after ``prime``, one step at a time.

        ``vocab`` maps ids to characters: a :class:`~rnnkit.data.text.CharVocab` or its dict; by
        default the one saved with the run the model was loaded from (``rnnkit.load(run_dir)``).

        ``temperature`` divides the logits (0 means always take the most likely character);
        ``top_k > 0`` samples only among the k most likely. With ``n``, ``n`` independent samples
        are drawn together, one batch row each (one stream step serves all of them), and a list
        of ``n`` strings is returned.
        """
        temperature = check_nonneg_number(temperature, "temperature")
        top_k = check_positive_int(top_k, "top_k", minimum=0)
        length = check_positive_int(length, "length")
        if not isinstance(prime, str):
            raise TypeError(f"prime: expected a str, got {type(prime).__name__}")
        if vocab is None:
            vocab = getattr(self, "run_extra", {}).get("vocab")
            if vocab is None:
                raise TypeError("vocab: expected a vocabulary (e.g. CharVocab); this model was not loaded from a run "
                                "(rnnkit.load(run_dir)), which keeps its own")
        if isinstance(vocab, dict):
            from ..data.text import CharVocab

            vocab = CharVocab.from_dict(vocab)
        if not (hasattr(vocab, "encode") and hasattr(vocab, "decode") and hasattr(vocab, "__len__")):
            raise TypeError(f"vocab: expected a vocabulary (e.g. CharVocab), got {type(vocab).__name__}")
        V = self.config["vocab_size"]
        if len(vocab) != V:
            raise ValueError(f"vocab: expected {V} symbols (the model's vocab_size), got {len(vocab)}")
        unknown = vocab.unknown(prime) if prime and hasattr(vocab, "unknown") else ()
        if unknown:
            import warnings

            warnings.warn(f"prime: characters the model never saw ({''.join(sorted(unknown))!r}) are read as the "
                          f"unknown character", UserWarning, stacklevel=2)
        if n is not None:
            return self._sample_batch(vocab, length, temperature, top_k, prime, np.random.default_rng(rng), n)
        rng = np.random.default_rng(rng)
        with self.evaluating():
            ids = vocab.encode(prime) if prime else np.array([int(rng.integers(1, len(vocab)))])
            logits, state = self.forward(ids[:, None])
            self.clear_cache()
            stream = self.rnn.stream(1, state)          # one step at a time, no caches, buffers reused
            E, W, b = self.embed.params["weight"], self.head.params["weight"].T, self.head.params["bias"]
            last = logits[-1, 0]
            out = []
            for _ in range(length):
                nxt = self._pick(_banned(last, vocab), temperature, top_k, rng)
                out.append(nxt)
                last = stream.step(E[nxt][None])[0] @ W + b
        return vocab.decode(out)

    def _sample_batch(self, vocab, length, temperature, top_k, prime, rng, n) -> list:
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n: expected an integer >= 1, got {n!r}")
        with self.evaluating():
            ids = vocab.encode(prime) if prime else rng.integers(1, len(vocab), size=1)
            logits, state = self.forward(np.repeat(ids[:, None], n, axis=1))   # the prime, once per row
            self.clear_cache()
            stream = self.rnn.stream(n, state)
            E, W, b = self.embed.params["weight"], self.head.params["weight"].T, self.head.params["bias"]
            from ..products import rows_matmul_into

            last = np.empty((n, W.shape[1]), W.dtype)                         # (n, V), reused
            last[...] = logits[-1]
            out = np.empty((length, n), np.int64)
            for t in range(length):
                out[t] = nxt = self._pick_rows(_banned(last, vocab), temperature, top_k, rng)
                rows_matmul_into(stream.step(E[nxt]), W, last)                # the head, split when large
                last += b
        return [vocab.decode(out[:, i]) for i in range(n)]

    @staticmethod
    def _pick_rows(logits, temperature, top_k, rng) -> np.ndarray:
        """One character per row of ``logits`` (n, V): the argmax at temperature 0, else a draw from
        the softmax of ``logits / temperature`` (restricted to each row's top k)."""
        if temperature == 0:
            return logits.argmax(1)
        if top_k:
            k = min(top_k, logits.shape[1])
            cut = np.partition(logits, -k, axis=1)[:, -k][:, None]
            logits = np.where(logits >= cut, logits, -np.inf)
        p = softmax(logits / temperature, axis=-1)
        u = rng.random((len(p), 1))
        return np.minimum((p.cumsum(1) < u).sum(1), p.shape[1] - 1)

    @staticmethod
    def _pick(logits, temperature, top_k, rng) -> int:
        if temperature == 0:
            return int(np.argmax(logits))
        if top_k:
            cut = np.partition(logits, -min(top_k, logits.size))[-min(top_k, logits.size)]
            logits = np.where(logits >= cut, logits, -np.inf)
        p = softmax(logits / temperature)
        return int(rng.choice(p.size, p=p))
