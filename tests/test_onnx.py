"""ONNX export: every graph passes onnx.checker and onnxruntime gives rnnkit's outputs (float32,
to 1e-5) on padded batches: the recurrent modules, every app model, the seq2seq decoder and the
character LM's sampling driven by a loop outside, the ``rnnkit export`` command and its errors."""
import subprocess
import sys

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import rnnkit.onnx as rx  # noqa: E402
from rnnkit.cli import main  # noqa: E402
from rnnkit.data import seq2seq as S  # noqa: E402
from rnnkit.data.labelled import Standardizer, pad_sequences  # noqa: E402
from rnnkit.data.tagging import make_batch  # noqa: E402
from rnnkit.data.text import CharVocab  # noqa: E402
from rnnkit.data.vocab import Vocab  # noqa: E402
from rnnkit.errors import UserError  # noqa: E402
from rnnkit.models.charlm import CharLM  # noqa: E402
from rnnkit.models.classifier import SequenceClassifier  # noqa: E402
from rnnkit.models.forecast import Forecaster  # noqa: E402
from rnnkit.models.sequence import SequenceModel  # noqa: E402
from rnnkit.models.seq2seq import Seq2Seq  # noqa: E402
from rnnkit.models.tagger import Tagger, tag_vocab  # noqa: E402
from rnnkit.nn import GRU, LSTM, RNN  # noqa: E402

LENGTHS = np.array([5, 1, 3, 4])        # padded batch of 4, a length-1 sequence among them


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def sessions(model):
    """``{graph: run(**feeds) -> {output: array}}``, each graph checked by onnx.checker first."""
    out = {}
    for name, proto in rx.graphs(model).items():
        onnx.checker.check_model(proto, full_check=True)
        assert proto.opset_import[0].version == rx.OPSET
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        out[name] = lambda sess=sess, names=names, **feeds: dict(zip(names, sess.run(None, feeds)))
    return out


def module(mode, layers, bidirectional, batch_first=False, bias=True):
    kw = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias, seed=1)
    if mode.startswith("rnn"):
        return RNN(3, 4, nonlinearity=mode[4:], **kw)
    if "reset_before" in mode:
        kw["reset_after"] = False
    cls = LSTM if mode.startswith("lstm") else GRU
    return cls(3, 4, gate="hard_sigmoid" if mode.endswith("hard") else "sigmoid", **kw)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("mode", ["rnn_tanh", "rnn_relu", "lstm", "gru", "lstm_hard", "gru_hard", "gru_reset_before",
                                  "gru_reset_before_hard"])
def test_recurrent_modules_match(mode, layers, bidirectional):
    m = module(mode, layers, bidirectional)
    rng = np.random.default_rng(0)
    rows, N = layers * m.num_directions, len(LENGTHS)
    x = rng.standard_normal((5, N, 3)).astype(np.float32) * 2
    states = [rng.standard_normal((rows, N, 4)).astype(np.float32) for _ in range(m.ops.n_states)]
    y, final = m(x, states[0] if len(states) == 1 else tuple(states), lengths=LENGTHS)
    m.clear_cache()
    feeds = dict(x=x, lengths=LENGTHS.astype(np.int32), **dict(zip(("h0", "c0"), states)))
    got = sessions(m)["rnn"](**feeds)
    close(got["y"], y)
    assert np.all(got["y"][LENGTHS[1]:, 1] == 0)               # padded steps are zero, as in rnnkit
    for name, want in zip(("h_n", "c_n"), final if isinstance(final, tuple) else (final,)):
        close(got[name], want)


@pytest.mark.parametrize("mode,bias", [("lstm", False), ("gru", True)])
def test_batch_first_and_no_bias(mode, bias):
    m = module(mode, 2, True, batch_first=True, bias=bias)
    x = np.random.default_rng(1).standard_normal((4, 5, 3)).astype(np.float32)     # (N, L, H_in)
    y, final = m(x, lengths=LENGTHS)
    m.clear_cache()
    zeros = np.zeros((4, 4, 4), np.float32)
    got = sessions(m)["rnn"](x=x, lengths=LENGTHS.astype(np.int32), h0=zeros,
                             **({"c0": zeros} if mode == "lstm" else {}))
    close(got["y"], y)
    close(got["h_n"], final[0] if mode == "lstm" else final)


