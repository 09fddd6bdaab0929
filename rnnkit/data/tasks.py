"""Classic long-range tasks, generated from a seed. Inputs are time-major ``(L, N, D)`` float arrays.

Every generator has the signature ``gen(n, T, rng, dtype) -> TaskData`` and is listed in
:data:`TASKS`; ``T`` is the task's length parameter (the number of time steps, or the delay of
the copy task). ``TaskData.kind`` says how to score it:

* ``"regression"``: ``y`` (N, 1), mean squared error, a prediction after the last step;
* ``"classification"``: ``y`` (N,) class ids, cross-entropy on the last step;
* ``"sequence"``: ``y`` (L, N) class ids, cross-entropy at every step (``-100`` = ignored).

``baseline`` is the loss of the best memoryless answer, the bar a model has to clear.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TaskData:
    x: np.ndarray                 # (L, N, D)
    y: np.ndarray                 # see the module docstring
    kind: str                     # regression | classification | sequence
    n_out: int                    # outputs of the model's head
    baseline: float               # loss of the best memoryless strategy
    lengths: np.ndarray | None = None
    note: str = ""

    def __len__(self):
        return self.x.shape[1]

    def take(self, idx) -> "TaskData":
        """The examples ``idx`` (a slice or index array) as a new TaskData."""
        y = self.y[:, idx] if self.kind == "sequence" else self.y[idx]
        lengths = None if self.lengths is None else self.lengths[idx]
        return TaskData(self.x[:, idx], y, self.kind, self.n_out, self.baseline, lengths, self.note)


def adding(n, T=100, rng=None, dtype=np.float32) -> TaskData:
    """The adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015 form).

    Two input channels: values ``U(0, 1)`` and a marker that is 1 at exactly two steps, one in
    each half of the sequence. Target: the sum of the two marked values. Always answering 1
    (the mean) gives MSE = 2 Var(U(0,1)) = 1/6 ~ 0.167.
    """
    rng = np.random.default_rng(rng)
    x = np.zeros((T, n, 2), dtype)
    x[:, :, 0] = rng.random((T, n))
    half = T // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, T, n)
    cols = np.arange(n)
    x[first, cols, 1] = 1.0
    x[second, cols, 1] = 1.0
    y = (x[first, cols, 0] + x[second, cols, 0])[:, None].astype(dtype)
    return TaskData(x, y, "regression", 1, 1.0 / 6.0, note="baseline: always predict 1")


def copy_memory(n, T=50, rng=None, dtype=np.float32, K=10, symbols=8) -> TaskData:
    """The copy task (Arjovsky, Shah & Bengio 2016): K symbols, T - 1 blanks, a delimiter, then K
    steps in which the model must output the K symbols. Length T + 2K; classes: blank (0),
    symbols 1..8, delimiter (9). The memoryless best (blanks, then uniform over the symbols)
    scores ``K log(8) / (T + 2K)`` nats per step."""
    rng = np.random.default_rng(rng)
    L = T + 2 * K
    seq = rng.integers(1, symbols + 1, (K, n))
    ids = np.zeros((L, n), np.int64)
    ids[:K] = seq
    ids[T + K - 1] = symbols + 1
    x = np.eye(symbols + 2, dtype=dtype)[ids]
    y = np.zeros((L, n), np.int64)
    y[T + K:] = seq
    return TaskData(x, y, "sequence", symbols + 2, K * np.log(symbols) / L, note="baseline: blanks, then guess")


def temporal_order(n, T=100, rng=None, dtype=np.float32) -> TaskData:
    """Temporal order (Hochreiter & Schmidhuber 1997, experiment 6a): distractors a-d, a start
    symbol E and end symbol B, and two relevant symbols X/Y at random steps in
    ``[0.1T, 0.2T)`` and ``[0.5T, 0.6T)``. Class = order: XX, XY, YX, YY. Baseline log 4."""
    rng = np.random.default_rng(rng)
    ids = rng.integers(0, 4, (T, n))           # a, b, c, d
    ids[0], ids[-1] = 6, 7                     # E, B
    t1 = rng.integers(max(1, T // 10), max(2, T // 5), n)
    t2 = rng.integers(T // 2, max(T // 2 + 1, 3 * T // 5), n)
    s1, s2 = rng.integers(0, 2, n), rng.integers(0, 2, n)
    cols = np.arange(n)
    ids[t1, cols] = 4 + s1                     # X = 4, Y = 5
    ids[t2, cols] = 4 + s2
    x = np.eye(8, dtype=dtype)[ids]
    return TaskData(x, 2 * s1 + s2, "classification", 4, float(np.log(4)), note="baseline: chance (25%)")


REBER_SYMBOLS = "BTPSXVE"
_REBER = {0: [("T", 1), ("P", 2)], 1: [("S", 1), ("X", 3)], 2: [("T", 2), ("V", 4)],
          3: [("X", 2), ("S", 5)], 4: [("P", 3), ("V", 5)]}


def reber_string(rng) -> str:
    """One string of the Reber grammar: B, a walk through the transition graph, E."""
    out, state = ["B"], 0
    while state != 5:
        sym, state = _REBER[state][rng.integers(2)]
        out.append(sym)
    return "".join(out) + "E"


def embedded_reber_string(rng) -> str:
    """B, T or P, a Reber string, the same T or P, E: the second and the second-to-last symbols match."""
    branch = "TP"[rng.integers(2)]
    return "B" + branch + reber_string(rng) + branch + "E"


def reber_next_sets(s: str) -> list:
    """For each prefix of an embedded Reber string, the set of symbols that may come next."""
    sets = []
    inner = s[2:-2]
    for i in range(len(s) - 1):
        if i == 0:
            sets.append({"T", "P"})
        elif i == 1:
            sets.append({"B"})
        elif i < len(s) - 3:
            pos = i - 2              # position inside the inner Reber string
            if pos == 0:
                state = 0
            else:
                state = 0
                for sym in inner[1:pos + 1]:
                    state = dict(_REBER[state])[sym]
            sets.append({sym for sym, _ in _REBER[state]} if state != 5 else {"E"})
        elif i == len(s) - 3:
            sets.append({s[1]})      # the long-range dependency
        else:
            sets.append({"E"})
    return sets


def reber(n, T=None, rng=None, dtype=np.float32) -> TaskData:
    """Embedded Reber grammar, next-symbol prediction (``sequence``; padded with lengths).
    The hard step is the second-to-last, whose answer was fixed at step 1. ``T`` is ignored:
    lengths vary with the grammar."""
    rng = np.random.default_rng(rng)
    strings = [embedded_reber_string(rng) for _ in range(n)]
    lengths = np.array([len(s) - 1 for s in strings])
    L = int(lengths.max())
    x = np.zeros((L, n, 7), dtype)
    y = np.full((L, n), -100, np.int64)
    for j, s in enumerate(strings):
        ids = [REBER_SYMBOLS.index(c) for c in s]
        x[np.arange(len(s) - 1), j, ids[:-1]] = 1.0
        y[: len(s) - 1, j] = ids[1:]
    return TaskData(x, y, "sequence", 7, float(np.log(2)), lengths,
                    note="baseline: log 2 per step (two choices at most steps)")


def digits(n=None, T=None, rng=None, dtype=np.float32, mode="rows") -> TaskData:
    """scikit-learn's bundled handwritten digits (1,797 8x8 images), read row by row (8 steps of 8
    pixels) or pixel by pixel (64 steps of 1), scaled to [0, 1]. ``n`` examples drawn with ``rng``
    (all when None). Needs the ``datasets`` extra."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits task needs scikit-learn: pip install -e '.[datasets]'") from None
    d = load_digits()
    images, labels = d.images.astype(dtype) / 16.0, d.target.astype(np.int64)
    if n is not None:
        idx = np.random.default_rng(rng).choice(len(labels), n, replace=n > len(labels))
        images, labels = images[idx], labels[idx]
    x = images.transpose(1, 0, 2) if mode == "rows" else images.reshape(len(labels), 64).T[:, :, None]
    return TaskData(np.ascontiguousarray(x), labels, "classification", 10, float(np.log(10)),
                    note="baseline: chance (10%)")


