"""Optimizers, clipping and schedules against torch.optim, step for step, in float64."""
import math

import numpy as np
import pytest
import torch

from rnnkit import optim

SHAPES = [(4, 3), (5,)]


def run_both(make_ours, make_torch, steps=6, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads_seq = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    ours = [(f"p{i}", p.copy(), np.zeros_like(p)) for i, p in enumerate(params)]
    theirs = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt, topt = make_ours(ours), make_torch(theirs)
    for gs in grads_seq:
        for (_, _, g), t, gv in zip(ours, theirs, gs):
            g[...] = gv
            t.grad = torch.tensor(gv)
        opt.step()
        topt.step()
        for (_, p, _), t in zip(ours, theirs):
            np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-12, atol=1e-13)
    return opt, ours


CASES = {
    "sgd": (lambda p: optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd-momentum-wd": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
                        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "sgd-nesterov": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "adam": (lambda p: optim.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "adam-wd-amsgrad": (lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True),
                        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    "adamw": (lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    "rmsprop": (lambda p: optim.RMSprop(p, lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
    "rmsprop-centered-momentum": (
        lambda p: optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    "adagrad": (lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
                lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                              initial_accumulator_value=0.1)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch(case):
    run_both(*CASES[case])


@pytest.mark.parametrize("case", ["sgd-momentum-wd", "adam-wd-amsgrad", "rmsprop-centered-momentum", "adagrad"])
def test_state_dict_resume_is_exact(case):
    make, _ = CASES[case]
    rng = np.random.default_rng(1)
    grads_seq = [[rng.standard_normal(s) for s in SHAPES] for _ in range(6)]
    init = [rng.standard_normal(s) for s in SHAPES]

    def fresh():
        ps = [(f"p{i}", p.copy(), np.zeros_like(p)) for i, p in enumerate(init)]
        return ps, make(ps)

    def feed(ps, opt, seq):
        for gs in seq:
            for (_, _, g), gv in zip(ps, gs):
                g[...] = gv
            opt.step()

    a_ps, a = fresh()
    feed(a_ps, a, grads_seq)
    b_ps, b = fresh()
    feed(b_ps, b, grads_seq[:3])
    saved, saved_params = b.state_dict(), [p.copy() for _, p, _ in b_ps]
    c_ps, c = fresh()
    for (_, p, _), sp in zip(c_ps, saved_params):
        p[...] = sp
    c.load_state_dict(saved)
    feed(c_ps, c, grads_seq[3:])
    for (_, p, _), (_, q, _) in zip(a_ps, c_ps):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_norm_sums_squares_in_float64(dtype, monkeypatch):
    """The norm squares and sums in float64 whatever the gradients' dtype (compiled for contiguous
    arrays, by a float64 copy for views): the exact float64 sum to rounding; a NaN or an infinity
    anywhere makes the norm NaN or inf, which clipping reports and leaves unapplied."""
    from rnnkit.kernels import compiled as compiled_module

    compiled = compiled_module("_numba")
    calls = []
    if compiled is not None:
        run = compiled.sum_squares
        monkeypatch.setattr(compiled, "sum_squares", lambda x: calls.append(1) or run(x))
    rng = np.random.default_rng(1)
    gs = [rng.standard_normal(s).astype(dtype) * 1e3 for s in ((700, 130), (70_001,), (3, 5))]
    gs.append(rng.standard_normal((40, 30)).astype(dtype)[:, ::3])          # a strided view
    want = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in gs))
    assert optim.grad_norm([(None, None, g) for g in gs]) == pytest.approx(want, rel=1e-13)
    for bad, expect in ((np.nan, math.isnan), (np.inf, math.isinf), (-np.inf, math.isinf)):
        hit = [g.copy() for g in gs]
        hit[1][12_345] = bad
        before = [g.copy() for g in hit]
        assert expect(optim.clip_grad_norm([(None, None, g) for g in hit], 1.0))
        for g, b in zip(hit, before):
            np.testing.assert_array_equal(g, b)
    assert bool(calls) == (compiled is not None)          # the contiguous gradients took the compiled sum


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(0)
    gs = [rng.standard_normal(s) * 3 for s in SHAPES]
    ours = [(f"p{i}", np.zeros_like(g), g.copy()) for i, g in enumerate(gs)]
    ts = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in gs]
    for t, g in zip(ts, gs):
        t.grad = torch.tensor(g)
    norm = optim.clip_grad_norm(ours, 1.5)
    tnorm = torch.nn.utils.clip_grad_norm_(ts, 1.5)
    assert norm == pytest.approx(tnorm.item(), rel=1e-12)
    for (_, _, g), t in zip(ours, ts):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)
    assert optim.grad_norm(ours) == pytest.approx(1.5, rel=1e-5)
    # below the threshold nothing changes, and the norm is still reported
    before = [g.copy() for _, _, g in ours]
    assert optim.clip_grad_norm(ours, 10.0) == pytest.approx(1.5, rel=1e-5)
    for (_, _, g), b in zip(ours, before):
        np.testing.assert_array_equal(g, b)


def test_clip_grad_value():
    g = np.array([-3.0, 0.5, 2.0])
    optim.clip_grad_value([("g", np.zeros(3), g)], 1.0)
    np.testing.assert_array_equal(g, [-1.0, 0.5, 1.0])


def _torch_lrs(make_sched, n, metrics=None):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.5)
    sched = make_sched(opt)
    out = []
    for i in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(metrics[i]) if metrics is not None else sched.step()
    return out


def _our_lrs(make_sched, n, metrics=None):
    opt = optim.SGD([("p", np.zeros(1), np.zeros(1))], lr=0.5)
    sched = make_sched(opt)
    out = []
    for i in range(n):
        out.append(opt.lr)
        opt.step()
        sched.step(metrics[i]) if metrics is not None else sched.step()
    return out


def test_step_and_exponential_schedules_match_torch():
    np.testing.assert_allclose(_our_lrs(lambda o: optim.StepLR(o, 3, 0.5), 10),
                               _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5), 10), rtol=1e-12)
    np.testing.assert_allclose(_our_lrs(lambda o: optim.ExponentialLR(o, 0.9), 10),
                               _torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9), 10), rtol=1e-12)


