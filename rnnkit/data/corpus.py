"""A character corpus as token ids: in memory for a text, or memory-mapped from a prepared
directory for corpora larger than memory.

``prepare(TEXT_FILE, DIR)`` (``rnnkit prepare``) reads the file in chunks twice, never whole:
once for its characters (the vocabulary) and its digest, once to write the ids as the smallest
unsigned integers that hold the vocabulary (one byte per character for up to 256 distinct
characters) into ``DIR/ids.bin``, beside ``DIR/corpus.json`` (vocabulary, dtype, length,
source, digest). :meth:`Corpus.open` maps ``ids.bin`` without reading it; the training batches
(:class:`~rnnkit.data.text.StreamBatches`) slice views of it, so a training process holds a
window at a time, whatever the corpus size. The digest is the SHA-256 of the file's bytes, as
for a text read whole, so a run trained on the text resumes on its prepared corpus and back.
"""
from __future__ import annotations

import codecs
import hashlib
import json
import os
import sys

import numpy as np

from ..errors import UserError
from .text import CharVocab

CHUNK = 1 << 24          # bytes read at a time (16 MiB)
BAR_FROM = 1 << 23       # files from this size (8 MiB) show a progress bar
FORMAT = "rnnkit-corpus"


def _digest(h) -> str:
    return h.hexdigest()[:16]


class Corpus:
    """Token ids (``ids``: an array or a read-only memory map) with their :class:`CharVocab` and
    the digest of the text they encode."""

    def __init__(self, ids: np.ndarray, vocab: CharVocab, digest: str, source: str | None = None):
        self.ids, self.vocab, self.digest, self.source = ids, vocab, digest, source

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_text(cls, text: str, vocab: CharVocab | None = None) -> "Corpus":
        """A text in memory, encoded a chunk at a time (the temporaries stay a chunk's size)."""
        vocab = vocab or CharVocab.from_text(text)
        ids, h = np.empty(len(text), _dtype(len(vocab))), hashlib.sha256()
        for s in range(0, len(text), CHUNK):
            part = text[s:s + CHUNK]
            ids[s:s + len(part)] = vocab.encode_array(part, ids.dtype)
            h.update(part.encode("utf-8"))
        return cls(ids, vocab, _digest(h))

    @classmethod
    def open(cls, path) -> "Corpus":
        """The prepared corpus in directory ``path`` (see :func:`prepare`), memory-mapped."""
        path = os.fspath(path)
        meta_path = os.path.join(path, "corpus.json")
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"a JSON object with format {FORMAT!r}")
            chars, n, dtype = meta["vocab"]["chars"], meta["length"], meta["dtype"]
            if not (isinstance(chars, list) and chars and all(isinstance(c, str) and len(c) == 1 for c in chars)):
                raise ValueError("vocab.chars: expected a list of single characters")
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ValueError(f"length: expected an integer >= 0, got {n!r}")
            if dtype not in ("uint8", "uint16", "uint32") or not isinstance(meta.get("digest"), str):
                raise ValueError(f"dtype uint8 / uint16 / uint32 and a digest, got {dtype!r}")
            vocab, dtype = CharVocab(chars), np.dtype(dtype)
        except FileNotFoundError:
            raise UserError(f"{path}: expected a corpus prepared by `rnnkit prepare` (with corpus.json), "
                            f"got none") from None
        except (OSError, ValueError, KeyError, TypeError, RecursionError, AttributeError) as exc:
            raise UserError(f"{meta_path}: expected the description of a prepared corpus, could not read it "
                            f"({' '.join(str(exc).split())[:120]})") from None
        ids_path = os.path.join(path, "ids.bin")
        size = os.path.getsize(ids_path) if os.path.exists(ids_path) else -1
        if size != n * dtype.itemsize:
            raise UserError(f"{ids_path}: expected {n * dtype.itemsize:,} bytes ({n:,} ids of {dtype}), got "
                            f"{'no file' if size < 0 else f'{size:,}'}; prepare the corpus again")
        scan = np.memmap(ids_path, dtype=dtype, mode="r", shape=(n,)) if n else np.zeros(0, dtype)
        top = max((int(scan[s:s + CHUNK].max()) for s in range(0, n, CHUNK)), default=0)  # one sequential read
        del scan                   # unmapped: the pages it read leave this process (they stay in the page cache)
        ids = np.memmap(ids_path, dtype=dtype, mode="r", shape=(n,)) if n else np.zeros(0, dtype)
        if top >= len(vocab):
            raise UserError(f"{ids_path}: expected ids below the vocabulary's {len(vocab)}, got {top}; prepare the "
                            f"corpus again")
        return cls(ids, vocab, meta["digest"], meta.get("source"))


def is_corpus(path) -> bool:
    """``path`` is a directory prepared by :func:`prepare`."""
    return os.path.isdir(path) and os.path.exists(os.path.join(path, "corpus.json"))


