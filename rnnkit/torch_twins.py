"""PyTorch twins of rnnkit's application models: the same layers, parameter names and outputs,
so a state dict moves between the two unchanged. Used by :mod:`rnnkit.interop` (``to_torch`` /
``from_torch``) and by the distributed trainer (:mod:`rnnkit.distributed`). Importing this
module imports torch (the ``torch`` extra)."""
from __future__ import annotations

import torch
from torch import nn

TORCH_RNNS = {"rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}), "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
              "lstm": (nn.LSTM, {}), "gru": (nn.GRU, {})}


def torch_rnn(cell, input_size, hidden_size, num_layers=1, dtype=torch.float32, **kw):
    """``torch.nn.RNN / LSTM / GRU`` for an rnnkit cell name."""
    cls, extra = TORCH_RNNS[cell]
    return cls(input_size, hidden_size, num_layers, dtype=dtype, **extra, **kw)


class TorchCharLM(nn.Module):
    """Twin of :class:`rnnkit.models.CharLM`: ids (L, N) -> logits (L, N, V), state."""

    def __init__(self, vocab_size, embed_size=64, hidden_size=256, num_layers=2, cell="lstm", dropout=0.0,
                 dtype=torch.float32, tie_weights=False, **_):
        super().__init__()
        self.config = dict(kind="charlm", vocab_size=vocab_size, embed_size=embed_size, hidden_size=hidden_size,
                           num_layers=num_layers, cell=cell, dropout=dropout, tie_weights=tie_weights)
        self.embed = nn.Embedding(vocab_size, embed_size, dtype=dtype)
        self.rnn = torch_rnn(cell, embed_size, hidden_size, num_layers, dtype=dtype,
                             dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size, dtype=dtype)
        if tie_weights:                         # one Parameter in both places, as rnnkit's one array
            self.head.weight = self.embed.weight

    def forward(self, x, state=None):
        y, state = self.rnn(self.embed(x), state)
        return self.head(self.drop(y)), state


class TorchConvBranch(nn.Module):
    """Twin of :class:`rnnkit.nn.ConvBranch`: x (L, N, C), lengths (N,) -> (N, C_B). Padded steps
    read as zero, batch norm over the valid steps only (``nn.BatchNorm1d`` on the valid steps
    gathered into (M, C), so its running statistics move as rnnkit's), zero past each length."""

    def __init__(self, in_channels, channels, kernels, dtype=torch.float32):
        super().__init__()
        self.blocks = len(channels)
        for i, (c, k) in enumerate(zip(channels, kernels)):
            setattr(self, f"conv{i}", nn.Conv1d(in_channels, c, k, padding="same", dtype=dtype))
            setattr(self, f"bn{i}", nn.BatchNorm1d(c, dtype=dtype))
            in_channels = c

    def forward(self, x, lengths):
        valid = torch.arange(x.shape[0])[:, None] < lengths[None, :]            # (L, N)
        h = x
        for i in range(self.blocks):
            a = getattr(self, f"conv{i}")((h * valid[:, :, None]).permute(1, 2, 0)).permute(2, 0, 1)   # (L, N, C_i)
            out = a.new_zeros(a.shape)
            out[valid] = torch.relu(getattr(self, f"bn{i}")(a[valid]))         # (M, C_i) valid steps only
            h = out
        return h.sum(0) / lengths[:, None].to(h.dtype)


