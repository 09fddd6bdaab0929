"""Shared test helpers: one function runs a configuration through rnnkit and PyTorch and compares
outputs, final states and every gradient; one does central differences in float64."""
import numpy as np
import torch

import rnnkit

CELLS = {
    "rnn_tanh": (rnnkit.RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (rnnkit.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (rnnkit.LSTM, torch.nn.LSTM, {}),
    "gru": (rnnkit.GRU, torch.nn.GRU, {}),
}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def make_pair(cell, input_size, hidden, layers=1, bidirectional=False, batch_first=False, bias=True,
              dtype=np.float64, seed=0, proj_size=0):
    ours_cls, torch_cls, kw = CELLS[cell]
    kw = dict(kw, proj_size=proj_size) if proj_size else kw
    torch.manual_seed(seed)
    theirs = torch_cls(input_size, hidden, layers, bias=bias, batch_first=batch_first,
                       bidirectional=bidirectional, dtype=TORCH_DTYPE[dtype], **kw)
    ours = ours_cls(input_size, hidden, layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
                    dtype=dtype, **kw)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def random_problem(cell, L, N, input_size, hidden, layers, bidirectional, batch_first, lengths, with_state,
                   dtype, seed, proj_size=0):
    """Input, initial state (or None), output and final-state weightings G for loss = sum(G * out)."""
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((N, L, input_size) if batch_first else (L, N, input_size)).astype(dtype)
    sizes = (proj_size or hidden, hidden)[: 2 if cell == "lstm" else 1]      # h (projected), c
    state = None
    if with_state:
        state = tuple(0.5 * rng.standard_normal((layers * D, N, H)).astype(dtype) for H in sizes)
    out = D * sizes[0]
    G = rng.standard_normal((N, L, out) if batch_first else (L, N, out)).astype(dtype)
    Gs = tuple(rng.standard_normal((layers * D, N, H)).astype(dtype) for H in sizes)
    return x, state, G, Gs


def rnnkit_run(ours, cell, x, state, lengths, G, Gs):
    """Forward, loss = sum(G * y) + sum(Gs * final states), backward. Returns everything compared."""
    ours.zero_grad()
    st = None if state is None else (state if cell == "lstm" else state[0])
    y, final = ours(x, st, lengths=lengths)
    finals = final if cell == "lstm" else (final,)
    out = ours.backward(G, Gs if cell == "lstm" else Gs[0])
    if state is None:
        dx, dstate = out, None
    else:
        dx, ds = out
        dstate = ds if cell == "lstm" else (ds,)
    return {"y": y, "finals": finals, "dx": dx, "dstate": dstate, "grads": {k: v.copy() for k, v in ours.grads.items()}}


def torch_run(theirs, cell, x, state, lengths, G, Gs, batch_first):
    xt = torch.tensor(x, requires_grad=True)
    st = None
    if state is not None:
        st_t = tuple(torch.tensor(s, requires_grad=True) for s in state)
        st = st_t if cell == "lstm" else st_t[0]
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first,
                                                      enforce_sorted=False)
    y, final = theirs(inp, st)
    if lengths is not None:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    finals = final if cell == "lstm" else (final,)
    loss = (y * torch.tensor(G)).sum() + sum((f * torch.tensor(g)).sum() for f, g in zip(finals, Gs))
    loss.backward()
    return {"y": y.detach().numpy(), "finals": tuple(f.detach().numpy() for f in finals), "dx": xt.grad.numpy(),
            "dstate": None if state is None else tuple(s.grad.numpy() for s in st_t),
            "grads": {k: p.grad.numpy() for k, p in theirs.named_parameters()}}


def assert_close(a, b, dtype, what):
    rtol, atol = (1e-10, 1e-12) if dtype == np.float64 else (1e-5, 1e-5)
    scale = max(1.0, float(np.abs(b).max())) if np.size(b) else 1.0
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale, err_msg=what)


def compare_with_torch(cell, layers=1, bidirectional=False, batch_first=False, bias=True, lengths=None,
                       with_state=False, dtype=np.float64, L=6, N=3, input_size=4, hidden=5, seed=0, proj_size=0):
    ours, theirs = make_pair(cell, input_size, hidden, layers, bidirectional, batch_first, bias, dtype, seed,
                             proj_size)
    x, state, G, Gs = random_problem(cell, L, N, input_size, hidden, layers, bidirectional, batch_first, lengths,
                                     with_state, dtype, seed, proj_size)
    a = rnnkit_run(ours, cell, x, state, lengths, G, Gs)
    b = torch_run(theirs, cell, x, state, lengths, G, Gs, batch_first)
    assert_close(a["y"], b["y"], dtype, "output")
    for i, (p, q) in enumerate(zip(a["finals"], b["finals"])):
        assert_close(p, q, dtype, f"final state {i}")
    assert_close(a["dx"], b["dx"], dtype, "input gradient")
    if with_state:
        for i, (p, q) in enumerate(zip(a["dstate"], b["dstate"])):
            assert_close(p, q, dtype, f"initial state gradient {i}")
    assert set(a["grads"]) == set(b["grads"])
    for k in b["grads"]:
        assert_close(a["grads"][k], b["grads"][k], dtype, k)


def numeric_grad(f, arr, idx, eps=1e-6):
    """Central difference of scalar ``f()`` w.r.t. ``arr[idx]`` (perturbs in place, restores)."""
    old = arr[idx]
    arr[idx] = old + eps
    fp = f()
    arr[idx] = old - eps
    fm = f()
    arr[idx] = old
    return (fp - fm) / (2 * eps)


def sample_indices(shape, k, rng):
    """Up to ``k`` distinct multi-indices into an array of ``shape``."""
    size = int(np.prod(shape))
    flat = rng.choice(size, size=min(k, size), replace=False)
    return [np.unravel_index(i, shape) for i in flat]
