"""Seq2seq: the generated tasks, the pair adapter (pure in (i, epoch), length buckets, split by
source), the hand-written backward against finite differences, greedy and beam search
properties, scoring against several references, and the commands end to end at a tiny size:
train, resume bit for bit, translate from a file and stdin with scores, refusals and every kind
of bad input (exit 2, one line naming the file and line)."""
import datetime as dt
import io
import json

import numpy as np
import pytest

from rnnkit import runs
from rnnkit.apps import seq2seq as app
from rnnkit.cli import main
from rnnkit.data import seq2seq as S
from rnnkit.data.vocab import Vocab
from rnnkit.functional.losses import cross_entropy
from rnnkit.models.base import model_from_config
from rnnkit.models.seq2seq import Seq2Seq


def test_date_formats_render_the_same_date():
    d = dt.date(2026, 11, 24)                      # a Tuesday
    rng = np.random.default_rng(0)
    texts = {name: f(d, rng).lower() for name, f in S.DATE_FORMATS}
    assert texts["d Month yyyy"] == "24 november 2026"
    assert texts["Mon d, yyyy"] == "nov 24, 2026"
    assert texts["dd/mm/yyyy"] == "24/11/2026"
    assert texts["yyyy.mm.dd"] == "2026.11.24"
    assert texts["weekday, month d yyyy"] == "tuesday, november 24 2026"
    assert texts["dth of Mon yy"] == "24th of nov 26"
    assert S._ordinal(1) == "1st" and S._ordinal(12) == "12th" and S._ordinal(23) == "23rd"
    for src, tgt in S.dates(300, rng=1):
        iso = dt.date.fromisoformat(tgt)
        assert 1970 <= iso.year <= 2069 and src
    sv, tv = S.task_vocab("dates")
    assert isinstance(sv, Vocab) and not any(sv.unknown(s) or tv.unknown(t) for s, t in S.dates(300, rng=2))


def test_reverse_and_sort_tasks():
    for s, t in S.reverse(50, rng=0):
        assert t == s[::-1] and 1 <= len(s) <= 30
    for s, t in S.sort(50, rng=0):
        assert t == "".join(sorted(s))
    pairs = S.generated_pairs("reverse", 20, [0, 1])
    assert pairs == S.generated_pairs("reverse", 20, [0, 1]) != S.generated_pairs("reverse", 20, [0, 2])
    assert all(isinstance(s, list) and t == s[::-1] for s, t in pairs)


def test_batch_arrays_layout():
    sv, tv = S.task_vocab("reverse")
    src, src_len, tin, tout = S.batch_arrays([("123", "321"), ("4", "4")], sv, tv)
    assert src.shape == (3, 2) and list(src_len) == [3, 1] and tin.shape == (4, 2)
    assert tin[0, 0] == Vocab.BOS and tout[3, 0] == Vocab.EOS and tout[1, 1] == Vocab.EOS
    assert tout[2, 1] == -100 and tv.decode_text(tout[:, 0]) == "321" and src[1, 1] == Vocab.PAD


def test_pair_batches_are_a_pure_function_of_index_and_epoch():
    pairs = S.generated_pairs("reverse", 203, 0)
    sv, tv = S.task_vocab("reverse")
    a, b = S.PairBatches(pairs, sv, tv, 8, seed=3), S.PairBatches(pairs, sv, tv, 8, seed=3)
    assert len(a) == 26
    for i, epoch in [(5, 0), (0, 2), (25, 1), (5, 0)]:             # any order, another object: the same batch
        for x, y in zip(a.batch(i, epoch), b.batch(i, epoch)):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.batch(0, 0)[0], a.batch(0, 1)[0])  # epochs differ

    def seen(epoch):
        out = []
        for i in range(len(a)):
            src, n, _, _ = a.batch(i, epoch)
            out += ["".join(sv.decode(src[:k, j])) for j, k in enumerate(n)]
        return sorted(out)
    assert seen(0) == seen(1) == sorted("".join(s) for s, _ in pairs)   # every pair once an epoch
    # length buckets: much less padding than batches in random order
    pad = lambda d: sum(d.batch(i, 0)[0].size for i in range(len(d)))  # noqa: E731
    plain = sum(S.batch_arrays(pairs[k:k + 8], sv, tv)[0].size for k in range(0, len(pairs), 8))
    assert pad(a) < 0.75 * plain
    v = S.PairBatches(pairs, sv, tv, 64, shuffle=False)
    assert [x.shape for x in v.batch(0, 0)] == [x.shape for x in v.batch(0, 7)]


