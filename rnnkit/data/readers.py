"""Readers for the sequence files people have; each returns plain Python / NumPy structures.

* Labelled sequences, ``xs`` a list of (L_i, D) float32 arrays and ``y`` (N,) labels or None:
  ``.npz`` (:func:`read_npz_sequences`) and UEA/sktime ``.ts`` (:func:`read_ts`), or either by
  extension (:func:`read_sequences`).
* String pairs, one ``source<TAB>target`` a line (:func:`read_pairs`), and sources to predict
  from (:func:`read_sources`).
* Tagged tokens, CoNLL columns or CoNLL-U (:func:`read_conll`).

Bad input raises :class:`~rnnkit.errors.UserError` with one line naming the file, the line
(1-based) where there is one, what was expected and what arrived. Reading a file of more than
``BIG_INPUT_LINES`` lines shows a progress bar on stderr (``TQDM_DISABLE=1`` hides it).
"""
from __future__ import annotations

import itertools
import os
import re
import sys
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import UserError, where

CONLLU_FIELDS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
TOKENIZERS = {"chars": list, "words": str.split}
BIG_INPUT_LINES = 500_000
NPZ_LAYOUT = "np.savez(path, x=<(N, L, D) floats, zero-padded>, lengths=<(N,) ints>, y=<(N,) labels>)"


@dataclass
class Records:
    """Parsed records in file order, with the 1-based line each one starts on (for later messages)."""

    items: list
    lines: list
    path: str
    tag_column: str = ""     # where the tags were looked for, in the format read (CoNLL files)
    total_lines: int = 0     # lines in the file, blank ones included (read_sources)

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def where(self, i) -> str:
        """``'pairs.tsv, line 7'``: where record ``i`` starts."""
        return where(self.path, self.lines[i])


# -- text files ---------------------------------------------------------------------------------


def _show(line: str, width=60) -> str:
    return repr(line if len(line) <= width else line[:width] + "...")


def check_path(path) -> str:
    """``path`` as a string, once it is known to be an existing file (one-line error otherwise)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UserError(f"{path}: file not found")
    if os.path.isdir(path):
        raise UserError(f"{path}: expected a file, got a directory")
    return path


def _decode_lines(raw: bytes, name: str, what: str) -> list:
    """UTF-8 bytes -> lines without their ends (element i is line i + 1); no final empty line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UserError(f"{where(name, line)}: expected UTF-8 text, got byte 0x{raw[exc.start]:02x} "
                        f"at byte offset {exc.start}") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise UserError(f"{name}: expected {what}, got an empty file")
    lines = [s.removesuffix("\r") for s in text.split("\n")]
    return lines[:-1] if lines[-1] == "" else lines


def read_lines(path, what="text") -> list:
    """The lines of a UTF-8 text file (``"\\n"`` or ``"\\r\\n"`` ends removed); ``-`` reads stdin."""
    if os.fspath(path) == "-":
        return _decode_lines(sys.stdin.buffer.read(), "<stdin>", what)
    path = check_path(path)
    with open(path, "rb") as f:
        return _decode_lines(f.read(), path, what)


# -- pairs: source<TAB>target -------------------------------------------------------------------


def _tokenizer(tokens):
    if tokens not in TOKENIZERS:
        raise UserError(f"tokens: expected one of {', '.join(TOKENIZERS)}, got {tokens!r}")
    return TOKENIZERS[tokens]


def _split_pair(line, at, tokenize, need_target):
    """``'source<TAB>target'`` (or just ``'source'`` unless ``need_target``) -> (src, tgt or None)."""
    parts = line.split("\t")
    if len(parts) > 2:
        raise UserError(f"{at}: expected 'source<TAB>target', got {len(parts) - 1} tabs: {_show(line)}")
    if len(parts) == 1 and need_target:
        raise UserError(f"{at}: expected 'source<TAB>target', got a line without a tab: {_show(line)}")
    src, tgt = tokenize(parts[0]), (tokenize(parts[1]) if len(parts) == 2 else None)
    if not src:
        raise UserError(f"{at}: expected a non-empty source before the tab, got {_show(line)}")
    if tgt is not None and not tgt:
        raise UserError(f"{at}: expected a non-empty target after the tab, got {_show(line)}")
    return src, tgt


