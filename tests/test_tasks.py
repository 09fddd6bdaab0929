"""The long-range task generators: shapes, dtypes, seeds, and that each target is what the task says."""
import numpy as np
import pytest

from rnnkit.data import tasks
from rnnkit.data.tasks import REBER_SYMBOLS, make_task


def test_adding_target_is_the_sum_of_the_two_marked_values():
    d = tasks.adding(64, T=30, rng=0)
    assert d.x.shape == (30, 64, 2) and d.y.shape == (64, 1) and d.x.dtype == np.float32
    marks = d.x[:, :, 1]
    assert np.all(marks.sum(0) == 2)
    first = marks[:15].argmax(0)           # one marker in each half
    second = 15 + marks[15:].argmax(0)
    assert np.all(marks[:15].sum(0) == 1) and np.all(marks[15:].sum(0) == 1)
    want = d.x[first, np.arange(64), 0] + d.x[second, np.arange(64), 0]
    np.testing.assert_allclose(d.y[:, 0], want, rtol=1e-6)
    # the baseline is the MSE of always answering 1
    big = tasks.adding(20000, T=10, rng=1)
    assert abs(np.mean((big.y - 1.0) ** 2) - d.baseline) < 0.01


def test_tasks_are_reproducible_from_the_seed_and_differ_across_seeds():
    a, b, c = (make_task("adding", 8, 20, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)


def test_copy_task_targets_repeat_the_first_symbols_after_the_delimiter():
    K, T = 10, 25
    d = tasks.copy_memory(16, T=T, rng=0)
    L = T + 2 * K
    assert d.x.shape == (L, 16, 10) and d.y.shape == (L, 16)
    ids = d.x.argmax(-1)
    assert np.all(d.x.sum(-1) == 1)                        # one-hot
    assert np.all((ids[:K] >= 1) & (ids[:K] <= 8))
    assert np.all(ids[T + K - 1] == 9)                      # the delimiter
    assert np.all(ids[K:T + K - 1] == 0) and np.all(ids[T + K:] == 0)
    np.testing.assert_array_equal(d.y[T + K:], ids[:K])
    assert np.all(d.y[: T + K] == 0)


def test_temporal_order_class_encodes_the_order_of_x_and_y():
    d = tasks.temporal_order(200, T=60, rng=3)
    assert d.x.shape == (60, 200, 8) and d.y.shape == (200,) and d.n_out == 4
    ids = d.x.argmax(-1)
    assert np.all(ids[0] == 6) and np.all(ids[-1] == 7)
    for j in range(200):
        rel = [s for s in ids[:, j] if s in (4, 5)]
        assert len(rel) == 2
        assert d.y[j] == 2 * (rel[0] - 4) + (rel[1] - 4)
    assert set(np.unique(d.y)) == {0, 1, 2, 3}


def test_embedded_reber_strings_are_grammatical_and_targets_are_next_symbols():
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = tasks.embedded_reber_string(rng)
        assert s[0] == "B" and s[-1] == "E" and s[1] == s[-2] and s[1] in "TP"
        sets = tasks.reber_next_sets(s)
        assert len(sets) == len(s) - 1
        for i, allowed in enumerate(sets):
            assert s[i + 1] in allowed
        assert sets[-2] == {s[1]}                       # the long-range dependency
    d = tasks.reber(32, rng=0)
    L = d.x.shape[0]
    assert d.lengths.max() == L and d.y.shape == (L, 32)
    for j in range(32):
        n = d.lengths[j]
        inp = "".join(REBER_SYMBOLS[k] for k in d.x[:n, j].argmax(-1))
        tgt = "".join(REBER_SYMBOLS[k] for k in d.y[:n, j])
        assert inp[1:] == tgt[:-1] and tgt[-1] == "E"
        assert np.all(d.y[n:, j] == -100) and np.all(d.x[n:, j] == 0)


def test_digits_rows_and_pixels():
    pytest.importorskip("sklearn")
    rows = tasks.digits(mode="rows")
    assert rows.x.shape == (8, 1797, 8) and rows.y.shape == (1797,)
    assert 0.0 <= rows.x.min() and rows.x.max() <= 1.0
    pix = tasks.digits(mode="pixels")
    assert pix.x.shape == (64, 1797, 1)
    np.testing.assert_array_equal(pix.x[:, :, 0].T.reshape(-1, 8, 8), rows.x.transpose(1, 0, 2))
    sub = tasks.digits(100, rng=0)
    assert sub.x.shape == (8, 100, 8) and set(np.unique(sub.y)) <= set(range(10))


def test_mackey_glass_windows_and_targets():
    s = tasks.mackey_glass_series(600, rng=0)
    assert s.shape == (600,) and np.all(np.isfinite(s)) and 0.2 < s.min() and s.max() < 1.6
    assert s.std() > 0.1                               # chaotic, not settled to a fixed point
    d = tasks.mackey_glass(40, T=20, rng=0)
    assert d.x.shape == (20, 40, 1) and d.y.shape == (40, 1)
    # consecutive windows are shifted copies; the target is the value after the window
    np.testing.assert_array_equal(d.x[1:, 0, 0], d.x[:-1, 1, 0])
    np.testing.assert_array_equal(d.y[:-1, 0], d.x[-1, 1:, 0])


def test_take_and_unknown_task():
    d = tasks.reber(10, rng=0).take(slice(2, 5))
    assert d.x.shape[1] == 3 and d.y.shape[1] == 3 and d.lengths.shape == (3,)
    with pytest.raises(ValueError, match="task: expected one of"):
        make_task("nope", 4, 10)
