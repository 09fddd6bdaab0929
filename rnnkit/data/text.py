"""Text for character-level language models: reading, a character vocabulary, and batches laid
out for truncated BPTT (each batch row a contiguous stream, so state can be carried between windows).
"""
from __future__ import annotations

import numpy as np

from .._validate import check_positive_int
from .vocab import Vocab

UNK = "\ufffd"  # shown for characters outside the vocabulary


def read_text(path, purpose="to train on") -> str:
    """Read a UTF-8 text file; one clear error for a missing, unreadable, empty or non-UTF-8 file
    (an empty one is "expected some text ``purpose``")."""
    from .readers import check_path

    path = check_path(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text: undecodable byte 0x{raw[exc.start]:02x} at offset {exc.start}") from None
    if not text:
        raise ValueError(f"{path} is empty: expected some text {purpose}")
    return text


def pydoc_topics_text() -> str:
    """The interpreter's own documentation (``pydoc_data.topics``): ~0.5 MB of English and code,
    present in every CPython installation; the demo's default corpus."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


class CharVocab(Vocab):
    """Characters <-> integer ids: the one :class:`Vocab` with a single special, id 0, the unknown
    character ``"\ufffd"``; the rest are sorted. Saved as ``{"chars": [...]}``."""

    PAD = BOS = EOS = None
    UNK = 0

    def __init__(self, chars):
        self._setup(list(chars), (UNK,), UNK)

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        return cls([UNK] + sorted(set(text) - {UNK}))

    @property
    def chars(self) -> list:
        return self.itos

    @property
    def index(self) -> dict:
        return self.stoi

    def encode(self, text: str) -> np.ndarray:
        """(len(text),) int64 ids; unknown characters map to id 0."""
        return self.encode_array(text)

    def decode(self, ids) -> str:
        """Ids -> text; id 0 shows as ``"\ufffd"``."""
        return "".join(self.itos[int(i)] for i in ids)

    def unknown(self, text: str) -> set:
        return set(text).difference(self.stoi)

    def to_dict(self) -> dict:
        return {"chars": list(self.itos)}

    @classmethod
    def from_dict(cls, d: dict) -> "CharVocab":
        return cls(list(d["chars"]))


def split_ids(ids: np.ndarray, val_fraction: float):
    """Chronological split: the last ``val_fraction`` of the stream is held out."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a number in [0, 1), got {val_fraction}")
    n_val = int(len(ids) * val_fraction)
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


class StreamBatches:
    """Lay a token stream out as ``batch_size`` contiguous rows and cut it into windows.

    Row ``b`` holds tokens ``[b * n, (b + 1) * n)``; window ``w`` is columns
    ``[w * seq_len, (w + 1) * seq_len)`` as input and the same shifted by one as target, so
    the state at the end of window ``w`` is the right initial state for window ``w + 1``.
    Yields time-major ``(x, y)``, each (L, N) int64. ``ids`` may be any integer array, a memory
    map included (rows and windows are views: only the window asked for is read); ``table``
    maps its ids to the model's (a corpus encoded with another vocabulary).
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int, table: np.ndarray | None = None):
        batch_size, seq_len = check_positive_int(batch_size, "batch_size"), check_positive_int(seq_len, "seq_len")
        if not isinstance(ids, np.ndarray) or ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            got = f"shape {ids.shape}, dtype {ids.dtype}" if isinstance(ids, np.ndarray) else type(ids).__name__
            raise TypeError(f"StreamBatches ids: expected a 1-D array of integer token ids (vocab.encode(text)), "
                            f"got {got}")
        n = (len(ids) - 1) // batch_size
        if n < 1:
            raise ValueError(f"text too short: {len(ids)} characters cannot fill {batch_size} rows "
                             f"of at least 2 characters; use a smaller --batch-size or more text")
        self.batch_size, self.seq_len, self.table = batch_size, seq_len, table
        self.inputs = ids[: n * batch_size].reshape(batch_size, n)
        self.targets = ids[1: n * batch_size + 1].reshape(batch_size, n)
        self.num_windows = -(-n // seq_len)

    def __len__(self) -> int:
        return self.num_windows

    def batch(self, w: int, epoch: int = 0):
        """Window ``w`` as time-major ``(x, y)``; the same in every epoch (the stream is not shuffled)."""
        s = slice(w * self.seq_len, (w + 1) * self.seq_len)
        x, y = self.inputs[:, s].T, self.targets[:, s].T
        if self.table is not None:
            return self.table[x], self.table[y]
        return np.ascontiguousarray(x, np.int64), np.ascontiguousarray(y, np.int64)   # copies, off any memory map

    def __iter__(self):
        for w in range(self.num_windows):
            yield self.batch(w)