def read_pairs(path, tokens="chars") -> Records:
    """A TSV file of ``source<TAB>target`` lines -> :class:`Records` of ``(src, tgt)`` token lists.

    Blank lines are skipped; ``#`` starts no comment. ``tokens="chars"`` splits into characters,
    ``"words"`` on whitespace.
    """
    tokenize = _tokenizer(tokens)
    lines = read_lines(path, "'source<TAB>target' lines")
    items, starts = [], []
    for n, line in _numbered(lines, path):
        if line.strip():
            items.append(_split_pair(line, where(path, n), tokenize, True))
            starts.append(n)
    return Records(items, starts, os.fspath(path))


def read_sources(path, tokens="chars"):
    """Prediction input, one source a line (``-`` = stdin) -> (:class:`Records` of source token
    lists, targets list or None). A line may be ``source<TAB>target`` (a pairs file used as input):
    then every line must be, and the targets are returned too."""
    tokenize = _tokenizer(tokens)
    name = "<stdin>" if os.fspath(path) == "-" else os.fspath(path)
    lines = read_lines(path, "one source a line")
    parsed = [(n, _split_pair(line, where(name, n), tokenize, False))
              for n, line in enumerate(lines, 1) if line.strip()]
    has_tgt = [tgt is not None for _, (_, tgt) in parsed]
    if any(has_tgt) and not all(has_tgt):
        k = has_tgt.index(not has_tgt[0])
        want = "'source<TAB>target'" if has_tgt[0] else "a source without a tab"
        got = "a line with a tab" if has_tgt[k] else "a line without a tab"
        raise UserError(f"{where(name, parsed[k][0])}: expected {want} as on line {parsed[0][0]}, got {got}")
    sources = Records([src for _, (src, _) in parsed], [n for n, _ in parsed], name)
    sources.total_lines = len(lines)
    return sources, ([tgt for _, (_, tgt) in parsed] if has_tgt[0] else None)


# -- CoNLL and CoNLL-U ---------------------------------------------------------------------------


def _column_index(column, names, path) -> int:
    """``column`` (a field name from ``names`` or a 1-based index) -> 0-based index."""
    if isinstance(column, str) and column.isdigit():
        column = int(column)
    if isinstance(column, (int, np.integer)) and not isinstance(column, bool) and column >= 1:
        return int(column) - 1
    if column in names:
        return names.index(column)
    named = f"one of {', '.join(names)} or " if names else ""
    raise UserError(f"{path}: column: expected {named}a 1-based column index, got {column!r}")


def _is_conllu(path, lines) -> bool:
    if os.fspath(path).lower().endswith(".conllu"):
        return True
    first = next((s for s in lines if s.strip() and not s.startswith("#")), "")
    return len(first.split("\t")) == len(CONLLU_FIELDS)


def _numbered(lines, path):
    """``enumerate(lines, 1)``, with a progress bar for a big input."""
    from tqdm.auto import tqdm

    return enumerate(tqdm(lines, disable=len(lines) < BIG_INPUT_LINES, desc=f"reading {os.path.basename(path)}",
                          unit="line", unit_scale=True, leave=False, file=sys.stderr, mininterval=0.5), 1)


def _conllu_rows(lines, path, col):
    """``(line, form, tag)`` for each word line, None at each blank line (CoNLL-U)."""
    for n, line in _numbered(lines, path):
        if not line.strip():
            yield None
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != len(CONLLU_FIELDS):
            raise UserError(f"{where(path, n)}: expected 10 tab-separated columns (CoNLL-U), "
                            f"got {len(cols)}: {_show(line)}")
        if "-" not in cols[0] and "." not in cols[0]:  # multiword tokens 1-2, empty nodes 1.1
            yield n, cols[1], cols[col]


def _plain_rows(lines, path, col):
    """``(line, token, tag or None)`` for each token line, None at each break (plain CoNLL:
    token in column 1, tag in column ``col`` or the last; one column = no tags)."""
    first = None  # (line, number of columns)
    for n, line in _numbered(lines, path):
        cols = [c.strip() for c in line.split("\t")] if "\t" in line else line.split()
        if not line.strip() or cols[0] == "-DOCSTART-":
            yield None
            continue
        if first is None:
            first = (n, len(cols))
            if col is not None and col >= len(cols):
                raise UserError(f"{where(path, n)}: expected at least {col + 1} columns for column={col + 1}, "
                                f"got {len(cols)}: {_show(line)}")
        elif len(cols) != first[1]:
            raise UserError(f"{where(path, n)}: expected {first[1]} columns as on line {first[0]}, "
                            f"got {len(cols)}: {_show(line)}")
        if "" in cols:
            raise UserError(f"{where(path, n)}: expected a value in every column, got an empty column "
                            f"{cols.index('') + 1}: {_show(line)}")
        yield n, cols[0], (None if len(cols) == 1 and col is None else cols[-1 if col is None else col])