def mackey_glass_series(length, tau=17, beta=0.2, gamma=0.1, power=10, dt=0.1, x0=1.2, discard=500, rng=None):
    """The Mackey-Glass delay equation ``dx/dt = beta x(t - tau) / (1 + x(t - tau)^power) - gamma x``,
    integrated with fourth-order Runge-Kutta at step ``dt`` (the delayed term held at its grid
    value), sampled once per time unit, after ``discard`` units of transient. ``tau = 17`` is chaotic."""
    rng = np.random.default_rng(rng)
    per = int(round(1 / dt))
    lag = int(round(tau / dt))
    total = (length + discard) * per
    x = np.empty(total + lag + 1)
    x[: lag + 1] = x0 + 0.01 * rng.standard_normal()

    def f(xt, xd):
        return beta * xd / (1 + xd ** power) - gamma * xt

    for i in range(lag, lag + total):
        xd = x[i - lag]
        xi = x[i]
        k1 = f(xi, xd)
        k2 = f(xi + 0.5 * dt * k1, xd)
        k3 = f(xi + 0.5 * dt * k2, xd)
        k4 = f(xi + dt * k3, xd)
        x[i + 1] = xi + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x[lag + discard * per + 1:: per][:length]


def mackey_glass(n, T=50, rng=None, dtype=np.float32, horizon=1) -> TaskData:
    """Windows of ``T`` values of one Mackey-Glass series; target: the value ``horizon`` steps
    after the window. The baseline is the MSE of repeating the window's last value."""
    rng = np.random.default_rng(rng)
    series = mackey_glass_series(n + T + horizon + 1, rng=rng)
    idx = np.arange(n)[None, :] + np.arange(T)[:, None]
    x = series[idx][:, :, None].astype(dtype)
    y = series[np.arange(n) + T - 1 + horizon][:, None].astype(dtype)
    base = float(np.mean((x[-1, :, 0] - y[:, 0]) ** 2))
    return TaskData(x, y, "regression", 1, base, note="baseline: repeat the last value")


