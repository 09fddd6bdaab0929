"""rnnkit.RNN / LSTM / GRU against torch.nn: outputs, final states and every gradient (parameters,
input, initial states), over every mode, with both kernel backends."""
import itertools

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import kernels

from .helpers import CELLS, compare_with_torch, make_pair

LENGTHS = [3, 6, 1]  # N = 3, L = 6: unsorted, one full, one of length 1

MODES = list(itertools.product(sorted(CELLS), [1, 2, 3], [False, True], [False, True], [True, False], [None, LENGTHS]))


@pytest.fixture(params=["numba", "numpy"])
def backend(request):
    with kernels.use(request.param):
        yield request.param


@pytest.mark.parametrize("cell,layers,bidirectional,batch_first,bias,lengths", MODES,
                         ids=lambda v: "len" if isinstance(v, list) else str(v))
def test_float64_every_mode(backend, cell, layers, bidirectional, batch_first, bias, lengths):
    with_state = (layers + bidirectional + batch_first) % 2 == 0   # half the modes get an initial state
    compare_with_torch(cell, layers, bidirectional, batch_first, bias, lengths, with_state, np.float64,
                       seed=layers * 7 + bidirectional)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("bidirectional,lengths,with_state", [(False, None, True), (True, LENGTHS, False),
                                                               (True, None, True)])
def test_float32(backend, cell, bidirectional, lengths, with_state):
    compare_with_torch(cell, 2, bidirectional, False, True, lengths, with_state, np.float32, L=8, N=3,
                       input_size=6, hidden=16, seed=11)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_larger_random_configuration(backend, cell):
    rng = np.random.default_rng(5)
    lengths = list(rng.integers(1, 21, size=7))
    compare_with_torch(cell, 2, True, True, True, lengths, True, np.float64, L=20, N=7, input_size=9, hidden=12)


@pytest.mark.parametrize("layers,bidirectional,batch_first,lengths,with_state",
                         [(1, False, False, None, False), (2, True, False, LENGTHS, True), (3, False, True, LENGTHS, False),
                          (2, True, True, None, True), (1, True, False, LENGTHS, True)],
                         ids=lambda v: "len" if isinstance(v, list) else str(v))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_with_projection_is_torchs_proj_size(layers, bidirectional, batch_first, lengths, with_state, dtype):
    """Outputs, final (h, c), and the gradients of every parameter (weight_hr included), the input
    and the initial state equal torch.nn.LSTM(proj_size=...) to 1e-10 in float64."""
    compare_with_torch("lstm", layers, bidirectional, batch_first, True, lengths, with_state, dtype, hidden=6,
                       proj_size=3, seed=layers)


def test_every_torch_lstm_state_dict_loads_including_projections():
    for kw in ({}, {"proj_size": 2}, {"proj_size": 4, "bidirectional": True, "num_layers": 2}, {"bias": False, "proj_size": 1}):
        theirs = torch.nn.LSTM(3, 5, **kw)
        ours = rnnkit.LSTM(3, 5, **kw)
        assert list(ours.state_dict()) == list(theirs.state_dict()), kw
        ours.load_state_dict(theirs.state_dict())
        x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
        np.testing.assert_allclose(ours(x)[0], theirs(torch.tensor(x))[0].detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw,msg", [({"proj_size": 5}, "expected a size below hidden_size=5, got 5"),
                                    ({"proj_size": -1}, "expected an integer >= 0, got -1")])
def test_bad_proj_size(kw, msg):
    with pytest.raises(ValueError, match=msg):
        rnnkit.LSTM(3, 5, **kw)
    from rnnkit.nn.recurrent import RNNBase

    with pytest.raises(ValueError, match="only an LSTM projects its hidden state"):
        RNNBase("gru", 3, 5, proj_size=2)


def test_state_dict_names_and_layouts_match_torch():
    for cell, (ours_cls, torch_cls, kw) in CELLS.items():
        ours = ours_cls(3, 4, 2, bidirectional=True, **kw)
        theirs = torch_cls(3, 4, 2, bidirectional=True, **kw)
        ts = theirs.state_dict()
        assert list(ours.state_dict()) == list(ts), cell
        for k, v in ours.state_dict().items():
            assert v.shape == tuple(ts[k].shape), (cell, k)
        assert set(ours.grads) == set(ts)


def test_torch_tensors_load_directly():
    ours, theirs = make_pair("lstm", 3, 4, dtype=np.float32)
    ours.load_state_dict(theirs.state_dict())        # tensors, not arrays
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    y, _ = ours(x)
    np.testing.assert_allclose(y, theirs(torch.tensor(x))[0].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_between_layers():
    ours, theirs = make_pair("lstm", 4, 5, layers=3, dtype=np.float64)
    ours_d = rnnkit.LSTM(4, 5, 3, dropout=0.5, dtype=np.float64, seed=1)
    ours_d.load_state_dict(ours.state_dict())
    x = np.random.default_rng(0).standard_normal((6, 2, 4))
    ours_d.eval()
    np.testing.assert_allclose(ours_d(x)[0], theirs(torch.tensor(x))[0].detach().numpy(), rtol=1e-10)
    ours_d.clear_cache()
    ours_d.train()
    y1 = ours_d(x)[0]
    y2 = ours_d(x)[0]
    assert not np.allclose(y1, y2)  # a new mask each call
    again = rnnkit.LSTM(4, 5, 3, dropout=0.5, dtype=np.float64, seed=1)
    again.load_state_dict(ours.state_dict())
    np.testing.assert_array_equal(again(x)[0], y1)  # the same seed gives the same masks
    zero = rnnkit.LSTM(4, 5, 3, dropout=0.0, dtype=np.float64)
    zero.load_state_dict(ours.state_dict())
    np.testing.assert_allclose(zero(x)[0], ours_d.eval()(x)[0], rtol=1e-12)


def test_dropout_gradient_matches_masked_torch():
    """In training mode the backward pass applies the same masks as the forward pass."""
    m = rnnkit.GRU(3, 4, 2, dropout=0.4, dtype=np.float64, seed=2)
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    G = np.random.default_rng(2).standard_normal((5, 2, 4))
    m(x)
    caches, masks, *_ = m._cache
    keep = masks[0]
    m.backward(G)
    t1 = torch.nn.GRU(3, 4, dtype=torch.float64)
    t2 = torch.nn.GRU(4, 4, dtype=torch.float64)
    sd = m.state_dict()
    t1.load_state_dict({k: torch.tensor(v) for k, v in sd.items() if k.endswith("l0")})
    t2.load_state_dict({k.replace("l1", "l0"): torch.tensor(v) for k, v in sd.items() if k.endswith("l1")})
    y1, _ = t1(torch.tensor(x))
    y2, _ = t2(y1 * torch.tensor(keep))
    (y2 * torch.tensor(G)).sum().backward()
    np.testing.assert_allclose(m.grads["weight_ih_l0"], t1.weight_ih_l0.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.grads["weight_hh_l1"], t2.weight_hh_l0.grad.numpy(), rtol=1e-10)


def test_gradients_accumulate_until_zero_grad():
    ours, _ = make_pair("gru", 3, 4)
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    y, _ = ours(x)
    ours.backward(np.ones_like(y))
    once = ours.grads["weight_hh_l0"].copy()
    y, _ = ours(x)
    ours.backward(np.ones_like(y))
    np.testing.assert_allclose(ours.grads["weight_hh_l0"], 2 * once, rtol=1e-12)
    ours.zero_grad()
    assert not ours.grads["weight_hh_l0"].any()