def test_hard_sigmoid_is_onnx_hardsigmoid():
    from rnnkit.functional.activations import hard_sigmoid

    x = np.linspace(-5, 5, 101).astype(np.float32)
    a, b = rx.HARD_SIGMOID
    close(hard_sigmoid(x.copy()), np.clip(a * x + b, 0, 1))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_charlm_sequence_and_sampling_steps(cell):
    vocab = CharVocab.from_text("abcdefgh ")
    m = CharLM(len(vocab), embed_size=4, hidden_size=6, num_layers=2, cell=cell, seed=3)
    m.eval()
    run = sessions(m)
    rng = np.random.default_rng(2)
    x = rng.integers(0, len(vocab), (6, 3))
    states = [rng.standard_normal((2, 3, 6)).astype(np.float32) for _ in range(m.rnn.ops.n_states)]
    logits, final = m.forward(x, states[0] if cell == "gru" else tuple(states))
    m.clear_cache()
    got = run["sequence"](x=x, **dict(zip(("h0", "c0"), states)))
    close(got["logits"], logits)
    close(got["h_n"], final[0] if cell == "lstm" else final)

    # greedy sampling driven from outside: prime with the sequence graph, then step
    prime, n = "bad cab", 8
    want = m.sample(vocab, length=n, temperature=0, prime=prime)
    zeros = {k: np.zeros((2, 1, 6), np.float32) for k in ("h0", "c0")[:m.rnn.ops.n_states]}
    out = run["sequence"](x=vocab.encode(prime)[:, None], **zeros)
    last, state = out["logits"][-1], {"h0": out["h_n"], **({"c0": out["c_n"]} if cell == "lstm" else {})}
    ids = []
    for _ in range(n):
        ids.append(int(last[0].argmax()))
        out = run["step"](token=np.array([ids[-1]]), **state)
        last, state = out["logits"], {"h0": out["h_n"], **({"c0": out["c_n"]} if cell == "lstm" else {})}
    assert vocab.decode(ids) == want


def _raw_sequences(rng, D=2):
    return [rng.standard_normal((n, D)) * 3 + 5 for n in LENGTHS]


@pytest.mark.parametrize("pooling", ["last", "mean", "attention", "max"])
@pytest.mark.parametrize("cell,bidirectional,layers", [("lstm", True, 2), ("gru", False, 1), ("rnn_tanh", True, 1)])
def test_classifier_each_pooling(pooling, cell, bidirectional, layers):
    rng = np.random.default_rng(4)
    xs = _raw_sequences(rng)
    scaler = Standardizer.fit(xs)
    m = SequenceClassifier(2, 5, 3, cell=cell, num_layers=layers, bidirectional=bidirectional, pooling=pooling,
                           scaler=scaler.to_dict(), seed=5)
    m.eval()
    x, lengths = pad_sequences(scaler.transform(xs))
    want = m.forward(x, lengths)
    m.clear_cache()
    raw, _ = pad_sequences(xs)                                   # the graph standardises itself
    close(sessions(m)["classifier"](x=raw, lengths=lengths.astype(np.int32))["logits"], want)


def test_classifier_positions_readout():
    rng = np.random.default_rng(8)
    xs = [rng.standard_normal((7, 2)) * 3 + 5 for _ in range(4)]
    scaler = Standardizer.fit(xs)
    m = SequenceClassifier(2, 5, 3, cell="gru", bidirectional=True, pooling="positions", length=7,
                           scaler=scaler.to_dict(), seed=5)
    m.eval()
    x, lengths = pad_sequences(scaler.transform(xs))
    want = m.forward(x, lengths)
    m.clear_cache()
    raw, _ = pad_sequences(xs)
    close(sessions(m)["classifier"](x=raw, lengths=lengths.astype(np.int32))["logits"], want)


