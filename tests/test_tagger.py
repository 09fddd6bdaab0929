"""Tagger: central differences on every parameter, a PyTorch reference (packed character and
sentence LSTMs), padding invariance, overfitting; the adapter; the ``rnnkit tag`` commands."""
import numpy as np
import pytest
import torch

from rnnkit.data.tagging import IGNORE, TaggedBatch, TaggedBatches, make_batch, token_positions
from rnnkit.data.vocab import Vocab
from rnnkit.functional.losses import cross_entropy
from rnnkit.models.tagger import Tagger, tag_vocab

from .helpers import numeric_grad

SENTS = [  # ragged sentence lengths (4, 1, 3, 2) and word lengths (1 to 6 characters)
    ("The cat sat down".split(), "D N V P".split()),
    (["Hi"], ["X"]),
    ("a dog barks".split(), "D N V".split()),
    ("cats nap".split(), "N V".split()),
]


def vocabs(sents=SENTS):
    words = Vocab.build([t for t, _ in sents])
    chars = Vocab.build([c for t, _ in sents for c in t])
    return words, chars, tag_vocab([g for _, g in sents])


def tiny(cell="lstm", bidirectional=True, chars=True, num_layers=1, dtype=np.float64, seed=0, **kw):
    w, c, t = vocabs()
    return Tagger(w, t, c, embed_size=3, char_embed_size=2 if chars else 0, char_hidden_size=3, hidden_size=4,
                  num_layers=num_layers, cell=cell, bidirectional=bidirectional, dtype=dtype, seed=seed, **kw)


def batch_of(model, sents=SENTS):
    return make_batch(sents, model.word_vocab, model.char_vocab if model.chars else None, model.tag_vocab)


def loss_of(model, batch):
    logits = model.forward(batch)
    model.clear_cache()
    return cross_entropy(logits, batch.tags, ignore_index=IGNORE)[0]


CONFIGS = [("lstm", True, True, 1), ("lstm", False, True, 1), ("lstm", True, False, 1), ("lstm", False, False, 1),
           ("gru", True, True, 2), ("rnn_tanh", False, True, 1)]


@pytest.mark.parametrize("cell,bidirectional,chars,layers", CONFIGS)
def test_central_differences_every_parameter(cell, bidirectional, chars, layers):
    model = tiny(cell, bidirectional, chars, layers)
    batch = batch_of(model)
    model.zero_grad()
    model.train_step(batch)
    grads = {k: g.copy() for k, g in model.grad_dict().items()}
    names = [name for name, _, _ in model.named_parameters()]
    assert any(n.startswith("char_rnn.") for n in names) == chars
    for name, p, _ in model.named_parameters():
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            num[idx] = numeric_grad(lambda: loss_of(model, batch), p, idx)
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=name)


class TorchTagger(torch.nn.Module):
    """The same model written with torch.nn, packed sequences for both recurrent layers; its
    parameter names are the Tagger's, so state dicts move across unchanged."""

    def __init__(self, m: Tagger, cell_cls):
        super().__init__()
        self.word_embed = torch.nn.Embedding(len(m.word_vocab), m.word_embed.embedding_dim)
        if m.chars:
            self.char_embed = torch.nn.Embedding(len(m.char_vocab), m.char_embed.embedding_dim)
            self.char_rnn = cell_cls(m.char_rnn.input_size, m.char_rnn.hidden_size, bidirectional=True)
        self.rnn = cell_cls(m.rnn.input_size, m.rnn.hidden_size, m.rnn.num_layers, bidirectional=m.rnn.bidirectional)
        self.head = torch.nn.Linear(m.head.in_features, m.head.out_features)
        self.chars = m.chars
        self.double()

    def forward(self, b: TaggedBatch):
        pack = torch.nn.utils.rnn.pack_padded_sequence
        L, N = b.words.shape
        x = self.word_embed(torch.tensor(b.words))                                  # (L, N, E)
        if self.chars:
            e = self.char_embed(torch.tensor(b.chars))                              # (C, M, E_c)
            _, final = self.char_rnn(pack(e, torch.tensor(b.char_lengths), enforce_sorted=False))
            h_n = final[0] if isinstance(final, tuple) else final                   # (2, M, H_c)
            enc = torch.cat([h_n[0], h_n[1]], dim=1)
            t, n = (torch.tensor(a) for a in token_positions(b.lengths, L))
            grid = torch.zeros(L, N, enc.shape[1], dtype=enc.dtype).index_put((t, n), enc)
            x = torch.cat([x, grid], dim=2)
        y, _ = self.rnn(pack(x, torch.tensor(b.lengths), enforce_sorted=False))
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=L)
        logits = self.head(y)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 torch.tensor(b.tags).reshape(-1), ignore_index=IGNORE)


TORCH_CELLS = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}