class TorchClassifier(nn.Module):
    """Twin of :class:`rnnkit.models.classifier.SequenceClassifier`: x (L, N, D), lengths (N,) ->
    logits (N, classes), pooling the recurrent outputs by the last valid step, their mean,
    attention or their maximum, or reading every position (``length`` steps), exactly as rnnkit does."""

    def __init__(self, input_size, hidden_size, n_classes, cell="lstm", num_layers=1, bidirectional=False,
                 pooling="last", dropout=0.0, length=None, head_dropout=0.0, conv_channels=None, conv_kernels=None,
                 dtype=torch.float32, **_):
        super().__init__()
        self.pooling, self.hidden_size, self.bidirectional = pooling, hidden_size, bidirectional
        self.rnn = torch_rnn(cell, input_size, hidden_size, num_layers, dtype=dtype, bidirectional=bidirectional,
                             dropout=dropout if num_layers > 1 else 0.0)
        width = hidden_size * (2 if bidirectional else 1)
        self.fcn = None
        if conv_channels is not None:
            self.fcn = TorchConvBranch(input_size, conv_channels, conv_kernels, dtype=dtype)
        if pooling == "attention":
            self.score = nn.Linear(width, 1, dtype=dtype)
        width *= length if pooling == "positions" else 1
        self.head = nn.Linear(width + (conv_channels[-1] if conv_channels else 0), n_classes, dtype=dtype)
        self.drop = nn.Dropout(head_dropout)

    def forward(self, x, lengths=None):
        L, N = x.shape[:2]
        lengths = torch.full((N,), L) if lengths is None else torch.as_tensor(lengths).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        y, _ = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], total_length=L)    # (L, N, W)
        mask = (torch.arange(L)[:, None] < lengths[None, :]).to(y.dtype)[:, :, None]
        if self.pooling == "last":
            pooled = y[lengths - 1, torch.arange(N)]
            if self.bidirectional:
                H = self.hidden_size
                pooled = torch.cat([pooled[:, :H], y[0, :, H:]], dim=1)
        elif self.pooling == "mean":
            pooled = (y * mask).sum(0) / lengths[:, None].to(y.dtype)
        elif self.pooling == "attention":
            e = self.score(y)[:, :, 0].masked_fill(mask[:, :, 0] == 0, float("-inf"))
            pooled = (torch.softmax(e, dim=0)[:, :, None] * y).sum(0)
        elif self.pooling == "positions":
            pooled = y.transpose(0, 1).reshape(N, -1)                               # (N, L*W)
        else:
            pooled = y.masked_fill(mask == 0, float("-inf")).amax(0)
        if self.fcn is not None:
            pooled = torch.cat([pooled, self.fcn(x, lengths)], dim=1)
        return self.head(self.drop(pooled))


class TorchSequenceModel(nn.Module):
    """Twin of :class:`rnnkit.models.SequenceModel` (the experiments' model and the forecaster's
    network): x (L, N, H_in) [, lengths] -> (N, n_out) from the last valid step, or (L, N, n_out)
    for ``task='sequence'``."""

    def __init__(self, input_size, hidden_size, n_out, task, cell="lstm", num_layers=1, bidirectional=False,
                 dtype=torch.float32, **_):
        super().__init__()
        self.task = task
        self.rnn = torch_rnn(cell, input_size, hidden_size, num_layers, dtype=dtype, bidirectional=bidirectional)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), n_out, dtype=dtype)

    def forward(self, x, lengths=None):
        L, N = x.shape[:2]
        if lengths is None:
            y, _ = self.rnn(x)
            t = torch.full((N,), L - 1)
        else:
            lengths = torch.as_tensor(lengths).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
            y, _ = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], total_length=L)
            t = lengths - 1
        if self.task == "sequence":
            return self.head(y)
        return self.head(y[t, torch.arange(N)])


class TorchForecaster(nn.Module):
    """Twin of :class:`rnnkit.models.Forecaster`'s network: a window (window, N, 1) of values
    relative to its last one, in scaled units -> (N, horizon or 1) changes from it."""

    def __init__(self, window=24, horizon=1, cell="lstm", hidden_size=32, num_layers=1, strategy="recursive",
                 dtype=torch.float32, **_):
        super().__init__()
        n_out = horizon if strategy == "direct" else 1
        self.net = TorchSequenceModel(1, hidden_size, n_out, "regression", cell=cell, num_layers=num_layers,
                                      dtype=dtype)

    def forward(self, x):
        return self.net(x)