@pytest.mark.parametrize("strategy,horizon", [("direct", 3), ("recursive", 3), ("recursive", 1)])
def test_forecaster(strategy, horizon):
    rng = np.random.default_rng(6)
    series = np.cumsum(rng.standard_normal(60)) + 100.0
    m = Forecaster(window=8, horizon=horizon, cell="gru", hidden_size=5, num_layers=2, strategy=strategy, seed=7)
    m.fit_scaler(series[:40])
    m.eval()
    origins = np.array([10, 25, 59])
    want = m.predict(series, origins)
    windows = series[origins[None, :] - np.arange(7, -1, -1)[:, None]]     # (window, N)
    got = sessions(m)["forecaster"](series=windows)["forecast"]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sequence_model_last_valid_step():
    m = SequenceModel(3, 4, 2, "classification", cell="gru", bidirectional=True, gate="hard_sigmoid", seed=8)
    x = np.random.default_rng(8).standard_normal((5, 4, 3)).astype(np.float32)
    want = m.forward(x, LENGTHS)
    m.clear_cache()
    close(sessions(m)["sequence"](x=x, lengths=LENGTHS.astype(np.int32))["out"], want)


SENTS = [("The cat sat down".split(), "D N V P".split()), (["Hi"], ["X"]), ("a dog barks".split(), "D N V".split())]


@pytest.mark.parametrize("chars,cell,bidirectional", [(True, "lstm", True), (True, "gru", False), (False, "lstm", True)])
def test_tagger(chars, cell, bidirectional):
    words, charv = Vocab.build([t for t, _ in SENTS]), Vocab.build([c for t, _ in SENTS for c in t])
    m = Tagger(words, tag_vocab([g for _, g in SENTS]), charv, embed_size=3, char_embed_size=2 if chars else 0,
               char_hidden_size=3, hidden_size=4, num_layers=2, cell=cell, bidirectional=bidirectional, seed=9)
    m.eval()
    b = make_batch(SENTS, m.word_vocab, m.char_vocab if chars else None)
    want = m.forward(b)
    m.clear_cache()
    feeds = dict(words=b.words, lengths=b.lengths.astype(np.int32))
    if chars:
        feeds.update(chars=b.chars, char_lengths=b.char_lengths.astype(np.int32))
    close(sessions(m)["tagger"](**feeds)["logits"], want)


@pytest.mark.parametrize("cell,attention,bidirectional,layers", [
    ("gru", "general", True, 1), ("lstm", "additive", True, 2), ("gru", "concat", False, 2), ("lstm", "dot", False, 1)])
def test_seq2seq_encoder_and_decoder_steps_greedy(cell, attention, bidirectional, layers):
    sv, tv = S.task_vocab("dates")
    m = Seq2Seq(sv, tv, 5, 6, cell=cell, num_layers=layers, attention=attention, bidirectional=bidirectional, seed=10)
    m.eval()
    src, src_len = S.batch_arrays(S.dates(4, rng=1), sv, tv)[:2]
    want_ids, want_alpha, _ = m.greedy(src, src_len, max_len=7)
    run = sessions(m)
    src_len = src_len.astype(np.int32)
    state = run["encoder"](src=src, src_len=src_len)
    enc = state.pop("enc")
    tok, ids, alphas = np.full(src.shape[1], Vocab.BOS), [], []
    for _ in range(want_ids.shape[1]):                        # the loop outside the graphs
        out = run["decoder"](token=tok, enc=enc, src_len=src_len, **state)
        tok = out["logits"].argmax(-1)
        ids.append(tok)
        alphas.append(out["alpha"])
        state = {k: out[f"{k}_next"] for k in state}
    np.testing.assert_array_equal(np.stack(ids, axis=1), want_ids)
    close(np.stack(alphas), want_alpha)
    assert np.all(np.stack(alphas)[:, src_len.min():, np.argmin(src_len)] == 0)   # padded source: no attention