def test_split_by_source_keeps_a_source_on_one_side():
    pairs = [(list(w), list(p)) for w, p in [("ab", "x"), ("ab", "y"), ("cd", "z"), ("ef", "x"), ("gh", "w"),
                                               ("ij", "v"), ("ab", "u"), ("kl", "t")]]
    for seed in range(5):
        train, valid = S.split_by_source(pairs, 0.3, seed)
        assert len(train) + len(valid) == len(pairs) and valid and train
        assert not {tuple(s) for s, _ in train} & {tuple(s) for s, _ in valid}
    assert S.split_by_source(pairs, 0.3, 1) == S.split_by_source(pairs, 0.3, 1)
    with pytest.raises(ValueError, match="at least 2 distinct sources"):
        S.split_by_source(pairs[:2], 0.5)
    assert S.default_max_len([("a", "x" * 4)]) == 14 and S.default_max_len([("a", "x" * 40)]) == 60


def test_scores_count_any_reference_and_the_closest_one():
    assert app.edit_distance("kitten", "sitting") == 3 and app.edit_distance([], ["a"]) == 1
    refs = S.group_references([("r", "e", "a", "d"), ("r", "e", "a", "d"), ("c", "a", "t")],
                              [["R", "IY", "D"], ["R", "EH", "D"], ["K", "AE", "T"]])
    out = {("r", "e", "a", "d"): ["R", "EH", "D"], ("c", "a", "t"): ["K", "AH", "T", "S"]}
    s = app.score(out, refs)
    assert s["exact_match"] == 0.5 and s["sources"] == 2
    assert s["token_errors"] == 2 and s["reference_tokens"] == 6 and s["token_error_rate"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("cell,attention,bidirectional,layers", [("gru", "general", True, 1), ("lstm", "additive", True, 2),
                                                                 ("gru", "concat", False, 2), ("lstm", "dot", False, 1)])
def test_seq2seq_gradients_finite_differences(cell, attention, bidirectional, layers):
    sv, tv = S.task_vocab("dates")
    m = Seq2Seq(sv, tv, 5, 4, cell=cell, num_layers=layers, attention=attention, bidirectional=bidirectional,
                dtype=np.float64, seed=0)
    b = S.batch_arrays(S.dates(3, rng=0), sv, tv)
    m.zero_grad()
    m.train_step(b)

    def f():
        lg = m.forward(b[0], b[1], b[2])
        m.clear_cache()
        return cross_entropy(lg, b[3])[0]

    rng = np.random.default_rng(0)
    for name, p, g in m.named_parameters():
        rows = np.unique(b[0]) if name == "src_embed.weight" else (np.unique(b[2]) if name == "tgt_embed.weight" else None)
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in p.shape)
            if rows is not None:
                idx = (int(rng.choice(rows)),) + idx[1:]
            old = p[idx]
            p[idx] = old + 1e-6
            fp = f()
            p[idx] = old - 1e-6
            fm = f()
            p[idx] = old
            assert g[idx] == pytest.approx((fp - fm) / 2e-6, rel=1e-5, abs=2e-9), (name, idx)


