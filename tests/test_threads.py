"""RNNKIT_NUM_THREADS=auto: the ThreadTuner's choices from measured step times, and the Trainer's use."""
import json

import pytest

from rnnkit import threads
from rnnkit.threads import ThreadTuner


class FakeMachine:
    """A clock whose step durations depend on the thread count in use: ``cost[n]`` seconds."""

    def __init__(self, cost):
        self.cost, self.now, self.threads, self.calls = dict(cost), 0.0, 2, []

    def clock(self):
        return self.now

    def set_threads(self, n):
        self.threads = n
        self.calls.append(n)

    def run(self, tuner, steps):
        used = []
        for _ in range(steps):
            with tuner.step():
                used.append(self.threads)
                self.now += self.cost[self.threads]
        return used


def make(machine, **kw):
    return ThreadTuner([2, 1], set_threads=machine.set_threads, clock=machine.clock, **kw)


def test_quiet_machine_keeps_every_core():
    m = FakeMachine({2: 0.010, 1: 0.016})
    t = make(m, warmup=2, trials=3, period=50)
    used = m.run(t, 40)
    assert used[:2] == [2, 2]                                  # warm-up at the cores
    assert used[2:8] == [2, 1, 2, 1, 2, 1]                     # the trial, interleaved
    assert set(used[8:]) == {2}
    assert t.pop_decision() == {"n_threads": 2, "median_ms": {"2": 10.0, "1": 16.0}}
    assert t.pop_decision() is None


def test_busy_machine_moves_to_one_thread_and_back_when_the_load_goes():
    m = FakeMachine({2: 0.030, 1: 0.012})                      # a competitor holds a core
    t = make(m, warmup=0, trials=3, period=1000)
    used = m.run(t, 20)
    assert used[:2] == [2, 1] and used[2:] == [1] * 18       # 2.5x apart: one round of the trial told enough
    assert t.pop_decision() == {"n_threads": 1, "median_ms": {"2": 30.0, "1": 12.0}}
    m.cost = {2: 0.006, 1: 0.011}                              # the competitor ends: steps at 1 thread get faster
    used = m.run(t, 30)                                        # (0.011 < 0.012 / 1.5 is false: no drift yet)
    assert set(used) == {1}
    m.cost = {2: 0.006, 1: 0.004}                              # a drift by more than 1.5x starts a new trial
    used = m.run(t, 3 + 6 + 3)
    assert used[:3] == [1] * 3 and used[3:9] == [2, 1] * 3    # the median of the last 5 moved after 3
    assert t.pop_decision()["n_threads"] == 1


def test_a_small_advantage_keeps_the_cores_and_the_period_retries():
    m = FakeMachine({2: 0.010, 1: 0.0095})                     # one thread only 5% faster: within the margin
    t = make(m, warmup=0, trials=3, period=10)
    used = m.run(t, 6 + 10 + 6)
    assert used[6:16] == [2] * 10 and used[16:] == [2, 1] * 3  # a new trial after `period` steps
    assert t.reference == pytest.approx(0.010)


def test_one_core_or_a_fixed_count_has_no_tuner(monkeypatch):
    monkeypatch.setitem(threads._state, "applied", True)
    monkeypatch.setitem(threads._state, "auto", False)
    assert threads.tuner() is None
    monkeypatch.setitem(threads._state, "auto", True)
    monkeypatch.setattr(threads, "cores", lambda: 1)
    assert threads.tuner() is None
    monkeypatch.setattr(threads, "cores", lambda: 4)
    assert threads.tuner().choices == [4, 1]


def test_set_num_threads_refuses_other_values():
    with pytest.raises(ValueError, match="expected an integer >= 1 or 'auto', got 'fast'"):
        threads.set_num_threads("fast")


def test_trainer_logs_the_choice(tmp_path, monkeypatch):
    from tests.test_train import make_trainer

    m = FakeMachine({2: 0.0, 1: 0.0})                           # the fake clock: real step times vary
    monkeypatch.setattr(threads, "tuner", lambda: make(m))
    tr = make_trainer(tmp_path, steps=12)
    assert tr.tuner is not None
    tr.run()
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    events = [r for r in rows if r.get("event") == "threads"]
    assert len(events) == 1 and events[0]["step"] == 8          # 2 warm-up steps + 3 x 2 trial steps
    assert events[0]["n_threads"] in (1, 2) and set(events[0]["median_ms"]) == {"1", "2"}
    assert 1 in m.calls                                          # the trial did run steps at one thread


def test_a_step_time_that_keeps_moving_backs_off():
    """Step times drifting for their own reasons (warm-up) keep the count; each trial that keeps it
    doubles the steps before a drift may start another, so trials grow rare."""
    m = FakeMachine({2: 0.010, 1: 0.016})
    t = make(m, warmup=0, trials=3, period=1000, gap=10)
    starts, used = [], []
    for i in range(200):
        m.cost = {2: 0.010 * 0.97 ** i, 1: 0.016 * 0.97 ** i}  # 3% faster every step, both counts
        before = list(t.plan)
        used += m.run(t, 1)
        if not before and t.plan:
            starts.append(i)
    assert set(used) == {2} or used.count(1) <= 3 * (len(starts) + 1)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(starts) >= 3 and all(g2 > g1 for g1, g2 in zip(gaps, gaps[1:])), starts


def test_a_count_set_before_the_first_computation_keeps_the_rest_of_the_environment(monkeypatch):
    """``set_num_threads`` called before rnnkit first computes wins over ``RNNKIT_NUM_THREADS``, and
    the rest of the environment (the heap setting, ``RNNKIT_KEEP_HEAP``) is still applied then: the
    call used to skip it, and every step's buffers were faulted in anew."""
    from rnnkit import _heap

    monkeypatch.setattr(threads, "_state", dict(threads._state, applied=False, given=False, auto=False))
    pools, heaps = [], []
    monkeypatch.setattr(threads, "_pool_threads", pools.append)
    monkeypatch.setattr(_heap, "keep_freed_memory", lambda: heaps.append(True))
    monkeypatch.setenv("RNNKIT_NUM_THREADS", "1")
    threads.set_num_threads(2)
    threads.apply_environment()
    assert pools == [2] and heaps == [True]
    threads.apply_environment()                             # once
    assert pools == [2] and heaps == [True]
    monkeypatch.setattr(threads, "_state", dict(threads._state, applied=False, given=False))
    threads.apply_environment()                             # no call first: the environment's count
    assert pools == [2, 1] and heaps == [True, True]
