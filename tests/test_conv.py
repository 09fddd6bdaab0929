"""Temporal convolution, masked batch normalisation and the convolutional branch: against PyTorch
autograd (conv1d / batch_norm written here, the masking as rnnkit defines it: padded steps read as
zero, statistics over the valid steps only, outputs zero past each length), float64 central
differences, padding independence, state dicts with buffers, bad input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.nn import BatchNorm1d, Conv1d, ConvBranch

from .helpers import numeric_grad, sample_indices

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
TOL = {np.float64: dict(rtol=1e-10, atol=1e-11), np.float32: dict(rtol=2e-4, atol=2e-5)}


def mask_of(L, lengths, N):
    m = np.ones((L, N)) if lengths is None else (np.arange(L)[:, None] < np.asarray(lengths)[None]).astype(float)
    return torch.from_numpy(m)[:, :, None]                                    # (L, N, 1)


def torch_conv(x, weight, bias, mask):
    """(L, N, C) -> (L, N, C_out) by F.conv1d with 'same' padding on the masked input, masked output."""
    y = F.conv1d((x * mask).permute(1, 2, 0), weight, bias, padding="same")   # (N, C_out, L)
    return y.permute(2, 0, 1) * mask


def torch_bn(x, weight, bias, mask, running_mean=None, running_var=None, training=True):
    """Batch norm of the valid steps only (gathered into (M, C) for F.batch_norm), zero elsewhere."""
    valid = mask[:, :, 0] > 0
    out = torch.zeros_like(x)
    out[valid] = F.batch_norm(x[valid], running_mean, running_var, weight, bias, training=training, momentum=0.1,
                              eps=1e-5)
    return out


CASES = [(None, 1), (None, 4), ([5, 2, 1], 3), ([3, 5, 4], 8), ([1, 5, 2], 5)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lengths,K", CASES)
def test_conv1d_equals_torch_autograd(lengths, K, dtype):
    rng = np.random.default_rng(K)
    L, N, C, O = 5, 3, 2, 4
    conv = Conv1d(C, O, K, dtype=dtype, seed=1)
    x = rng.standard_normal((L, N, C)).astype(dtype)
    G = rng.standard_normal((L, N, O)).astype(dtype)
    y = conv(x, lengths)
    dx = conv.backward(G)
    xt = torch.tensor(x, requires_grad=True)
    w = torch.tensor(conv.params["weight"], requires_grad=True)
    b = torch.tensor(conv.params["bias"], requires_grad=True)
    yt = torch_conv(xt, w, b, mask_of(L, lengths, N).to(TORCH_DTYPE[dtype]))
    (yt * torch.from_numpy(G)).sum().backward()
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(conv.grads["weight"], w.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(conv.grads["bias"], b.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lengths", [None, [5, 2, 1, 4]])
def test_batch_norm_equals_torch_autograd_and_running_statistics(lengths, dtype):
    rng = np.random.default_rng(3)
    L, N, C = 5, 4, 3
    bn = BatchNorm1d(C, dtype=dtype)
    bn.params["weight"][:] = rng.uniform(0.5, 1.5, C)
    bn.params["bias"][:] = rng.standard_normal(C)
    rm, rv = torch.zeros(C, dtype=TORCH_DTYPE[dtype]), torch.ones(C, dtype=TORCH_DTYPE[dtype])
    mask = mask_of(L, lengths, N).to(TORCH_DTYPE[dtype])
    for step in range(2):                                   # two batches: the running statistics move twice
        x = (2 + 3 * rng.standard_normal((L, N, C))).astype(dtype)
        G = rng.standard_normal((L, N, C)).astype(dtype)
        bn.zero_grad()
        y = bn(x, lengths)
        dx = bn.backward(G)
        xt = torch.tensor(x, requires_grad=True)
        w = torch.tensor(bn.params["weight"], requires_grad=True)
        b = torch.tensor(bn.params["bias"], requires_grad=True)
        yt = torch_bn(xt, w, b, mask, rm, rv)
        (yt * torch.from_numpy(G)).sum().backward()
        np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
        np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
        np.testing.assert_allclose(bn.grads["weight"], w.grad.numpy(), **TOL[dtype])
        np.testing.assert_allclose(bn.grads["bias"], b.grad.numpy(), **TOL[dtype])
        np.testing.assert_allclose(bn.buffers["running_mean"], rm.numpy(), **TOL[dtype])
        np.testing.assert_allclose(bn.buffers["running_var"], rv.numpy(), **TOL[dtype])
    assert int(bn.buffers["num_batches_tracked"]) == 2
    with bn.evaluating():                                   # evaluation: the running statistics, constants
        bn.zero_grad()
        y = bn(x, lengths)
        dx = bn.backward(G)
    xt = torch.tensor(x, requires_grad=True)
    w = torch.tensor(bn.params["weight"], requires_grad=True)
    yt = torch_bn(xt, w, torch.tensor(bn.params["bias"]), mask, rm, rv, training=False)
    (yt * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(bn.grads["weight"], w.grad.numpy(), **TOL[dtype])


def fd_check(module, x, lengths, G, rng, k=12):
    """Central differences (float64) of sum(G * module(x)) for every parameter and the input."""
    def loss():
        out = module(x, lengths)
        module.clear_cache()
        return float((G * out).sum())

    module.zero_grad()
    module(x, lengths)
    dx = module.backward(G)
    arrays = [(name, p, g) for name, p, g in module.named_parameters()] + [("x", x, dx)]
    for name, arr, grad in arrays:
        for idx in sample_indices(arr.shape, k, rng):
            np.testing.assert_allclose(grad[idx], numeric_grad(loss, arr, idx), rtol=1e-6, atol=1e-8,
                                       err_msg=f"{name}{idx}")


@pytest.mark.parametrize("lengths", [None, [6, 2, 4]])
def test_finite_differences(lengths):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 3, 2))
    fd_check(Conv1d(2, 3, 4, dtype=np.float64, seed=2), x, lengths, rng.standard_normal((6, 3, 3)), rng)
    bn = BatchNorm1d(2, momentum=0.0, dtype=np.float64)     # momentum 0: the loss repeats exactly
    bn.params["weight"][:] = [0.7, 1.3]
    fd_check(bn, x, lengths, rng.standard_normal((6, 3, 2)), rng)
    branch = ConvBranch(2, (4, 3), (3, 2), dtype=np.float64, seed=4)
    for m in branch.modules():
        if isinstance(m, BatchNorm1d):
            m.momentum = 0.0
    fd_check(branch, x, lengths, rng.standard_normal((3, 3)), rng)


def test_branch_equals_torch_autograd():
    """conv -> masked batch norm -> ReLU, twice, then the mean over the valid steps."""
    rng = np.random.default_rng(8)
    L, N, C = 7, 4, 3
    lengths = np.array([7, 3, 1, 5])
    ours = ConvBranch(C, (5, 4), (4, 3), dtype=np.float64, seed=0)
    x = rng.standard_normal((L, N, C))
    G = rng.standard_normal((N, 4))
    p = ours(x, lengths)
    dx = ours.backward(G)
    mask = mask_of(L, lengths, N)
    xt = torch.tensor(x, requires_grad=True)
    params = {k: torch.tensor(v, requires_grad=True) for k, v, _ in ours.named_parameters()}
    h = xt
    for i in range(2):
        h = torch_conv(h, params[f"conv{i}.weight"], params[f"conv{i}.bias"], mask)
        h = torch.relu(torch_bn(h, params[f"bn{i}.weight"], params[f"bn{i}.bias"], mask))
    pt = h.sum(0) / torch.from_numpy(lengths)[:, None]
    (pt * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(p, pt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name, _, g in ours.named_parameters():
        np.testing.assert_allclose(g, params[name].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def test_padded_steps_reach_nothing_and_each_sequence_is_as_alone():
    rng = np.random.default_rng(2)
    conv = Conv1d(2, 3, 5, dtype=np.float64, seed=0)
    lengths = np.array([6, 2, 4])
    x = rng.standard_normal((6, 3, 2))
    y = conv(x, lengths)
    conv.clear_cache()
    x2 = x.copy()
    x2[2:, 1] = 1e3                                          # garbage past sequence 1's length
    x2[4:, 2] = -7.0
    np.testing.assert_array_equal(conv(x2, lengths), y)
    conv.clear_cache()
    for n, ln in enumerate(lengths):                         # alone, unpadded: zero 'same' padding only
        alone = conv(x[:ln, n:n + 1], None)
        conv.clear_cache()
        np.testing.assert_allclose(y[:ln, n:n + 1], alone, rtol=1e-12, atol=1e-14)
        assert not y[ln:, n].any()
    branch = ConvBranch(2, (4,), (3,), dtype=np.float64, seed=1).eval()
    np.testing.assert_allclose(branch(x2, lengths), branch(x, lengths), rtol=1e-12)


def test_state_dict_round_trip_with_buffers_and_torch_names():
    rng = np.random.default_rng(0)
    a = ConvBranch(3, (4, 2), (3, 2), seed=0)
    a(rng.standard_normal((5, 2, 3)).astype(np.float32), [5, 3])   # moves the running statistics
    a.clear_cache()
    sd = a.state_dict()
    assert set(sd) == {f"{m}{i}.{k}" for i in (0, 1) for m, ks in (("conv", ("weight", "bias")),
                       ("bn", ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"))) for k in ks}
    assert sd["bn0.num_batches_tracked"].dtype == np.int64 and int(sd["bn0.num_batches_tracked"]) == 1
    b = ConvBranch(3, (4, 2), (3, 2), seed=9)
    b.load_state_dict(sd)
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(a.eval()(x), b.eval()(x))
    t = torch.nn.BatchNorm1d(4)                               # PyTorch's own layer takes ours and back
    t.load_state_dict({k[4:]: v for k, v in a.state_dict(format="torch").items() if k.startswith("bn0.")})
    np.testing.assert_array_equal(t.running_var.numpy(), a.bn0.buffers["running_var"])
    bn = BatchNorm1d(4)
    bn.load_state_dict(t.state_dict())
    np.testing.assert_array_equal(bn.buffers["running_mean"], sd["bn0.running_mean"])
    with pytest.raises(ValueError, match="num_batches_tracked: expected an integer array, got dtype float"):
        bn.load_state_dict({**t.state_dict(), "num_batches_tracked": np.zeros(())})
    with pytest.raises(ValueError, match=r"missing keys \['running_var'\]"):
        bn.load_state_dict({k: v for k, v in t.state_dict().items() if k != "running_var"})


def test_bad_input_one_line():
    conv = Conv1d(2, 3, 3, dtype=np.float64)
    with pytest.raises(ValueError, match=r"Conv1d input: expected shape \(L, N, 2\), got \(4, 2, 5\)"):
        conv(np.zeros((4, 2, 5)))
    with pytest.raises(ValueError, match=r"Conv1d input lengths: expected 2 integers in \[1, 4\], got \[4, 5\]"):
        conv(np.zeros((4, 2, 2)), [4, 5])
    with pytest.raises(ValueError, match="Conv1d kernel_size: expected a positive integer, got 0"):
        Conv1d(2, 3, 0)
    with pytest.raises(ValueError, match="Conv1d.backward: no forward pass"):
        conv.backward(np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match=r"ConvBranch: expected as many kernel sizes as channel counts"):
        ConvBranch(2, (4, 4), (3,))
