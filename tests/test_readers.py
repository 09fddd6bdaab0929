"""Readers for users' files (pairs, CoNLL, .npz, .ts) and the classification adapter: parsed
contents, and one-line errors naming the file, the line and what was expected for bad input."""
import io
import json
import sys

import numpy as np
import pytest

from rnnkit.data import labelled as Lb
from rnnkit.data import readers as R
from rnnkit.errors import UserError


def user_error(fn, *parts):
    """``fn()`` raises a one-line UserError containing every one of ``parts``."""
    with pytest.raises(UserError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"
    return msg


def write(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return p


# -- files in general ---------------------------------------------------------------------------


@pytest.mark.parametrize("reader", [R.read_pairs, R.read_conll, R.read_npz_sequences, R.read_ts,
                                    lambda p: R.read_sources(p)[0]])
def test_missing_file_and_directory(tmp_path, reader):
    user_error(lambda: reader(tmp_path / "nope.txt"), "nope.txt: file not found")
    user_error(lambda: reader(tmp_path), str(tmp_path), "expected a file, got a directory")


@pytest.mark.parametrize("reader,expected", [(R.read_pairs, "'source<TAB>target' lines"),
                                             (R.read_conll, "CoNLL token lines"), (R.read_ts, "a .ts file")])
def test_empty_and_non_utf8_text(tmp_path, reader, expected):
    empty = write(tmp_path, "empty.txt", " \n\n")
    user_error(lambda: reader(empty), "empty.txt: expected", expected, "got an empty file")
    latin = write(tmp_path, "latin.txt", "ok\tfine\ncaf\xe9\tx\n".encode("latin-1"))
    user_error(lambda: reader(latin), "latin.txt, line 2: expected UTF-8 text, got byte 0xe9 at byte offset 11")


# -- pairs --------------------------------------------------------------------------------------


def test_read_pairs_chars_and_words(tmp_path):
    p = write(tmp_path, "pairs.tsv", "\ufeffab\tba\r\n\n#x y\t# z\n  \n")
    got = R.read_pairs(p)
    assert list(got) == [(["a", "b"], ["b", "a"]), (["#", "x", " ", "y"], ["#", " ", "z"])]
    assert got.lines == [1, 3] and got.where(1) == f"{p}, line 3" and len(got) == 2
    words = R.read_pairs(p, tokens="words")
    assert words[1] == (["#x", "y"], ["#", "z"])
    user_error(lambda: R.read_pairs(p, tokens="bytes"), "tokens: expected one of chars, words, got 'bytes'")


@pytest.mark.parametrize("line,expected", [
    ("hello world", "expected 'source<TAB>target', got a line without a tab: 'hello world'"),
    ("a\tb\tc", "expected 'source<TAB>target', got 2 tabs: 'a\\tb\\tc'"),
    ("\tb", "expected a non-empty source before the tab"),
    ("a\t", "expected a non-empty target after the tab"),
])
def test_read_pairs_bad_lines(tmp_path, line, expected):
    p = write(tmp_path, "pairs.tsv", "x\ty\n\n" + line + "\nz\tw\n")
    user_error(lambda: R.read_pairs(p), "pairs.tsv, line 3: " + expected)


def test_read_pairs_words_with_an_empty_side(tmp_path):
    p = write(tmp_path, "p.tsv", "a b\tc\n   \td\n")
    user_error(lambda: R.read_pairs(p, tokens="words"), "p.tsv, line 2: expected a non-empty source")


def test_read_sources_with_and_without_targets(tmp_path, monkeypatch):
    plain = write(tmp_path, "in.txt", "abc\n\nd e\n")
    src, tgt = R.read_sources(plain)
    assert list(src) == [list("abc"), list("d e")] and src.lines == [1, 3] and tgt is None
    src, tgt = R.read_sources(write(tmp_path, "in.tsv", "a b\tc\nd\te f\n"), tokens="words")
    assert list(src) == [["a", "b"], ["d"]] and tgt == [["c"], ["e", "f"]]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("xy\nz\n".encode())))
    src, tgt = R.read_sources("-")
    assert list(src) == [["x", "y"], ["z"]] and src.path == "<stdin>" and tgt is None


