"""Text data (reading, vocabulary, TBPTT layout) and checkpoint files."""
import os

import numpy as np
import pytest

from rnnkit import io
from rnnkit.errors import UserError
from rnnkit.data.text import CharVocab, StreamBatches, pydoc_topics_text, read_text, split_ids


def test_read_text_errors(tmp_path):
    with pytest.raises(UserError, match="missing.txt: file not found"):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(UserError, match="expected a file, got a directory"):
        read_text(tmp_path)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_text(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match=r"not UTF-8.*0xe9 at offset 3"):
        read_text(tmp_path / "latin1.txt")
    (tmp_path / "ok.txt").write_text("héllo", encoding="utf-8")
    assert read_text(tmp_path / "ok.txt") == "héllo"


def test_vocab_roundtrip_and_unknown():
    v = CharVocab.from_text("hello world")
    assert v.decode(v.encode("hello")) == "hello"
    ids = v.encode("hex!")
    assert ids[2] == 0 and ids[3] == 0  # 'x' and '!' are unknown
    assert v.unknown("hex!") == {"x", "!"}
    assert CharVocab.from_dict(v.to_dict()).chars == v.chars


def test_pydoc_corpus_is_there():
    text = pydoc_topics_text()
    assert len(text) > 100_000 and "def " in text


def test_stream_batches_rows_are_contiguous_streams():
    ids = np.arange(101)
    data = StreamBatches(ids, batch_size=4, seq_len=7)  # 25 columns per row
    xs = np.concatenate([data.batch(w)[0] for w in range(len(data))], axis=0)  # (25, 4)
    ys = np.concatenate([data.batch(w)[1] for w in range(len(data))], axis=0)
    assert xs.shape == (25, 4)
    for b in range(4):
        np.testing.assert_array_equal(xs[:, b], np.arange(b * 25, (b + 1) * 25))
        np.testing.assert_array_equal(ys[:, b], xs[:, b] + 1)
    x0, _ = data.batch(0)
    assert x0.shape == (7, 4) and x0.flags.c_contiguous


def test_stream_batches_too_short():
    with pytest.raises(ValueError, match="too short"):
        StreamBatches(np.arange(3), batch_size=4, seq_len=2)


def test_split_ids_tail_is_validation():
    tr, va = split_ids(np.arange(100), 0.1)
    np.testing.assert_array_equal(va, np.arange(90, 100))
    assert len(tr) == 90
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        split_ids(np.arange(10), 1.5)


def test_checkpoint_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    tree = {"model": {"rnn.weight_ih_l0": rng.standard_normal((4, 3)).astype(np.float32)},
            "rng": [rng.bit_generator.state], "list": [1, 2.5, None, "x"],
            "carry": {"tuple": True, "arrays": [np.ones((1, 2, 3)), np.zeros((1, 2, 3))]}, "n": np.int64(7)}
    path = tmp_path / "c.npz"
    io.save(path, tree)
    back = io.load(path)
    np.testing.assert_array_equal(back["model"]["rnn.weight_ih_l0"], tree["model"]["rnn.weight_ih_l0"])
    assert back["model"]["rnn.weight_ih_l0"].dtype == np.float32
    assert back["rng"][0] == rng.bit_generator.state
    assert back["list"] == [1, 2.5, None, "x"] and back["n"] == 7
    assert back["carry"]["tuple"] is True and back["carry"]["arrays"][0].shape == (1, 2, 3)
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []


def test_checkpoint_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        io.load(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an rnnkit checkpoint"):
        io.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not an rnnkit checkpoint"):
        io.load(tmp_path / "other.npz")


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    io.save(path, {"a": np.ones(2)})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        io.save(path, {"a": np.zeros(2)})
    np.testing.assert_array_equal(io.load(path)["a"], np.ones(2))
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []
