"""rnnkit <-> PyTorch both ways: to_torch / from_torch give the same outputs and bit-identical
weights; state_dict(format="torch") loads into torch; what torch cannot express is one line."""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.interop import from_torch, to_torch
from rnnkit.models import CharLM
from rnnkit.models.classifier import SequenceClassifier

RNNS = [(rnnkit.RNN, {"nonlinearity": "relu"}), (rnnkit.RNN, {}), (rnnkit.GRU, {"bidirectional": True}),
        (rnnkit.LSTM, {"num_layers": 2}), (rnnkit.LSTM, {"proj_size": 3, "bidirectional": True, "num_layers": 2}),
        (rnnkit.LSTM, {"batch_first": True, "bias": False})]


def same_weights(a: dict, b: dict):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


@pytest.mark.parametrize("cls,kw", RNNS, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recurrent_layers_round_trip(cls, kw, dtype):
    ours = cls(4, 6, dtype=dtype, seed=1, **kw)
    theirs = to_torch(ours)
    x = np.random.default_rng(0).standard_normal((5, 3, 4)).astype(dtype)
    y, _ = ours(x)
    yt, _ = theirs(torch.from_numpy(x))
    np.testing.assert_allclose(yt.detach().numpy(), y, rtol=1e-6, atol=1e-6)
    back = from_torch(theirs)
    assert type(back) is cls and back.dtype == np.dtype(dtype)
    same_weights(back.state_dict(), ours.state_dict())
    np.testing.assert_array_equal(back(x)[0], y)


def test_torch_modules_come_over_with_their_configuration():
    t = torch.nn.LSTM(3, 7, 2, proj_size=2, bidirectional=True, batch_first=True, dtype=torch.float64)
    ours = from_torch(t)
    assert (ours.proj_size, ours.num_layers, ours.bidirectional, ours.batch_first) == (2, 2, True, True)
    x = np.random.default_rng(1).standard_normal((2, 5, 3))
    np.testing.assert_allclose(ours(x)[0], t(torch.from_numpy(x))[0].detach().numpy(), rtol=1e-12, atol=1e-12)
    for layer in (torch.nn.Linear(3, 4), torch.nn.Embedding(9, 5), torch.nn.RNN(3, 4, nonlinearity="relu")):
        same_weights(from_torch(layer).state_dict(), {k: v.detach() for k, v in layer.state_dict().items()})


def test_state_dict_as_tensors_loads_into_torch():
    ours = rnnkit.GRU(3, 4, 2, seed=0)
    sd = ours.state_dict(format="torch")
    assert all(isinstance(v, torch.Tensor) for v in sd.values())
    theirs = torch.nn.GRU(3, 4, 2)
    theirs.load_state_dict(sd)                         # strict: every name and shape matches
    with pytest.raises(ValueError, match="expected 'numpy' or 'torch'"):
        ours.state_dict(format="jax")


def test_char_lm_twin():
    ours = CharLM(20, 8, 16, 2, "lstm", seed=0)
    theirs = to_torch(ours)
    x = np.random.default_rng(0).integers(0, 20, (7, 3))
    logits, (h, c) = ours(x)
    lt, (ht, ct) = theirs(torch.from_numpy(x))
    np.testing.assert_allclose(lt.detach().numpy(), logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ct.detach().numpy(), c, rtol=1e-5, atol=1e-6)
    back = from_torch(theirs)
    assert isinstance(back, CharLM) and back.config == ours.config
    same_weights(back.state_dict(), ours.state_dict())


@pytest.mark.parametrize("pooling", ["last", "mean", "attention", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_twin_with_padded_batches(pooling, bidirectional):
    ours = SequenceClassifier(3, 5, 4, cell="gru", bidirectional=bidirectional, pooling=pooling, classes=list("abcd"),
                              dtype=np.float64, seed=2)
    theirs = to_torch(ours)
    x = np.random.default_rng(0).standard_normal((6, 4, 3))
    lengths = np.array([6, 1, 3, 5])
    out = ours(x, lengths)
    np.testing.assert_allclose(theirs(torch.from_numpy(x), lengths).detach().numpy(), out, rtol=1e-10, atol=1e-12)
    back = from_torch(theirs)
    assert back.config == ours.config                  # class names and scaler survive the trip
    np.testing.assert_array_equal(back(x, lengths), out)


@pytest.mark.parametrize("pooling", ["last", "mean", "attention", "max"])
def test_classifier_gradients_equal_torch_autograd(pooling):
    """The pooling's hand-written backward (with the layer's) against autograd through the twin:
    float64, a loss sum(G * logits) with a random G, padded batches, bidirectional."""
    ours = SequenceClassifier(3, 4, 5, cell="lstm", bidirectional=True, pooling=pooling, dtype=np.float64, seed=3)
    theirs = to_torch(ours)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4, 3))
    lengths = np.array([6, 1, 3, 5])
    G = rng.standard_normal((4, 5))
    ours.zero_grad()
    np.testing.assert_allclose(ours.forward(x, lengths), theirs(torch.from_numpy(x), lengths).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    ours.backward(G)
    (theirs(torch.from_numpy(x), lengths) * torch.from_numpy(G)).sum().backward()
    got = {name: g for name, _, g in ours.named_parameters()}
    want = {name: p.grad.numpy() for name, p in theirs.named_parameters()}
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("cell,bidirectional", [("lstm", True), ("gru", False)])
def test_classifier_positions_readout_equals_torch_autograd(cell, bidirectional):
    """pooling='positions' (every step's outputs concatenated, step-major, into the head): logits
    and every gradient, the input's included, against autograd through the twin, float64."""
    ours = SequenceClassifier(3, 4, 5, cell=cell, bidirectional=bidirectional, pooling="positions", length=6,
                              dtype=np.float64, seed=4)
    theirs = to_torch(ours)
    assert ours.head.params["weight"].shape == (5, 6 * 4 * (2 if bidirectional else 1))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 4, 3))
    G = rng.standard_normal((4, 5))
    ours.zero_grad()
    np.testing.assert_allclose(ours.forward(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    dx = ours.backward(G)
    xt = torch.from_numpy(x).requires_grad_()
    (theirs(xt, np.full(4, 6)) * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    want = {name: p.grad.numpy() for name, p in theirs.named_parameters()}
    got = {name: g for name, _, g in ours.named_parameters()}
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-11, err_msg=name)
    assert from_torch(theirs).config == ours.config and ours.config["length"] == 6


def test_what_torch_cannot_express_is_one_line():
    with pytest.raises(ValueError, match=r"gate='hard_sigmoid'\) has no torch.nn counterpart"):
        to_torch(rnnkit.LSTM(3, 4, gate="hard_sigmoid"))
    with pytest.raises(ValueError, match=r"GRU\(reset_after=False\) has no torch.nn counterpart"):
        to_torch(rnnkit.GRU(3, 4, reset_after=False))
    with pytest.raises(ValueError, match="expected an rnnkit RNN / LSTM / GRU"):
        to_torch(rnnkit.nn.Dropout(0.1))
    with pytest.raises(ValueError, match="expected torch.nn.RNN / LSTM / GRU"):
        from_torch(torch.nn.Conv1d(2, 2, 1))


def _round_trip(model, run_ours, run_theirs):
    theirs = to_torch(model)
    np.testing.assert_allclose(run_theirs(theirs).detach().numpy(), run_ours(model), rtol=1e-9, atol=1e-10)
    back = from_torch(theirs)
    assert type(back) is type(model) and back.config == model.config
    same_weights(back.state_dict(), model.state_dict())


@pytest.mark.parametrize("task,bidirectional", [("regression", False), ("classification", True), ("sequence", True)])
def test_sequence_model_and_forecaster_twins(task, bidirectional):
    from rnnkit.models import Forecaster, SequenceModel

    m = SequenceModel(3, 5, 4, task, cell="gru", num_layers=2, bidirectional=bidirectional, dtype=np.float64, seed=1)
    x = np.random.default_rng(0).standard_normal((6, 4, 3))
    lengths = np.array([6, 2, 5, 1])
    _round_trip(m, lambda o: o.forward(x, lengths), lambda t: t(torch.from_numpy(x), lengths))
    f = Forecaster(window=8, horizon=3, strategy="direct", hidden_size=6, dtype=np.float64, seed=2)
    w = np.random.default_rng(1).standard_normal((8, 5, 1))
    _round_trip(f, lambda o: o.net.forward(w), lambda t: t(torch.from_numpy(w)))


@pytest.mark.parametrize("chars", [True, False])
def test_tagger_twin(chars):
    from rnnkit.apps.tag import build_vocabs
    from rnnkit.data.tagging import make_batch
    from rnnkit.models.tagger import Tagger

    sents = [("the cat sat".split(), ["D", "N", "V"]), ("a dog".split(), ["D", "N"]), (["runs"], ["V"])]
    words, cv, tags = build_vocabs(sents, chars)
    m = Tagger(words, tags, cv, embed_size=5, char_embed_size=3 if chars else 0, char_hidden_size=4, hidden_size=6,
               chars=chars, dtype=np.float64, seed=0)
    b = make_batch(sents, words, cv if chars else None, tags)

    def theirs(t):
        extra = (torch.from_numpy(b.chars), b.char_lengths) if chars else ()
        return t(torch.from_numpy(b.words), b.lengths, *extra)

    _round_trip(m, lambda o: o.forward(b), theirs)


@pytest.mark.parametrize("attention,cell,bidirectional", [("general", "gru", True), ("additive", "lstm", True),
                                                          ("concat", "gru", False), ("dot", "lstm", False)])
def test_seq2seq_twin(attention, cell, bidirectional):
    from rnnkit.data import seq2seq as S
    from rnnkit.models.seq2seq import Seq2Seq

    pairs = [("abc", "cba"), ("de", "ed"), ("fghi", "ihgf"), ("a", "a")]
    sv, tv = S.build_vocabs(pairs)
    m = Seq2Seq(sv, tv, embed_size=4, hidden_size=5, cell=cell, attention=attention, bidirectional=bidirectional,
                num_layers=2, dtype=np.float64, seed=3)
    src, src_len, tgt_in, _ = S.PairBatches(pairs, sv, tv, 4, shuffle=False).batch(0, 0)

    def ours(o):
        out = o.forward(src, src_len, tgt_in)
        o.clear_cache()
        return out

    _round_trip(m, ours, lambda t: t(torch.from_numpy(src), src_len, torch.from_numpy(tgt_in)))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("pooling", ["last", "max", "attention"])
def test_classifier_with_conv_branch_equals_torch_autograd(pooling):
    """The LSTM-FCN branch: logits and every gradient (training mode: batch statistics over the
    valid steps) against autograd through the twin, then the running statistics and the
    evaluation-mode logits after that step, and the trip back."""
    ours = SequenceClassifier(3, 4, 5, cell="lstm", bidirectional=True, pooling=pooling, dtype=np.float64, seed=3,
                              conv_channels=(6, 5), conv_kernels=(4, 3))
    theirs = to_torch(ours)
    assert sorted(theirs.state_dict()) == sorted(ours.state_dict())
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4, 3))
    lengths = np.array([6, 1, 3, 5])
    G = rng.standard_normal((4, 5))
    ours.zero_grad()
    out = theirs(torch.from_numpy(x), lengths)
    np.testing.assert_allclose(ours.forward(x, lengths), out.detach().numpy(), rtol=1e-10, atol=1e-12)
    ours.backward(G)
    (out * torch.from_numpy(G)).sum().backward()
    want = {name: p.grad.numpy() for name, p in theirs.named_parameters()}
    got = {name: g for name, _, g in ours.named_parameters()}
    assert sorted(got) == sorted(want) and "fcn.conv1.weight" in got and "fcn.bn0.bias" in got
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-11, err_msg=name)
    for name, b in theirs.named_buffers():
        np.testing.assert_allclose(ours.state_dict()[name], b.numpy(), rtol=1e-12, err_msg=name)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(x, lengths), theirs(torch.from_numpy(x), lengths).detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    back = from_torch(theirs)
    assert back.config == ours.config
    np.testing.assert_allclose(back.eval()(x, lengths), ours(x, lengths), rtol=1e-13, atol=1e-15)


def test_classifier_with_conv_branch_finite_differences():
    """Whole-model float64 central differences: recurrent layers, max pooling, the convolutional
    branch (training mode) and the head, on a padded batch."""
    from .helpers import numeric_grad, sample_indices

    m = SequenceClassifier(2, 3, 4, cell="gru", bidirectional=True, pooling="max", dtype=np.float64, seed=1,
                           conv_channels=(4, 3), conv_kernels=(3, 2))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3, 2))
    lengths = np.array([5, 2, 4])
    G = rng.standard_normal((3, 4))

    def loss():
        out = m.forward(x, lengths)
        m.clear_cache()
        return float((G * out).sum())

    m.zero_grad()
    m.forward(x, lengths)
    dx = m.backward(G)
    for name, p, g in list(m.named_parameters()) + [("x", x, dx)]:
        for idx in sample_indices(p.shape, 6, rng):
            np.testing.assert_allclose(g[idx], numeric_grad(loss, p, idx), rtol=1e-6, atol=1e-8, err_msg=f"{name}{idx}")