class TorchTagger(nn.Module):
    """Twin of :class:`rnnkit.models.Tagger`: the fields of a :class:`~rnnkit.data.tagging.TaggedBatch`
    (words (L, N), lengths (N,), chars (C, M), char_lengths (M,)) -> logits (L, N, n_tags)."""

    def __init__(self, word_vocab, tag_vocab, char_vocab=None, embed_size=64, char_embed_size=24,
                 char_hidden_size=24, hidden_size=64, num_layers=1, cell="lstm", bidirectional=True, dropout=0.0,
                 chars=True, dtype=torch.float32, **_):
        super().__init__()
        n_words, n_tags = len(word_vocab["itos"]), len(tag_vocab["itos"])
        self.chars = bool(chars) and char_embed_size > 0
        width = embed_size
        self.word_embed = nn.Embedding(n_words, embed_size, dtype=dtype)
        if self.chars:
            self.char_embed = nn.Embedding(len(char_vocab["itos"]), char_embed_size, dtype=dtype)
            self.char_rnn = torch_rnn(cell, char_embed_size, char_hidden_size, 1, dtype=dtype, bidirectional=True)
            width += 2 * char_hidden_size
        self.rnn = torch_rnn(cell, width, hidden_size, num_layers, dtype=dtype, bidirectional=bidirectional,
                             dropout=dropout if num_layers > 1 else 0.0)
        self.in_drop, self.out_drop = nn.Dropout(dropout), nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), n_tags, dtype=dtype)

    def forward(self, words, lengths, chars=None, char_lengths=None):
        L, N = words.shape
        lengths = torch.as_tensor(lengths).cpu()
        x = self.word_embed(words)
        if self.chars:
            packed = nn.utils.rnn.pack_padded_sequence(self.char_embed(chars), torch.as_tensor(char_lengths).cpu(),
                                                       enforce_sorted=False)
            h_n = self.char_rnn(packed)[1]
            h_n = h_n[0] if isinstance(h_n, tuple) else h_n                 # (2, M, H_c)
            enc = torch.cat([h_n[0], h_n[1]], dim=1)                        # (M, 2 H_c)
            t, n = torch.nonzero(torch.arange(L)[:, None] < lengths[None, :], as_tuple=True)   # time-major order
            grid = x.new_zeros((L, N, enc.shape[1]))
            grid[t, n] = enc
            x = torch.cat([x, grid], dim=2)
        packed = nn.utils.rnn.pack_padded_sequence(self.in_drop(x), lengths, enforce_sorted=False)
        y, _ = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], total_length=L)
        return self.head(self.out_drop(y))


class TorchAttention(nn.Module):
    """Twin of :class:`rnnkit.nn.Attention` (dot, general, concat, additive; same parameter names):
    query (N, Hq), keys (S, N, Hk), mask (S, N) -> context (N, Hk), weights (S, N)."""

    def __init__(self, query_size, key_size, kind="additive", attn_size=None, dtype=torch.float32):
        super().__init__()
        self.kind, A = kind, attn_size or key_size
        p = lambda *shape: nn.Parameter(torch.zeros(*shape, dtype=dtype))  # noqa: E731  (loaded from rnnkit)
        if kind == "additive":
            self.weight_q, self.weight_k, self.bias, self.v = p(A, query_size), p(A, key_size), p(A), p(A)
        elif kind == "general":
            self.weight = p(key_size, query_size)
        elif kind == "concat":
            self.weight, self.v = p(A, query_size + key_size), p(A)

    def forward(self, q, K, mask):
        if self.kind == "dot":
            e = torch.einsum("snh,nh->sn", K, q)
        elif self.kind == "general":
            e = torch.einsum("snh,nh->sn", K, q @ self.weight.T)
        else:
            Hq = q.shape[1]
            Wq, Wk = (self.weight[:, :Hq], self.weight[:, Hq:]) if self.kind == "concat" else (self.weight_q,
                                                                                              self.weight_k)
            pre = K @ Wk.T + (q @ Wq.T)[None]
            if self.kind == "additive":
                pre = pre + self.bias
            e = torch.tanh(pre) @ self.v
        alpha = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=0)
        return (alpha[:, :, None] * K).sum(0), alpha