# -- the command line ----------------------------------------------------------------------------------
def rnnkit(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx_cli")
    (d / "t.txt").write_text("the cat sat on the mat. " * 20, encoding="utf-8")
    r = rnnkit("train", d / "t.txt", "--out", d / "run", "--steps", 3, "--hidden", 8, "--layers", 1,
               "--embed", 4, "--seq-len", 8, "--batch-size", 2, "--eval-every", 3, "--checkpoint-every", 3,
               "--no-progress")
    assert r.returncode == 0, r.stderr
    return d / "run"


def test_cli_export_charlm(run_dir, tmp_path):
    import json

    from rnnkit import runs

    r = rnnkit("export", run_dir, "--format", "onnx", "-o", tmp_path / "m.onnx")
    assert r.returncode == 0, r.stderr
    files = {p.name for p in tmp_path.iterdir()}
    assert files == {"m.sequence.onnx", "m.step.onnx"}
    proto = onnx.load(str(tmp_path / "m.step.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["rnnkit.kind"] == "charlm" and meta["rnnkit.graph"] == "step"
    vocab = CharVocab.from_dict(json.loads(meta["rnnkit.vocab"]))
    model = runs.load(run_dir)
    sess = ort.InferenceSession(str(tmp_path / "m.sequence.onnx"), providers=["CPUExecutionProvider"])
    x = vocab.encode("the mat")[:, None]
    zeros = np.zeros((1, 1, 8), np.float32)
    logits, _ = model.forward(x)
    close(sess.run(["logits"], {"x": x, "h0": zeros, "c0": zeros})[0], logits)


def test_cli_export_errors(run_dir, tmp_path, monkeypatch, capsys):
    r = rnnkit("export", tmp_path, "-o", tmp_path / "m.onnx")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert f"{tmp_path} is not an rnnkit run directory" in r.stderr
    # a cell without an ONNX counterpart (none of rnnkit's today: pretend the LSTM were one)
    monkeypatch.delitem(rx.CELLS, "lstm")
    assert main(["export", str(run_dir), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cell 'lstm' has no ONNX counterpart" in err[0]
    assert not list(tmp_path.glob("*.onnx"))
    # without the onnx package: one line naming the extra
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(run_dir), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'rnnkit[onnx]'" in err[0]


def test_a_projected_lstm_is_refused_in_one_line():
    with pytest.raises(ValueError, match="proj_size=2 has no ONNX counterpart"):
        rx.graphs(LSTM(3, 4, proj_size=2))


@pytest.mark.parametrize("pooling", ["last", "max"])
def test_classifier_with_conv_branch(pooling):
    """The LSTM-FCN branch in the graph: 'same'-padded Conv, the batch norm's running statistics,
    ReLU, zero past each length, the mean over the valid steps; odd and even kernels."""
    rng = np.random.default_rng(6)
    xs = _raw_sequences(rng)
    scaler = Standardizer.fit(xs)
    m = SequenceClassifier(2, 5, 3, cell="lstm", bidirectional=True, pooling=pooling, scaler=scaler.to_dict(),
                           conv_channels=(6, 4), conv_kernels=(4, 3), seed=5)
    x, lengths = pad_sequences(scaler.transform(xs))
    m.forward(x, lengths)                                        # training mode: the running statistics move
    m.clear_cache()
    m.eval()
    want = m.forward(x, lengths)
    m.clear_cache()
    raw, _ = pad_sequences(xs)
    close(sessions(m)["classifier"](x=raw, lengths=lengths.astype(np.int32))["logits"], want)


def test_python_export_keeps_a_file_when_asked_and_names_a_directory(tmp_path):
    m = LSTM(3, 4)
    (tmp_path / "m.onnx").write_bytes(b"mine")
    with pytest.raises(UserError, match=r"m.onnx exists; pass overwrite=True to replace it"):
        rx.export(m, tmp_path / "m.onnx", overwrite=False)
    assert (tmp_path / "m.onnx").read_bytes() == b"mine"
    rx.export(m, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() != b"mine"                 # the default replaces, as numpy.save
    with pytest.raises(UserError, match=r"is a directory; expected a file name"):
        rx.export(m, tmp_path)
