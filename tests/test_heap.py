"""rnnkit keeps freed memory in the process (rnnkit/_heap.py): a buffer freed at the end of one
step is reused by the next instead of being faulted in afresh, unless the user says otherwise."""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# Allocates, touches and frees an 8 MB buffer ten times (after rnnkit's first computation) and
# prints the minor page faults of the last nine cycles.
PROBE = """
import resource, numpy as np, rnnkit
rnnkit.LSTM(2, 3, seed=0)(np.zeros((2, 1, 2), np.float32))
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(2 * 2**20, np.float32)
before = faults()
for _ in range(9):
    a = np.empty(2 * 2**20, np.float32)
    a.fill(1.0)
    del a
print(faults() - before)
"""


def _faults(**env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "RNNKIT_KEEP_HEAP"))}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**full, **env}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


def test_freed_buffers_are_reused_without_page_faults():
    kept, returned = _faults(), _faults(RNNKIT_KEEP_HEAP="0")
    assert returned >= 9 * 4         # glibc's default: each cycle maps 8 MB anew (2,048 pages, or 4 huge ones)
    assert kept * 10 < returned      # measured here: 0 against 515


def test_the_users_own_setting_stands(monkeypatch):
    from rnnkit._heap import keep_freed_memory

    monkeypatch.setenv("RNNKIT_KEEP_HEAP", "0")
    assert not keep_freed_memory()
    monkeypatch.delenv("RNNKIT_KEEP_HEAP")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert not keep_freed_memory()


def test_a_bad_setting_is_one_line(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("a small corpus for one line of error. " * 40)
    env = {**os.environ, "RNNKIT_KEEP_HEAP": "maybe"}
    out = subprocess.run([sys.executable, "-m", "rnnkit", "train", str(text), "--out", str(tmp_path / "r")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["rnnkit train: error: RNNKIT_KEEP_HEAP: expected 0 or 1, got 'maybe'"]
    assert not (tmp_path / "r").exists()
