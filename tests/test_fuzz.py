"""Every file reader against one contract: any input parses or raises UserError / ValueError with a
one-line message within 5 s, never another exception, never a hang. The machinery is
benchmarks/fuzz_readers.py (seed files, mutations, a forked child per case) at a small fixed seed.

The violations the fuzzer found are fixed; their exact inputs are kept at the end as regression
tests. KNOWN would tolerate a violation by signature in the random cases (it is empty)."""
import importlib.util
import io
import itertools
import json
import os
import sys
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SEED, CASES, TIMEOUT, CLI_TIMEOUT = 1, 30, 5.0, 60.0
IN_PROCESS = ["text", "csv", "npz", "pairs", "sources", "conll", "conllu", "ts", "checkpoint", "best.npz",
              "config.json"]


def _load_fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_readers", os.path.join(HERE, "..", "benchmarks",
                                                                               "fuzz_readers.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod          # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


F = _load_fuzzer()

KNOWN: dict = {}   # reader -> [(exception type, where)]: contract violations accepted for now (none)


def is_known(name, out) -> bool:
    return any(out["type"] == t and (w in out["where"] or w in out["message"]) for t, w in KNOWN.get(name, ()))


@pytest.fixture(scope="module")
def fz(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("fuzz"))
    text, run = F.make_template_run(work)
    readers = F.make_readers(run)
    F.warm_up(readers, work)
    return SimpleNamespace(work=work, text=text, run=run, readers=readers, limit=F.memory_limit(),
                           count=itertools.count())


def outcome(fz, name, data) -> dict:
    """Write ``data`` (None: a directory) where reader ``name`` reads, run it as the benchmark does."""
    reader = fz.readers[name]
    case_dir = os.path.join(fz.work, f"{name}-{next(fz.count)}")
    F.write_case(reader, case_dir, data)
    if reader.call is None:
        return F.run_cli_case(reader, case_dir, CLI_TIMEOUT, fz.text)
    return F.run_case(reader, case_dir, TIMEOUT, fz.limit)


def keeps_contract(out) -> bool:
    return out["kind"] in ("parsed", "error")


@pytest.mark.parametrize("name", IN_PROCESS)
def test_reader_keeps_the_contract(fz, name):
    reader = fz.readers[name]
    cases = F.make_cases(reader, CASES, SEED)
    assert len(cases) >= CASES
    outs = [(label, data, outcome(fz, name, data)) for label, data in cases]
    for label, _, out in outs[:len(reader.seeds)]:
        assert out["kind"] == "parsed", (label, out)          # the seeds are valid files
    bad = [(label, None if data is None else data[:60], out) for label, data, out in outs
           if not keeps_contract(out) and not is_known(name, out)]
    assert not bad, bad


