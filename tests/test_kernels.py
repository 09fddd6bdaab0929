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


def test_fast_steps_expose_gate_activations():
    """Diagnostics read steps[t].gates on either path; both give the same activations."""
    cls, _, kw = CELLS["lstm"]
    m = cls(3, 4, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    gates = {}
    for b in ("numpy", "numba"):
        with kernels.use(b):
            m(x)
            steps = m._cache[0][0].steps
            gates[b] = np.stack([steps[t].gates for t in range(len(steps))])
            m.clear_cache()
    np.testing.assert_allclose(gates["numba"], gates["numpy"], rtol=1e-12)
    assert gates["numba"].shape == (5, 2, 16) and ((gates["numba"] >= -1) & (gates["numba"] <= 1)).all()
