"""The interpolated Kneser-Ney character n-gram (rnnkit.data.ngram) against a plain-Python
implementation of its equations, and the Jane Austen loader on a package tree made here."""
import itertools
import math
import struct
import zlib
from collections import Counter

import numpy as np
import pytest

from rnnkit.data.ngram import KneserNey
from rnnkit.errors import UserError

TEXT = "abracadabra cabbage, a bad cab; abba."


def ids_of(text):
    alphabet = sorted(set(text)) + ["#"]                 # one symbol never seen in training
    return np.array([alphabet.index(c) for c in text]), len(alphabet)


def reference_kn(ids, K, V):
    """p(w | h) by the module docstring's recursion, with dicts of tuples: counts of the (K+1)-grams,
    continuation counts of their suffixes, one discount n1 / (n1 + 2 n2) per order."""
    ids = [int(i) for i in ids]
    levels = {K: Counter(tuple(ids[i - K: i + 1]) for i in range(K, len(ids)))}
    for j in range(K - 1, -1, -1):
        levels[j] = Counter(g[1:] for g in levels[j + 1])            # distinct left extensions
    D = {}
    for j, c in levels.items():
        n1 = sum(v == 1 for v in c.values())
        n2 = sum(v == 2 for v in c.values())
        D[j] = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5

    def p(w, h, j):
        lower = 1.0 / V if j == 0 else p(w, h[1:], j - 1)
        if j == 0:
            h = ()
        c = levels[j]
        total = sum(v for g, v in c.items() if g[:-1] == h)
        if total == 0:
            return lower
        types = sum(1 for g in c if g[:-1] == h)
        return max(c.get(h + (w,), 0) - D[j], 0) / total + D[j] * types / total * lower

    return lambda w, h: p(w, tuple(h), K) if K else p(w, (), 0)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_matches_the_equations_and_sums_to_one(order):
    ids, V = ids_of(TEXT)
    model = KneserNey(ids, order, V)
    ref = reference_kn(ids, order, V)
    contexts = list(itertools.product(range(V), repeat=order))
    rng = np.random.default_rng(order)
    for ctx in [contexts[i] for i in rng.choice(len(contexts), min(40, len(contexts)), replace=False)] + \
               [tuple(ids[5: 5 + order])]:                             # random (mostly unseen) and a seen context
        p = model.probabilities(np.array(ctx, np.int64))
        assert p.shape == (V,) and (p > 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(p, [ref(w, ctx[len(ctx) - order:] if order else ()) for w in range(V)], rtol=1e-12)


def test_bits_is_the_mean_log_loss_of_each_next_symbol():
    ids, V = ids_of(TEXT)
    train, test = ids[:25], ids[25:]
    for order in (0, 2):
        model = KneserNey(train, order, V)
        stream = np.concatenate([train, test])
        direct = [-math.log2(model.probabilities(stream[len(train) + i - order: len(train) + i])[test[i]])
                  for i in range(len(test))]
        assert model.bits(test, train, chunk=4) == pytest.approx(np.mean(direct), rel=1e-12)


def test_higher_orders_learn_a_repeated_text():
    ids, V = ids_of(TEXT * 20)
    bits = [KneserNey(ids[:600], k, V).bits(ids[600:], ids[:600]) for k in (0, 1, 4)]
    assert bits[0] > bits[1] > bits[2] and bits[2] < 0.5


def test_bad_input():
    with pytest.raises(ValueError, match=r"ids: expected symbols in \[0, 3\), got 0..5"):
        KneserNey(np.array([0, 5]), 1, 3)
    with pytest.raises(ValueError, match="expected a training stream longer than the order 4, got 3 symbols"):
        KneserNey(np.array([0, 1, 2]), 4, 3)
    with pytest.raises(ValueError, match="context: expected at least 2 symbols, got 1"):
        KneserNey(np.array([0, 1, 2, 1]), 2, 3).probabilities([1])


# -- the Jane Austen loader (the R package's lazy-load data base) ----------------------------------

def test_austen_novels_from_a_package_tree(tmp_path, monkeypatch):
    pyreadr = pytest.importorskip("pyreadr")
    import pandas as pd

    from rnnkit.data import datasets as D

    blob = b""
    for lines in (["EMMA", "", "Emma Woodhouse, handsome,"], ["PERSUASION", None, "Sir Walter Elliot"]):
        rds = tmp_path / "x.rds"
        pyreadr.write_rds(str(rds), pd.DataFrame({"text": lines}))
        raw = rds.read_bytes()
        blob += struct.pack(">I", len(raw)) + zlib.compress(raw)
    data = tmp_path / "root" / D.R_LIBRARY / "janeaustenr" / "data"
    data.mkdir(parents=True)
    (data / "Rdata.rdb").write_bytes(blob)
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "root"))
    assert D.austen_novels() == "EMMA\n\nEmma Woodhouse, handsome,\n\nPERSUASION\n\nSir Walter Elliot"
    (data / "Rdata.rdb").write_bytes(blob[:40])
    with pytest.raises(UserError, match="Rdata.rdb, byte 0: expected an object of"):
        D.austen_novels()
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="Rdata.rdb: not found in .*apt-get download r-cran-janeaustenr"):
        D.austen_novels()


def test_austen_novels_from_the_debian_package_when_present():
    pytest.importorskip("pyreadr")
    from rnnkit.data import datasets as D

    try:
        D.debian_file("janeaustenr/Rdata.rdb")
    except UserError as exc:
        pytest.skip(str(exc))
    text = D.austen_novels()
    assert len(text) == 4_025_032 and len(set(text)) == 81
    assert text.startswith("EMMA\n\nBy Jane Austen") and "PRIDE AND PREJUDICE" in text
