"""Prepared corpora: encoded in chunks (multi-byte characters across chunk borders included),
memory-mapped, and trained / evaluated on exactly as the text they encode."""
import json

import numpy as np
import pytest

from rnnkit.apps.lm import text_digest
from rnnkit.cli import main
from rnnkit.data import corpus as C

TEXT = "Grüße aus Köln — naïve café, 東京 and emoji 🙂. It was the best of times. " * 80


def test_prepared_ids_equal_the_text_encoded_whole(tmp_path, monkeypatch):
    src = tmp_path / "t.txt"
    src.write_text(TEXT, encoding="utf-8")
    monkeypatch.setattr(C, "CHUNK", 7)            # chunk borders fall inside multi-byte characters
    info = C.prepare(src, tmp_path / "c", progress=False)
    whole = C.Corpus.from_text(TEXT)
    mapped = C.Corpus.open(tmp_path / "c")
    assert isinstance(mapped.ids, np.memmap) and mapped.ids.dtype == np.uint8
    np.testing.assert_array_equal(mapped.ids, whole.ids)
    assert mapped.vocab.itos == whole.vocab.itos and mapped.digest == whole.digest == text_digest(TEXT)
    assert info["characters"] == len(TEXT) and info["bytes"] == len(TEXT)


def test_training_and_eval_on_a_prepared_corpus_equal_the_text(tmp_path, capsys):
    src = tmp_path / "t.txt"
    src.write_text(TEXT, encoding="utf-8")
    assert main(["prepare", str(src), "-o", str(tmp_path / "c"), "--no-progress"]) == 0
    args = ["--steps", "8", "--hidden", "12", "--layers", "1", "--embed", "6", "--seq-len", "16", "--batch-size", "4",
            "--eval-every", "4", "--no-progress"]
    assert main(["train", str(src), "--out", str(tmp_path / "a"), *args]) == 0
    assert main(["train", str(tmp_path / "c"), "--out", str(tmp_path / "b"), *args]) == 0

    def losses(run):
        return [(r["step"], r.get("loss"), r.get("val_loss")) for r in map(json.loads, open(run / "metrics.jsonl"))]

    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "a"), str(tmp_path / "c"), "--no-progress"]) == 0
    on_corpus = capsys.readouterr().out
    assert main(["eval", str(tmp_path / "a"), str(src), "--no-progress"]) == 0
    assert capsys.readouterr().out == on_corpus
    # a run trained on the text resumes on its prepared corpus (same digest)
    assert main(["train", str(tmp_path / "c"), "--out", str(tmp_path / "a"), "--resume", "--steps", "10",
                 "--no-progress"]) == 0


def test_eval_maps_another_vocabulary(tmp_path, capsys):
    """A corpus with characters the model never saw: they are read as unknown and counted."""
    src = tmp_path / "t.txt"
    src.write_text(TEXT, encoding="utf-8")
    args = ["--steps", "2", "--hidden", "8", "--layers", "1", "--embed", "4", "--seq-len", "8", "--batch-size", "2",
            "--no-progress"]
    assert main(["train", str(src), "--out", str(tmp_path / "r"), *args]) == 0
    other = tmp_path / "o.txt"
    other.write_text("xyz ÆØÅ " * 50 + TEXT[:500], encoding="utf-8")
    assert main(["prepare", str(other), "-o", str(tmp_path / "oc"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "r"), str(tmp_path / "oc"), "--no-progress"]) == 0
    a = capsys.readouterr().out
    assert main(["eval", str(tmp_path / "r"), str(other), "--no-progress"]) == 0
    assert capsys.readouterr().out == a and "outside the model's vocabulary" in a


@pytest.mark.parametrize("setup,msg", [
    (lambda d: (d / "t.txt").write_bytes(b"ok \xff bad"), "undecodable byte 0xff at offset 3"),
    (lambda d: (d / "t.txt").write_bytes(b""), "is empty"),
    (lambda d: ((d / "t.txt").write_text("abc"), (d / "c").mkdir(), (d / "c" / "x").write_text("mine")),
     "expected a new or empty directory, got one with other files"),
])
def test_prepare_errors_are_one_line(tmp_path, capsys, setup, msg):
    setup(tmp_path)
    assert main(["prepare", str(tmp_path / "t.txt"), "-o", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1, err


def test_a_damaged_corpus_is_one_line(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("abc" * 100)
    assert main(["prepare", str(tmp_path / "t.txt"), "-o", str(tmp_path / "c")]) == 0
    assert main(["prepare", str(tmp_path / "t.txt"), "-o", str(tmp_path / "c")]) == 2
    assert "already holds a prepared corpus" in capsys.readouterr().err
    with open(tmp_path / "c" / "ids.bin", "r+b") as f:
        f.truncate(10)
    assert main(["train", str(tmp_path / "c"), "--out", str(tmp_path / "r"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "expected 300 bytes (300 ids of uint8), got 10" in err and len(err.strip().splitlines()) == 1


def test_an_interrupted_preparation_leaves_nothing_that_blocks_the_next(tmp_path, capsys, monkeypatch):
    src = tmp_path / "t.txt"
    src.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "c"
    calls = []

    def interrupted(self, text, dtype):
        calls.append(1)
        raise KeyboardInterrupt
    monkeypatch.setattr(C.CharVocab, "encode_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        C.prepare(src, out, progress=False)
    assert calls and not out.exists()                      # the directory it made, and its temporary, gone
    monkeypatch.undo()
    out.mkdir()                                            # what a kill (no cleanup) leaves behind
    (out / ".ids.bin.tmp").write_bytes(b"\0" * 100)
    assert main(["train", str(out), "--out", str(tmp_path / "r"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "expected a text file or a prepared corpus directory (with corpus.json), got a directory without " \
           "corpus.json (an unfinished `rnnkit prepare`: run it again)" in err
    assert main(["prepare", str(src), "-o", str(out), "--no-progress"]) == 0    # replaced, no --overwrite needed
    assert sorted(p.name for p in out.iterdir()) == ["corpus.json", "ids.bin"]
    np.testing.assert_array_equal(C.Corpus.open(out).ids, C.Corpus.from_text(TEXT).ids)


def test_a_user_s_file_named_like_the_ids_is_not_taken_for_a_leftover(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("abc" * 100)
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "ids.bin").write_text("mine")
    assert main(["prepare", str(tmp_path / "t.txt"), "-o", str(tmp_path / "u")]) == 2
    assert "got one with other files (ids.bin)" in capsys.readouterr().err
    assert (tmp_path / "u" / "ids.bin").read_text() == "mine"


def test_ids_without_their_description_are_replaced_with_overwrite(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("abc" * 100)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "ids.bin").write_bytes(b"\0" * 300)          # a preparation cut before corpus.json
    assert main(["train", str(tmp_path / "c"), "--out", str(tmp_path / "r"), "--steps", "1"]) == 2
    assert "run it again with --overwrite" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "t.txt"), "-o", str(tmp_path / "c"), "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["corpus.json", "ids.bin"]