def test_metrics_log_damaged_before_resume_keeps_the_contract(fz):
    seed = fz.readers["metrics.jsonl"].seeds[0]
    rng = np.random.default_rng(SEED)
    cases = [seed[: len(seed) // 2], F.MUTATIONS["random bytes appended"](rng, seed), F.MUTATIONS["UTF-16"](rng, seed)]
    for data in cases:
        out = outcome(fz, "metrics.jsonl", data)
        assert keeps_contract(out), (data[:60], out)


# -- the violations the fuzzer found (all fixed): one exact input each, kept as regression tests ----


def _bad_deflate_npz():
    """The compressed seed archive with its first deflate block marked reserved type 11."""
    data = bytearray(F.seed_files(None)["npz"][3])
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0]
    off = info.header_offset
    name_len, extra_len = (int.from_bytes(data[off + k:off + k + 2], "little") for k in (26, 28))
    data[off + 30 + name_len + extra_len] = 0xFF
    return bytes(data)


def _meta(**change):
    ok = {"format": "rnnkit-checkpoint", "version": 1, "tree": {"w": {"__array__": "w"}}}
    return F.raw_checkpoint(json.dumps({**ok, **change}), '["w"]', a0=np.ones(3))


def _best(fz, **config_change):
    from rnnkit import io as rio

    tree = rio.load(os.path.join(fz.run, "best.npz"))
    return F.checkpoint_bytes({**tree, "model_config": {**tree["model_config"], **config_change}})


def _metrics_line(fz, line):
    return fz.readers["metrics.jsonl"].seeds[0] + line + b"\n"


VIOLATIONS = [  # (id, reader, input (fz -> bytes or None for a directory), where the library went wrong)
    ("csv-directory", "csv", lambda fz: None,
     "rnnkit/data/timeseries.py read_csv_column opens a directory: IsADirectoryError"),
    ("csv-huge-field", "csv", lambda fz: b"date,value\n2020-01," + b"9" * 200_000 + b"\n",
     "rnnkit/data/timeseries.py read_csv_column: csv.Error 'field larger than field limit (131072)'"),
    ("npz-header-claims-4-TiB", "npz", lambda fz: F.npy_zip("x", "<f4", (10**12,), b"\0" * 24),
     "rnnkit/data/readers.py _npz_get: numpy allocates the claimed shape first: MemoryError"),
    ("npz-bad-deflate", "npz", lambda fz: _bad_deflate_npz(),
     "rnnkit/data/readers.py _npz_get catches BadZipFile but not zlib.error from a damaged compressed archive"),
    ("sources-bom-only", "sources", lambda fz: b"\xef\xbb\xbf",
     "rnnkit/data/readers.py read_sources: no source lines, then has_tgt[0]: IndexError"),
    ("checkpoint-directory", "checkpoint", lambda fz: None,
     "rnnkit/io.py load: a directory is FileNotFoundError 'checkpoint not found'"),
    ("checkpoint-meta-a-list", "checkpoint", lambda fz: F.raw_checkpoint("[]", '["w"]', a0=np.ones(3)),
     "rnnkit/io.py load: meta.get on a non-dict: AttributeError"),
    ("checkpoint-no-tree", "checkpoint", lambda fz: F.raw_checkpoint('{"format": "rnnkit-checkpoint", "version": 1}',
                                                                      '["w"]', a0=np.ones(3)),
     "rnnkit/io.py load: meta['tree']: KeyError"),
    ("checkpoint-dangling-array", "checkpoint", lambda fz: _meta(tree={"w": {"__array__": "missing"}}),
     "rnnkit/io.py _join: arrays[name] for a name not in __keys__: KeyError"),
    ("checkpoint-keys-a-number", "checkpoint", lambda fz: F.raw_checkpoint(json.dumps(
        {"format": "rnnkit-checkpoint", "version": 1, "tree": {}}), "5", a0=np.ones(3)),
     "rnnkit/io.py load: enumerate(keys) over an int: TypeError"),
    ("checkpoint-deep-json", "checkpoint", lambda fz: F.raw_checkpoint("[" * 5000 + "]" * 5000, '["w"]', a0=np.ones(3)),
     "rnnkit/io.py load: json.loads of deeply nested meta: RecursionError"),
    ("best-hidden-size-a-string", "best.npz", lambda fz: _best(fz, hidden_size="8"),
     "rnnkit/runs.py load -> model_from_config: TypeError from check_positive_int"),
    ("best-unknown-config-key", "best.npz", lambda fz: _best(fz, extra_argument=1),
     "rnnkit/models/base.py from_config: unexpected keyword argument: TypeError"),
    ("best-hidden-size-1e9", "best.npz", lambda fz: _best(fz, hidden_size=10**9),
     "rnnkit/runs.py load builds a 119 GiB model before any check: MemoryError"),
    ("best-directory", "best.npz", lambda fz: None,
     "rnnkit/runs.py load_tree -> io.load: FileNotFoundError 'checkpoint not found' (only ValueError is caught)"),
    ("config-deep-json", "config.json", lambda fz: b'{"kind": ' + b"[" * 3000 + b"]" * 3000 + b"}",
     "rnnkit/runs.py read_config: json.load RecursionError is not caught"),
    ("metrics-step-infinity", "metrics.jsonl", lambda fz: _metrics_line(fz, b'{"step": Infinity}'),
     "rnnkit/train.py _truncate_log: int(float('inf')) OverflowError; the command line prints a traceback"),
    ("metrics-deep-json", "metrics.jsonl",
     lambda fz: _metrics_line(fz, b'{"step": ' + b"[" * 3000 + b"]" * 3000 + b"}"),
     "rnnkit/train.py _truncate_log: json.loads RecursionError; the command line prints a traceback"),
]


@pytest.mark.parametrize("name,make,reason", [pytest.param(r, m, why, id=i) for i, r, m, why in VIOLATIONS])
def test_once_broke_the_contract(fz, name, make, reason):
    out = outcome(fz, name, make(fz))
    assert keeps_contract(out), f"{out['type']}: {out['message'][:200]} ({reason})"
