"""Saving and loading: one ``.npz`` file per checkpoint, written atomically, versioned.

A checkpoint is a tree of dicts / lists whose leaves are NumPy arrays or JSON values. Arrays go
into the ``.npz`` under their path (``model/rnn.weight_ih_l0``); everything else goes into a
JSON document stored beside them, with ``{"__array__": path}`` where an array was. Files are
written to a temporary name in the same directory, flushed to disk, then renamed over the
target, so a crash leaves either the old file or the new one, never half of one. Loading never
unpickles anything.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

FORMAT = "rnnkit-checkpoint"
VERSION = 1


def _split(tree, prefix, arrays):
    if isinstance(tree, np.ndarray):
        arrays[prefix] = tree
        return {"__array__": prefix}
    if isinstance(tree, dict):
        return {str(k): _split(v, f"{prefix}/{k}" if prefix else str(k), arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split(v, f"{prefix}/{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _join(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return arrays[tree["__array__"]]
        return {k: _join(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join(v, arrays) for v in tree]
    return tree


_STD_NAMES = {1: ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"), 2: ("/dev/stderr", "/dev/fd/2", "/proc/self/fd/2")}


def _std_stream(path):
    """``sys.stdout`` or ``sys.stderr`` when ``path`` names this process's own (``/dev/stdout``,
    ``/proc/self/fd/1``, ...), else None."""
    import sys

    p = os.path.abspath(os.fspath(path))
    return next((sys.stdout if fd == 1 else sys.stderr for fd, names in _STD_NAMES.items() if p in names), None)


def is_device(path) -> bool:
    """``path`` is a stream rather than a file of the user's: this process's stdout or stderr (even
    when the shell sent it to a file), or existing as neither a regular file nor a directory
    (``/dev/null``, a pipe). An output there is written to directly (:func:`write_device`): an
    atomic rename would replace the device itself."""
    path = os.fspath(path)
    if _std_stream(path) is not None:
        return True
    return os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path)


def write_device(path, data: bytes) -> None:
    """Write ``data`` to the stream ``path`` (:func:`is_device`): to stdout or stderr through the
    process's own stream, after what it already wrote there (opening ``/dev/stdout`` again would
    start at the beginning of a file the shell sent it to), anything else opened as it is."""
    stream = _std_stream(path)
    if stream is None:
        with open(path, "wb") as f:
            f.write(data)
        return
    stream.flush()
    if hasattr(stream, "buffer"):
        stream.buffer.write(data)
    else:                                          # a replaced stream (a test's capture)
        stream.write(data.decode("utf-8", "replace"))
    stream.flush()


def output_path(path) -> str:
    """Where an atomic write of ``path`` goes: a symbolic link is written through (its target is
    replaced, not the link)."""
    return os.path.realpath(os.fspath(path))


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename (directly to a device;
    through a symbolic link)."""
    path = os.fspath(path)
    if is_device(path):
        write_device(path, data)
        return
    path = output_path(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:                      # named by the file asked for, not the temporary beside it
        raise OSError(f"{path}: cannot be written ({exc.strerror} in {directory})") from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)            # the permissions open() would give, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def finite_json(tree):
    """``tree`` with NaN and infinite floats replaced by None (JSON has no such numbers) and NumPy
    scalars turned into Python numbers."""
    if isinstance(tree, dict):
        return {k: finite_json(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [finite_json(v) for v in tree]
    if isinstance(tree, (float, np.floating)):
        return float(tree) if np.isfinite(tree) else None
    if isinstance(tree, np.integer):
        return int(tree)
    return tree


def json_text(tree, indent=None) -> str:
    """Strict JSON (never ``NaN`` or ``Infinity``, which other readers reject): non-finite numbers become null."""
    return json.dumps(finite_json(tree), indent=indent, allow_nan=False)


def read_jsonl(path, consequence: str, valid=None) -> list[tuple[str, dict]]:
    """``(line, record)`` of each line of a JSON-lines file (a run's ``metrics.jsonl``) that holds a
    JSON object (and passes ``valid``, when given). The other non-blank lines (a write cut short by a
    crash, a hand edit) are left out with one warning naming them, ended by ``consequence``."""
    rows, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = None
            if isinstance(record, dict) and (valid is None or valid(record)):
                rows.append((line, record))
            else:
                bad.append(n)
    if bad:
        import sys

        print(f"rnnkit: warning: {path}, line{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad[:5]))}"
              f"{', ...' if len(bad) > 5 else ''}: not a JSON record{consequence}", file=sys.stderr)
    return rows


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_stdout(path) -> bool:
    """Whether a text output named ``path`` goes to stdout: no path, or ``"-"``."""
    return path is None or os.fspath(path) == "-"


def write_output(path, text: str) -> None:
    """A text output the user asked for (labels, tags, translations, forecasts): to stdout when
    :func:`to_stdout`, else written atomically (:func:`atomic_write_text`)."""
    if to_stdout(path):
        import sys

        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write_text(path, text)


def save(path, tree: dict) -> None:
    """Save a checkpoint tree to ``path`` (``.npz``) atomically."""
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "version": VERSION, "tree": _split(tree, "", arrays)}
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.array(json.dumps(meta)), **{f"a{i}": a for i, a in enumerate(arrays.values())},
             __keys__=np.array(json.dumps(list(arrays))))
    atomic_write_bytes(path, buf.getvalue())


def load(path) -> dict:
    """Load a checkpoint written by :func:`save`; clear errors for anything else."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path}: expected a checkpoint file, got a directory")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head not in (b"PK\x03\x04", b"PK\x05\x06"):
            # np.load takes a file that is not a zip archive (its test, these bytes) for a pickle and
            # refuses that: say what the file is instead
            size = os.path.getsize(path)
            raise zipfile.BadZipFile("an empty file" if not size else f"{size:,} bytes that are not a zip archive")
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["__meta__"]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
                raise ValueError(f"format {got!r}")
            version = meta.get("version")
            if version == VERSION:
                keys = json.loads(str(z["__keys__"]))
                tree = _join(meta["tree"], {k: z[f"a{i}"] for i, k in enumerate(keys)})
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, TypeError, AttributeError, IndexError,
            RecursionError, MemoryError, zlib.error) as exc:
        detail = ' '.join(str(exc).split())[:200]
        if isinstance(exc, (zipfile.BadZipFile, zlib.error)):
            why = f"it is not a readable .npz archive: {detail}"
        elif "pickle" in detail:                # an archive whose arrays are Python objects
            why = "it holds pickled objects, which rnnkit never loads"
        else:
            why = f"{type(exc).__name__}: {detail}"
        raise ValueError(f"{path} is not an rnnkit checkpoint ({why})") from None
    if version != VERSION:
        raise ValueError(f"{path}: checkpoint format version {version}, this rnnkit reads version {VERSION}")
    return tree
