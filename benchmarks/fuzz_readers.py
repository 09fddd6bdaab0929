"""Fuzz every file reader: valid seed files, then damaged ones, against one contract.

    python benchmarks/fuzz_readers.py                  # ~300 cases per reader, a few minutes
    python benchmarks/fuzz_readers.py --cases 30 --seed 1

The contract: any input either parses or raises ``UserError`` / ``ValueError`` whose message is one
line, within ``--timeout`` seconds; never another exception type, never a hang. Each case runs in a
forked child (killed at the time bound, address space capped at the parent's + 4 GiB, so a file
that asks for terabytes fails there and not on the machine); the metrics.jsonl reader is reached
through the command line (``rnnkit train ... --resume`` after damaging the run's log), where the
contract is: exit 0, or exit 2 with one ``rnnkit train: error:`` line and no traceback.

Inputs per reader: its valid seeds, fixed specials (empty file, a directory, UTF-16, latin-1, NUL
bytes), prefixes of the first seed (every length when short), then 1-3 stacked random mutations
(random bytes, truncation, byte and bit flips, deleted / duplicated / swapped lines, inserted tabs,
blank lines, NUL bytes, huge numbers, NaN / inf tokens, re-encoding) and, for the structured
formats, crafted files (well-formed archives or JSON holding the wrong types, shapes and sizes).

Prints a Markdown table and writes ``benchmarks/results/fuzz_readers.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = ("parsed", "error", "other", "multiline", "timeout")
HEADER = ("reader", "cases", "parsed", "one-line error", "other exception", "multi-line message", "over time")
HUGE = [b"1e999", b"-1e999", b"1e308", b"9" * 400, b"9" * 5000, b"9" * 200_000, b"123456789012345678901234567890"]
NONFINITE = [b"nan", b"NaN", b"inf", b"-inf", b"Infinity", b"-Infinity", b"?", b"1e309"]
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass
class Reader:
    """One reader under test: ``call(case_dir)`` reads ``case_dir/target`` (written from the case);
    ``template`` files are copied into the case directory first (a run directory's other files)."""

    name: str
    target: str
    seeds: list
    call: Callable | None = None          # None: the command-line reader (see run_cli_case)
    crafted: list = field(default_factory=list)
    template: dict = field(default_factory=dict)


# -- seed files ----------------------------------------------------------------------------------


def npz_bytes(compressed=False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def npy_zip(name, descr, shape, payload=b"") -> bytes:
    """A zip holding ``name.npy`` whose header claims ``descr`` and ``shape`` (any size) over ``payload``."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{name}.npy", npy)
    return buf.getvalue()


def checkpoint_bytes(tree) -> bytes:
    from rnnkit import io as rio

    with tempfile.TemporaryDirectory() as d:
        rio.save(os.path.join(d, "c.npz"), tree)
        with open(os.path.join(d, "c.npz"), "rb") as f:
            return f.read()


def raw_checkpoint(meta, keys, **arrays) -> bytes:
    """An archive laid out like a checkpoint with any ``__meta__`` / ``__keys__`` text."""
    return npz_bytes(__meta__=np.array(meta), __keys__=np.array(keys), **arrays)


TEXT_SEEDS = {
    "text": [b"hello world\nthe quick brown fox\n", "h\u00e9llo w\u00f6rld \u2014 \u2713\r\n\ttabs\n".encode()],
    "csv": [b"date,value\n2020-01,1.5\n2020-02,2.25\n2020-03,-3e2\n2020-04,4\n",
            b'name,"x"\n"a,b",1\n"c ""q""",2\n'],
    "pairs": [b"cat\tk a t\ndog\td o g\n\nbird\tb er d\n", "\ufeffab\tba\r\n\u00e9t\u00e9\tsummer\n".encode()],
    "sources": [b"cat\ndog\nbird\n", b"cat\tk a t\ndog\td o g\n"],
    "conll": [b"-DOCSTART- -X- O\n\nEU NNP B-ORG\nrejects VBZ O\n\nPeter NNP B-PER\nBlackburn NNP I-PER\n",
              b"The\tDT\nfox\tNN\n\njumps\tVBZ\n"],
    "conllu": [b"# sent_id = 1\n# text = Hello there\n1\tHello\thello\tINTJ\tUH\t_\t0\troot\t_\t_\n"
               b"2\tthere\tthere\tADV\tRB\t_\t1\tadvmod\t_\t_\n\n"
               b"1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tAUX\tVBP\t_\t0\troot\t_\t_\n"
               b"2\tn't\tnot\tPART\tRB\t_\t1\tadvmod\t_\t_\n1.1\tx\tx\tX\tX\t_\t_\t_\t0:dep\t_\n"],
    "ts": [b"@problemName tiny\n@timeStamps false\n@univariate true\n@equalLength true\n@classLabel true a b\n"
           b"@data\n1.0,2.0,3.0:a\n4.0,5.5,6.0:b\n-1,0,1e-3:a\n",
           b"# comment\n@problemName multi\n@timeStamps false\n@univariate false\n@equalLength false\n"
           b"@classLabel true x y\n@data\n1,2,3:4,5,6:x\n1,2:3,4:y\n"],
}


def seed_files(template_run: str | None) -> dict:
    """reader name -> list of valid seed files (bytes)."""
    seeds = dict(TEXT_SEEDS)
    x = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    seeds["npz"] = [npz_bytes(x=x, lengths=np.array([3, 1]), y=np.array([0, 1])), npz_bytes(x=x[:, :, 0]),
                    npz_bytes(x_0=np.ones((2, 3)), x_1=np.zeros((4, 3)), y=np.array(["a", "b"])),
                    npz_bytes(compressed=True, x=x, lengths=np.array([2, 3]))]
    seeds["checkpoint"] = [checkpoint_bytes({"model": {"w": np.ones((2, 3), np.float32)}, "step": 3,
                                             "list": [1, 2.5, None, "x"], "nested": {"a": [np.arange(3)]}})]
    from rnnkit.data.corpus import prepare

    with tempfile.TemporaryDirectory() as d:              # a prepared corpus: its two files
        with open(os.path.join(d, "t.txt"), "w", encoding="utf-8") as f:
            f.write("the cat sat on the mat; naïve café " * 20)
        prepare(os.path.join(d, "t.txt"), os.path.join(d, "c"), progress=False)
        for name in ("corpus.json", "ids.bin"):
            with open(os.path.join(d, "c", name), "rb") as f:
                seeds[name] = [f.read()]
    if template_run:
        for name in ("best.npz", "config.json", "metrics.jsonl"):
            with open(os.path.join(template_run, name), "rb") as f:
                seeds[name] = [f.read()]
    return seeds


def crafted_npz() -> list:
    """Well-formed archives with the wrong content: every one must be refused in one line (or read)."""
    x = np.ones((2, 3, 1), np.float32)
    bad_x = [x.astype(np.complex64), x.astype(bool), np.array([["a", "b"]]), np.float32(1), np.ones(3),
             np.ones((1, 1, 1, 1)), np.zeros((0, 3, 1)), np.full((1, 2, 1), np.nan), np.full((2, 2), 1e300),
             np.array([[np.inf, 1.0]]), np.ones((2, 3), np.uint64) * 2**63, np.ones((2, 3), np.float16)]
    out = [(f"x {v.dtype} {v.shape}", npz_bytes(x=v)) for v in map(np.asarray, bad_x)]
    for lengths in ([0, 3], [4, 1], [-1, 2], [2**62, 1], [1.5, 2.0], [[1, 2]], [1], [True, False], ["1", "2"]):
        out.append((f"lengths {lengths}", npz_bytes(x=x, lengths=np.array(lengths))))
    for y in (np.array([0.5, 1.5]), np.array([[0, 1]]), np.array([0]), np.array([1 + 1j, 2j]), np.array(b"ab")):
        out.append((f"y {y.dtype} {y.shape}", npz_bytes(x=x, y=y)))
    out += [("x object (pickled)", npz_bytes(x=np.array([None, 1], dtype=object))),
            ("y object (pickled)", npz_bytes(x=x, y=np.array([{}, []], dtype=object))),
            ("x_0, x_2", npz_bytes(x_0=np.ones(3), x_2=np.ones(3))),
            ("x_0 2 features, x_1 3", npz_bytes(x_0=np.ones((2, 2)), x_1=np.ones((2, 3)))),
            ("x_0 3-D", npz_bytes(x_0=np.ones((2, 2, 2)))), ("x_0 empty", npz_bytes(x_0=np.zeros((0, 2)))),
            ("no arrays", npz_bytes()), ("only z", npz_bytes(z=np.ones(3))),
            ("NaN only in padding", npz_bytes(x=np.full((1, 3, 1), np.nan), lengths=np.array([1])))]
    for shape in [(10**12,), (10**6, 10**6, 1), (2**62, 2), (-1, 3), (3, "a")]:
        out.append((f"npy header shape {shape}", npy_zip("x", "<f4", shape, b"\0" * 24)))
    out += [("npy header |O", npy_zip("x", "|O", (2, 3, 1))),
            ("npy data cut", npy_zip("x", "<f4", (2, 3, 1), b"\0" * 5)),
            ("npy header <V8", npy_zip("x", "<V8", (2,), b"\0" * 16)),
            ("npy header <U10000000", npy_zip("x", "<U10000000", (1,), b""))]
    return out


def crafted_checkpoints() -> list:
    """Archives laid out like a checkpoint whose JSON holds other types, dangling references, nesting."""
    a = {"a0": np.ones(3)}
    ok = {"format": "rnnkit-checkpoint", "version": 1, "tree": {"w": {"__array__": "w"}}}
    metas = [json.dumps(v) for v in (
        [], "x", 3, None, {"format": "rnnkit-checkpoint", "version": 1}, {**ok, "version": "1"},
        {**ok, "tree": {"w": {"__array__": "missing"}}}, {**ok, "tree": {"w": {"__array__": ["w"]}}},
        {**ok, "tree": [1, {"__array__": "w"}]}, {**ok, "tree": None}, {**ok, "format": None},
        {**ok, "version": 1e999})] + ["[" * 100_000 + "]" * 100_000, "{" * 50, "NaN", "\ud800", ""]
    out = [(f"__meta__ {_short(m)}", raw_checkpoint(m, '["w"]', **a)) for m in metas]
    for keys in ("5", '"w"', "[1, 2]", '["w", "v"]', "{}", "[null]", "[" * 100_000, '{"w": 0}'):
        out.append((f"__keys__ {_short(keys)}", raw_checkpoint(json.dumps(ok), keys, **a)))
    out += [("__meta__ an int array", npz_bytes(__meta__=np.arange(3), __keys__=np.array('["w"]'), **a)),
            ("__meta__ two strings",
             npz_bytes(__meta__=np.array([json.dumps(ok)] * 2), __keys__=np.array('["w"]'), **a))]
    return out


def _short(text, width=40) -> str:
    return repr(text if len(text) <= width else text[:width] + f"... ({len(text)} chars)")


def crafted_runs(best: bytes) -> list:
    """best.npz files that load as checkpoints but hold another model config or other weights."""
    from rnnkit import io as rio

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "b.npz")
        with open(path, "wb") as f:
            f.write(best)
        tree = rio.load(path)
    cfg, model = tree["model_config"], tree["model"]
    first = next(iter(model))
    replaced = [("model_config {}", {}), ("model_config []", []), ("model_config null", None)]
    updates = [("kind 'nope'", {"kind": "nope"}), ("hidden_size '8'", {"hidden_size": "8"}),
               ("hidden_size -1", {"hidden_size": -1}), ("hidden_size 8.5", {"hidden_size": 8.5}),
               ("hidden_size 1e9", {"hidden_size": 10**9}), ("vocab_size 1e12", {"vocab_size": 10**12}),
               ("cell 'transformer'", {"cell": "transformer"}), ("num_layers 0", {"num_layers": 0}),
               ("dropout 2.0", {"dropout": 2.0}), ("an unknown key", {"extra_argument": 1}),
               ("hidden_size null", {"hidden_size": None}), ("hidden_size true", {"hidden_size": True})]
    trees = [(d, {**tree, "model_config": c}) for d, c in replaced]
    trees += [(f"model_config {d}", {**tree, "model_config": {**cfg, **c}}) for d, c in updates]
    trees += [("model_config without hidden_size",
               {**tree, "model_config": {k: v for k, v in cfg.items() if k != "hidden_size"}}),
              ("model {}", {**tree, "model": {}}),
              (f"{first} shape (1,)", {**tree, "model": {**model, first: np.ones(1)}}),
              (f"{first} complex64", {**tree, "model": {**model, first: model[first].astype(np.complex64)}}),
              (f"{first} all NaN", {**tree, "model": {**model, first: np.full_like(model[first], np.nan)}}),
              (f"{first} a string", {**tree, "model": {**model, first: "not an array"}}),
              ("model a list", {**tree, "model": [1, 2]}), ("extra a string", {**tree, "extra": "x"}),
              ("no model", {k: v for k, v in tree.items() if k != "model"})]
    return [(d, checkpoint_bytes(t)) for d, t in trees]