def test_read_sources_mixed_lines(tmp_path, monkeypatch):
    mixed = write(tmp_path, "mixed.tsv", "a\tb\nc\n")
    user_error(lambda: R.read_sources(mixed), "mixed.tsv, line 2: expected 'source<TAB>target' as on line 1, "
                                              "got a line without a tab")
    other = write(tmp_path, "other.tsv", "a\n\nc\td\n")
    user_error(lambda: R.read_sources(other), "other.tsv, line 3: expected a source without a tab as on line 1")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    user_error(lambda: R.read_sources("-"), "<stdin>: expected one source a line, got an empty file")


# -- CoNLL --------------------------------------------------------------------------------------

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O

# NN B-NP O
. . O O
"""

CONLLU = """# sent_id = 1
# text = I'm here
1-2\tI'm\t_\t_\t_\t_\t_\t_\t_\t_
1\tI\tI\tPRON\tPRP\t_\t2\tnsubj\t_\t_
2\t'm\tbe\tAUX\tVBP\t_\t0\troot\t_\t_
2.1\tx\t_\t_\t_\t_\t_\t_\t_\t_
3\there\there\tADV\tRB\t_\t2\tadvmod\t_\t_

# sent_id = 2
1\tGo\tgo\tVERB\tVB\t_\t0\troot\t_\t_
"""


def test_read_conll_plain(tmp_path):
    p = write(tmp_path, "ner.txt", CONLL)
    got = R.read_conll(p)
    assert list(got) == [(["EU", "rejects"], ["B-ORG", "O"]), (["#", "."], ["O", "O"])] and got.lines == [3, 6]
    assert R.read_conll(p, column=2)[0] == (["EU", "rejects"], ["NNP", "VBZ"])
    tabs = write(tmp_path, "tabs.tsv", "New York\tB-LOC\nis\tO\n\n\nok\tO\n")
    assert list(R.read_conll(tabs)) == [(["New York", "is"], ["B-LOC", "O"]), (["ok"], ["O"])]
    bare = write(tmp_path, "bare.txt", "hello\nworld\n\nagain\n")
    assert list(R.read_conll(bare)) == [(["hello", "world"], None), (["again"], None)]


def test_read_conllu(tmp_path):
    for name in ("ud.conllu", "ud.txt"):                      # by extension, or by its 10 columns
        p = write(tmp_path, name, CONLLU)
        got = R.read_conll(p)
        assert list(got) == [(["I", "'m", "here"], ["PRON", "AUX", "ADV"]), (["Go"], ["VERB"])]
        assert got.lines == [4, 10]
    p = tmp_path / "ud.conllu"
    assert R.read_conll(p, column="xpos")[0][1] == ["PRP", "VBP", "RB"]
    assert R.read_conll(p, column="deprel")[0][1] == R.read_conll(p, column=8)[0][1] == ["nsubj", "root", "advmod"]
    assert R.read_conll(p, column="8")[1][1] == ["root"]
    untagged = write(tmp_path, "raw.conllu", "1\tHi\t_\t_\t_\t_\t_\t_\t_\t_\n2\tyou\t_\t_\t_\t_\t_\t_\t_\t_\n")
    assert list(R.read_conll(untagged)) == [(["Hi", "you"], None)]


@pytest.mark.parametrize("name,content,column,expected", [
    ("r.txt", "EU NNP B-ORG\nrejects O\n", None, "r.txt, line 2: expected 3 columns as on line 1, got 2: 'rejects O'"),
    ("t.txt", "a\tB\nb\t\n", None, "t.txt, line 2: expected a value in every column, got an empty column 2"),
    ("c.txt", "a B\n", 3, "c.txt, line 1: expected at least 3 columns for column=3, got 2"),
    ("n.txt", "a B\n", "upos", "n.txt: column: expected a 1-based column index, got 'upos'"),
    ("d.txt", "-DOCSTART- -X- O\n\n\n", None, "d.txt: expected at least one sentence of token lines, got none"),
    ("u.conllu", "# c\n1\ta\t_\tX\n", None, "u.conllu, line 2: expected 10 tab-separated columns (CoNLL-U), got 4"),
    ("m.conllu", "1\ta\t_\tX\t_\t_\t_\t_\t_\t_\n\n1\tb\t_\t_\t_\t_\t_\t_\t_\t_\n", None,
     "m.conllu, line 3: expected a tag in column 4 (upos) (other lines have one), got '_'"),
    ("k.conllu", "1\ta\t_\tX\t_\t_\t_\t_\t_\t_\n", "lemmas", "k.conllu: column: expected one of id, form, lemma, upos"),
    ("i.conllu", "1\ta\t_\tX\t_\t_\t_\t_\t_\t_\n", 11, "i.conllu: column: expected 1 to 10 for CoNLL-U, got 11"),
    ("h.conllu", "# only\n# comments\n", None, "h.conllu: expected at least one sentence"),
])
def test_read_conll_bad_input(tmp_path, name, content, column, expected):
    p = write(tmp_path, name, content)
    user_error(lambda: R.read_conll(p, column=column), expected)


# -- .npz ---------------------------------------------------------------------------------------


def _ragged(rng, lengths, D):
    return [rng.standard_normal((n, D)) for n in lengths]


def test_read_npz_layouts(tmp_path):
    rng = np.random.default_rng(0)
    seqs = _ragged(rng, [3, 5, 1], 2)
    padded = np.zeros((3, 5, 2))
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    padded[2, 1:] = np.nan                                       # padding may hold anything
    np.savez(tmp_path / "padded.npz", x=padded, lengths=np.array([3, 5, 1]), y=np.array(["a", "b", "a"]))
    np.savez(tmp_path / "keys.npz", **{f"x_{i}": s for i, s in enumerate(seqs)}, y=np.array([1, 0, 1]))
    for name in ("padded.npz", "keys.npz"):
        xs, y = R.read_npz_sequences(tmp_path / name)
        assert [x.shape for x in xs] == [(3, 2), (5, 2), (1, 2)] and xs[0].dtype == np.float32
        for x, s in zip(xs, seqs):
            np.testing.assert_array_equal(x, s.astype(np.float32))
    assert R.read_npz_sequences(tmp_path / "padded.npz")[1].tolist() == ["a", "b", "a"]
    assert R.read_npz_sequences(tmp_path / "keys.npz")[1].dtype == np.int64
    np.savez(tmp_path / "full2d.npz", x=np.arange(6, dtype=np.int32).reshape(2, 3))
    xs, y = R.read_sequences(tmp_path / "full2d.npz")
    assert y is None and [x.tolist() for x in xs] == [[[0], [1], [2]], [[3], [4], [5]]]


def _npz_cases():
    x = np.zeros((3, 4, 2))
    nan = x.copy()
    nan[1, 2, 1] = np.nan
    obj = np.empty(2, object)
    obj[:] = [np.zeros((2, 3)), np.zeros((4, 3))]
    return [
        (dict(x=obj), "'x' is an object array", "save the sequences padded instead: np.savez(path, x="),
        (dict(x=x, lengths=np.array([4, 0, 2])), "sequence 1: expected a length in [1, 4], got 0"),
        (dict(x=x, lengths=np.array([4, 5, 2])), "sequence 1: expected a length in [1, 4], got 5"),
        (dict(x=x, lengths=np.array([4, 2])), "expected 'lengths' of 3 integers (one per sequence), got shape (2,)"),
        (dict(x=x, lengths=np.array([4.0, 2, 2])), "got shape (3,) and dtype float64"),
        (dict(x=nan), "sequence 1, step 2, feature 1: expected finite float32 values, got nan"),
        (dict(x=np.full((1, 2, 1), 1e39)), "sequence 0, step 0, feature 0: expected finite float32 values, got 1e+39"),
        (dict(x=x.astype(str)), "expected numbers (integers or floats), got dtype <U"),
        (dict(x=np.zeros(3)), "expected 'x' of shape (N, L, D) or (N, L), non-empty, got shape (3,)"),
        (dict(x=np.zeros((0, 4, 2))), "got shape (0, 4, 2)"),
        (dict(x=x, y=np.array([1, 2])), "expected 'y' with one label per sequence, shape (3,), got shape (2,)"),
        (dict(x=x, y=np.array([1.0, 2.0, 0.0])), "expected integer or string labels in 'y', got dtype float64"),
        (dict(x=x, y=obj), "'y' is an object array"),
        (dict(X=x), "expected an array 'x' (N, L, D)", "got ['X']"),
        (dict(x_0=x[0], x_2=x[1]), "expected arrays 'x_0' to 'x_1', got no 'x_1'"),
        (dict(x_0=x[0], x_1=np.zeros((3, 5))), "expected 'x_1' with 2 features per step like 'x_0', got shape (3, 5)"),
        (dict(x_0=np.float64(1.0)), "expected 'x_0' of shape (L, D) or (L,), got ()"),
        (dict(x_0=np.zeros((0, 2))), "sequence 0: expected a length in [1, 1], got 0"),
    ]


@pytest.mark.parametrize("arrays_and_expected", _npz_cases())
def test_read_npz_bad_input(tmp_path, arrays_and_expected):
    arrays, *expected = arrays_and_expected
    np.savez(tmp_path / "bad.npz", **arrays)
    user_error(lambda: R.read_npz_sequences(tmp_path / "bad.npz"), "bad.npz: ", *expected)


def test_read_npz_not_an_archive(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(3))
    user_error(lambda: R.read_npz_sequences(tmp_path / "one.npy"), "one.npy: expected a .npz archive", "a single .npy array")
    write(tmp_path, "text.npz", "x,y\n1,2\n")
    user_error(lambda: R.read_npz_sequences(tmp_path / "text.npz"), "text.npz: expected a .npz archive", "no zip archive")
    write(tmp_path, "empty.npz", b"")
    user_error(lambda: R.read_npz_sequences(tmp_path / "empty.npz"), "got an empty file")
    np.savez(tmp_path / "ok.npz", x=np.zeros((2, 2)))
    write(tmp_path, "cut.npz", (tmp_path / "ok.npz").read_bytes()[:60])
    user_error(lambda: R.read_npz_sequences(tmp_path / "cut.npz"), "cut.npz: expected a .npz archive, cannot read it")


def test_read_sequences_dispatch(tmp_path):
    user_error(lambda: R.read_sequences(tmp_path / "data.csv"), "data.csv: expected a sequence file ending in .npz or .ts, got '.csv'")
    user_error(lambda: R.read_sequences(tmp_path / "data"), "got no extension")


# -- .ts ----------------------------------------------------------------------------------------

TS = """# A toy problem written by hand
@problemName toy
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
1.0,2.0,3.0:4.0,5.0,6.0:up
0.5,0.25:1.5,-2.5:down
"""


def test_read_ts_hand_written(tmp_path):
    xs, y = R.read_sequences(write(tmp_path, "toy.ts", TS))
    assert [x.tolist() for x in xs] == [[[1, 4], [2, 5], [3, 6]], [[0.5, 1.5], [0.25, -2.5]]]
    assert xs[0].dtype == np.float32 and y.tolist() == ["up", "down"]
    unlabelled = TS.replace("@classLabel true up down", "@classLabel false").replace(":up", "").replace(":down", "")
    xs, y = R.read_ts(write(tmp_path, "nolabel.ts", unlabelled))
    assert y is None and xs[1].shape == (2, 2)


def test_read_ts_round_trips_an_aeon_dataset(tmp_path):
    from aeon.datasets import load_basic_motions, save_to_ts_file

    X, y = load_basic_motions(split="test")                         # (40, 6, 100)
    save_to_ts_file(X, y, label_type="classification", path=str(tmp_path), problem_name="BasicMotions")
    xs, got_y = R.read_ts(tmp_path / "BasicMotions.ts")
    assert len(xs) == 40 and xs[0].shape == (100, 6)
    np.testing.assert_array_equal(np.stack(xs), X.transpose(0, 2, 1).astype(np.float32))
    assert got_y.tolist() == y.tolist()
    save_to_ts_file(X[:3], path=str(tmp_path), problem_name="unlabelled")    # aeon writes no labels as ':'
    xs, got_y = R.read_ts(tmp_path / "unlabelled.ts")
    assert got_y is None and len(xs) == 3


@pytest.mark.parametrize("data,expected", [
    ("1.0,2.0:3.0,x:up", "bad.ts, line 11: expected numbers separated by ',' (channels by ':'), got 'x'"),
    ("1.0,2.0:up", "bad.ts, line 11: expected 2 channel(s) as on line 10, got 1"),
    ("1.0,2.0:3.0:up", "bad.ts, line 11: expected channels of one length, got lengths [1, 2]"),
    ("", "bad.ts, line 11: expected numbers separated by ',' (channels by ':'), got an empty line"),
    ("1.0,?:3.0,4.0:up", "bad.ts, line 11 (sequence 1), step 1, feature 0: expected finite float32 values, got nan"),
])
def test_read_ts_bad_data_lines(tmp_path, data, expected):
    lines = TS.splitlines()
    p = write(tmp_path, "bad.ts", "\n".join(lines[:10] + [data, lines[10]]) + "\n")
    user_error(lambda: R.read_ts(p), expected)


def test_read_ts_bad_header_and_no_aeon(tmp_path, monkeypatch):
    user_error(lambda: R.read_ts(write(tmp_path, "h.ts", "@problemName x\n1,2:a\n")),
               "h.ts: expected a '@data' line ending the .ts header, got none")
    user_error(lambda: R.read_ts(write(tmp_path, "e.ts", "@problemName x\n@data\n\n \n")),
               "e.ts, line 2: expected one sequence a line after @data, got none")
    user_error(lambda: R.read_ts(write(tmp_path, "b.ts", "@univariate maybe so\n@data\n1,2:a\n")),
               "b.ts: expected a .ts file aeon can read, got an error from aeon: @univariate tag requires a boolean")
    user_error(lambda: R.read_ts(write(tmp_path, "q.ts", "@equalLength true\n@classLabel true a\n@data\n1,2:a\n1,2,3:a\n")),
               "q.ts, line 5: expected length 2 as on line 4 (the header says @equalLength true), got 3")
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    user_error(lambda: R.read_ts(write(tmp_path, "toy.ts", TS)), "toy.ts: reading .ts files needs aeon: "
                                                               "pip install -e '.[datasets]'")


# -- the classification adapter -----------------------------------------------------------------


def test_labelled_batches_are_padded_time_major_and_pure():
    rng = np.random.default_rng(1)
    xs = _ragged(rng, rng.integers(1, 9, 11), 3)
    y = rng.integers(0, 4, 11)
    data = Lb.LabelledSequences(xs, y, batch_size=4, seed=7)
    assert len(data) == 3 and data.n_features == 3
    seen = []
    for i in range(len(data)):
        x, yb, lengths = data.batch(i, epoch=2)
        idx = data.order(2)[i * 4: (i + 1) * 4]
        assert x.dtype == np.float32 and x.shape == (lengths.max(), len(idx), 3) and yb.dtype == lengths.dtype == np.int64
        for j, k in enumerate(idx):
            np.testing.assert_array_equal(x[: lengths[j], j], xs[k].astype(np.float32))
            assert not x[lengths[j]:, j].any() and yb[j] == y[k]
        seen += idx.tolist()
    assert sorted(seen) == list(range(11))
    fresh = Lb.LabelledSequences(xs, y, batch_size=4, seed=7)
    np.testing.assert_array_equal(fresh.batch(1, 2)[0], data.batch(1, 2)[0])       # resume sees the same batch
    assert not np.array_equal(data.order(3), data.order(2))
    assert Lb.LabelledSequences(xs, y, 4, shuffle=False).batch(2)[1].tolist() == y[8:].tolist()
    x, lengths = data.x_padded()
    assert x.shape == (max(len(s) for s in xs), 11, 3) and lengths.tolist() == [len(s) for s in xs]
    with pytest.raises(IndexError, match=r"expected an index in \[0, 3\), got 3"):
        data.batch(3)


def test_labelled_bad_input():
    xs = [np.zeros((2, 3)), np.zeros((4, 3))]
    user_error(lambda: Lb.LabelledSequences(xs, np.array([0])), "labels: expected (2,) integer class ids, got shape (1,)")
    user_error(lambda: Lb.LabelledSequences(xs + [np.zeros((2, 4))], [0, 1, 0]), "one D, got trailing shapes [(3,), (4,)]")
    user_error(lambda: Lb.LabelledSequences(xs, [0, 1], batch_size=0), "batch_size: expected an integer >= 1, got 0")


def test_encode_labels():
    ids, classes = Lb.encode_labels(np.array([10, 2, 1, 2]))
    assert classes == ["1", "2", "10"] and ids.tolist() == [2, 1, 0, 1]
    ids, classes = Lb.encode_labels(["b", "a", "b"])
    assert classes == ["a", "b"] and ids.tolist() == [1, 0, 1]
    test_ids, _ = Lb.encode_labels(np.array([2, 10]), classes=["1", "2", "10"])
    assert test_ids.tolist() == [1, 2]
    user_error(lambda: Lb.encode_labels(["a", "c", "c"], classes=classes, path="test.npz"),
               "test.npz: sequence 1: expected a label seen in training (a, b), got 'c' (2 such sequences)")


def test_standardizer_and_feature_check():
    rng = np.random.default_rng(2)
    xs = [rng.normal(5, 3, (n, 2)) for n in (3, 7, 1)]
    xs = [np.column_stack([x[:, 0], np.full(len(x), 4.0)]) for x in xs]      # feature 1 is constant
    s = Lb.Standardizer.fit(xs)
    steps = np.concatenate(xs)
    np.testing.assert_allclose(s.mean, steps.mean(0))
    np.testing.assert_allclose(s.std, [steps[:, 0].std(), 1.0])
    z = np.concatenate(s.transform(xs))
    assert z.dtype == np.float32 and np.allclose(z.mean(0), 0, atol=1e-6) and np.allclose(z[:, 0].std(), 1, atol=1e-6)
    t = Lb.Standardizer.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(t.mean, s.mean)
    np.testing.assert_array_equal(t.std, s.std)
    Lb.check_features(xs, 2, "test.npz")
    user_error(lambda: Lb.check_features([np.zeros((4, 6))], 12, "test.npz"),
               "test.npz: expected 12 features per step (as in the training file), got 6")


def test_split():
    tr, va = Lb.split(100, 0.2, seed=3)
    assert len(va) == 20 and len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 100
    np.testing.assert_array_equal(Lb.split(100, 0.2, seed=3)[1], va)
    assert not np.array_equal(Lb.split(100, 0.2, seed=4)[1], va)
    y = np.array([0] * 90 + [1] * 10)
    tr, va = Lb.split(100, 0.3, seed=0, y=y)
    assert (y[va] == 1).sum() == 3 and (y[va] == 0).sum() == 27
    tr, va = Lb.split(4, 0.5, seed=0, y=np.array(["a", "b", "c", "c"]))
    assert sorted(set(["a", "b", "c", "c"][i] for i in tr)) == ["a", "b", "c"]      # every class stays in training
    user_error(lambda: Lb.split(10, 1.0), "validation fraction: expected a number in (0, 1), got 1.0")
    user_error(lambda: Lb.split(3, 0.1), "leaves no validation set")