@pytest.mark.parametrize("cell,bidirectional,chars,layers", CONFIGS)
def test_matches_pytorch_float64(cell, bidirectional, chars, layers):
    model = tiny(cell, bidirectional, chars, layers, seed=3)
    torch.manual_seed(1)
    ref = TorchTagger(model, TORCH_CELLS[cell])
    theirs = ref.state_dict()
    assert list(theirs) == list(model.state_dict())
    model.load_state_dict({k: v.numpy() for k, v in theirs.items()})
    batch = batch_of(model)
    model.zero_grad()
    loss, _, count = model.train_step(batch)
    tloss = ref(batch)
    tloss.backward()
    assert count == 10
    assert abs(loss - tloss.item()) < 1e-12
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(model.grad_dict()[name], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def padded(b: TaggedBatch, extra_steps=2, extra_chars=3) -> TaggedBatch:
    """The same batch with more padding: ``extra_steps`` positions after every sentence and
    ``extra_chars`` characters after every word."""
    L, N = b.words.shape
    words = np.concatenate([b.words, np.full((extra_steps, N), Vocab.PAD)])
    tags = np.concatenate([b.tags, np.full((extra_steps, N), IGNORE)])
    chars = np.concatenate([b.chars, np.full((extra_chars, b.chars.shape[1]), Vocab.PAD)])
    return TaggedBatch(words, b.lengths, chars, b.char_lengths, tags)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_padding_changes_nothing(bidirectional):
    model = tiny("lstm", bidirectional, True)
    b = batch_of(model)
    outs = []
    for batch in (b, padded(b)):
        model.zero_grad()
        logits = model.forward(batch)
        model.clear_cache()
        loss, _, _ = model.train_step(batch)
        outs.append((logits[: b.words.shape[0]], loss, {k: g.copy() for k, g in model.grad_dict().items()}))
    (l1, loss1, g1), (l2, loss2, g2) = outs
    mask = b.tags != IGNORE
    np.testing.assert_allclose(l1[mask], l2[mask], rtol=0, atol=1e-14)
    assert abs(loss1 - loss2) < 1e-14
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_a_sentence_is_tagged_alike_alone_or_in_a_batch():
    model = tiny("gru", True, True, 2, seed=4)
    together = model.forward(batch_of(model))
    model.clear_cache()
    for n, s in enumerate(SENTS):
        alone = model.forward(batch_of(model, [s]))
        model.clear_cache()
        np.testing.assert_allclose(alone[:, 0], together[: len(s[0]), n], rtol=1e-12, atol=1e-13)


def test_overfits_a_few_sentences():
    from rnnkit.optim import Adam

    model = tiny("lstm", True, True, dtype=np.float32, seed=2)
    batch = batch_of(model)
    opt = Adam(model, lr=0.05)
    for _ in range(60):
        model.zero_grad()
        loss, _, _ = model.train_step(batch)
        opt.step()
    assert loss < 0.05
    assert model.predict([t for t, _ in SENTS]) == [g for _, g in SENTS]
    total, _, n, sums = model.evaluate(batch)
    assert model.metrics(total / n, sums) == {"accuracy": 1.0}


def test_config_round_trip_and_unknown_tokens():
    from rnnkit.models.base import model_from_config

    model = tiny("lstm", True, True, seed=5)
    again = model_from_config(model.config, dtype=np.float64)
    again.load_state_dict(model.state_dict())
    sents = [["The", "zebra", "sat"], ["Ω"]]          # an unknown word, an unknown character
    assert model.predict(sents) == again.predict(sents)
    assert model.unknown_words(sents) == 2
    assert [len(t) for t in model.predict(sents)] == [3, 1]
    with pytest.raises(ValueError, match="sentence 1: expected at least one token"):
        model.predict([["a"], []])


def test_token_positions_are_time_major():
    t, n = token_positions(np.array([2, 1, 3]), 3)
    assert list(zip(t, n)) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 2)]