DNA = "ACGT"


def dna_motifs(n, T=100, rng=None, dtype=np.float32, motif="TATAAT", tagging=False) -> TaskData:
    """Genome-like sequences: uniform random A/C/G/T (one-hot, 4 channels) of length ``T``. Half
    of them carry the motif planted at a random position; every sequence carries 1-2
    distractors (the motif with one base changed), so spotting a few right letters is not enough.

    ``tagging=False``: classification, 1 when the motif is present (baseline: chance, log 2).
    ``tagging=True``: per-position tags (``sequence``), 1 at each position where a motif
    *starts*: deciding it needs the letters that come after, which only a bidirectional
    model (or one that waits) sees. Chance motifs arising in the random background count too.
    """
    rng = np.random.default_rng(rng)
    K = len(motif)
    if T < 3 * K:
        raise ValueError(f"T: expected at least {3 * K} (three motif lengths), got {T}")
    mot = np.array([DNA.index(c) for c in motif])
    ids = rng.integers(0, 4, (T, n))
    for j in range(n):
        for _ in range(rng.integers(1, 3)):
            p = rng.integers(0, T - K + 1)
            d = mot.copy()
            k = rng.integers(K)
            d[k] = (d[k] + rng.integers(1, 4)) % 4
            ids[p:p + K, j] = d
        if rng.random() < 0.5:
            p = rng.integers(0, T - K + 1)
            ids[p:p + K, j] = mot
    starts = np.zeros((T, n), np.int64)
    for p in range(T - K + 1):
        starts[p] = np.all(ids[p:p + K] == mot[:, None], axis=0)
    x = np.eye(4, dtype=dtype)[ids]
    if tagging:
        rate = max(starts.mean(), 1e-9)
        base = float(-(rate * np.log(rate) + (1 - rate) * np.log(1 - rate)))
        return TaskData(x, starts, "sequence", 2, base, note="baseline: tag rate entropy (no context)")
    return TaskData(x, (starts.sum(0) > 0).astype(np.int64), "classification", 2, float(np.log(2)),
                    note="baseline: chance (50%)")


TASKS = {
    "adding": adding,
    "copy": copy_memory,
    "temporal-order": temporal_order,
    "reber": reber,
    "digits": digits,
    "mackey-glass": mackey_glass,
    "dna": dna_motifs,
}


def make_task(name: str, n: int, T: int, seed=None, dtype=np.float32) -> TaskData:
    if name not in TASKS:
        raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {name!r}")
    if name in ("reber", "digits"):
        return TASKS[name](n, None, seed, dtype)
    least = MIN_T.get(name, 1)
    if T < least:
        raise ValueError(f"T: expected at least {least} for the {name} task ({MIN_T_WHY[name]}), got {T}")
    return TASKS[name](n, T, seed, dtype)


# the shortest sequences the generated tasks can make (dna checks its own)
MIN_T = {"adding": 2, "temporal-order": 2}
MIN_T_WHY = {"adding": "two marked numbers to add", "temporal-order": "two symbols to order"}
IGNORE_T = ("reber", "digits")           # tasks whose sequences have lengths of their own


class TaskBatches:
    """Batches of a generated task for the Trainer: ``batch(i, epoch)`` is ``(x, y, lengths)`` of
    ``batch_size`` fresh examples generated from the seed ``[seed, epoch, i]`` (an endless supply,
    and a pure function of ``(i, epoch)``), or, given a fixed ``train`` set (digits), drawn from it
    with that seed. ``len()`` is ``steps``: one epoch is the whole run."""

    def __init__(self, task: str, T: int, batch_size: int, seed=0, steps: int = 1, train: TaskData | None = None):
        self.task, self.T, self.batch_size, self.seed, self.steps, self.train = task, T, batch_size, seed, steps, train

    def __len__(self) -> int:
        return self.steps

    def batch(self, i: int, epoch: int = 0):
        rng = np.random.default_rng([self.seed, 1, epoch, i])
        d = (self.train.take(rng.integers(0, len(self.train), self.batch_size)) if self.train is not None
             else make_task(self.task, self.batch_size, self.T, seed=rng))
        return d.x, d.y, d.lengths
