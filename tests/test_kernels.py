"""The fast (Numba) time loop against the NumPy reference: outputs, states and every gradient."""
import numpy as np
import pytest

from rnnkit import kernels

from .helpers import CELLS, random_problem, rnnkit_run


def test_numba_backend_is_active():
    assert kernels.backend() == "numba"
    with kernels.use("numpy"):
        assert kernels.backend() == "numpy"
    assert kernels.backend() == "numba"
    with pytest.raises(ValueError, match="kernel backend"):
        kernels.set_backend("cuda")


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("lengths", [None, [9, 4, 1, 7]])
def test_fast_equals_reference(cell, dtype, rtol, lengths):
    cls, _, kw = CELLS[cell]
    m = cls(5, 32, 2, bidirectional=True, dtype=dtype, seed=0, **kw)
    x, state, G, Gs = random_problem(cell, 9, 4, 5, 32, 2, True, False, lengths, True, dtype, seed=3)
    with kernels.use("numpy"):
        ref = rnnkit_run(m, cell, x, state, lengths, G, Gs)
    with kernels.use("numba"):
        fast = rnnkit_run(m, cell, x, state, lengths, G, Gs)
    for key in ("y", "dx"):
        np.testing.assert_allclose(fast[key], ref[key], rtol=rtol, atol=rtol, err_msg=key)
    for a, b in zip(fast["finals"] + fast["dstate"], ref["finals"] + ref["dstate"]):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    for k in ref["grads"]:
        np.testing.assert_allclose(fast["grads"][k], ref["grads"][k], rtol=rtol, atol=rtol * 10, err_msg=k)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_fast_steps_expose_the_reference_caches(cell):
    """Diagnostics and the recording backward read steps[t] on either path: every field of every
    step's cache (gates, previous states, the LSTM's tanh(c), the GRU's W_hn h + b_hn) agrees."""
    cls, _, kw = CELLS[cell]
    m = cls(3, 4, dtype=np.float64, seed=0, **kw)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    caches = {}
    for b in ("numpy", "numba"):
        with kernels.use(b):
            m(x)
            steps = m._cache[0][0].steps
            caches[b] = [tuple(np.array(f) for f in steps[t]) for t in range(len(steps))]
            m.clear_cache()
    assert len(caches["numba"]) == 5
    for ref, fast in zip(caches["numpy"], caches["numba"]):
        assert len(ref) == len(fast)
        for a, b in zip(fast, ref):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    gates = np.stack([c[2 if cell == "lstm" else 1] for c in caches["numba"]])   # activations
    assert gates.shape[1:] == (2, {"lstm": 16, "gru": 12, "rnn_tanh": 4}[cell])
    assert ((gates >= -1) & (gates <= 1)).all()


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("n_threads", [2, 3])
def test_split_time_loop_equals_reference(cell, n_threads, monkeypatch):
    """The fast path splits a batch into one part per thread, each with its own time loop
    (rnnkit.threads.run_parts): with 19 sequences of uneven lengths, 2 or 3 parts (8+ each),
    bidirectional, 2 layers, float64: every output and gradient is the reference's."""
    from rnnkit import threads

    monkeypatch.setitem(threads._state, "parts", n_threads)
    assert len(threads.batch_parts(19)) == n_threads if n_threads * threads.MIN_PART <= 19 else 2
    lengths = [7] + list(np.random.default_rng(1).integers(1, 8, 18))
    cls, _, kw = CELLS[cell]
    m = cls(3, 6, 2, bidirectional=True, dtype=np.float64, seed=0, **kw)
    x, state, G, Gs = random_problem(cell, 7, 19, 3, 6, 2, True, False, lengths, True, np.float64, seed=4)
    with kernels.use("numpy"):
        ref = rnnkit_run(m, cell, x, state, lengths, G, Gs)
    with kernels.use("numba"):
        fast = rnnkit_run(m, cell, x, state, lengths, G, Gs)
    for key in ("y", "dx"):
        np.testing.assert_allclose(fast[key], ref[key], rtol=1e-12, atol=1e-12, err_msg=key)
    for a, b in zip(fast["finals"] + fast["dstate"], ref["finals"] + ref["dstate"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for k in ref["grads"]:
        np.testing.assert_allclose(fast["grads"][k], ref["grads"][k], rtol=1e-12, atol=1e-11, err_msg=k)


def test_split_time_loop_restores_blas_threads_and_raises():
    """The parts run with single-threaded BLAS, restored afterwards; a part's exception reaches
    the caller after every part has ended."""
    from threadpoolctl import threadpool_info

    from rnnkit import threads

    def numpy_blas():            # the BLAS NumPy's products run on (others may be loaded later)
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas" and "numpy" in p["filepath"]]

    before = numpy_blas()
    seen = []

    def part(lo, hi):
        seen.append((lo, hi, *numpy_blas()))
        if lo:
            raise RuntimeError(f"part {lo}")

    with pytest.raises(RuntimeError, match="part 8"):
        threads.run_parts(part, [(0, 8), (8, 16)])
    assert sorted(seen) == [(0, 8, 1), (8, 16, 1)]
    assert numpy_blas() == before and len(before) == 1
