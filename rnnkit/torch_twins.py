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
                 dtype=torch.float32, **_):
        super().__init__()
        self.config = dict(kind="charlm", vocab_size=vocab_size, embed_size=embed_size, hidden_size=hidden_size,
                           num_layers=num_layers, cell=cell, dropout=dropout)
        self.embed = nn.Embedding(vocab_size, embed_size, dtype=dtype)
        self.rnn = torch_rnn(cell, embed_size, hidden_size, num_layers, dtype=dtype,
                             dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size, dtype=dtype)

    def forward(self, x, state=None):
        y, state = self.rnn(self.embed(x), state)
        return self.head(self.drop(y)), state


class TorchClassifier(nn.Module):
    """Twin of :class:`rnnkit.models.classifier.SequenceClassifier`: x (L, N, D), lengths (N,) ->
    logits (N, classes), pooling the recurrent outputs by the last valid step, their mean, or
    attention, exactly as rnnkit does."""

    def __init__(self, input_size, hidden_size, n_classes, cell="lstm", num_layers=1, bidirectional=False,
                 pooling="last", dropout=0.0, dtype=torch.float32, **_):
        super().__init__()
        self.pooling, self.hidden_size, self.bidirectional = pooling, hidden_size, bidirectional
        self.rnn = torch_rnn(cell, input_size, hidden_size, num_layers, dtype=dtype, bidirectional=bidirectional,
                             dropout=dropout if num_layers > 1 else 0.0)
        width = hidden_size * (2 if bidirectional else 1)
        if pooling == "attention":
            self.score = nn.Linear(width, 1, dtype=dtype)
        self.head = nn.Linear(width, n_classes, dtype=dtype)

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
        else:
            e = self.score(y)[:, :, 0].masked_fill(mask[:, :, 0] == 0, float("-inf"))
            pooled = (torch.softmax(e, dim=0)[:, :, None] * y).sum(0)
        return self.head(pooled)