def test_batches_are_seeded_and_cover_every_sentence():
    w, c, t = vocabs()
    data = TaggedBatches(SENTS, w, c, t, batch_size=3, seed=7, word_dropout=0.25)
    assert len(data) == 2
    seen = sum(int(data.batch(i, 1).lengths.size) for i in range(len(data)))
    assert seen == len(SENTS)
    a, b = data.batch(0, 1), data.batch(0, 1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(data.order(0), data.order(1)) or len(SENTS) < 3
    # word dropout: only <unk> replaces a word, characters stay; without it, nothing changes
    plain = TaggedBatches(SENTS, w, c, t, batch_size=3, seed=7)
    drops = 0
    for e in range(20):
        x, y = data.batch(0, e), plain.batch(0, e)
        changed = x.words != y.words
        assert np.all(x.words[changed] == Vocab.UNK)
        assert np.array_equal(x.chars, y.chars)
        drops += int(changed.sum())
    assert drops > 0


# -- the commands ------------------------------------------------------------------------------

import json  # noqa: E402

from rnnkit import io as rio  # noqa: E402
from rnnkit.cli import main  # noqa: E402

TRAIN_CONLLU = """# sent_id = 1
# text = The cat sat.
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tcat\tcat\tNOUN\tNN\t_\t3\tnsubj\t_\t_
3\tsat\tsit\tVERB\tVBD\t_\t0\troot\t_\tSpaceAfter=No
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = 2
1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tdo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\trun\trun\tVERB\tVB\t_\t0\troot\t_\t_

1\tA\ta\tDET\tDT\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_
3\truns\trun\tVERB\tVBZ\t_\t0\troot\t_\t_

1\tDogs\tdog\tNOUN\tNNS\t_\t2\tnsubj\t_\t_
2\tsleep\tsleep\tVERB\tVBP\t_\t0\troot\t_\t_
3\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_\t_

1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tdogs\tdog\tNOUN\tNNS\t_\t3\tnsubj\t_\t_
3\tsat\tsit\tVERB\tVBD\t_\t0\troot\t_\t_
"""

TEST_CONLL = """The DET
cats NOUN
run VERB
. PUNCT

A DET
bird NOUN
flies VERB
! INTJ
"""

SMALL = ["--hidden-size", "4", "--embed-size", "3", "--char-embed-size", "2", "--char-hidden-size", "2",
         "--batch-size", "2", "--no-progress", "--eval-every", "2"]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.conllu").write_text(TRAIN_CONLLU, encoding="utf-8")
    (tmp_path / "test.conll").write_text(TEST_CONLL, encoding="utf-8")
    return tmp_path


def tag_train(files, out, *extra):
    return main(["tag", "train", "--train", str(files / "train.conllu"), "--test", str(files / "test.conll"),
                 "--out", str(out), *SMALL, *extra])


def weights(path):
    return rio.load(str(path))["model"]


def test_train_scores_and_resume_bit_for_bit(files, capsys):
    common = ("--dropout", "0.3", "--num-layers", "2")
    assert tag_train(files, files / "whole", "--steps", "4", *common) == 0
    out = capsys.readouterr()
    assert "accuracy" in out.out and "OOV accuracy" in out.out and "macro F1" in out.out
    assert "INTJ" in out.err and "counted as errors" in out.err            # the unseen test tag, one line
    scores = json.loads((files / "whole" / "scores.json").read_text())
    assert scores["tokens"] == 8 and scores["unseen_tags"] == ["INTJ"]
    assert scores["oov_tokens"] == 5                                        # cats . bird flies ! (the '.' is known)
    assert set(scores["per_tag"]) >= {"DET", "NOUN", "VERB", "PUNCT", "INTJ"} and 0 <= scores["macro_f1"] <= 1
    assert tag_train(files, files / "split", "--steps", "2", *common) == 0
    assert main(["tag", "train", "--out", str(files / "split"), "--resume", "--steps", "4", "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    for name in ("checkpoint.npz", "best.npz"):
        a, b = weights(files / "whole" / name), weights(files / "split" / name)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), name
    cfg = json.loads((files / "whole" / "config.json").read_text())
    assert cfg["kind"] == "tagger" and cfg["model"]["num_layers"] == 2 and cfg["model"]["chars"] is True


def test_predict_file_and_stdin(files, capsys, monkeypatch):
    import io as pyio

    run = files / "run"
    assert tag_train(files, run, "--steps", "2") == 0
    capsys.readouterr()
    assert main(["tag", "predict", str(run), str(files / "test.conll")]) == 0
    out = capsys.readouterr()
    blocks = out.out.strip("\n").split("\n\n")
    assert [[line.split("\t")[0] for line in b.split("\n")] for b in blocks] == [
        ["The", "cats", "run", "."], ["A", "bird", "flies", "!"]]
    assert out.err.count("warning") == 2 and "5 of 8 tokens" in out.err and "accuracy" in out.err
    (files / "plain.txt").write_text("The dog runs .\n\n  Cats sleep  \n", encoding="utf-8")
    assert main(["tag", "predict", str(run), str(files / "plain.txt"), "--output", str(files / "o.tsv")]) == 0
    written = (files / "o.tsv").read_text()
    assert written.count("\n\n") == 2 and written.startswith("The\t") and "Cats\t" in written
    assert "accuracy" not in capsys.readouterr().out                          # no gold, no scores
    monkeypatch.setattr("sys.stdin", pyio.TextIOWrapper(pyio.BytesIO(TEST_CONLL.replace(" ", "\t").encode())))
    assert main(["tag", "predict", str(run), "-"]) == 0
    assert capsys.readouterr().out.startswith("The\t")
    assert main(["tag", "eval", str(run)]) == 0
    assert "macro F1" in capsys.readouterr().out


def test_dna_default_task(tmp_path, capsys):
    run = tmp_path / "dna"
    assert main(["tag", "train", "--dna-length", "18", "--dna-train", "12", "--dna-test", "6", "--steps", "2",
                 "--hidden-size", "3", "--embed-size", "2", "--no-progress", "--out", str(run)]) == 0
    assert "motif-start F1" in capsys.readouterr().out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["chars"] is False and cfg["model"]["char_vocab"] is None
    assert main(["tag", "eval", str(run)]) == 0
    assert "motif-start F1" in capsys.readouterr().out


def test_refusals(files, capsys):
    run = files / "run"
    assert tag_train(files, run, "--steps", "1") == 0
    capsys.readouterr()
    assert tag_train(files, run, "--steps", "1") == 2
    assert "already holds a tagger run" in capsys.readouterr().err
    resume = ["tag", "train", "--out", str(run), "--resume", "--steps", "2", "--no-progress"]
    for changed, name in ((["--valid", str(files / "test.conll")], "valid"), (["--batch-size", "3"], "batch-size"),
                          (["--word-dropout", "0"], "word-dropout"), (["--unidirectional"], "bidirectional"),
                          (["--column", "xpos"], "column")):
        assert main(resume + changed) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"cannot change on resume: {name} " in err, err
    (files / "train.conllu").write_text(TRAIN_CONLLU.replace("cat", "cow"), encoding="utf-8")
    assert main(resume) == 2
    assert "content has changed" in capsys.readouterr().err
    other = files / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"kind": "charlm"}))
    assert main(["tag", "predict", str(other), str(files / "test.conll")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a charlm run, not a tagger run" in err


@pytest.mark.parametrize("name,content,expect", [
    ("missing.conllu", None, "missing.conllu: file not found"),
    ("empty.conllu", "", "empty.conllu: expected CoNLL token lines, got an empty file"),
    ("ragged.conll", "The DET\ncat NOUN extra\n", "ragged.conll, line 2: expected 2 columns"),
    ("ragged.conllu", "1\tThe\tthe\tDET\n", "ragged.conllu, line 1: expected 10 tab-separated columns"),
    ("comments.conllu", "# only a comment\n\n", "comments.conllu: expected at least one sentence"),
    ("untagged.conll", "The\ncat\n", "untagged.conll: expected tagged tokens"),
])
def test_bad_training_files_are_one_line(files, capsys, name, content, expect):
    if content is not None:
        (files / name).write_text(content, encoding="utf-8")
    rc = main(["tag", "train", "--train", str(files / name), "--out", str(files / "r"), *SMALL, "--steps", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and expect in err, err
    assert not (files / "r").exists()


def test_bad_prediction_input_is_one_line(files, capsys):
    run = files / "run"
    assert tag_train(files, run, "--steps", "1") == 0
    capsys.readouterr()
    (files / "bad.conll").write_text("The DET\n\ncat NOUN x\n", encoding="utf-8")
    for path, expect in [(files / "nope.txt", "nope.txt: file not found"),
                         (files / "bad.conll", "bad.conll, line 3: expected 2 columns")]:
        assert main(["tag", "predict", str(run), str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expect in err, err
    assert main(["tag", "train", "--test", str(files / "test.conll"), "--out", str(files / "x")]) == 2
    assert "--test: expected --train FILE" in capsys.readouterr().err


def test_a_column_that_holds_no_tags_is_named(files, capsys):
    """--column on the token column, or on one with a single value, trains nothing worth having."""
    (files / "one.conll").write_text("The X\ndog X\n\nA X\ncat X\n")
    for train, column, msg in (("train.conllu", "2", "expected tags in"), ("train.conllu", "form", "expected tags in"),
                               ("one.conll", "2", "expected at least 2 distinct tags to tell apart, got 1: 'X'")):
        assert main(["tag", "train", "--train", str(files / train), "--out", str(files / "r"), "--column", column,
                     "--steps", "2", *SMALL]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, (column, err)
        assert not (files / "r").exists()
    (files / "mixed.txt").write_text("The dog runs .\nA cat\tsleeps .\n")
    assert tag_train(files, files / "ok", "--steps", "2") == 0
    capsys.readouterr()
    assert main(["tag", "predict", str(files / "ok"), str(files / "mixed.txt")]) == 2
    assert "(read as CoNLL because a line holds a tab; --format lines reads one sentence a line)" in \
        capsys.readouterr().err
    assert main(["tag", "predict", str(files / "ok"), str(files / "mixed.txt"), "--format", "lines"]) == 0
    assert main(["seq2seq", "attention", str(files / "ok"), "abc", "--png", str(files / "a.jpg")]) == 2
    assert "--png " + str(files / "a.jpg") + ": expected a file name ending in .png" in capsys.readouterr().err