def test_plateau_matches_torch():
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    ours = _our_lrs(lambda o: optim.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1), 12, metrics)
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1),
                        12, metrics)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert min(ours) < 0.5


def test_cosine_warmup_formula():
    lrs = _our_lrs(lambda o: optim.CosineWarmup(o, warmup_steps=4, total_steps=14, min_lr=0.05), 16)
    assert lrs[:4] == pytest.approx([0.5 * (n + 1) / 5 for n in range(4)])
    assert lrs[4] == pytest.approx(0.5)
    assert lrs[9] == pytest.approx(0.05 + 0.45 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[14] == pytest.approx(0.05) and lrs[15] == pytest.approx(0.05)


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, lr=-1), "lr"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=1.5), "momentum"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda p: optim.Adam(p, eps=0), "eps"),
    (lambda p: optim.make_optimizer("adamax", p, 0.1), "adamax"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make([("p", np.zeros(2), np.zeros(2))])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99)),
                                  lambda p: optim.AdamW(p, lr=0.003, weight_decay=0.1),
                                  lambda p: optim.Adam(p, lr=0.01, weight_decay=0.01),
                                  lambda p: optim.Adam(p, lr=np.float64(0.01), eps=np.float64(1e-3),
                                                       groups=[{"params": "p1", "betas": np.array([0.5, 0.9])}])])
def test_one_pass_adam_is_numpys_bit_for_bit(dtype, make, monkeypatch):
    """The compiled one-pass Adam step (kernels/_numba.adam_step) gives NumPy's eight-pass
    update's bits: the same operations, order and dtype, settings given as NumPy scalars or
    arrays too (held as Python floats); a strided or 0-d parameter takes NumPy's update."""
    from rnnkit import kernels

    rng = np.random.default_rng(3)
    start = [rng.standard_normal((40, 30)).astype(dtype), rng.standard_normal((7,)).astype(dtype),
             rng.standard_normal((9, 12)).astype(dtype).T,                  # column-major: NumPy's update
             np.array(1.5, dtype)]                                          # 0-d: NumPy's update
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in start] for _ in range(5)]
    calls = []
    from rnnkit.kernels import _numba

    real = _numba.adam_step
    monkeypatch.setattr(_numba, "adam_step", lambda *a: calls.append(1) or real(*a))
    out = []
    for backend in ("numba", "numpy"):
        with kernels.use(backend):
            params = [(f"p{i}", np.copy(p), np.zeros_like(p)) for i, p in enumerate(start)]   # layouts kept
            opt = make(params)
            for gs in grads:
                for (_, _, g), gv in zip(params, gs):
                    g[...] = gv
                opt.step()
            out.append([p for _, p, _ in params])
    assert len(calls) == 2 * len(grads)                   # the two contiguous parameters, compiled backend only
    for a, b in zip(*out):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
