"""Seq2seq: the date generator, hand-written backward against finite differences, greedy and beam
search properties, decoding stops at the end token, and the commands end to end at a tiny size."""
import datetime as dt
import json

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data import seq2seq as S
from rnnkit.functional.losses import cross_entropy
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
    assert not any(sv.unknown(s) or tv.unknown(t) for s, t in S.dates(300, rng=2))


def test_reverse_and_sort_tasks():
    for s, t in S.reverse(50, rng=0):
        assert t == s[::-1] and 1 <= len(s) <= 30
    for s, t in S.sort(50, rng=0):
        assert t == "".join(sorted(s))


def test_batch_arrays_layout():
    sv, tv = S.task_vocab("reverse")
    src, src_len, tin, tout = S.batch_arrays([("123", "321"), ("4", "4")], sv, tv)
    assert src.shape == (3, 2) and list(src_len) == [3, 1] and tin.shape == (4, 2)
    assert tin[0, 0] == S.Vocab.BOS and tout[3, 0] == S.Vocab.EOS and tout[1, 1] == S.Vocab.EOS
    assert tout[2, 1] == -100 and tv.decode(list(tout[:, 0])) == "321"


@pytest.mark.parametrize("cell,attention,bidirectional", [("gru", "general", True), ("lstm", "additive", True),
                                                           ("gru", "concat", False), ("lstm", "dot", False)])
def test_seq2seq_gradients_finite_differences(cell, attention, bidirectional):
    sv, tv = S.task_vocab("dates")
    m = Seq2Seq(len(sv), len(tv), 5, 4, cell=cell, attention=attention, bidirectional=bidirectional,
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


@pytest.fixture(scope="module")
def small_model():
    """A reversal model trained briefly: good enough that decoding is not trivial."""
    from rnnkit.optim import Adam, clip_grad_norm

    sv, tv = S.task_vocab("reverse")
    m = Seq2Seq(len(sv), len(tv), 8, 16, seed=0)
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
        n = g.index(S.Vocab.EOS) + 1 if S.Vocab.EOS in g else len(g)
        b1, a1, s1 = m.beam_search(sv.encode(s), beam=1, max_len=10)
        assert b1 == g[:n] and s1 == pytest.approx(scores[j] / n ** 0.7, rel=1e-4)
        np.testing.assert_allclose(a1, alphas[:n, : len(s), j], rtol=1e-4, atol=1e-6)   # batch of 1 vs 15, float32
        b5, a5, s5 = m.beam_search(sv.encode(s), beam=5, max_len=10)
        assert s5 >= s1 - 1e-12
        assert a5.shape == (len(b5), len(s)) and np.allclose(a5.sum(1), 1)


def test_decoding_stops_at_the_end_token(small_model):
    m, sv, tv = small_model
    m.out.params["bias"][...] = 0
    m.out.params["bias"][S.Vocab.EOS] = 100.0               # EOS always wins
    ids, alphas, _ = m.greedy(*S.batch_arrays([("123", "321"), ("45", "54")], sv, tv)[:2], max_len=10)
    assert ids.shape == (2, 1) and alphas.shape[0] == 1 and np.all(ids[:, 0] == S.Vocab.EOS)
    b, _, _ = m.beam_search(sv.encode("123"), beam=3, max_len=10)
    assert b == [S.Vocab.EOS]


def test_seq2seq_commands_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["seq2seq", "train", "--task", "dates", "--steps", "3", "--hidden", "8", "--embed", "4",
                 "--n-test", "14", "--out", str(run), "--no-progress"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["accuracy_by_format"]) == {n for n, _ in S.DATE_FORMATS}
    capsys.readouterr()
    assert main(["seq2seq", "translate", str(run), "24 November 2026", "--beam", "3"]) == 0
    out = capsys.readouterr().out.strip()
    assert set(out) <= set("0123456789-")
    png = tmp_path / "a.png"
    assert main(["seq2seq", "attention", str(run), "Nov 24, 2026", "--png", str(png)]) == 0
    assert png.stat().st_size > 0
    capsys.readouterr()
    assert main(["seq2seq", "translate", str(run), "24 Novémber 2026"]) == 0
    assert "read as <unk>: 'é'" in capsys.readouterr().err
    assert main(["seq2seq", "translate", str(run), "9" * 40]) == 0
    assert "more than any training source" in capsys.readouterr().err
    assert main(["seq2seq", "translate", str(run), " "]) == 2
    assert "expected at least one non-space character" in capsys.readouterr().err
    assert main(["seq2seq", "translate", str(tmp_path), "x"]) == 2
    assert "not a seq2seq run directory" in capsys.readouterr().err


def test_tag_commands_end_to_end(tmp_path, capsys):
    run = tmp_path / "tag"
    assert main(["tag", "train", "--length", "24", "--steps", "3", "--hidden", "4", "--n-test", "10",
                 "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "unidirectional gru" in out and "bidirectional gru" in out and "motif-start F1" in out
    assert main(["tag", "eval", str(run), "--n", "10"]) == 0
    assert "bidirectional - unidirectional F1" in capsys.readouterr().out
    assert main(["tag", "eval", str(tmp_path)]) == 2
    assert "not a tag run directory" in capsys.readouterr().err