class TorchSeq2Seq(nn.Module):
    """Twin of :class:`rnnkit.models.Seq2Seq` with teacher forcing: src (S, N), src_len (N,),
    tgt_in (T, N) -> logits (T, N, V_tgt); the same encoder, bridge, input-feeding decoder cell,
    attention and output layers under the same names."""

    def __init__(self, src_vocab, tgt_vocab, embed_size=32, hidden_size=64, cell="gru", num_layers=1, dropout=0.0,
                 attention="general", bidirectional=True, dtype=torch.float32, **_):
        super().__init__()
        H, E, D = hidden_size, embed_size, 2 if bidirectional else 1
        self.cell_kind, self.H, self.D = cell, H, D
        self.src_embed = nn.Embedding(len(src_vocab["itos"]), E, dtype=dtype)
        self.encoder = torch_rnn(cell, E, H, num_layers, dtype=dtype, bidirectional=bidirectional,
                                 dropout=dropout if num_layers > 1 else 0.0)
        self.bridge = nn.Linear(D * H, H, dtype=dtype)
        self.tgt_embed = nn.Embedding(len(tgt_vocab["itos"]), E, dtype=dtype)
        self.cell = (nn.GRUCell if cell == "gru" else nn.LSTMCell)(E + H, H, dtype=dtype)
        self.attn = TorchAttention(H, D * H, kind=attention, dtype=dtype)
        self.combine = nn.Linear(D * H + H, H, dtype=dtype)
        self.out = nn.Linear(H, len(tgt_vocab["itos"]), dtype=dtype)

    def forward(self, src, src_len, tgt_in):
        S, N = src.shape
        src_len = torch.as_tensor(src_len).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(src), src_len, enforce_sorted=False)
        out, final = self.encoder(packed)
        enc, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=S)
        h_n = (final[0] if self.cell_kind == "lstm" else final)[-self.D:]
        s0 = torch.tanh(self.bridge(torch.cat(list(h_n), dim=1)))
        state = (s0, torch.zeros_like(s0)) if self.cell_kind == "lstm" else s0
        mask = torch.arange(S)[:, None] < src_len[None, :]
        htilde, logits = s0.new_zeros((N, self.H)), []
        for t in range(tgt_in.shape[0]):
            state = self.cell(torch.cat([self.tgt_embed(tgt_in[t]), htilde], dim=1), state)
            h = state[0] if self.cell_kind == "lstm" else state
            ctx, _ = self.attn(h, enc, mask)
            htilde = torch.tanh(self.combine(torch.cat([ctx, h], dim=1)))
            logits.append(self.out(htilde))
        return torch.stack(logits)


class TorchHandwriting(nn.Module):
    """Twin of :class:`rnnkit.models.handwriting.HandwritingModel`: points x (L, N, 3) [, lengths]
    -> the mixture density outputs (L, N, 1 + 6M), step t reading point t - 1 (the start token
    (0, 0, 1) first). The mixture's loss is rnnkit's to write in torch where it is needed."""

    def __init__(self, hidden_size=128, num_layers=1, n_components=10, cell="lstm", dropout=0.0,
                 dtype=torch.float32, **_):
        super().__init__()
        self.rnn = torch_rnn(cell, 3, hidden_size, num_layers, dtype=dtype, dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, 1 + 6 * n_components, dtype=dtype)

    def forward(self, x, lengths=None):
        start = x.new_tensor([0.0, 0.0, 1.0]).expand(1, x.shape[1], 3)
        inp = torch.cat([start, x[:-1]], 0)                          # (L, N, 3)
        if lengths is None:
            return self.head(self.rnn(inp)[0])
        packed = nn.utils.rnn.pack_padded_sequence(inp, torch.as_tensor(lengths).cpu(), enforce_sorted=False)
        y, _ = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], total_length=x.shape[0])
        return self.head(y)