def crafted_json(seed: bytes, lines=False) -> list:
    """JSON documents (or, ``lines``, metrics lines) with other types, non-finite steps and deep nesting."""
    values = [b"[]", b"null", b"3", b'"x"', b"[" * 100_000, b'{"step": ' + b"[" * 100_000 + b"}",
              b'{"step": Infinity}', b'{"step": -Infinity}', b'{"step": NaN}', b'{"step": 1e999}',
              b'{"step": ' + b"9" * 5000 + b"}", b'{"step": "12"}', b'{"step": "1e3"}', b'{"step": [1]}',
              b'{"step": true}', b'{"step": 1.5}', b'{"kind": ' + b"[" * 3000 + b"]" * 3000 + b"}"]
    if not lines:
        return [(_short(v.decode()), v) for v in values] + [("BOM + seed", b"\xef\xbb\xbf" + seed)]
    return ([(f"seed + line {_short(v.decode())}", seed + v + b"\n") for v in values]
            + [(f"line {_short(v.decode())} + seed", v + b"\n" + seed) for v in values[:6]])


# -- mutations -----------------------------------------------------------------------------------


def _lines(data):
    return data.split(b"\n")


def _pick_line(rng, data):
    lines = _lines(data)
    return lines, int(rng.integers(len(lines)))