def test_evaluate_is_the_teacher_forced_summed_loss_and_config_rebuilds():
    sv, tv = S.task_vocab("dates")
    m = Seq2Seq(sv, tv, 6, 8, max_len=12, teacher_forcing=0.5, seed=1)
    b = S.batch_arrays(S.dates(5, rng=0), sv, tv)
    m.eval()
    loss, state, n, sums = m.evaluate(b)
    mean, _ = cross_entropy(m.forward(b[0], b[1], b[2], teacher_forcing=1.0), b[3])
    m.clear_cache()
    assert state is None and n == 55 == sums["tokens"] and loss == pytest.approx(mean * n, rel=1e-5)
    met = m.metrics(loss / n, sums)
    assert met["ppl"] == pytest.approx(np.exp(loss / n)) and met["token_acc"] == sums["correct"] / 55
    m2 = model_from_config(json.loads(json.dumps(m.config)))
    assert m2.src_vocab == sv and m2.tgt_vocab == tv and m2.max_len == 12 and m2.config == m.config
    with pytest.raises(ValueError, match="expected the specials"):
        Seq2Seq(Vocab("ab", specials=("<unk>",)), tv)


@pytest.fixture(scope="module")
def small_model():
    """A reversal model trained briefly: good enough that decoding is not trivial."""
    from rnnkit.optim import Adam, clip_grad_norm

    sv, tv = S.task_vocab("reverse")
    m = Seq2Seq(sv, tv, 8, 16, seed=0)
    opt = Adam(m, lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(60):
        m.zero_grad()
        m.train_step(S.batch_arrays(S.reverse(32, rng, max_len=6), sv, tv))
        clip_grad_norm(m, 5)
        opt.step()
    m.eval()
    return m, sv, tv


def test_beam_one_equals_greedy_and_beam_never_scores_worse(small_model):
    m, sv, tv = small_model
    pairs = S.reverse(15, rng=5, max_len=6)
    src, src_len, _, _ = S.batch_arrays(pairs, sv, tv)
    ids, alphas, scores = m.greedy(src, src_len, max_len=10)
    for j, (s, _) in enumerate(pairs):
        g = list(ids[j])
        n = g.index(Vocab.EOS) + 1 if Vocab.EOS in g else len(g)
        b1, a1, s1 = m.beam_search(sv.encode(s), beam=1, max_len=10)
        assert b1 == g[:n] and s1 == pytest.approx(scores[j] / n ** 0.7, rel=1e-4)
        np.testing.assert_allclose(a1, alphas[:n, : len(s), j], rtol=1e-4, atol=1e-6)   # batch of 1 vs 15, float32
        b5, a5, s5 = m.beam_search(sv.encode(s), beam=5, max_len=10)
        assert s5 >= s1 - 1e-12
        assert a5.shape == (len(b5), len(s)) and np.allclose(a5.sum(1), 1)
    texts = ["".join(s) for s, _ in pairs]
    assert m.predict(texts) == [tv.decode_text(list(ids[j])) for j in range(len(pairs))]


def test_decoding_stops_at_the_end_token(small_model):
    m, sv, tv = small_model
    m.out.params["bias"][...] = 0
    m.out.params["bias"][Vocab.EOS] = 100.0               # EOS always wins
    ids, alphas, _ = m.greedy(*S.batch_arrays([("123", "321"), ("45", "54")], sv, tv)[:2], max_len=10)
    assert ids.shape == (2, 1) and alphas.shape[0] == 1 and np.all(ids[:, 0] == Vocab.EOS)
    b, _, _ = m.beam_search(sv.encode("123"), beam=3, max_len=10)
    assert b == [Vocab.EOS]
    m.out.params["bias"][Vocab.EOS] = -100.0              # EOS never comes: the length limit stops it
    assert m.limit([3, 5]) == 20 and m.greedy(*S.batch_arrays([("123", "3")], sv, tv)[:2])[0].shape == (1, 16)


# -- the commands end to end ------------------------------------------------------------------------

WORDS = ["ab", "ba", "abc", "cab", "bca", "aab", "cc", "acb", "bb", "ca", "bac", "abca", "cba", "aa", "bcab", "ac"]
PHONES = {"a": "AH", "b": "B", "c": "K"}


def _pairs_text(words, second=()):
    """word<TAB>phones lines (a toy G2P); words in ``second`` get a second pronunciation."""
    lines = []
    for w in words:
        lines.append(f"{w}\t{' '.join(PHONES[c] for c in w)}")
        if w in second:
            lines.append(f"{w}\t{' '.join(PHONES[c] for c in w)} S")
    return "\n".join(lines) + "\n"


TINY = ["--hidden", "8", "--embed", "4", "--batch-size", "4", "--eval-every", "3", "--no-progress",
        "--src-tokens", "chars", "--tgt-tokens", "words"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run on a pairs file (chars -> words), with its files."""
    d = tmp_path_factory.mktemp("s2s")
    (d / "train.tsv").write_text(_pairs_text(WORDS, second={"ab", "cc"}))
    (d / "valid.tsv").write_text(_pairs_text(["abc", "bab", "cca"]))
    assert main(["seq2seq", "train", "--train", str(d / "train.tsv"), "--valid", str(d / "valid.tsv"), *TINY,
                 "--steps", "6", "--out", str(d / "run")]) == 0
    return d


def test_train_writes_a_run_with_vocabularies_and_scores(trained, capsys):
    run = trained / "run"
    for name in ("config.json", "checkpoint.npz", "best.npz", "metrics.jsonl", "scores.json"):
        assert (run / name).exists(), name
    model = runs.load(run)
    assert model.config["kind"] == "seq2seq" and model.src_tokens == "chars" and model.tgt_tokens == "words"
    assert model.tgt_vocab.itos[4:] == ["AH", "B", "K", "S"]
    assert model.max_len == 4 + 10                            # the longest target (bcab) + 10
    scores = json.loads((run / "scores.json").read_text())["valid"]
    assert scores["sources"] == 3 and 0 <= scores["exact_match"] <= 1 and scores["token_error_rate"] >= 0
    val = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "val_loss" in line]
    assert [r["step"] for r in val] == [3, 6] and all("val_token_acc" in r for r in val)
    assert isinstance(model.predict(["abc"])[0], str)


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, monkeypatch, capsys):
    from rnnkit import io as rio
    from rnnkit.train import Trainer

    (tmp_path / "train.tsv").write_text(_pairs_text(WORDS * 2, second={"ab"}))
    args = ["seq2seq", "train", "--train", str(tmp_path / "train.tsv"), "--valid-fraction", "0.2", *TINY,
            "--steps", "10", "--dropout", "0.3", "--num-layers", "2", "--teacher-forcing", "0.7"]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    one = Trainer.train_one

    def interrupted(self):                      # Ctrl-C as step 5 starts
        if self.step == 5:
            raise KeyboardInterrupt
        return one(self)
    monkeypatch.setattr(Trainer, "train_one", interrupted)
    assert main(args + ["--out", str(tmp_path / "part")]) == 130
    monkeypatch.setattr(Trainer, "train_one", one)
    assert main(["seq2seq", "train", "--out", str(tmp_path / "part"), "--resume", "--no-progress"]) == 0
    for name in ("best.npz", "checkpoint.npz"):
        a, b = rio.load(tmp_path / "whole" / name), rio.load(tmp_path / "part" / name)
        assert a["model"].keys() == b["model"].keys()
        for k in a["model"]:
            assert np.array_equal(a["model"][k], b["model"][k]), (name, k)
    strip = lambda p: [{k: v for k, v in json.loads(s).items() if k not in ("elapsed", "tokens_per_s")}  # noqa: E731
                       for s in (p / "metrics.jsonl").read_text().splitlines()]
    assert strip(tmp_path / "whole") == strip(tmp_path / "part")
    assert (tmp_path / "whole" / "scores.json").read_text() == (tmp_path / "part" / "scores.json").read_text()
    with open(tmp_path / "train.tsv", "a") as f:
        f.write("abc\tAH B K\n")
    capsys.readouterr()
    assert main(["seq2seq", "train", "--out", str(tmp_path / "part"), "--resume", "--steps", "12"]) == 2
    assert "train.tsv is not the file the run in" in capsys.readouterr().err


def test_translate_from_file_and_stdin_with_scores(trained, capsys, monkeypatch):
    run = str(trained / "run")
    model = runs.load(run)
    test = trained / "test.tsv"
    test.write_text("ab\tAH B\nab\tAH K\nbca\tB K AH\n")
    capsys.readouterr()
    assert main(["seq2seq", "translate", run, "--input", str(test), "--scores", str(trained / "s.json")]) == 0
    out, err = capsys.readouterr()
    want = model.predict(["ab", "ab", "bca"])
    assert out.splitlines() == want
    refs = {("a", "b"): [["AH", "B"], ["AH", "K"]], ("b", "c", "a"): [["B", "K", "AH"]]}
    expect = app.score({("a", "b"): want[0].split(), ("b", "c", "a"): want[2].split()}, refs)
    assert f"exact match {expect['exact_match']:.4f} ({expect['correct']}/2 sources)" in err
    assert json.loads((trained / "s.json").read_text())["token_errors"] == expect["token_errors"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"ab\ncab\n")))
    assert main(["seq2seq", "translate", run, "--input", "-", "--output", str(trained / "o.txt")]) == 0
    assert (trained / "o.txt").read_text().splitlines() == model.predict(["ab", "cab"])
    assert main(["seq2seq", "translate", run, "abc", "--beam", "3"]) == 0
    assert capsys.readouterr().out.strip() == model.predict(["abc"], beam=3)[0]
    png = trained / "a.png"
    assert main(["seq2seq", "attention", run, "abca", "--png", str(png)]) == 0
    assert png.stat().st_size > 0


def test_translate_warns_once_about_unknown_symbols(trained, capsys):
    run = str(trained / "run")
    test = trained / "unk.tsv"
    test.write_text("abx\tAH B\nxyz\tAH\nab\tAH ZH\nabababababab\tAH\n")
    capsys.readouterr()
    assert main(["seq2seq", "translate", run, "--input", str(test)]) == 0
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(out.splitlines()) == 4 and len(warnings) == 3
    assert "read as <unk>: 'xyz' (in 2 sources)" in warnings[0]
    assert "1 source longer than any training source (4 tokens)" in warnings[1]
    assert "1 targets in" in warnings[2] and "'ZH'" in warnings[2] and "count as wrong" in warnings[2]


def test_dates_task_is_the_default(tmp_path, capsys):
    run = tmp_path / "dates"
    assert main(["seq2seq", "train", "--steps", "2", "--hidden", "8", "--embed", "4", "--n-train", "64",
                 "--n-valid", "16", "--n-test", "14", "--out", str(run), "--no-progress"]) == 0
    scores = json.loads((run / "scores.json").read_text())
    assert set(scores["dates_by_format"]) == {n for n, _ in S.DATE_FORMATS} and scores["valid"]["sources"] == 16
    capsys.readouterr()
    assert main(["seq2seq", "translate", str(run), "24 November 2026", "--beam", "3"]) == 0
    assert set(capsys.readouterr().out.strip()) <= set("0123456789-")


def test_refusals(trained, tmp_path, capsys):
    args = ["seq2seq", "train", "--train", str(trained / "train.tsv"), *TINY, "--steps", "2"]
    assert main(args + ["--out", str(trained / "run")]) == 2
    assert "already holds a seq2seq run; pass --resume" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"kind": "classifier"}))
    assert main(["seq2seq", "translate", str(other), "ab"]) == 2
    assert "holds a classifier run, not a seq2seq run" in capsys.readouterr().err
    assert main(args + ["--out", str(other), "--resume"]) == 2
    assert "holds a classifier run, not a seq2seq run" in capsys.readouterr().err
    assert main(["seq2seq", "translate", str(tmp_path), "ab"]) == 2
    assert "not an rnnkit run directory" in capsys.readouterr().err


def _one_line_error(capsys, argv, *expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnnkit seq2seq: error: "), err
    for e in expected:
        assert e in err, err


@pytest.mark.parametrize("content,expected", [
    (None, ["file not found"]),
    ("", ["expected 'source<TAB>target' lines, got an empty file"]),
    ("ab\tAH B\nabc AH B K\n", ["data.tsv, line 2", "without a tab"]),
    ("ab\tAH B\n\tAH\n", ["data.tsv, line 2", "non-empty source"]),
    ("ab\tAH B\nab\t\n", ["data.tsv, line 2", "non-empty target"]),
    ("ab\tAH B\nab\t   \n", ["data.tsv, line 2", "non-empty target, got only spaces"]),
    ("ab\tAH\tB\n", ["data.tsv, line 1", "2 tabs"]),
])
def test_bad_training_files(tmp_path, capsys, content, expected):
    path = tmp_path / "data.tsv"
    if content is not None:
        path.write_text(content)
    _one_line_error(capsys, ["seq2seq", "train", "--train", str(path), *TINY, "--steps", "1",
                             "--out", str(tmp_path / "run")], *expected)
    _one_line_error(capsys, ["seq2seq", "train", "--train", str(tmp_path / "ok.tsv"), "--valid", str(path), *TINY,
                             "--steps", "1", "--out", str(tmp_path / "run")], "ok.tsv: file not found")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content,argv,expected", [
    (None, [], ["in.txt: file not found"]),
    ("", [], ["in.txt: expected one source a line, got an empty file"]),
    ("ab\tAH B\ncab\n", [], ["in.txt, line 2", "expected 'source<TAB>target' as on line 1"]),
    ("ab\n\tAH\n", [], ["in.txt, line 2", "non-empty source"]),
    ("ab\tAH\nab\t \n", [], ["in.txt, line 2", "non-empty target, got only spaces"]),
    ("ab\n", ["abc"], ["expected one source TEXT or --input FILE, got both"]),
])
def test_bad_translate_inputs(trained, capsys, content, argv, expected):
    path = trained / "in.txt"
    path.unlink(missing_ok=True)
    if content is not None:
        path.write_text(content)
    _one_line_error(capsys, ["seq2seq", "translate", str(trained / "run"), *argv, "--input", str(path)], *expected)


def test_bad_arguments(trained, tmp_path, capsys):
    run = str(trained / "run")
    _one_line_error(capsys, ["seq2seq", "translate", run, "  "], "expected at least one non-space character")
    _one_line_error(capsys, ["seq2seq", "translate", run], "expected one source TEXT or --input FILE, got neither")
    _one_line_error(capsys, ["seq2seq", "train", "--train", str(trained / "train.tsv"), "--tokens", "words",
                             "--src-tokens", "chars", "--out", str(tmp_path / "r")], "expected it or --src-tokens")
    _one_line_error(capsys, ["seq2seq", "train", "--task", "sort", "--tokens", "words", "--out", str(tmp_path / "r")],
                    "describe a --train file")
    _one_line_error(capsys, ["seq2seq", "train", "--task", "sort", "--train", str(trained / "train.tsv"),
                             "--out", str(tmp_path / "r")], "expected one data source, got both")
    _one_line_error(capsys, ["seq2seq", "train", "--out", str(trained / "run"), "--resume", "--overwrite"],
                    "expected one of them, got both")


def test_translate_keeps_blank_lines_so_outputs_match_inputs(trained, capsys):
    run = str(trained / "run")
    model = runs.load(run)
    src = trained / "blank.txt"
    src.write_text("ab\n\n  \nbca\n\nab\n\n\n")
    capsys.readouterr()
    assert main(["seq2seq", "translate", run, "--input", str(src)]) == 0
    out, err = capsys.readouterr()
    a, b = model.predict(["ab", "bca"])
    assert out.split("\n") == [a, "", "", b, "", a, "", "", ""]                    # 8 lines in, 8 out
    assert "5 blank lines (the output keeps them as empty lines, so its lines match the input's)" in err
