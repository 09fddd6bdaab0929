"""The one Vocab: ids, encoding (list and vectorised), decoding, saving; CharVocab as a Vocab."""
import json

import numpy as np
import pytest

from rnnkit.data.text import UNK, CharVocab, pydoc_topics_text
from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError


def test_layout_specials_then_sorted_tokens():
    v = Vocab(["b", "a", "c", "a", "<eos>"])
    assert v.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c"]
    assert [v.stoi[t] for t in ("<pad>", "<bos>", "<eos>", "<unk>")] == [Vocab.PAD, Vocab.BOS, Vocab.EOS, Vocab.UNK]
    assert len(v) == 7 and v.unk_id == 3 and v.eos_id == 2


def test_build_counts_tokens_and_applies_min_count():
    v = Vocab.build(["abca", "cd"], min_count=2)             # strings are character sequences
    assert v.itos[4:] == ["a", "c"]
    w = Vocab.build([["the", "cat"], ["the", "dog"]], specials=("<pad>", "<unk>"))
    assert w.itos == ["<pad>", "<unk>", "cat", "dog", "the"] and w.unk_id == 1
    with pytest.raises(UserError, match="min_count: expected an integer >= 1, got 0"):
        Vocab.build(["a"], min_count=0)


def test_encode_decode_and_unknown():
    v = Vocab("hello")
    ids = v.encode("hex!")
    assert ids == [v.stoi["h"], v.stoi["e"], Vocab.UNK, Vocab.UNK]
    assert v.unknown("hex!x") == ["!", "x"]
    assert v.decode([Vocab.BOS, v.stoi["h"], Vocab.UNK, v.stoi["o"], Vocab.EOS, v.stoi["l"]]) == ["h", "o"]
    assert v.decode([v.stoi["h"], Vocab.EOS, v.stoi["l"]], stop_at_eos=False) == ["h", "l"]
    assert v.decode_text(np.array([v.stoi["o"], v.stoi["h"]])) == "oh"
    w = Vocab(["new", "york"])
    assert w.decode_text(w.encode(["new", "york"]), sep=" ") == "new york"
    with pytest.raises(UserError, match=r"expected ids in \[0, 8\), got 8"):
        v.decode([8])


def test_encode_array_matches_encode_on_any_text():
    v = Vocab("abc é中\U0001F600")
    text = "abz é中\U0001F600\U0001F601\x00\ufffd" + "c" * 3
    got = v.encode_array(text)
    assert got.dtype == np.int64 and got.tolist() == v.encode(text)
    assert v.encode_array(text, dtype=np.int32).dtype == np.int32
    assert v.encode_array("").shape == (0,)


def test_without_unk_unknown_tokens_are_an_error():
    v = Vocab("ab", specials=("<pad>",), unk=None)
    assert v.encode("ba") == [2, 1] and v.encode_array("ba").tolist() == [2, 1]
    with pytest.raises(UserError, match=r"no unknown token\), got \['c'\]"):
        v.encode("abc")
    with pytest.raises(UserError, match=r"got \['c'\]"):
        v.encode_array("abc")


def test_dict_round_trip_is_exact_and_json_able():
    for v in (Vocab("hello world"), Vocab(["x", "y"], specials=("<pad>",), unk=None),
              Vocab.build([["a", "b"]], specials=("<s>", "?"), unk="?")):
        d = json.loads(json.dumps(v.to_dict()))
        w = Vocab.from_dict(d)
        assert w == v and w.itos == v.itos and w.unk_id == v.unk_id and w.eos_id == v.eos_id
    assert Vocab.from_itos(Vocab("ba").itos) == Vocab("ab")


@pytest.mark.parametrize("make,match", [
    (lambda: Vocab.from_itos(["a", "<pad>", "<bos>", "<eos>", "<unk>"]), r"expected the specials \['<pad>'"),
    (lambda: Vocab.from_itos(["<pad>", "<bos>", "<eos>", "<unk>", "a", "a"]), r"unique tokens, got \['a'\]"),
    (lambda: Vocab("ab", specials=("<pad>",)), "expected unk to be one of the specials"),
    (lambda: Vocab([1, 2]), r"expected string tokens, got 1 \(int\)"),
    (lambda: Vocab.from_dict({"chars": ["a"]}), "expected a dict with 'itos', 'specials' and 'unk'"),
])
def test_bad_vocabularies(make, match):
    with pytest.raises(UserError, match=match):
        make()


class _OldSeq2SeqVocab:
    """What data/seq2seq.py's own Vocab did before it switched to this one: the reference."""

    def __init__(self, chars):
        self.itos = ["<pad>", "<bos>", "<eos>", "<unk>"] + sorted(set(chars))
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    def encode(self, s):
        return [self.stoi.get(c, 3) for c in s]

    def unknown(self, s):
        return sorted({c for c in s if c not in self.stoi})

    def decode(self, ids):
        out = []
        for i in ids:
            if i == 2:
                break
            if i >= 4:
                out.append(self.itos[i])
        return "".join(out)


@pytest.mark.parametrize("chars", ["0123456789", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,./-"])
def test_drop_in_for_the_old_seq2seq_vocab(chars):
    old = _OldSeq2SeqVocab(chars)
    for new in (Vocab(chars), Vocab.from_itos(old.itos)):
        assert new.itos == old.itos and (new.PAD, new.BOS, new.EOS, new.UNK) == (0, 1, 2, 3)
        for text in ["Sunday, March 3 1999", "07/03/2045", "?? zz", ""]:
            ids = old.encode(text)
            assert new.encode(text) == ids and new.unknown(text) == old.unknown(text)
            assert new.decode_text(ids + [Vocab.EOS, 5]) == old.decode(ids + [Vocab.EOS, 5])
            assert new.decode_text([Vocab.BOS, Vocab.PAD] + ids) == old.decode([Vocab.BOS, Vocab.PAD] + ids)


def _old_char_ids(vocab_text, text):
    """CharVocab's ids before it became a Vocab: the loop over a dict."""
    chars = [UNK] + sorted(set(vocab_text) - {UNK})
    index = {c: i for i, c in enumerate(chars)}
    return np.fromiter((index.get(c, 0) for c in text), dtype=np.int64, count=len(text)), chars


def test_charvocab_ids_are_unchanged():
    train = pydoc_topics_text()[:50_000]
    text = train[-3000:] + "ünknown\U0001F600 chars \ufffd\x00" + train[:2000]
    want, chars = _old_char_ids(train, text)
    v = CharVocab.from_text(train)
    got = v.encode(text)
    assert v.chars == chars and got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    assert (got == 0).sum() >= 4


def test_charvocab_keeps_its_public_behaviour():
    v = CharVocab.from_text("hello world")
    assert isinstance(v, Vocab) and v.chars[0] == UNK and v.UNK == 0 and v.unk_id == 0
    assert v.decode(v.encode("hello")) == "hello"
    assert v.decode(v.encode("hex")) == "he\ufffd"                 # unknown shows, not skipped
    assert v.unknown("hex!") == {"x", "!"}
    assert v.to_dict() == {"chars": v.chars} and v.index["h"] == v.stoi["h"]
    saved = json.loads(json.dumps({"chars": [UNK, " ", "d", "e", "h", "l", "o", "r", "w"]}))   # an old run's vocab
    assert CharVocab.from_dict(saved) == v and CharVocab.from_dict(saved).chars == v.chars
    assert CharVocab.from_text("ba\ufffd").chars == [UNK, "a", "b"]