def _replace_number(rng, data, tokens):
    found = list(NUMBER.finditer(data))
    tok = tokens[int(rng.integers(len(tokens)))]
    if not found:
        pos = int(rng.integers(len(data) + 1))
        return data[:pos] + tok + data[pos:]
    m = found[int(rng.integers(len(found)))]
    return data[:m.start()] + tok + data[m.end():]


def _insert(token):
    def mutate(rng, data):
        pos = int(rng.integers(len(data) + 1))
        return data[:pos] + token + data[pos:]
    return mutate


def _delete_line(rng, data):
    lines, i = _pick_line(rng, data)
    return b"\n".join(lines[:i] + lines[i + 1:])


def _duplicate_line(rng, data):
    lines, i = _pick_line(rng, data)
    return b"\n".join(lines[:i + 1] + lines[i:])


def _swap_lines(rng, data):
    lines = _lines(data)
    i, j = rng.integers(len(lines), size=2)
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _flip_bytes(rng, data):
    if not data:
        return bytes([int(rng.integers(256))])
    b = bytearray(data)
    for pos in rng.integers(len(b), size=int(rng.integers(1, 5))):
        b[pos] ^= int(rng.integers(1, 256))
    return bytes(b)


def _flip_bit(rng, data):
    if not data:
        return b"\x01"
    b = bytearray(data)
    pos = int(rng.integers(len(b)))
    b[pos] ^= 1 << int(rng.integers(8))
    return bytes(b)


def _reencode(encoding):
    def mutate(rng, data):
        text = data.decode("utf-8", errors="replace")
        pos = int(rng.integers(len(text) + 1))
        return (text[:pos] + "\u00e9\u00df" + text[pos:]).encode(encoding, errors="replace")
    return mutate


MUTATIONS = {
    "random bytes": lambda rng, data: rng.bytes(int(rng.integers(0, 257))),
    "truncate": lambda rng, data: data[:int(rng.integers(len(data) + 1))],
    "flip bytes": _flip_bytes,
    "flip bit": _flip_bit,
    "delete line": _delete_line,
    "duplicate line": _duplicate_line,
    "swap lines": _swap_lines,
    "insert tab": _insert(b"\t"),
    "insert blank line": _insert(b"\n\n"),
    "insert NUL": _insert(b"\0"),
    "insert CR": _insert(b"\r"),
    "huge number": lambda rng, data: _replace_number(rng, data, HUGE),
    "NaN/inf token": lambda rng, data: _replace_number(rng, data, NONFINITE),
    "latin-1": _reencode("latin-1"),
    "UTF-16": _reencode("utf-16"),
    "UTF-16-LE": _reencode("utf-16-le"),
    "random bytes appended": lambda rng, data: data + rng.bytes(int(rng.integers(1, 64))),
}
SPECIALS = [("empty file", b""), ("a directory", None), ("NUL bytes", b"\0" * 64), ("BOM only", b"\xef\xbb\xbf"),
            ("blank lines", b"\n \n\t\n"), ("one byte", b"x")]