def _sentences(rows, path, missing, what):
    """Token rows grouped at the breaks -> :class:`Records` of (tokens, tags); tags None when no
    row has one, an error when only some lack one."""
    groups, current = [], []
    for row in itertools.chain(rows, [None]):
        if row is not None:
            current.append(row)
        elif current:
            groups.append(current)
            current = []
    if not groups:
        raise UserError(f"{path}: expected at least one sentence of token lines, got none")
    untagged = [r for g in groups for r in g if r[2] is None or r[2] == missing]
    tagged = len(untagged) < sum(len(g) for g in groups)
    if tagged and untagged:
        raise UserError(f"{where(path, untagged[0][0])}: expected a tag in {what} (other lines have one), "
                        f"got {untagged[0][2]!r}")
    items = [([r[1] for r in g], [r[2] for r in g] if tagged else None) for g in groups]
    return Records(items, [g[0][0] for g in groups], path)


def read_conll(path, column=None) -> Records:
    """Tagged sentences -> :class:`Records` of ``(tokens, tags)`` lists (tags None if the file has none).

    Plain CoNLL: whitespace- or tab-separated columns, token first, tag last (or ``column``, a
    1-based index); a blank line between sentences; ``-DOCSTART-`` lines skipped. CoNLL-U (a
    ``.conllu`` file or 10 tab-separated columns): ``#`` comments, multiword-token (``1-2``) and
    empty-node (``1.1``) lines skipped; the tag is ``column`` = ``"upos"`` (default), ``"xpos"``,
    ``"deprel"``, another field name or a 1-based index; ``_`` everywhere means untagged.
    """
    lines = read_lines(path, "CoNLL token lines")
    path = os.fspath(path)
    if _is_conllu(path, lines):
        col = _column_index("upos" if column is None else column, CONLLU_FIELDS, path)
        if col >= len(CONLLU_FIELDS):
            raise UserError(f"{path}: column: expected 1 to {len(CONLLU_FIELDS)} for CoNLL-U, got {col + 1}")
        what = f"column {col + 1} ({CONLLU_FIELDS[col]})"
        records = _sentences(_conllu_rows(lines, path, col), path, "_", what)
        records.tag_column = f"the {CONLLU_FIELDS[col]} column of CoNLL-U, column {col + 1}"
        return records
    col = None if column is None else _column_index(column, (), path)
    what = "the last column" if col is None else f"column {col + 1}"
    records = _sentences(_plain_rows(lines, path, col), path, None, what)
    records.tag_column = f"{what} of CoNLL" + (", after the token" if col is None else "")
    return records


# -- labelled sequences: .npz, .ts ---------------------------------------------------------------