def load_corpus(path, progress=False, purpose="to train on") -> Corpus:
    """A text file (read whole and encoded) or a prepared corpus directory (memory-mapped);
    ``purpose`` ends the message for an empty file."""
    if is_corpus(path):
        return Corpus.open(path)
    if os.path.isdir(path):
        unfinished = (" (an unfinished `rnnkit prepare`: run it again)" if _leftovers_only(path) else
                      " (ids.bin without corpus.json: an unfinished `rnnkit prepare`? run it again with --overwrite)"
                      if _leftovers_only(path, ids=True) else "")
        raise UserError(f"{os.fspath(path)}: expected a text file or a prepared corpus directory (with corpus.json), "
                        f"got a directory without corpus.json{unfinished}")
    from .text import read_text

    corpus = Corpus.from_text(read_text(path, purpose))
    corpus.source = os.path.abspath(path)
    return corpus


LEFTOVERS = (".ids.bin.tmp",)     # what an interrupted preparation leaves (a kill, before its own cleanup)


def _leftovers_only(path, ids=False) -> bool:
    """``path`` holds nothing but what an interrupted :func:`prepare` left (its temporary ids, a
    temporary file of corpus.json's atomic write; with ``ids``, ``ids.bin`` too: a preparation cut
    between its ids and its description, which only ``--overwrite`` may take for one), no
    corpus.json: its own to replace."""
    entries = os.listdir(path)
    return bool(entries) and all(e in LEFTOVERS or (ids and e == "ids.bin")
                                 or (e.startswith(".corpus.json.") and e.endswith(".tmp")) for e in entries)


def _dtype(n_symbols: int) -> np.dtype:
    return np.dtype(np.uint8 if n_symbols <= 256 else np.uint16 if n_symbols <= 65536 else np.uint32)


def _chunks(path, progress, desc):
    """``(text chunk, raw bytes)`` of a UTF-8 file, read CHUNK bytes at a time; a byte that is not
    UTF-8 is one line naming its offset."""
    from tqdm.auto import tqdm

    size = os.path.getsize(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    bar = tqdm(total=size, unit="B", unit_scale=True, desc=desc, disable=not progress or size < BAR_FROM, leave=False,
               file=sys.stderr)
    with open(path, "rb") as f, bar:
        while True:
            raw = f.read(CHUNK)
            # the decoder keeps the bytes of a character cut by the chunk's end and decodes them with
            # the next chunk (or, at the end, fails on them): the error's position counts from them
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as exc:
                data = pending + raw
                raise UserError(f"{path} is not UTF-8 text: undecodable byte 0x{data[exc.start]:02x} at offset "
                                f"{offset - len(pending) + exc.start}") from None
            yield text, raw
            offset += len(raw)
            bar.update(len(raw))
            if not raw:
                return


def prepare(src, out, progress=True, overwrite=False) -> dict:
    """Encode the UTF-8 text file ``src`` into the corpus directory ``out`` (two passes over the
    file in chunks; ``corpus.json`` is written last, so an interrupted preparation leaves no
    corpus, never a wrong one). Returns what was written."""
    from .readers import check_path

    src = check_path(src)
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out}: expected a directory, got an existing file")
    unfinished = os.path.isdir(out) and _leftovers_only(out, ids=overwrite)
    if os.path.isdir(out) and os.listdir(out) and not unfinished:    # an unfinished one is replaced
        if not is_corpus(out):
            entries = sorted(os.listdir(out))
            raise UserError(f"--out {out}: expected a new or empty directory, got one with other files "
                            f"({', '.join(entries[:4])}{', ...' if len(entries) > 4 else ''})")
        if not overwrite:
            raise UserError(f"--out {out} already holds a prepared corpus; pass --overwrite to replace it")
    h, seen, n = hashlib.sha256(), np.zeros(0x110000, bool), 0      # one flag per Unicode code point
    for text, raw in _chunks(src, progress, "reading"):
        h.update(raw)
        if text:
            codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
            seen[codes] = True
            n += len(codes)
    if not n:
        raise UserError(f"{src} is empty: expected some text to prepare")
    vocab = CharVocab.from_text("".join(map(chr, np.flatnonzero(seen).tolist())))
    dtype = _dtype(len(vocab))
    made = not os.path.exists(out)
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, ".ids.bin.tmp")
    try:
        with open(tmp, "wb") as f:
            for text, _ in _chunks(src, progress, "encoding"):
                if text:
                    f.write(vocab.encode_array(text, dtype).tobytes())
            f.flush()
            os.fsync(f.fileno())
    except BaseException:                  # Ctrl-C, SIGTERM, a full disk: no half-written ids left behind
        if os.path.exists(tmp):
            os.remove(tmp)
        if made and not os.listdir(out):
            os.rmdir(out)
        raise
    if os.path.exists(os.path.join(out, "corpus.json")):
        os.remove(os.path.join(out, "corpus.json"))     # the old description goes before its ids do
    os.replace(tmp, os.path.join(out, "ids.bin"))
    meta = {"format": FORMAT, "source": os.path.abspath(src), "digest": _digest(h), "length": n,
            "dtype": dtype.name, "vocab": vocab.to_dict()}
    from ..io import atomic_write_text

    atomic_write_text(os.path.join(out, "corpus.json"), json.dumps(meta, indent=1))
    return {"characters": n, "vocabulary": len(vocab), "dtype": dtype.name,
            "bytes": n * dtype.itemsize, "source_bytes": os.path.getsize(src)}