def make_cases(reader: Reader, n: int, seed: int) -> list:
    """``[(label, bytes or None for a directory)]``: at least ``n`` cases, the same for the same ``seed``:
    the seeds and the specials, prefixes (a quarter of ``n``), crafted files (up to a third), then
    random stacks of 1-3 mutations."""
    rng = np.random.default_rng([seed, zlib.crc32(reader.name.encode())])
    cases = [(f"seed {i}", s) for i, s in enumerate(reader.seeds)] + list(SPECIALS)
    cases += [("UTF-16 seed", s.decode("utf-8", "replace").encode("utf-16")) for s in reader.seeds[:1]]
    first = reader.seeds[0]
    budget = max(1, n // 4)
    cuts = range(len(first)) if len(first) <= budget else sorted(set(rng.integers(len(first), size=budget).tolist()))
    cases += [(f"prefix {k}/{len(first)}", first[:k]) for k in cuts]
    crafted = list(reader.crafted)
    take = min(len(crafted), max(1, n // 3))
    if crafted:
        cases += [(f"crafted: {crafted[i][0]}", crafted[i][1])
                  for i in sorted(rng.choice(len(crafted), take, replace=False))]
    names = sorted(MUTATIONS)
    while len(cases) < n:
        i = int(rng.integers(len(reader.seeds)))
        data, labels = reader.seeds[i], []
        for _ in range(int(rng.integers(1, 4))):
            name = names[int(rng.integers(len(names)))]
            data = MUTATIONS[name](rng, data)
            labels.append(name)
        cases.append((f"seed {i}: {' + '.join(labels)}", data))
    return cases


# -- running one case ----------------------------------------------------------------------------


def type_name(exc: BaseException) -> str:
    """``KeyError``, ``zlib.error`` / ``_csv.Error`` outside the builtins; a private subclass by its
    builtin base (NumPy's ``_ArrayMemoryError`` is ``MemoryError``)."""
    t = type(exc)
    if t.__qualname__.startswith("_"):
        t = next(b for b in t.__mro__ if b.__module__ == "builtins")
    own = t.__module__.split(".")[0] in ("builtins", "rnnkit")
    return t.__qualname__ if own else f"{t.__module__}.{t.__qualname__}"


def classify(exc: BaseException | None) -> str:
    if exc is None:
        return "parsed"
    if isinstance(exc, ValueError):   # UserError is a ValueError
        return "multiline" if "\n" in str(exc) else "error"
    return "other"


def write_case(reader: Reader, case_dir: str, data) -> None:
    os.makedirs(case_dir)
    for name, content in reader.template.items():
        with open(os.path.join(case_dir, name), "wb") as f:
            f.write(content)
    target = os.path.join(case_dir, reader.target)
    if os.path.exists(target):
        os.unlink(target)
    if data is None:
        os.makedirs(target)
    else:
        with open(target, "wb") as f:
            f.write(data)


def _child(reader: Reader, case_dir: str, w: int, mem_limit: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        exc = None
        try:
            reader.call(case_dir)
        except BaseException as e:   # noqa: BLE001 - classifying every exception is the point
            exc = e
        msg = "" if exc is None else str(exc)
        where = "" if exc is None or classify(exc) == "error" else raised_at(exc)
        out = {"kind": classify(exc), "type": type_name(exc) if exc else None, "message": msg[:500],
               "where": where[:300]}
    except BaseException as e:   # noqa: BLE001
        out = {"kind": "other", "type": type_name(e), "message": f"(in the harness) {e}"[:500], "where": ""}
    os.write(w, json.dumps(out).encode())
    os._exit(0)


def raised_at(exc: BaseException) -> str:
    """``'decoder.py:353 in raw_decode (from rnnkit/io.py:108 in load)'``: the raising frame and the
    deepest rnnkit frame under it."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1]
    at = f"{os.path.basename(last.filename)}:{last.lineno} in {last.name}"
    own = [f for f in frames if f"{os.sep}rnnkit{os.sep}" in f.filename]
    if own and own[-1] is not last:
        f = own[-1]
        at += f" (from rnnkit/{f.filename.rsplit(os.sep + 'rnnkit' + os.sep, 1)[1]}:{f.lineno} in {f.name})"
    return at


def run_case(reader: Reader, case_dir: str, timeout: float, mem_limit: int) -> dict:
    """Run ``reader`` on the prepared ``case_dir`` in a forked child; the outcome as a dict."""
    r, w = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(reader, case_dir, w, mem_limit)
    os.close(w)
    chunks, deadline = [], start + timeout
    while True:
        ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.perf_counter()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            return {"kind": "timeout", "type": None, "message": f"killed after {timeout:g} s", "where": "",
                    "seconds": timeout}
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    seconds = time.perf_counter() - start
    if not chunks:
        return {"kind": "other", "type": f"child died (status {status})", "message": "", "where": "",
                "seconds": seconds}
    out = json.loads(b"".join(chunks))
    if seconds > timeout:
        out["kind"] = "timeout"
    return {**out, "seconds": seconds}


def run_cli_case(reader: Reader, case_dir: str, timeout: float, text_file: str) -> dict:
    """``rnnkit train TEXT --out case_dir --steps 20 --resume`` after the run's metrics.jsonl was damaged."""
    cmd = [sys.executable, "-m", "rnnkit", "train", text_file, "--out", case_dir, "--steps", "20", "--resume",
           "--no-progress"]
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "RNNKIT_DEBUG": ""})
    except subprocess.TimeoutExpired:
        return {"kind": "timeout", "type": None, "message": f"killed after {timeout:g} s", "where": "",
                "seconds": timeout}
    seconds = time.perf_counter() - start
    lines = [s for s in p.stderr.splitlines() if s.strip()]
    errors = [i for i, s in enumerate(lines) if s.startswith("rnnkit train: error:")]
    if "Traceback" in p.stderr or p.returncode not in (0, 2) or (p.returncode == 2) != bool(errors):
        kind = "other"
    elif p.returncode == 0:
        kind = "parsed"
    else:   # the message is the error line and anything after it
        kind = "error" if len(errors) == 1 and errors[0] == len(lines) - 1 else "multiline"
    last = lines[-1] if lines else ""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', p.stderr)
    where = f"{os.path.basename(frames[-1][0])}:{frames[-1][1]} in {frames[-1][2]}" if frames else ""
    return {"kind": kind, "type": None if kind in ("parsed", "error") else f"exit status {p.returncode}",
            "message": last[:500], "where": where, "seconds": seconds}


# -- the readers ---------------------------------------------------------------------------------


def make_template_run(workdir: str) -> tuple[str, str]:
    """A tiny character-LM run (10 steps) through the command line: ``(text_file, run_dir)``."""
    text = os.path.join(workdir, "corpus.txt")
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"]
    with open(text, "w", encoding="utf-8") as f:
        f.write(" ".join(words[i] for i in rng.integers(len(words), size=600)))
    run = os.path.join(workdir, "template_run")
    subprocess.run([sys.executable, "-m", "rnnkit", "train", text, "--out", run, "--steps", "10", "--hidden-size", "8",
                    "--num-layers", "1", "--embed-size", "4", "--seq-len", "8", "--batch-size", "2",
                    "--eval-every", "5", "--no-progress"], check=True, capture_output=True)
    return text, run


def make_readers(template_run: str | None) -> dict:
    from rnnkit import io as rio
    from rnnkit import runs
    from rnnkit.data import readers as R
    from rnnkit.data.corpus import Corpus
    from rnnkit.data.text import read_text
    from rnnkit.data.timeseries import read_csv_column

    seeds = seed_files(template_run)

    def file_reader(name, ext, fn, crafted=()):
        target = "input" + ext
        return Reader(name, target, seeds[name], lambda d: fn(os.path.join(d, target)), list(crafted))

    readers = [
        file_reader("text", ".txt", read_text), file_reader("csv", ".csv", read_csv_column),
        file_reader("npz", ".npz", R.read_npz_sequences, crafted_npz()), file_reader("pairs", ".tsv", R.read_pairs),
        file_reader("sources", ".txt", R.read_sources), file_reader("conll", ".conll", R.read_conll),
        file_reader("conllu", ".conllu", R.read_conll), file_reader("ts", ".ts", R.read_ts),
        file_reader("checkpoint", ".npz", rio.load, crafted_checkpoints()),
        Reader("corpus.json", "corpus.json", seeds["corpus.json"], lambda d: Corpus.open(d),
               crafted_json(seeds["corpus.json"][0]), {"ids.bin": seeds["ids.bin"][0]}),
        Reader("ids.bin", "ids.bin", seeds["ids.bin"], lambda d: Corpus.open(d), [],
               {"corpus.json": seeds["corpus.json"][0]}),
    ]
    if template_run:
        files = {}
        for fname in ("config.json", "best.npz"):
            with open(os.path.join(template_run, fname), "rb") as f:
                files[fname] = f.read()
        readers += [
            Reader("best.npz", "best.npz", seeds["best.npz"], lambda d: runs.load(d),
                   crafted_runs(files["best.npz"]) + crafted_checkpoints(), files),
            Reader("config.json", "config.json", seeds["config.json"], lambda d: runs.read_config(d),
                   crafted_json(seeds["config.json"][0]), {}),
        ]
        run_files = {}
        for fname in sorted(os.listdir(template_run)):
            if fname != "run.lock" and os.path.isfile(os.path.join(template_run, fname)):
                with open(os.path.join(template_run, fname), "rb") as f:
                    run_files[fname] = f.read()
        readers.append(Reader("metrics.jsonl", "metrics.jsonl", seeds["metrics.jsonl"], None,
                              crafted_json(seeds["metrics.jsonl"][0], lines=True), run_files))
    return {r.name: r for r in readers}


def warm_up(readers: dict, workdir: str) -> None:
    """Read each valid seed once in this process, so lazy imports (aeon, the models) happen before forking."""
    for reader in readers.values():
        if reader.call is not None:
            d = os.path.join(workdir, f"warm-{reader.name}")
            write_case(reader, d, reader.seeds[0])
            reader.call(d)
            shutil.rmtree(d)


def fuzz(n_cases=300, seed=0, timeout=5.0, cli_cases=20, cli_timeout=60.0, names=None, log=None) -> dict:
    """Run every reader (or ``names``) on its cases; the summary dict (counts and failures per reader)."""
    with tempfile.TemporaryDirectory(prefix="rnnkit-fuzz-") as workdir:
        need_run = names is None or {"best.npz", "config.json", "metrics.jsonl"} & set(names)
        text_file, run = make_template_run(workdir) if need_run else (None, None)
        readers = make_readers(run)
        readers = {k: v for k, v in readers.items() if names is None or k in names}
        warm_up(readers, workdir)
        mem_limit = memory_limit()
        summary = {}
        for name, reader in readers.items():
            t0 = time.perf_counter()
            counts = dict.fromkeys(KINDS, 0)
            types, failures, slowest = {}, [], 0.0
            cases = make_cases(reader, cli_cases if reader.call is None else n_cases, seed)
            for i, (label, data) in enumerate(cases):
                case_dir = os.path.join(workdir, f"{name}-{i}")
                write_case(reader, case_dir, data)
                if reader.call is None:
                    out = run_cli_case(reader, case_dir, cli_timeout, text_file)
                else:
                    out = run_case(reader, case_dir, timeout, mem_limit)
                shutil.rmtree(case_dir, ignore_errors=True)
                counts[out["kind"]] += 1
                slowest = max(slowest, out["seconds"])
                if out["type"]:
                    types[out["type"]] = types.get(out["type"], 0) + 1
                if out["kind"] in ("other", "multiline", "timeout"):
                    failures.append({"label": label, "size": None if data is None else len(data),
                                     "input": "<a directory>" if data is None else repr(data[:80]), **out})
            summary[name] = {"cases": len(cases), **counts, "types": types, "failures": failures,
                             "seconds": round(time.perf_counter() - t0, 1), "slowest_case": round(slowest, 3)}
            if log:
                log(f"{name}: {len(cases)} cases, {counts} in {summary[name]['seconds']} s")
        return summary


def memory_limit(extra=4 * 2**30) -> int:
    """This process's address space (VmSize) plus ``extra`` bytes: the cap on each forked case."""
    with open("/proc/self/status") as f:
        size = next((int(s.split()[1]) * 1024 for s in f if s.startswith("VmSize:")), 0)
    return size + extra


# -- report --------------------------------------------------------------------------------------


def markdown(summary: dict, meta: dict, first=3) -> str:
    rows = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    total = dict.fromkeys(("cases",) + KINDS, 0)
    for name, s in summary.items():
        rows.append(f"| {name} | " + " | ".join(str(s[k]) for k in ("cases",) + KINDS) + " |")
        for k in total:
            total[k] += s[k]
    rows.append("| **all** | " + " | ".join(f"**{total[k]}**" for k in ("cases",) + KINDS) + " |")
    out = [f"# Reader fuzzing (`benchmarks/fuzz_readers.py --cases {meta['cases']} --seed {meta['seed']}`)", "",
           f"{meta['python']}, NumPy {meta['numpy']}, {meta['seconds']:.0f} s; time bound {meta['timeout']:g} s "
           f"a case ({meta['cli_timeout']:g} s through the command line).", "", *rows, "",
           "Exceptions raised, by type, and the slowest case:", ""]
    for name, s in summary.items():
        out.append(f"* {name}: " + (", ".join(f"{t} {c}" for t, c in sorted(s["types"].items())) or "none")
                   + f"; slowest {s['slowest_case']:.2f} s")
    bad = [(name, f) for name, s in summary.items() for f in s["failures"]]
    out += ["", "## Contract violations" if bad else "## Contract violations: none", ""]
    for name, s in summary.items():
        if s["failures"]:
            out.append(f"### {name}: {len(s['failures'])}")
            seen = {}
            for f in s["failures"]:
                key = (f["kind"], f["type"], f["where"])
                seen[key] = seen.get(key, 0) + 1
                if seen[key] <= first:
                    out.append(f"* {f['kind']}: `{f['type']}` {f['message'][:160]!r} at `{f['where'][:120]}`; "
                               f"input ({f['label']}, {f['size']} bytes): `{f['input'][:120]}`")
            out += [f"* ... and {c - first} more like `{k[1]}`" for k, c in seen.items() if c > first]
            out.append("")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=300, help="cases per reader (the command-line reader gets --cli-cases)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds a case may take")
    p.add_argument("--cli-cases", type=int, default=20, help="cases for metrics.jsonl (2 s each)")
    p.add_argument("--readers", default=None, help="comma-separated subset")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for fuzz_readers.md / .json")
    args = p.parse_args(argv)
    start = time.perf_counter()
    names = args.readers.split(",") if args.readers else None
    summary = fuzz(args.cases, args.seed, args.timeout, args.cli_cases, names=names,
                   log=lambda s: print(s, file=sys.stderr, flush=True))
    meta = {"cases": args.cases, "seed": args.seed, "timeout": args.timeout, "cli_timeout": 60.0,
            "cli_cases": args.cli_cases, "python": f"Python {platform.python_version()}", "numpy": np.__version__,
            "seconds": time.perf_counter() - start}
    text = markdown(summary, meta)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "fuzz_readers.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(args.out, "fuzz_readers.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "readers": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