def read_sequences(path):
    """``(xs, y)`` from a ``.npz`` or ``.ts`` file, by extension: see the readers for each."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in SEQUENCE_READERS:
        raise UserError(f"{path}: expected a sequence file ending in {' or '.join(SEQUENCE_READERS)}, "
                        f"got {repr(ext) if ext else 'no extension'}")
    return SEQUENCE_READERS[ext](path)


def _pad(seqs):
    """List of (L_i, D) arrays -> ((N, L_max, D) zero-padded, (N,) lengths)."""
    lengths = np.array([len(s) for s in seqs], np.int64)
    x = np.zeros((len(seqs), max(lengths.max(initial=0), 1), seqs[0].shape[1]), np.result_type(*{s.dtype for s in seqs}))
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    return x, lengths


def _valid_sequences(x, lengths, path, at=None):
    """(N, L, D) numbers + (N,) lengths in [1, L] -> list of (L_i, D) float32, finite on valid steps.
    ``at(i)`` starts a message about sequence ``i``."""
    at = at or (lambda i: f"{path}: sequence {i}")
    if x.dtype.kind not in "iuf":
        raise UserError(f"{path}: expected numbers (integers or floats), got dtype {x.dtype}")
    L = x.shape[1]
    short = np.flatnonzero((lengths < 1) | (lengths > L))
    if short.size:
        i = int(short[0])
        raise UserError(f"{at(i)}: expected a length in [1, {L}], got {lengths[i]}")
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    valid = np.arange(L)[None, :] < lengths[:, None]                       # (N, L)
    bad = np.argwhere(~np.isfinite(x32) & valid[:, :, None])              # (k, 3)
    if len(bad):
        i, t, d = (int(v) for v in bad[0])
        raise UserError(f"{at(i)}, step {t}, feature {d}: expected finite float32 values, "
                        f"got {x[i, t, d]} ({len(bad)} non-finite in the file)")
    return [x32[i, : lengths[i]] for i in range(len(x32))]


def _npz_get(npz, key, path) -> np.ndarray:
    try:
        return npz[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError) as exc:
        if isinstance(exc, MemoryError):
            raise UserError(f"{path}: array '{key}' is larger than the memory free here") from None
        if "allow_pickle" in str(exc):
            raise UserError(f"{path}: '{key}' is an object array, which only loads through pickle (refused: "
                            f"it can run code); save the sequences padded instead: {NPZ_LAYOUT}") from None
        raise UserError(f"{path}: cannot read array '{key}': {' '.join(str(exc).split())}") from None


def _warn_unmarked_padding(x, path) -> None:
    """Without ``lengths`` every step of ``x`` is data: say so when the sequences end in runs of
    all-zero steps of different lengths, which is what zero padding looks like (unless all-zero
    steps occur inside sequences too: then zeros are data, as in sparse counts)."""
    import sys

    nonzero = np.any(x != 0, axis=2)                                   # (N, L)
    last = np.where(nonzero.any(axis=1), x.shape[1] - 1 - np.argmax(nonzero[:, ::-1], axis=1), -1)
    trailing = x.shape[1] - 1 - last                                  # all-zero steps at each sequence's end
    interior = np.arange(x.shape[1])[None, :] < last[:, None]
    if (~nonzero & interior).any():                # all-zero steps inside sequences too: sparse data, not padding
        return
    if trailing.max() > 0 and trailing.min() != trailing.max():
        k = int(np.count_nonzero(trailing))
        print(f"rnnkit: warning: {path}: {k} of {len(x)} sequences end in all-zero steps (up to {trailing.max()}) "
              f"and there is no 'lengths', so they are read as data; if they are padding, save lengths=... "
              f"({NPZ_LAYOUT})", file=sys.stderr)


def _npz_x(npz, path):
    """``x`` (N, L, D) or (N, L), with ``lengths`` if present, or ``x_0, x_1, ...`` -> (x, lengths)."""
    if "x" in npz.files:
        x = _npz_get(npz, "x", path)
        x = x[:, :, None] if x.ndim == 2 else x
        if x.ndim != 3 or 0 in x.shape:
            raise UserError(f"{path}: expected 'x' of shape (N, L, D) or (N, L), non-empty, got shape {x.shape}")
        if "lengths" not in npz.files:
            _warn_unmarked_padding(x, path)
            return x, np.full(len(x), x.shape[1], np.int64)
        lengths = _npz_get(npz, "lengths", path)
        if lengths.shape != (len(x),) or lengths.dtype.kind not in "iu":
            raise UserError(f"{path}: expected 'lengths' of {len(x)} integers (one per sequence), "
                            f"got shape {lengths.shape} and dtype {lengths.dtype}")
        return x, lengths.astype(np.int64)
    count = sum(bool(re.fullmatch(r"x_\d+", k)) for k in npz.files)
    if not count:
        raise UserError(f"{path}: expected an array 'x' (N, L, D) with optional 'lengths' (N,) and 'y' (N,), "
                        f"or arrays 'x_0', 'x_1', ...; got {npz.files}")
    seqs = []
    for i in range(count):
        if f"x_{i}" not in npz.files:
            raise UserError(f"{path}: expected arrays 'x_0' to 'x_{count - 1}', got no 'x_{i}'")
        s = _npz_get(npz, f"x_{i}", path)
        if s.ndim not in (1, 2):
            raise UserError(f"{path}: expected 'x_{i}' of shape (L, D) or (L,), got {s.shape}")
        seqs.append(s[:, None] if s.ndim == 1 else s)
        if seqs[-1].shape[1] != seqs[0].shape[1]:
            raise UserError(f"{path}: expected 'x_{i}' with {seqs[0].shape[1]} features per step like 'x_0', "
                            f"got shape {s.shape}")
    return _pad(seqs)


def _labels(y, n, path, name="'y'"):
    """(n,) labels as int64 or str; None stays None."""
    if y is None:
        return None
    if y.shape != (n,):
        raise UserError(f"{path}: expected {name} with one label per sequence, shape ({n},), got shape {y.shape}")
    if y.dtype.kind in "iub":
        return y.astype(np.int64)
    if y.dtype.kind in "US":
        return y.astype(str)
    raise UserError(f"{path}: expected integer or string labels in {name}, got dtype {y.dtype}"
                    + (" (class numbers? save them with y.astype(int))" if y.dtype.kind == "f" else ""))


def read_npz_sequences(path):
    """An ``.npz`` archive -> ``(xs, y)``: xs a list of N (L_i, D) float32 arrays, y (N,) int64 or
    str labels, or None.

    Layouts (never unpickled): ``x`` (N, L, D) zero-padded with ``lengths`` (N,) ints in [1, L];
    ``x`` (N, L, D) without lengths (all full length); ``x`` (N, L) meaning D = 1; or one array per
    sequence, ``x_0``, ``x_1``, ... each (L_i, D) or (L_i,). ``y`` (N,) ints or strings is optional.
    """
    path = check_path(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK":
        got = "a single .npy array" if magic == b"\x93NUM" else ("an empty file" if not magic else "no zip archive")
        raise UserError(f"{path}: expected a .npz archive ({NPZ_LAYOUT}), got {got}")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: expected a .npz archive, cannot read it: {' '.join(str(exc).split())}") from None
    with npz:
        x, lengths = _npz_x(npz, path)
        xs = _valid_sequences(x, lengths, path)
        return xs, _labels(_npz_get(npz, "y", path) if "y" in npz.files else None, len(xs), path)


def _ts_header(lines, path) -> dict:
    """The ``@data`` line (1-based) and the header flags of a ``.ts`` file (aeon's defaults)."""
    meta = {"labelled": True, "equallength": True, "timestamps": False}
    for n, line in enumerate(lines, 1):
        words = line.strip().lower().split()
        if words == ["@data"]:
            if not any(s.strip() for s in lines[n:]):
                raise UserError(f"{where(path, n)}: expected one sequence a line after @data, got none")
            return dict(meta, data=n)
        if len(words) >= 2 and words[0][1:] in ("equallength", "timestamps"):
            meta[words[0][1:]] = words[1] == "true"
        if len(words) >= 2 and words[0] in ("@classlabel", "@targetlabel"):
            meta["labelled"] = words[1] == "true" or (words[0] == "@targetlabel" and meta["labelled"])
            if words[0] == "@classlabel" and words[1] == "true" and len(words) > 2:
                # lower case, as aeon reads the labels; split at commas too ("1,2"), which aeon takes
                meta["classes"] = [c for w in words[2:] for c in w.split(",") if c]
        if len(words) == 2 and words[0] == "@dimensions" and words[1].isdigit():
            meta["dimensions"] = int(words[1])
    raise UserError(f"{path}: expected a '@data' line ending the .ts header, got none")


def _is_number(s: str) -> bool:
    try:
        float(s.replace("?", "nan"))
        return True
    except ValueError:
        return False


def _ts_problem(lines, meta, path):
    """The first data line aeon cannot read, as a message (None if none is found)."""
    first = None  # (line, channels, length)
    for n in range(meta["data"] + 1, len(lines) + 1):
        parts = lines[n - 1].strip().split(":")
        channels = [p.split(",") for p in (parts[:-1] if meta["labelled"] else parts)]
        bad = next((v for c in channels for v in c if not _is_number(v)), None)
        if not lines[n - 1].strip() or bad is not None:
            got = "an empty line" if not lines[n - 1].strip() else repr(bad)
            return f"{where(path, n)}: expected numbers separated by ',' (channels by ':'), got {got}"
        shape = (len(channels), {len(c) for c in channels})
        if len(shape[1]) > 1:
            return f"{where(path, n)}: expected channels of one length, got lengths {sorted(shape[1])}"
        dims = meta.get("dimensions")
        if dims and meta["labelled"] and shape[0] + 1 == dims and _no_label(parts[-1], shape[1], meta):
            return _label_missing(path, n, dims)
        if first is None:
            first = (n, *shape)
        elif shape[0] != first[1]:
            if meta["labelled"] and shape[0] + 1 == first[1] and _no_label(parts[-1], first[2], meta):
                return (f"{where(path, n)}: expected {first[1]} channel(s) and a class label after the last ':' as "
                        f"on line {first[0]}, got {len(parts)} channel(s) and no label")
            return f"{where(path, n)}: expected {first[1]} channel(s) as on line {first[0]}, got {shape[0]}"
        elif meta["equallength"] and shape[1] != first[2]:
            return (f"{where(path, n)}: expected length {min(first[2])} as on line {first[0]} (the header says "
                    f"@equalLength true), got {min(shape[1])}")
    return None


def _label_missing(path, line, dims) -> str:
    """The message for a data line of a labelled ``.ts`` file whose last ':' field is a channel."""
    return (f"{where(path, line)}: expected {dims} channel(s) and a class label after the last ':' (the header "
            f"says @dimensions {dims} and @classLabel true), got {dims} channel(s) and no label")


def _no_label(field: str, lengths, meta) -> bool:
    """The last ``:`` field of a data line is one more channel (numbers of the channels' length,
    not a class the header names), so the line's class label is missing."""
    values = field.strip().split(",")
    return (all(_is_number(v) for v in values) and {len(values)} == set(lengths)
            and field.strip().lower() not in meta.get("classes", ()))


def _ts_check(xs, y, meta, path, data_lines) -> None:
    """What aeon reads but the header contradicts: another number of dimensions than
    ``@dimensions``, a class label the ``@classLabel`` line does not list."""
    dims = meta.get("dimensions")
    if dims is not None and xs and xs[0].shape[1] != dims:
        if (meta["labelled"] and y is not None and xs[0].shape[1] + 1 == dims
                and _no_label(str(y[0]), {len(xs[0])}, meta)):    # aeon took the last channel for the label
            raise UserError(_label_missing(path, data_lines[0], dims))
        raise UserError(f"{where(path, data_lines[0])}: expected {dims} channel(s) (the header says @dimensions "
                        f"{dims}), got {xs[0].shape[1]}")
    classes = meta.get("classes")
    if classes and y is not None and y.dtype.kind == "U":
        unknown = np.flatnonzero(~np.isin(np.char.lower(y), classes))
        if unknown.size:
            i = int(unknown[0])
            raise UserError(f"{where(path, data_lines[i])} (sequence {i}): expected a class label the header's "
                            f"@classLabel line names ({', '.join(classes)}), got {str(y[i])!r} ({unknown.size} such "
                            f"sequences)")


def read_ts(path):
    """A UEA/sktime ``.ts`` file (read by aeon) -> ``(xs, y)``: xs a list of N (L_i, D) float32
    arrays, y (N,) str labels (aeon lower-cases them), floats for ``@targetLabel true``, or None.
    Missing values (``?``, ``NaN``) are an error: fill or drop them first."""
    lines = read_lines(path, "a .ts file (@ header lines, @data, one sequence a line)")
    path = os.fspath(path)
    meta = _ts_header(lines, path)
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError:
        raise UserError(f"{path}: reading .ts files needs aeon: pip install -e '.[datasets]'") from None
    try:
        data, y = load_from_ts_file(path)
    except (OSError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise UserError(_ts_problem(lines, meta, path) or f"{path}: expected a .ts file aeon can read, "
                        f"got an error from aeon: {' '.join(str(exc).split())}") from None
    x, lengths = _pad([np.asarray(c, np.float64).T for c in data])          # (N, L, D) from (D, L_i)
    # sequence i is the i-th non-blank line after @data (one more per sequence, should aeon read more)
    data_lines = [n for n in range(meta["data"] + 1, len(lines) + 1) if lines[n - 1].strip()]
    data_lines += [data_lines[-1] + k for k in range(1, len(x) - len(data_lines) + 1)]
    xs = _valid_sequences(x, lengths, path, lambda i: f"{where(path, data_lines[i])} (sequence {i})")
    if y.size == 0 or (y.dtype.kind == "U" and not any(y)):
        _ts_check(xs, None, meta, path, data_lines)
        return xs, None
    y = y.astype(np.float64) if y.dtype.kind == "f" else _labels(y, len(xs), path, "the labels")
    _ts_check(xs, y, meta, path, data_lines)
    return xs, y


SEQUENCE_READERS = {".npz": read_npz_sequences, ".ts": read_ts}
