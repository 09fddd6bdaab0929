"""Bad data files and options end as one line on stderr naming what was expected and what arrived
(file and line, value), exit status 2, no traceback, and before any run directory is made or
changed: text for ``prepare``, forecast CSVs, classification ``.ts`` / ``.npz`` files and options,
CoNLL files for the tagger."""
import json

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data import corpus as C
from rnnkit.data import readers as R

TINY = ["--steps", "2", "--hidden-size", "4", "--no-progress"]


def one_line(capsys, argv, *parts):
    """``rnnkit argv`` exits 2 with one line on stderr holding every one of ``parts``."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for p in parts:
        assert p in err, err
    return err


# -- prepare: the byte that is not UTF-8, and where -----------------------------------------------


def test_prepare_names_a_character_cut_off_at_the_end(tmp_path, capsys):
    (tmp_path / "t.txt").write_bytes(b"ab\xe4")
    one_line(capsys, ["prepare", tmp_path / "t.txt", "--out", tmp_path / "c", "--no-progress"],
             "undecodable byte 0xe4 at offset 2")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("data,byte,offset", [
    (b"abcdefg\xe4Zhij", "0xe4", 7),             # the bad byte is the last of a chunk
    (b"abcdef\xe4\xb8Zhij", "0xe4", 6),          # a character cut by a chunk end, then a bad byte
    (b"abcdefgh\xffij", "0xff", 8),              # the first byte of a chunk
])
def test_prepare_names_the_byte_at_a_chunk_boundary(tmp_path, capsys, monkeypatch, data, byte, offset):
    monkeypatch.setattr(C, "CHUNK", 8)
    (tmp_path / "t.txt").write_bytes(data)
    one_line(capsys, ["prepare", tmp_path / "t.txt", "--out", tmp_path / "c", "--no-progress"],
             f"undecodable byte {byte} at offset {offset}")


def test_prepare_across_small_chunks_still_reads_good_text(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "CHUNK", 3)
    text = "añb€c😀d" * 5
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    C.prepare(tmp_path / "t.txt", tmp_path / "c", progress=False)
    got = C.Corpus.open(tmp_path / "c")
    assert got.vocab.decode(got.ids.tolist()) == text


# -- forecast CSV -------------------------------------------------------------------------------


def _series_csv(path, bad_row=None, bad_value="x", header="t,value", extra=None, n=80):
    rows = [header]
    for i in range(n):
        value = bad_value if i == bad_row else f"{3 + np.sin(i / 3):.4f}"
        rows.append(f"{i},{value}" + ("" if extra != i else ",7"))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("bad", ["x", "nan", "inf", "1e309", ""])
def test_forecast_csv_bad_cell_is_reported_not_skipped(tmp_path, capsys, bad):
    """Not silently the index column: both are columns of numbers, and the bad cell is named."""
    csv = _series_csv(tmp_path / "s.csv", bad_row=40, bad_value=bad)
    one_line(capsys, ["forecast", "--dataset", csv, "--out", tmp_path / "f", *TINY],
             "s.csv: expected --column NAME", f"'value' has {bad!r} on line 42")
    assert not (tmp_path / "f").exists()
    one_line(capsys, ["forecast", "--dataset", csv, "--column", "value", "--out", tmp_path / "f", *TINY],
             "s.csv, line 42", "column 'value'", repr(bad))
    assert not (tmp_path / "f").exists()


def test_forecast_csv_with_a_gappy_second_column_asks_which(tmp_path, capsys):
    csv = tmp_path / "q.csv"
    csv.write_text("value,quality\n" + "".join(f"{i % 7},{'' if i % 3 == 0 else i}\n" for i in range(90)))
    one_line(capsys, ["forecast", "--dataset", csv, "--out", tmp_path / "f", *TINY],
             "q.csv: expected --column NAME", "'quality' has '' on line 2")
    code = main(["forecast", "--dataset", str(csv), "--column", "value", "--out", str(tmp_path / "f"),
                 *map(str, TINY)])
    assert code == 0


def test_forecast_csv_one_column_bad_cell_needs_no_column_option(tmp_path, capsys):
    csv = tmp_path / "one.csv"
    csv.write_text("value\n" + "".join(f"{i % 7}\n" for i in range(60)) + "abc\n")
    err = one_line(capsys, ["forecast", "--dataset", csv, "--out", tmp_path / "f", *TINY],
                   "one.csv, line 62", "'abc'")
    assert "--column" not in err


def test_forecast_csv_line_numbers_count_blank_lines(tmp_path, capsys):
    csv = tmp_path / "b.csv"
    csv.write_text("t,value\n1,2\n\n\n2,3\n3,x\n4,5\n")
    one_line(capsys, ["forecast", "--dataset", csv, "--column", "value", "--out", tmp_path / "f", *TINY],
             "b.csv, line 6", "'x'")


def test_forecast_csv_row_with_extra_cells(tmp_path, capsys):
    csv = tmp_path / "r.csv"
    csv.write_text("date,value\n" + "".join(f"2000-{i},{i % 5}.0\n" for i in range(5))
                   + "2000-5,1.0,7\n" + "".join(f"2001-{i},{i % 5}.0\n" for i in range(60)))
    one_line(capsys, ["forecast", "--dataset", csv, "--out", tmp_path / "f", *TINY],
             "r.csv, line 7", "expected 2 cells", "got 3")


def test_forecast_csv_good_file_with_blank_lines_still_reads(tmp_path):
    from rnnkit.data.timeseries import read_csv_column

    p = tmp_path / "g.csv"
    p.write_text("date,value\n2000-1,1.5\n\n2000-2,2.5\n2000-3,-3\n")
    assert read_csv_column(p).tolist() == [1.5, 2.5, -3.0]
    assert read_csv_column(p, "value").tolist() == [1.5, 2.5, -3.0]


def test_forecast_two_numeric_columns_still_need_column(tmp_path, capsys):
    csv = _series_csv(tmp_path / "two.csv")
    one_line(capsys, ["forecast", "--dataset", csv, "--out", tmp_path / "f", *TINY],
             "expected --column NAME", "t, value")


def _dup_csv(path, header, cells):
    """A CSV with ``header`` and 60 rows of ``cells(i)``, a list of cell texts."""
    path.write_text(header + "\n" + "".join(",".join(cells(i)) + "\n" for i in range(60)))
    return path


def test_forecast_csv_column_naming_two_columns_is_refused(tmp_path, capsys):
    """--column would read whichever of the two came first."""
    csv = _dup_csv(tmp_path / "d.csv", "time,value,value", lambda i: [f"2000-{i}", f"{i % 5}", f"{i % 3}"])
    one_line(capsys, ["forecast", "--dataset", csv, "--column", "value", "--out", tmp_path / "f", *TINY],
             "d.csv, line 1", "'value'", "columns 2 and 3", "--column 'value'")
    one_line(capsys, ["forecast", "--dataset", csv, "--out", tmp_path / "f", *TINY],       # both are numbers
             "d.csv: expected --column NAME", "the header gives 'value' to columns 2 and 3")
    assert not (tmp_path / "f").exists()


def test_forecast_csv_automatic_column_with_a_shared_name_is_refused(tmp_path, capsys):
    csv = _dup_csv(tmp_path / "d.csv", "date,value,value", lambda i: [f"2000-{i}", f"{i % 5}", f"n{i}"])
    one_line(capsys, ["forecast", "--dataset", csv, "--out", tmp_path / "f", *TINY],
             "d.csv, line 1", "'value'", "columns 2 and 3", "column 2 is the column of numbers read")
    assert not (tmp_path / "f").exists()


def test_forecast_csv_shared_name_of_other_columns_is_harmless(tmp_path):
    from rnnkit.data.timeseries import read_csv_column

    csv = _dup_csv(tmp_path / "d.csv", "value,note,note", lambda i: [f"{i % 5}", "a", "b"])
    assert read_csv_column(csv).tolist()[:6] == read_csv_column(csv, "value").tolist()[:6] == [0, 1, 2, 3, 4, 0]
    with pytest.raises(Exception, match=r"d.csv, line 1: .*'note' for columns 2 and 3"):
        read_csv_column(csv, "note")


def test_forecast_horizon_longer_than_test_tail_is_refused_before_training(tmp_path, capsys):
    csv = _series_csv(tmp_path / "s.csv", n=120)
    one_line(capsys, ["forecast", "--dataset", csv, "--column", "value", "--horizon", "30", "--test-size", "10",
                      "--window", "8", "--out", tmp_path / "f", *TINY],
             "--horizon 30", "--test-size 10")
    assert not (tmp_path / "f").exists()


def test_forecast_bad_data_with_overwrite_keeps_the_old_run(tmp_path, capsys):
    old = tmp_path / "f"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"kind": "forecaster"}))
    (old / "scores.json").write_text("{}")
    csv = _series_csv(tmp_path / "s.csv", bad_row=3)
    one_line(capsys, ["forecast", "--dataset", csv, "--column", "value", "--out", old, "--overwrite", *TINY],
             "s.csv, line 5")
    assert (old / "scores.json").exists()


# -- classify: .ts files ------------------------------------------------------------------------

TS_HEAD = """@problemName t
@univariate false
@dimensions 2
@equalLength true
@classLabel true a b c
@data
"""
TS_ROWS = ["0.1,0.2,0.3:1.0,1.1,1.2:a", "0.3,0.2,0.1:1.2,1.1,1.0:b", "0.5,0.5,0.5:0.1,0.2,0.3:c",
           "0.2,0.1,0.3:1.0,1.2,1.1:a"]


def _ts(tmp_path, rows=TS_ROWS, head=TS_HEAD, name="d.ts"):
    p = tmp_path / name
    p.write_text(head + "\n".join(rows) + "\n")
    return p


def _user_error(fn, *parts):
    with pytest.raises(R.UserError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    for p in parts:
        assert p in msg, msg
    return msg


def test_ts_label_outside_the_header_classes(tmp_path):
    p = _ts(tmp_path, TS_ROWS[:3] + ["0.2,0.1,0.3:1.0,1.2,1.1:z"])
    _user_error(lambda: R.read_ts(p), "d.ts, line 10", "'z'", "a, b, c")


def test_ts_header_classes_hold_for_good_files(tmp_path):
    xs, y = R.read_ts(_ts(tmp_path, TS_ROWS[:3] + ["0.2,0.1,0.3:1.0,1.2,1.1:A"]))   # aeon lower-cases labels
    assert y.tolist() == ["a", "b", "c", "a"] and xs[0].shape == (3, 2)


def test_ts_dimensions_other_than_the_header(tmp_path):
    p = _ts(tmp_path, head=TS_HEAD.replace("@dimensions 2", "@dimensions 5"))
    _user_error(lambda: R.read_ts(p), "d.ts, line 7", "@dimensions 5", "got 2")


def test_ts_line_missing_its_label(tmp_path):
    p = _ts(tmp_path, TS_ROWS[:3] + ["0.2,0.1,0.3:1.0,1.2,1.1"])
    _user_error(lambda: R.read_ts(p), "d.ts, line 10", "class label")


def test_ts_regression_targets_refused_by_classify(tmp_path, capsys):
    rows = [r.rsplit(":", 1)[0] + f":{i + 0.5}" for i, r in enumerate(TS_ROWS)]
    p = _ts(tmp_path, rows, TS_HEAD.replace("@classLabel true a b c", "@targetLabel true"))
    one_line(capsys, ["classify", "train", "--train", p, "--out", tmp_path / "o", *TINY],
             "d.ts", "class labels", "@targetLabel")
    assert not (tmp_path / "o").exists()


def test_ts_regression_targets_refused_by_classify_predict(tmp_path, capsys):
    """Predicting on a regression file is refused as training on one is, before any label is written (the
    targets would otherwise be scored as class names never seen in training)."""
    code = main([str(a) for a in ["classify", "train", "--train", _ts(tmp_path, TS_ROWS * 5), "--out", tmp_path / "o",
                                  *TINY, "--batch-size", 4]])
    err = capsys.readouterr().err
    assert code == 0, err
    rows = [r.rsplit(":", 1)[0] + f":{i + 0.5}" for i, r in enumerate(TS_ROWS)]
    p = _ts(tmp_path, rows, TS_HEAD.replace("@classLabel true a b c", "@targetLabel true"), name="r.ts")
    one_line(capsys, ["classify", "predict", tmp_path / "o", p, "--output", tmp_path / "labels.txt"],
             "r.ts", "class labels", "@targetLabel")
    assert not (tmp_path / "labels.txt").exists()


# -- classify: options and .npz -----------------------------------------------------------------


def test_classify_single_class_is_refused_before_the_run(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((12, 5, 2)).astype(np.float32)
    np.savez(tmp_path / "one.npz", x=x, y=np.array(["a"] * 12))
    one_line(capsys, ["classify", "train", "--train", tmp_path / "one.npz", "--out", tmp_path / "o", *TINY],
             "one.npz", "expected at least 2 classes, got 1", "'a'")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flag", ["--train", "--test", "--valid"])
def test_classify_empty_path_names_the_option(tmp_path, capsys, flag):
    argv = ["classify", "train", "--dataset", "dna", "--out", tmp_path / "o", *TINY, flag, ""]
    if flag != "--train":
        x = np.random.default_rng(0).standard_normal((12, 5, 2)).astype(np.float32)
        np.savez(tmp_path / "two.npz", x=x, y=np.array(["a", "b"] * 6))
        argv += ["--train", tmp_path / "two.npz"]
    one_line(capsys, argv, flag, "empty")
    assert not (tmp_path / "o").exists()


def test_classify_dna_length_names_the_option(tmp_path, capsys):
    one_line(capsys, ["classify", "train", "--dataset", "dna", "--length", "3", "--out", tmp_path / "o", *TINY],
             "--length", "at least 18", "got 3")


def test_classify_resume_on_another_kind_of_run_says_so(tmp_path, capsys):
    from rnnkit import io

    run = tmp_path / "s2s"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"kind": "seq2seq"}))
    io.save(run / "checkpoint.npz", {"kind": "seq2seq", "model_config": {"kind": "seq2seq"}, "config": {},
                                     "extra": {"data": {"train": "tsv/good.tsv"}}})
    x = np.random.default_rng(0).standard_normal((12, 5, 2)).astype(np.float32)
    np.savez(tmp_path / "two.npz", x=x, y=np.array(["a", "b"] * 6))
    one_line(capsys, ["classify", "train", "--train", tmp_path / "two.npz", "--out", run, "--resume", *TINY],
             "seq2seq run")


# -- tag: untagged plain CoNLL --------------------------------------------------------------------


def test_tag_untagged_plain_conll_message_fits_the_format(tmp_path, capsys):
    (tmp_path / "t.conll").write_text("big\nruns\n\nthe\ndog\n")
    err = one_line(capsys, ["tag", "train", "--train", tmp_path / "t.conll", "--out", tmp_path / "o", *TINY],
                   "t.conll", "expected tagged tokens", "CoNLL")
    assert "upos" not in err
    assert not (tmp_path / "o").exists()


def test_tag_untagged_conllu_still_names_upos(tmp_path, capsys):
    (tmp_path / "t.conllu").write_text("1\tbig\t_\t_\t_\t_\t_\t_\t_\t_\n2\truns\t_\t_\t_\t_\t_\t_\t_\t_\n\n")
    one_line(capsys, ["tag", "train", "--train", tmp_path / "t.conllu", "--out", tmp_path / "o", *TINY],
             "t.conllu", "upos")


def test_tag_eval_on_untagged_plain_conll_message_fits_the_format(tmp_path, capsys):
    (tmp_path / "g.conll").write_text("the DET\ndog NOUN\nruns VERB\n\na DET\ncat NOUN\nsleeps VERB\n")
    assert main(["tag", "train", "--train", str(tmp_path / "g.conll"), "--out", str(tmp_path / "run"), "--steps", "2",
                 "--hidden-size", "4", "--embed-size", "4", "--char-embed-size", "4", "--char-hidden-size", "4",
                 "--no-progress"]) == 0
    capsys.readouterr()
    (tmp_path / "u.conll").write_text("the\ndog\n")
    err = one_line(capsys, ["tag", "eval", tmp_path / "run", "--test", tmp_path / "u.conll", "--no-progress"],
                   "u.conll", "expected tagged tokens", "last column of CoNLL")
    assert "upos" not in err
