"""The fused time loop of the layer-normalised LSTM (rnnkit/kernels/ln_lstm.py) against the
PyTorch reference of tests/test_cell_variants.py on both backends, against the NumPy loop (float64
at 1e-10, float32 at float32's precision), with the batch split into two parts, and by float64
central differences on the fused path."""
import numpy as np
import pytest

import rnnkit
from rnnkit import kernels, threads
from rnnkit.kernels.ln_lstm import LNSteps

from .test_cell_variants import torch_variant_cell
from .test_regularisation import assert_finite_differences, compare, problem, run_ours, torch_reference

SPLIT_LENGTHS = [5] + [int(n) for n in np.random.default_rng(1).integers(1, 6, 18)]   # 19 sequences
# (layers, bidirectional, N, lengths, initial state, bias)
LAYOUTS = {"uni": (1, False, 3, None, True, True), "bi-len": (2, True, 3, [5, 2, 4], False, True),
           "split-bi-len": (2, True, 19, SPLIT_LENGTHS, True, True), "nobias-len": (2, False, 4, [3, 5, 1, 5], True, False)}


def build(layers, bidirectional, bias=True, dtype=np.float64, seed=0, **options):
    """A layer-norm LSTM whose normalisation parameters are moved away from their initial 1 / 0."""
    m = rnnkit.LSTM(3, 4, layers, bias=bias, bidirectional=bidirectional, dtype=dtype, seed=seed, layer_norm=True,
                    **options)
    rng = np.random.default_rng(seed + 100)
    for k, p in m.params.items():
        if k.startswith("ln_"):
            p += (0.4 * rng.standard_normal(p.shape)).astype(dtype)
    return m


@pytest.fixture
def two_parts(monkeypatch):
    """Split the fast loop into 2 parts (19 sequences: 9 + 10), whatever the machine's cores."""
    monkeypatch.setitem(threads._state, "parts", 2)
    assert len(threads.batch_parts(19)) == 2


def run(m, backend, N, lengths, with_state, seed=1):
    x, states, G, Gs = problem(m, N=N, with_state=with_state, seed=seed)
    with kernels.use(backend):
        _, out = run_ours(m, x.astype(m.dtype), None if states is None else [s.astype(m.dtype) for s in states],
                          lengths, G.astype(m.dtype), [g.astype(m.dtype) for g in Gs])
    return out, (x, states, G, Gs)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_matches_torch_on_both_backends(backend, layout, two_parts):
    layers, bi, N, lengths, with_state, bias = LAYOUTS[layout]
    m = build(layers, bi, bias, seed=layers)
    ours, (x, states, G, Gs) = run(m, backend, N, lengths, with_state)
    compare(ours, torch_reference(m, x, states, lengths, None, G, Gs, cell=torch_variant_cell(m.variant)))


def flat(out):
    d = {"y": out["y"], "dx": out["dx"], **out["grads"]}
    d.update({f"final{i}": s for i, s in enumerate(out["finals"])})
    d.update({f"dstate{i}": s for i, s in enumerate(out["dstate"] or ())})
    return d


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_fused_equals_the_numpy_loop_in_float64_and_float32(layout, two_parts):
    """float64: the NumPy loop's numbers at 1e-10. float32: within 25x of the float32 NumPy loop's
    distance from float64 (the kernels' rational tanh has 3.4e-7 error where libm's has 6e-8, and
    the normalisation of 4-unit blocks amplifies it) and within 1e-3 of the largest value. (The
    factor was 10 while BLAS ran on two threads; on one, the NumPy loop's own float32 error fell
    from 5.0e-5 to 2.2e-5 on the split layout while the fused loop's stayed at 2.8e-4. It was 20
    until a Zen 4 machine, where OpenBLAS's SkylakeX kernels brought the NumPy loop's error to
    1.25e-5 and the fused loop's was 2.6e-4: 20.6x. The NumPy loop's error is BLAS's, so the
    factor moves with the machine; the fused loop's own error stayed within 2.6-2.8e-4.)"""
    layers, bi, N, lengths, with_state, bias = LAYOUTS[layout]
    ref = flat(run(build(layers, bi, bias, seed=2), "numpy", N, lengths, with_state)[0])
    fast = flat(run(build(layers, bi, bias, seed=2), "numba", N, lengths, with_state)[0])
    single = flat(run(build(layers, bi, bias, np.float32, seed=2), "numba", N, lengths, with_state)[0])
    single_ref = flat(run(build(layers, bi, bias, np.float32, seed=2), "numpy", N, lengths, with_state)[0])
    assert ref.keys() == fast.keys() == single.keys()
    errors = {}
    for k in ref:
        np.testing.assert_allclose(fast[k], ref[k], rtol=1e-10, atol=1e-12, err_msg=k)
        assert single[k].dtype == np.float32, k
        scale = np.abs(ref[k]).max()
        errors[k] = [np.abs(a[k] - ref[k]).max() / scale for a in (single, single_ref)]
        assert errors[k][0] <= 1e-3, (k, errors[k])
    assert max(e[0] for e in errors.values()) <= 25 * max(e[1] for e in errors.values()), errors


def test_fused_loop_is_chosen_exactly_where_the_plain_one_is():
    x = np.random.default_rng(0).standard_normal((4, 2, 3))

    def steps(m, backend):
        with kernels.use(backend):
            m(x)
            return m._take_cache()[0][0].steps

    assert isinstance(steps(build(1, False), "numba"), LNSteps)
    assert isinstance(steps(build(1, False), "numpy"), list)
    for options in (dict(peepholes=True), dict(coupled_gates=True), dict(cell_clip=0.5), dict(gate="hard_sigmoid"),
                    dict(recurrent_dropout=0.3), dict(zoneout=0.2)):
        assert isinstance(steps(build(1, False, **options), "numba"), list), options
    m = build(1, False, input_dropout=0.3, weight_dropout=0.3)    # masks around the loop: still fused
    assert isinstance(steps(m, "numba"), LNSteps)
    m.eval()
    assert isinstance(steps(build(1, False, zoneout=0.2).eval(), "numba"), list)   # zoneout's expectation


def test_recording_reads_the_fused_buffers(two_parts):
    """dL/dh_t recorded (the reference backward over the fused loop's buffers) equals the NumPy run's."""
    got = {}
    for backend in ("numpy", "numba"):
        m = build(2, True, seed=3)
        m.record_hidden_grads = True
        out, _ = run(m, backend, 19, SPLIT_LENGTHS, True)
        got[backend] = (m.hidden_grads, flat(out))
    for key, h in got["numpy"][0].items():
        np.testing.assert_allclose(got["numba"][0][key], h, rtol=1e-10, atol=1e-12, err_msg=str(key))
    for k, a in got["numpy"][1].items():
        np.testing.assert_allclose(got["numba"][1][k], a, rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("lengths", [None, [4, 1, 3]], ids=["full", "len"])
def test_finite_differences_on_the_fused_path(lengths):
    with kernels.use("numba"):
        assert_finite_differences(build(2, True, seed=4), lengths)


def test_input_and_weight_dropout_around_the_fused_loop(two_parts):
    """Input and weight dropout only change what the loop is given: the fused loop, fed the same
    masks (the same generator state), gives the NumPy loop's numbers."""
    outs = [flat(run(build(2, True, seed=5, input_dropout=0.3, weight_dropout=0.4), backend, 19, SPLIT_LENGTHS,
                     True)[0]) for backend in ("numpy", "numba")]
    for k, a in outs[0].items():
        np.testing.assert_allclose(outs[1][k], a, rtol=1e-10, atol=1e-12, err_msg=k)
