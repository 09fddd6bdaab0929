"""The fast (Numba) time loop against the NumPy reference: outputs, states and every gradient."""
import contextlib
import inspect

import numpy as np
import pytest

from rnnkit import kernels

from .helpers import CELLS, random_problem, rnnkit_run


@pytest.fixture(params=["blas", "own"])
def product(request, monkeypatch):
    """The compiled products on BLAS and on rnnkit's own (kernels/_gemm.py), whichever this
    machine's default is (``RNNKIT_PRODUCT``): both paths are tested everywhere."""
    from rnnkit import products

    monkeypatch.setattr(products, "_OWN", [request.param == "own"])
    return request.param


@contextlib.contextmanager
def _two_threads():
    """Numba's pool at two threads (or all it has) inside the block, whatever the suite's setting
    (tests/conftest.py, applied first), so a loop's parts or a product's blocks really run side by
    side; the setting before is restored after."""
    import numba

    from rnnkit import threads

    threads.apply_environment()
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


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
def test_fast_equals_reference(cell, dtype, rtol, lengths, product):
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
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_unit_split_time_loop_equals_reference(cell, parts, monkeypatch, product):
    """The fast loop splits the hidden units into parts, one per thread, each computing its own
    rows of every step's product and its own units' gates (kernels/_parallel.py): with 17 hidden
    units (parts of unequal size), 19 sequences of uneven lengths, bidirectional, 2 layers,
    float64, 1, 2 or 3 parts: every output and gradient is the reference's. Run on two threads
    whatever the suite's setting (tests/conftest.py), so the parts really run side by side."""
    from rnnkit.kernels import sequence

    monkeypatch.setattr(sequence, "_parts", lambda H, G: sequence._parts_of(H, G, parts))
    with _two_threads():
        _split_loop_equals_reference(cell)


def _split_loop_equals_reference(cell):
    lengths = [7] + list(np.random.default_rng(1).integers(1, 8, 18))
    cls, _, kw = CELLS[cell]
    m = cls(3, 17, 2, bidirectional=True, dtype=np.float64, seed=0, **kw)
    x, state, G, Gs = random_problem(cell, 7, 19, 3, 17, 2, True, False, lengths, True, np.float64, seed=4)
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


def test_unit_parts_and_their_permutation():
    """Part p owns units bounds[p]..bounds[p+1]; the permuted rows hold, part after part, every
    gate's rows of the part's units in the cell's gate order; ``inv`` undoes the permutation."""
    from rnnkit.kernels.sequence import _parts_of

    bounds, perm, inv = _parts_of(5, 3, 2)
    assert bounds.tolist() == [0, 2, 5]
    assert perm.tolist() == [0, 1, 5, 6, 10, 11, 2, 3, 4, 7, 8, 9, 12, 13, 14]
    assert (perm[inv] == np.arange(15)).all()


def test_no_two_compiled_functions_share_a_cache_entry():
    """Numba's on-disk cache keys an entry by the function's name, line and bytecode, not by its
    flags: two compilations of one function (a serial and a parallel build of the time loop once)
    share an index, and a process runs whichever an earlier process wrote."""
    import importlib
    import pkgutil

    from numba.core.dispatcher import Dispatcher

    import rnnkit.kernels as pkg

    dispatchers = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        names = vars(importlib.import_module(f"rnnkit.kernels.{info.name}"))
        found = list(names.values()) + [v for d in names.values() if isinstance(d, dict) for v in d.values()]
        dispatchers.update({id(f): f for f in found if isinstance(f, Dispatcher) and hasattr(f._cache, "_cache_file")})
    assert len(dispatchers) > 20                                # the kernels, the loops, the products
    indexes = [f._cache._cache_file._index_path for f in dispatchers.values()]
    assert len(set(indexes)) == len(indexes)


def test_split_product_equals_numpys(monkeypatch, product):
    """``products.matmul`` splits a large product over two threads (whatever the suite's setting,
    tests/conftest.py), by rows or (for a wide result) by columns, or as the caller asks, with operands in any layout:
    contiguous, transposed, sliced, reversed, broadcast, empty; ``matmul_into`` writes an ``out``
    BLAS cannot take through a copy and refuses mismatched shapes; small or mixed products stay
    with NumPy."""
    import warnings

    from numba.core.errors import NumbaPerformanceWarning

    from rnnkit import products

    with _two_threads():
        _split_products_equal_numpys(products, warnings, NumbaPerformanceWarning)
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((500, 200))
    calls = []
    monkeypatch.setattr(products, "matmul_into", lambda *args: calls.append(args))
    assert products.matmul(a[:3], b[:100].T).shape == (3, 100) and not calls        # small: NumPy's
    assert products.matmul(a, b.T.astype(np.float32)).dtype == np.float64 and not calls   # mixed: NumPy's promotion
    with pytest.raises(ValueError, match="mismatch"):                                 # NumPy's own message
        products.matmul(a, b)


def test_read_only_operands_compile_no_product_of_their_own(product):
    """A read-only operand (a recurrent module's output, which a head's products read) goes to the
    compiled products as a view of the same memory without the flag, so Numba does not compile a
    second split product for its type; the result is that of writeable operands in the same layouts,
    bit for bit, and the operands are left as they were (read-only, unchanged), memory from
    ``bytes`` too."""
    from numba import types

    from rnnkit import products
    from rnnkit.kernels import _parallel as P

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((96, 80)).astype(np.float32), rng.standard_normal((80, 70)).astype(np.float32)
    with _two_threads():
        want = products.matmul(a, b)
        before = set(P.split_gemm.signatures)
        ra = np.frombuffer(a.tobytes(), np.float32).reshape(a.shape)                 # memory nobody may write
        rb = b.T.copy().T
        rb.flags.writeable = False
        assert not ra.flags.writeable and not rb.flags.writeable
        for x, y in ((ra, b), (a, rb), (ra, rb), (ra.T.T, rb[:, :])):
            # against writeable copies in the same layouts: BLAS may order a product's sums
            # differently for a transposed operand (OpenBLAS's SkylakeX kernels on a Zen 4 machine do)
            same = want if y is b else products.matmul(np.array(x, order="K"), np.array(y, order="K"))
            np.testing.assert_array_equal(products.matmul(x, y), same)
            out = np.empty((96, 70), np.float32)
            products.matmul_three((x, y, out), (x, y, np.empty_like(out)), (x, y, np.empty_like(out)))
            np.testing.assert_array_equal(out, same)
        assert not ra.flags.writeable and not rb.flags.writeable
        np.testing.assert_array_equal(ra, a)
        assert set(P.split_gemm.signatures) == before
        for compiled in (P.split_gemm, P.gemm_three):         # (matmul_three runs side by side on the own product)
            assert all(t.mutable for sig in compiled.signatures for t in sig if isinstance(t, types.Array))


def test_products_called_from_python_have_one_build_for_every_layout(product):
    """The split products and the transposing copy, called from Python (``_dispatch.AnyLayout``),
    are compiled once per dtype whatever the operands' layouts: whole arrays, a view of every
    other column, padded rows (the fused LSTM's states), a transposed operand. Every build's arrays
    are typed 'A', and each result is NumPy's to rounding (the transposing copy: exactly)."""
    from numba import types

    from rnnkit import products
    from rnnkit.kernels import _parallel as P

    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        wide = rng.standard_normal((130, 2 * 90)).astype(dt)
        padded = rng.standard_normal((90, 80)).astype(dt)[:, :70]
        c = np.ascontiguousarray(wide[:, :90])
        with _two_threads():
            for a, b in ((c, padded), (wide[:, ::2], padded), (wide[:, :90], np.ascontiguousarray(padded)),
                         (c, np.asfortranarray(padded)), (np.asfortranarray(c), padded)):
                got = products.matmul(a, b)
                np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4 if dt == np.float32 else 1e-12,
                                           atol=1e-4 if dt == np.float32 else 1e-12)
                for m in (a, b):
                    np.testing.assert_array_equal(products.contiguous(m.T), m.T)
                out = [np.empty((130, 70), dt) for _ in range(3)]
                products.matmul_three((a, b, out[0]), (a, b, out[1]), (a, b, out[2]))
                for o in out:
                    np.testing.assert_array_equal(o, got)
    for compiled in (P.split_gemm, P.gemm_three, P.transpose_into):
        sigs = compiled.signatures
        assert all(t.layout == "A" for sig in sigs for t in sig if isinstance(t, types.Array)), (compiled, sigs)
        dtypes = [next(t.dtype for t in sig if isinstance(t, types.Array)) for sig in sigs]
        assert len(dtypes) == len(set(dtypes)) <= 2, (compiled, sigs)


@pytest.mark.parametrize("H", [32, 64, 128, 256])
def test_three_products_side_by_side_are_the_split_ones_bit_for_bit(H, monkeypatch, product):
    """``products.matmul_three`` (the backward's ``dW_hh``, ``dW_ih`` and input gradient): on two
    threads with the own product, one region, the first two whole on a thread each and the third
    split by columns to balance them, giving :func:`matmul_into`'s bits, with a transposed first
    operand and a row-strided second, as the backward passes them; where the first product
    outweighs the other two (H=256), or with BLAS, three split products (the region not run)."""
    import numba

    from rnnkit import products
    from rnnkit.kernels import _parallel as P

    ran = []
    real = P.gemm_three
    monkeypatch.setattr(P, "gemm_three", lambda *args: ran.append(args[-2]) or real(*args))
    with _two_threads():
        rng = np.random.default_rng(H)
        for dt in (np.float32, np.float64):
            LN, D = 2500, 64
            A = rng.standard_normal((4 * H, LN)).astype(dt)
            rows = rng.standard_normal((LN, H + 16)).astype(dt)
            X, W = rng.standard_normal((LN, D)).astype(dt), rng.standard_normal((4 * H, D)).astype(dt)
            trio = [(A, rows[:, :H]), (A, X), (W.T, A)]
            want = []
            for a, b in trio:
                out = np.empty((a.shape[0], b.shape[1]), dt)
                products.matmul_into(a, b, out)
                want.append(out)
            got = [np.full_like(w, np.nan) for w in want]
            ran.clear()
            products.matmul_three(*[(a, b, g) for (a, b), g in zip(trio, got)])
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)
            side_by_side = product == "own" and numba.get_num_threads() == 2 and H < 256
            assert bool(ran) == side_by_side
            if ran:                               # the input gradient split where the work balances
                assert ran[0] == {32: 1856, 64: 1280, 128: 0}[H]    # 3/4, 1/2, none of its columns on thread 0
        empty = [np.full((4, 0), np.nan), np.full((4, 5), np.nan), np.full((0, 5), np.nan)]  # an empty third
        products.matmul_three((np.ones((4, 3)), np.ones((3, 0)), empty[0]),
                              (np.ones((4, 2)), np.ones((2, 5)), empty[1]),
                              (np.ones((0, 7)), np.ones((7, 5)), empty[2]))
        np.testing.assert_array_equal(empty[1], np.full((4, 5), 2.0))
    with pytest.raises(ValueError, match="do not match"):
        products.matmul_three((A, X, np.empty((4 * H, D))), (A, X, np.empty((4 * H, D + 1))),
                              (W.T, A, np.empty((D, LN))))


def _split_products_equal_numpys(products, warnings, NumbaPerformanceWarning):
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        tol = 1e-4 if dt == np.float32 else 1e-12
        a, b = rng.standard_normal((300, 200)).astype(dt), rng.standard_normal((500, 200)).astype(dt)
        for x, y in ((a, b.T), (a[::2], b.T[:, ::3]), (b.T[:100].T, a[:100]), (b.T, b), (a[:, :150], b.T[:150])):
            with warnings.catch_warnings():
                warnings.simplefilter("error", NumbaPerformanceWarning)
                out = products.matmul(x, y)
            assert out.dtype == dt and out.shape == (x.shape[0], y.shape[1])
            np.testing.assert_allclose(out, x.astype(np.float64) @ y.astype(np.float64), rtol=tol, atol=10 * tol)
        wide = rng.standard_normal((300, 3000)).astype(dt)                 # (64, 256) @ (256, 2500): split by columns
        for x, y in ((wide[:64, :256], wide[:256, :2500]), (wide[:256, :64].T, wide[::-1][:256, :2500]),
                     (np.broadcast_to(wide[0, :256], (64, 256)), wide[:300, :256].T), (wide[:64, :0], wide[:0, :2500]),
                     (wide[:0, :256], wide[:256, :2500]), (wide[:1, :256], wide[:256, :2500])):
            for by_rows in (None, True, False):          # the time loops ask for rows (the projection)
                out = np.full((x.shape[0], y.shape[1]), np.nan, dt)
                products.matmul_into(x, y, out, by_rows)
                np.testing.assert_allclose(out, x.astype(np.float64) @ y.astype(np.float64), rtol=tol, atol=10 * tol)
        x, y = wide[:64, :256], wide[:256, :96]                            # an out BLAS cannot write: a copy
        for out in (np.full((64, 192), np.nan, dt)[:, ::2], np.full((96, 64), np.nan, dt).T,
                    np.full(96, np.nan, dt)[None, :].repeat(64, 0)[:1]):
            x1 = x[:out.shape[0]]
            products.matmul_into(x1, y, out)
            np.testing.assert_allclose(out, x1.astype(np.float64) @ y.astype(np.float64), rtol=tol, atol=10 * tol)
        one = np.full(96, np.nan, dt)
        products.matmul_into(x[:1], y, np.lib.stride_tricks.as_strided(one, (1, 96), (0, one.itemsize)))
        np.testing.assert_allclose(one, (x[:1].astype(np.float64) @ y.astype(np.float64))[0], rtol=tol, atol=10 * tol)
        with pytest.raises(ValueError, match="do not match"):
            products.matmul_into(x, y[:200], np.empty((64, 96), dt))
        with pytest.raises(ValueError, match="do not match"):
            products.matmul_into(x, y, np.empty((64, 10), dt))
        with pytest.raises(ValueError, match="dtypes"):
            products.matmul_into(x, y.astype(np.float16), np.empty((64, 96), dt))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_own_product_equals_float64_products(dtype):
    """rnnkit's own product (kernels/_gemm.py): every tile width (1 to 4 vectors, the last one
    masked: columns 1..300; a wide ``B`` read in place, or, with rows 1 kB apart, or 512 bytes
    and a long K, or 1,040 bytes and a column panel past ``PANEL_BYTES``, copied a tile at a
    time), partial row panels, K from 0 up, ``A`` row-major, transposed,
    sliced with a stride, ``C += A @ B``, ``C`` a view inside a larger array whose other
    elements stay untouched; and the ``gemm`` entry the loops call, with a transposed ``B``."""
    from rnnkit.kernels import _blas, _gemm

    rng = np.random.default_rng(0)
    tol = 2e-5 if dtype == np.float32 else 1e-13
    for M, K, N in [(1, 1, 1), (7, 5, 3), (6, 64, 16), (13, 17, 17), (12, 33, 31), (25, 9, 48), (8, 3, 49),
                    (5, 40, 64), (30, 11, 65), (19, 70, 130), (100, 260, 300), (100, 260, 253), (100, 1030, 125),
                    (4, 0, 9), (128, 64, 50), (64, 256, 25), (96, 3072, 257)]:
        a = rng.standard_normal((M, 2 * K + 1)).astype(dtype)
        b = rng.standard_normal((K, N + 3)).astype(dtype)[:, 1:N + 1]
        for A in (a[:, :K], np.asfortranarray(a[:, :K]), a[:, 1::2][:, :K]):
            want = A.astype(np.float64) @ b.astype(np.float64)
            scale = 1 + np.abs(want)
            big = np.full((M + 2, N + 5), 7.0, dtype)
            c = big[1:M + 1, 2:N + 2]
            s = A.itemsize
            _gemm.product(A, A.strides[0] // s, A.strides[1] // s, K, b, c)
            assert np.all(np.abs(c - want) <= tol * scale * max(1, K) ** 0.5), (M, K, N)
            outside = big.copy()
            outside[1:M + 1, 2:N + 2] = 7.0
            assert np.all(outside == 7.0)                                  # nothing written outside c
            _gemm.product(A, A.strides[0] // s, A.strides[1] // s, K, b, c, True)
            assert np.all(np.abs(c - 2 * want) <= 2 * tol * scale * max(1, K) ** 0.5)
            out = np.empty((M, N), dtype)
            _blas.gemm(np.ascontiguousarray(A.T), np.ascontiguousarray(b.T), out, True, True, 0.0, True)
            assert np.all(np.abs(out - want) <= tol * scale * max(1, K) ** 0.5)


def test_transposed_copies_are_numpys():
    """The transposing copies (``products.contiguous`` of a column-major view, on the threads, and
    ``_blas.transposed``, the own product's copy of a transposed ``B``) give NumPy's transpose
    exactly: float32 by 16 x 16 blocks in registers, partial blocks at every edge, rows of a
    larger buffer; float32 with a strided row or rows not whole elements apart (a record's field)
    and float64 a scalar at a time."""
    from rnnkit.kernels import _blas
    from rnnkit.products import contiguous

    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        for R, C in [(1, 1), (1, 37), (37, 1), (16, 16), (17, 15), (33, 70), (2500, 64), (130, 513), (0, 5)]:
            big = rng.standard_normal((R + 1, C + 7)).astype(dt)
            for m in (big[:R, :C], big[1:, 3:C + 3], big[:R, :2 * (C // 2):2]):
                np.testing.assert_array_equal(_blas.transposed(m), m.T)
                np.testing.assert_array_equal(contiguous(np.asfortranarray(m)), m)
                got = contiguous(m.T)
                assert got.flags.c_contiguous
                np.testing.assert_array_equal(got, m.T)
        if R and dt == np.float32:                   # a packed record's field: rows 2 bytes past whole elements
            rec = np.zeros(37, np.dtype([("a", dt, (70,)), ("b", np.int16)]))
            rec["a"] = rng.standard_normal((37, 70))
            field = rec["a"]
            assert field.strides[0] % 4
            np.testing.assert_array_equal(_blas.transposed(field), field.T)
            np.testing.assert_array_equal(contiguous(field.T), field.T)


# (H, batch, steps, parts) for the fused LSTM steps: batches whose last columns go to the tail
# tiles (vectors over units: 50 = 48 + 2, 19 = 16 + 3, 70 = 64 + 4 + 2, 3 and 8 wholly, 1), to
# a masked last vector (79 = 64 + 15, 12) or to whole vectors only (16, 32); units not a multiple
# of the tail tiles' 16 (17, 40) or fewer (8)
CASES = [(64, 50, 4, 2), (17, 19, 5, 3), (40, 70, 3, 2), (8, 3, 3, 1), (24, 16, 2, 2), (33, 79, 3, 2),
         (20, 8, 3, 2), (16, 1, 4, 1), (48, 12, 2, 3), (18, 32, 2, 2), (200, 79, 3, 2), (333, 50, 2, 2),
         (256, 32, 2, 2)]


def test_fused_lstm_step_is_the_separate_step_bit_for_bit():
    """The LSTM's forward step with the gates inside the own product's tile (kernels/_fused.py)
    equals the own product followed by the Numba gate kernel bit for bit: activations, cell and
    hidden states (by features on one path, in rows on the other), the state handed to the next
    step; padded steps, odd sizes, batches that leave columns to the tail tiles
    (:data:`CASES`), 1 to 3 parts. The fused loop writes the weights' transpose its tail tiles
    read (each part its own columns): exactly ``W.T``."""
    from rnnkit.kernels import _parallel as P
    from rnnkit.kernels import sequence as S
    from rnnkit.kernels._sync import counters

    rng = np.random.default_rng(1)
    for H, N, L, parts in CASES:
        bounds, _, _ = S._parts_of(H, 4, parts)
        W = (rng.standard_normal((4 * H, H)) * 0.3).astype(np.float32)
        A0 = (rng.standard_normal((4 * H, L * N)) * 2).astype(np.float32)
        bias = rng.standard_normal(4 * H).astype(np.float32)
        valid = rng.random((L, N)) > 0.2
        h0, c0 = rng.standard_normal((H, N)).astype(np.float32), (3 * rng.standard_normal((H, N))).astype(np.float32)
        out = []
        for fused in (None, True):
            A, Hb, Cb = A0.copy(), np.full((H, (L + 1) * N), np.nan, np.float32), np.full((H, (L + 1) * N), np.nan,
                                                                                          np.float32)
            Hb[:, :N], Cb[:, :N] = h0, c0
            hcur = np.empty((2, H, N), np.float32)
            hcur[0] = h0
            HT = np.full(((L + 1) * N, H), np.nan, np.float32)
            HT[:N] = h0.T
            # the fused loop writes the weights' transpose itself, each part its columns at its step 0
            WT = np.ascontiguousarray(W.T) if fused is None else np.full((H, 4 * H), np.nan, np.float32)
            P.LOOPS["lstm_forward"](W, WT, A, bias, Hb, Cb, HT, valid, bounds, hcur,
                                    np.empty((4 * H, N), np.float32), np.empty((parts, N), np.float32), False, True,
                                    *S._paths(fused), False, fused is not None, counters(parts))
            np.testing.assert_array_equal(WT, W.T)
            # the fused step keeps the states in rows only (HT), the separate one by features (Hb)
            out.append((A, Hb if fused is None else HT.T, Cb, hcur[L % 2]))
        for a, b in zip(*out):
            assert not np.isnan(b).any()
            np.testing.assert_array_equal(a, b)


def test_part_major_rows_by_blocks_are_the_index_copy():
    """``sequence._reordered``: the weights', biases' and gradients' rows part-major and back, by
    blocks where the parts are equal, are ``a[perm]`` and ``a[inv]`` exactly, C-contiguous and a
    copy (the loops keep them as the forward used them), for unequal parts (H=5, 33) too."""
    from rnnkit.kernels import sequence as S

    rng = np.random.default_rng(0)
    for H in (5, 8, 33, 64, 128):
        for G in (1, 3, 4):
            for P in (1, 2, 3):
                _, perm, inv = S._parts_of(H, G, P)
                for shape in ((G * H,), (G * H, 7)):
                    a = rng.standard_normal(shape).astype(np.float32)
                    x = S._reordered(a, perm, G, P, True)
                    y = S._reordered(x, inv, G, P, False)
                    np.testing.assert_array_equal(x, a[perm])
                    np.testing.assert_array_equal(y, a)
                    for got, src in ((x, a), (y, x)):
                        assert got.flags.c_contiguous and not np.shares_memory(got, src)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_a_state_not_given_has_no_gradient_computed_and_changes_no_bit(cell, monkeypatch):
    """A module called without a state throws the gradient reaching the initial state away, so
    the fast backward leaves that product out (``"state0"`` in ``skip``); the input's and the
    parameters' gradients are those of a run with the same zero state given, bit for bit, and
    only that run computes the state's gradient (one (H, G*H) @ (G*H, N) product a layer)."""
    import rnnkit
    from rnnkit.kernels import sequence as S

    cls, kw = {"lstm": (rnnkit.LSTM, {}), "gru": (rnnkit.GRU, {}), "rnn_tanh": (rnnkit.RNN, {})}[cell]
    x = np.random.default_rng(0).standard_normal((6, 50, 5)).astype(np.float32)
    shapes, real = [], S.matmul_into
    monkeypatch.setattr(S, "matmul_into",
                        lambda a, b, out, *r, **k: shapes.append(out.shape) or real(a, b, out, *r, **k))
    runs = []
    for given in (False, True):
        m = cls(5, 24, num_layers=2, seed=0, **kw)
        state = None
        if given:
            zeros = np.zeros((2, 50, 24), np.float32)
            state = (zeros, zeros.copy()) if cell == "lstm" else zeros
        y, _ = m(x, state)
        shapes.clear()
        out = m.backward(np.ones_like(y))
        dx = out[0] if given else out
        runs.append((dx, {k: v.copy() for k, v in m.grads.items()}, list(shapes)))
    (dx0, g0, s0), (dx1, g1, s1) = runs
    np.testing.assert_array_equal(dx0, dx1)
    for k in g0:
        np.testing.assert_array_equal(g0[k], g1[k])
    assert (24, 50) not in s0 and s1.count((24, 50)) == 2       # W_hh^T da_0 of each layer, given only


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("parts", [1, 2])
def test_a_zero_initial_state_skips_the_first_product_and_changes_no_bit(cell, fused, parts, product, monkeypatch):
    """With a zero initial state (none given, or zeros given) the forward loops leave out step 0's
    recurrent product: outputs, final states and every gradient (the given state's too) are those
    of the loop computing it, bit for bit: one part and two on two threads, odd sizes, two layers,
    both directions with lengths, the LSTM fused and separate, both products. That the product is
    really left out shows where the recurrent weights are NaN: step 0's output is then unchanged
    without it, changed with it."""
    import rnnkit
    from rnnkit.kernels import sequence as S

    if fused and cell != "lstm":
        pytest.skip("the fused step is the float32 LSTM's")
    if fused and product != "own":
        pytest.skip("the fused step runs on the own product")
    dtype = np.float32 if fused else np.float64
    kind, kw = {"lstm": (rnnkit.LSTM, {}), "gru": (rnnkit.GRU, {}), "rnn_tanh": (rnnkit.RNN, {}),
                "rnn_relu": (rnnkit.RNN, {"nonlinearity": "relu"})}[cell]
    monkeypatch.setattr(S, "_parts", lambda H, G: S._parts_of(H, G, parts))
    real = S._zero_state
    with _two_threads():
        for H, N, D, given, lengths in ((24, 50, 1, False, None), (33, 7, 1, True, None),
                                        (33, 7, 2, False, [5, 3, 5, 1, 4, 2, 5])):
            x = np.random.default_rng(0).standard_normal((5, N, 6)).astype(dtype)
            state = None
            if given:
                zeros = np.zeros((2 * D, N, H), dtype)
                state = (zeros, zeros.copy()) if cell == "lstm" else zeros
            runs = []
            for skip in (True, False):
                monkeypatch.setattr(S, "_zero_state", real if skip else (lambda h0: False))
                m = kind(6, H, num_layers=2, bidirectional=D == 2, seed=0, dtype=dtype, **kw)
                y, st = m(x, state, lengths=lengths)
                back = m.backward(np.ones_like(y), **({"dstate": st} if given else {}))
                flat = [y] + list(st if isinstance(st, tuple) else (st,))
                flat += list(back[1] if cell == "lstm" else (back[1],)) + [back[0]] if given else [back]
                runs.append(([a.copy() for a in flat], {k: v.copy() for k, v in m.grads.items()}))
            (a0, g0), (a1, g1) = runs
            for a, b in zip(a0, a1):
                np.testing.assert_array_equal(a, b)
            for k in g0:
                np.testing.assert_array_equal(g0[k], g1[k])
            for skip in (True, False):
                monkeypatch.setattr(S, "_zero_state", real if skip else (lambda h0: False))
                m = kind(6, H, seed=0, dtype=dtype, **kw)
                y, _ = m(x)
                m.params["weight_hh_l0"][...] = np.nan
                y_nan, _ = m(x)
                assert np.array_equal(y[0], y_nan[0]) == skip
    monkeypatch.setattr(S, "_zero_state", real)
    assert not S._zero_state(np.eye(3, dtype=dtype)) and S._zero_state(np.zeros((3, 3), dtype))


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_gru_recurrent_weight_gradient_skips_the_rows_it_replaced(parts, product):
    """``sequence._gru_w_hh``: the r and z rows of ``A @ Hprev`` and the n rows of ``DHN @ Hprev``,
    without the n rows of ``A @ Hprev`` that the full product computed and then overwrote: the
    full product's result, for 1-3 parts (two run side by side), float32 and float64: bit for bit
    with rnnkit's own product (each element's sum in one order, whatever rows a call holds), to
    rounding with BLAS (whose blocking follows the rows)."""
    from rnnkit.kernels import sequence as S

    rng = np.random.default_rng(parts)
    H, LN = 40, 700
    bounds, _, inv = S._parts_of(H, 3, parts)
    for dt in (np.float32, np.float64):
        A, DHN = rng.standard_normal((3 * H, LN)).astype(dt), rng.standard_normal((H, LN)).astype(dt)
        Hprev = rng.standard_normal((LN, H + 16)).astype(dt)[:, :H]
        want = S._product(A, Hprev, inv, 3, parts)
        n = np.empty((H, H), dt)
        S.matmul_into(DHN, Hprev, n)
        want[2 * H:] = n
        got = S._gru_w_hh(A, DHN, Hprev, bounds)
        if product == "own":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5 if dt == np.float32 else 1e-12, atol=1e-4)


def test_line_aligned_buffers_start_on_a_line():
    """``sequence.line_aligned``: the shape asked, C-contiguous, its first element on a 64-byte
    boundary, for rows narrower than a line too (H=8 float32: 32-byte rows)."""
    from rnnkit.kernels import sequence as S

    for R, C in ((2550, 64), (2550, 144), (1, 1), (7, 1), (5, 3), (9, 8), (100, 20)):
        for dt in (np.float32, np.float64):
            for _ in range(8):                       # different addresses from the allocator
                a = S.line_aligned((R, C), dt)
                assert a.shape == (R, C) and a.dtype == dt and a.flags.c_contiguous
                assert a.ctypes.data % 64 == 0


def test_padded_state_rows_change_no_bit(monkeypatch):
    """Where H float32 elements make a multiple of 512 bytes (H=128), the fused LSTM keeps its
    states' rows ``ROW_PAD`` elements further apart (kernels/sequence.py), a layout the loop, the
    weight gradients, the next layer and the module's output all read through strides: outputs,
    final states, input gradient and every parameter gradient of a two-layer LSTM are the same
    bits as with rows exactly H apart, and the padding is there (at H=64 it is not)."""
    import rnnkit
    from rnnkit.kernels import sequence as S
    from rnnkit.products import own_product

    if not own_product():
        pytest.skip("the fused LSTM step runs on rnnkit's own product (512-bit vectors)")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 50, 16)).astype(np.float32)
    for H, padded in ((128, True), (64, False)):
        dy = rng.standard_normal((4, 50, H)).astype(np.float32)
        runs = []
        for pad in (S.ROW_PAD, 0):
            monkeypatch.setattr(S, "ROW_PAD", pad)
            m = rnnkit.LSTM(16, H, num_layers=2, seed=0)
            y, (h, c) = m(x)
            stride = m._cache[0][0].steps.HT.strides[0]
            assert m._cache[0][0].steps.HT.ctypes.data % 64 == 0          # rows start on a cache line
            dx = m.backward(dy)
            runs.append((y, h, c, dx) + tuple(m.grads[k] for k in sorted(m.grads)))
            assert stride == 4 * (H + (pad if padded else 0))
        for a, b in zip(*runs):
            np.testing.assert_array_equal(a, b)


def test_fused_lstm_backward_step_is_the_separate_step_bit_for_bit():
    """The backward twin (kernels/_fused.py, ``lstm_backward_part``): gate gradients, the
    carried and cell gradients leaving the loop and the last step's gradients for the product
    after it equal the own product followed by the Numba backward kernel bit for bit, with the
    output gradient in the loop's (H, L*N) layout or read by gathers from (L*N, H); and with the
    recurrent product as a reduce-scatter over the parts (``xch``, _parallel._lstm_backward) too,
    whose numbers are the plain product's to rounding (the same sums, grouped by part)."""
    from rnnkit.kernels import _parallel as P
    from rnnkit.kernels import sequence as S
    from rnnkit.kernels._sync import counters

    rng = np.random.default_rng(2)
    for H, N, L, parts in CASES:
        bounds, _, _ = S._parts_of(H, 4, parts)
        WT = (rng.standard_normal((H, 4 * H)) * 0.3).astype(np.float32)
        A0 = rng.random((4 * H, L * N)).astype(np.float32)
        Cb = (2 * rng.standard_normal((H, (L + 1) * N))).astype(np.float32)
        DY = rng.standard_normal((H, L * N)).astype(np.float32)
        valid = rng.random((L, N)) > 0.2
        d0, c0 = rng.standard_normal((H, N)).astype(np.float32), rng.standard_normal((H, N)).astype(np.float32)
        by_way = []
        for scatter in (False, True) if parts > 1 else (False,):
            out = []
            for fused, dy_rows in ((None, False), (True, False), (True, True)):   # dy as (H, L*N), or (L*N, H)
                A, dscr = A0.copy(), np.full((2, 4 * H, N), np.nan, np.float32)
                dm = np.zeros((2, H, N), np.float32)
                dd, dc = np.empty((2, H, N), np.float32), np.empty((2, H, N), np.float32)
                dd[0], dc[0] = d0, c0
                dy = np.ascontiguousarray(DY.T) if dy_rows else DY
                # the parts' sums; without the exchange the fused step's empty blocks (as
                # sequence.layer_backward passes them) and the separate step's None
                xch = np.full((2, parts, H, N), np.nan, np.float32) if scatter else None
                xt = np.full((parts, S.TAIL_MAX, H), np.nan, np.float32) if scatter else None
                if fused and not scatter:
                    xch, xt = np.empty((2, 1, 0, 0), np.float32), np.empty((1, 0, 0), np.float32)
                with _two_threads():                # the parts side by side, not one worker running all
                    P.LOOPS["lstm_backward"](WT, np.ascontiguousarray(WT.T), A, Cb, dy, valid, bounds, dm, dd, dc,
                                             dscr, xch, xt, scatter, np.empty((parts, N), np.float32), False, True,
                                             *S._paths(fused), dy_rows, np.empty(4 * H, np.float32), counters(parts))
                out.append((A, dd[L % 2], dc[L % 2], dscr[(L - 1) % 2]))
            for got in out[1:]:
                for a, b in zip(out[0], got):
                    assert not np.isnan(b).any()
                    np.testing.assert_array_equal(a, b)
            by_way.append(out[0])
        for a, b in zip(by_way[0], by_way[-1]):
            np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-5 * np.abs(a).max())


def test_one_build_of_the_fused_lstm_backward_serves_one_thread_and_two():
    """The fused LSTM backward passes its exchange blocks whatever the number of parts (empty with
    one), so a change of thread count, as ``RNNKIT_NUM_THREADS=auto`` makes in the demo, runs the
    build it has: with None for one part, the demo's first switch to one thread compiled a second
    build of the loop mid-run (benchmarks/NOTES.md, attempts 95-96); and no build of the fused
    step without the blocks exists in the process, whatever ran before. At any H the two-part
    step equals the one-part step to rounding (the exchange sums by parts)."""
    import numba

    import rnnkit
    from rnnkit.kernels import _parallel as P
    from rnnkit.products import own_product

    if not own_product():
        pytest.skip("the fused LSTM step runs on rnnkit's own product (512-bit vectors)")
    rng = np.random.default_rng(5)
    builds = None
    for H in (256, 64):
        m = rnnkit.LSTM(8, H, seed=1)
        x = rng.standard_normal((3, 20, 8)).astype(np.float32)
        dy = rng.standard_normal((3, 20, H)).astype(np.float32)
        grads = []
        for two in (True, False):
            with _two_threads() if two else contextlib.nullcontext():
                before = numba.get_num_threads()
                if not two:
                    numba.set_num_threads(1)
                try:
                    m.zero_grad()
                    m(x)
                    m.backward(dy)
                finally:
                    numba.set_num_threads(before)
            grads.append({k: v.copy() for k, v in m.grads.items()})
            if builds is None:
                builds = set(P.LOOPS["lstm_backward"].signatures)
            assert set(P.LOOPS["lstm_backward"].signatures) == builds, f"a second build at H={H}, two={two}"
        for k in grads[0]:
            np.testing.assert_allclose(grads[0][k], grads[1][k], rtol=1e-5, atol=1e-5 * np.abs(grads[1][k]).max())
    # whatever ran before in this process: no build of the fused step without the blocks
    names = list(inspect.signature(P._lstm_backward).parameters)
    fused_at, xch_at = names.index("fused"), names.index("xch")
    for sig in P.LOOPS["lstm_backward"].signatures:
        assert not (sig[fused_at] != numba.types.none and sig[xch_at] == numba.types.none), sig


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_time_loops_give_the_same_bits_however_many_threads_run_their_parts(cell, monkeypatch):
    """The loops' workers claim their parts of each step and claim the parts nobody has
    (kernels/_sync.py). With 2 or 3 parts, one thread (running every worker of the region one
    after the other: the first claims every part) and two threads (with 3 parts, one of them runs
    two workers one after the other) give the same outputs, final states and state gradients bit
    for bit, equal to one part's to rounding (the backward product sums the gate rows in the
    parts' order), and none of them hangs."""
    import numba

    from rnnkit.kernels import sequence as S

    x, state, G, Gs = random_problem(cell, 7, 50, 12, 40, 1, False, False, None, True, np.float32, 5)
    ours_cls, _, kw = CELLS[cell]

    def run(threads, parts):
        monkeypatch.setattr(S, "_parts", lambda H, G_: S._parts_of(H, G_, parts))
        old = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            out = rnnkit_run(ours_cls(12, 40, seed=0, **kw), cell, x, state, None, G, Gs)
        finally:
            numba.set_num_threads(old)
        return (out["y"],) + out["finals"] + out["dstate"]

    ref = run(1, 1)
    for parts in (2, 3):
        one, two = run(1, parts), run(2, parts)
        for a, b, r in zip(one, two, ref):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6)


def test_loop_waits_follow_the_openmp_wait_settings(monkeypatch):
    """The loops' waiting workers spin as long as libgomp's threads would (kernels/_sync.py):
    its default, none under ``OMP_WAIT_POLICY=PASSIVE``, ``GOMP_SPINCOUNT`` when it is a number;
    a loop that sleeps at once gives the same bits."""
    from rnnkit.kernels import _sync

    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    assert _sync.spins() == _sync.SPINS
    x, state, G, Gs = random_problem("lstm", 6, 20, 8, 40, 1, False, False, None, True, np.float32, 7)
    ref = rnnkit_run(CELLS["lstm"][0](8, 40, seed=0), "lstm", x, state, None, G, Gs)
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    assert _sync.spins() == 1000
    monkeypatch.setenv("GOMP_SPINCOUNT", "lots")
    assert _sync.spins() == _sync.SPINS
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert _sync.spins() == 0 and _sync.counters(2)[_sync.SPINS_AT] == 0
    got = rnnkit_run(CELLS["lstm"][0](8, 40, seed=0), "lstm", x, state, None, G, Gs)
    for a, b in zip((ref["y"], ref["dx"]) + ref["finals"], (got["y"], got["dx"]) + got["finals"]):
        np.testing.assert_array_equal(a, b)


def test_wide_vectors_follow_the_target_numba_compiles_for(monkeypatch):
    """``auto`` asks whether the code Numba compiles has 512-bit vectors: a cache built for
    ``NUMBA_CPU_NAME=generic`` has none (the own product then ran 60x slower than BLAS), unless
    ``NUMBA_CPU_FEATURES`` names AVX-512F."""
    import numba

    from rnnkit import products

    monkeypatch.setattr(numba.config, "CPU_NAME", "generic")
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "")
    assert products._wide_vectors() is False
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx2,+fma,+avx512f,+avx512bw")
    assert products._wide_vectors() is True


def test_a_bad_product_setting_is_one_line_before_anything_runs(tmp_path):
    import subprocess
    import sys

    text = tmp_path / "t.txt"
    text.write_text("a small corpus for one line of error. " * 40)
    env = {**__import__("os").environ, "RNNKIT_PRODUCT": "mkl"}
    cmd = [sys.executable, "-m", "rnnkit", "train", str(text), "--out", str(tmp_path / "r"), "--steps", "3"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["rnnkit train: error: RNNKIT_PRODUCT: expected one of auto, own, blas, "
                                               "got 'mkl'"]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_a_nan_weight_gives_nan_where_pytorch_does(cell, product):
    """A NaN in a recurrent weight reaches the outputs as it does in PyTorch, on every path: the
    fast float32 activations' clamp keeps a NaN. The fused LSTM's once turned it into -1 (an
    ordered compare), so NaN weights gave finite outputs there alone. Batches of 50 (the fused
    step's tail tiles) and 16, hidden 8 and 64; a non-zero initial state, so that step 0 has its
    recurrent product (with a zero one rnnkit leaves it out, and NaN * 0 is no longer taken)."""
    import torch

    import rnnkit

    for H, N in ((8, 50), (64, 16)):
        m = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn_tanh": rnnkit.RNN}[cell](4, H, seed=0)
        t = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}[cell](4, H)
        with torch.no_grad():
            for name, value in m.state_dict().items():
                getattr(t, name).copy_(torch.from_numpy(value))
            row = 1 if cell == "rnn_tanh" else H + 1                 # the second gate's block
            t.weight_hh_l0[row, 2] = float("nan")
        m.params["weight_hh_l0"][row, 2] = np.nan
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, N, 4)).astype(np.float32)
        h0 = rng.standard_normal((1, N, H)).astype(np.float32)     # not zero: step 0 has its product
        state = (h0, h0.copy()) if cell == "lstm" else h0
        y, _ = m(x, state)
        with torch.no_grad():
            expected = t(torch.from_numpy(x), tuple(map(torch.from_numpy, state)) if cell == "lstm"
                         else torch.from_numpy(h0))[0].numpy()
        assert np.isnan(expected[0]).any() and not np.isnan(expected[0]).all()
        np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))


def test_the_fused_step_takes_a_mask_of_any_dtype(product):
    """The functional API's ``mask`` may be float (1.0 / 0.0) as well as boolean: both paths,
    fused or not, read it as 'nonzero'."""
    from rnnkit.functional.recurrent import CELLS as OPS
    from rnnkit.functional.recurrent import layer_forward, length_mask
    from rnnkit.nn.recurrent import time_loop

    rng = np.random.default_rng(0)
    L, N, I, H = 5, 3, 4, 8
    x = rng.standard_normal((L, N, I)).astype(np.float32)
    W_ih, W_hh = ((0.3 * rng.standard_normal((4 * H, n))).astype(np.float32) for n in (I, H))
    s0 = (np.zeros((N, H), np.float32), np.zeros((N, H), np.float32))
    ops = OPS["lstm"]
    mask = length_mask(np.array([5, 2, 4]), L).astype(np.float32)
    ys = [layer_forward(ops, x, s0, W_ih, W_hh, mask=m, loop=time_loop(ops))[0] for m in (mask, mask != 0)]
    np.testing.assert_array_equal(ys[0], ys[1])
    assert np.all(ys[0][2:, 1] == 0)                          # the padded steps of the short sequence


def test_product_choice_from_the_environment(monkeypatch):
    """``RNNKIT_PRODUCT``: own, blas, auto (512-bit vectors decide), anything else one line."""
    from rnnkit import products
    from rnnkit.errors import UserError

    wide = products._wide_vectors()
    for value, want in (("own", True), ("BLAS", False), ("auto", wide), ("", wide)):
        monkeypatch.setattr(products, "_OWN", [])
        monkeypatch.setenv("RNNKIT_PRODUCT", value)
        assert products.own_product() is want
    monkeypatch.setattr(products, "_OWN", [])
    monkeypatch.setenv("RNNKIT_PRODUCT", "mkl")
    with pytest.raises(UserError, match="RNNKIT_PRODUCT: expected one of auto, own, blas, got 'mkl'"):
        products.own_product()


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


@pytest.mark.parametrize("L", [1, 4])
def test_the_fused_lstm_output_is_its_state_rows_read_only(L):
    """The fused LSTM keeps its states in rows that backward reads; the module hands that buffer
    out as its output, without a copy, read-only: a write to it raises, and the gradients are
    those of a run whose output nobody touched."""
    import rnnkit
    from rnnkit import products
    from rnnkit.nn.recurrent import _root

    x = np.random.default_rng(0).standard_normal((L, 50, 3)).astype(np.float32)
    grads = []
    for change in (False, True):
        lstm = rnnkit.LSTM(3, 16, seed=0)
        y, _ = lstm(x)
        if products.own_product():             # the fused path: no copy
            assert np.may_share_memory(y, _root(lstm._cache[0][0].h_prev))
        assert not y.flags.writeable
        dy = np.ones_like(y)
        if change:
            with pytest.raises(ValueError, match="read-only"):
                y += 100.0
        lstm.backward(dy)
        grads.append({k: v.copy() for k, v in lstm.grads.items()})
    for k in grads[0]:
        np.testing.assert_array_equal(grads[0][k], grads[1][k])


@pytest.mark.parametrize("make", [
    lambda r: r.LSTM(3, 8, seed=0), lambda r: r.GRU(3, 8, seed=0), lambda r: r.RNN(3, 8, seed=0),
    lambda r: r.RNN(3, 1, seed=0), lambda r: r.LSTM(3, 8, num_layers=2, dropout=0.3, seed=0),
    lambda r: r.LSTM(3, 8, bidirectional=True, seed=0), lambda r: r.GRU(3, 8, batch_first=True, seed=0),
    lambda r: r.LSTM(3, 8, layer_norm=True, seed=0), lambda r: r.LSTM(3, 8, proj_size=4, seed=0),
    lambda r: r.LSTM(3, 8, recompute=2, seed=0), lambda r: r.GRU(3, 8, zoneout=0.2, seed=0)],
    ids=["lstm", "gru", "rnn", "rnn-h1", "lstm-2-dropout", "lstm-bi", "gru-batch-first", "lstm-ln", "lstm-proj",
         "lstm-recompute", "gru-zoneout"])
def test_every_module_output_is_read_only_and_backward_leaves_it(make):
    """Whatever the path (fused rows, feature-major copies, variants, concatenated directions),
    the output is read-only, and backward, which writes over its caches, leaves it as it was."""
    import rnnkit

    m = make(rnnkit)
    x = np.random.default_rng(1).standard_normal((4, 4, 3) if m.batch_first else (5, 4, 3)).astype(np.float32)
    for lengths in (None, np.array([4, 3, 4, 1])):
        y, _ = m(x, lengths=lengths)
        assert not y.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            y[0, 0, 0] = 1.0
        before = y.copy()
        m.backward(np.ones_like(y))
        np.testing.assert_array_equal(y, before)


@pytest.mark.parametrize("cell", ["LSTM", "RNN", "GRU"])
def test_module_weight_gradients_added_in_place_equal_the_layers_own(cell):
    """The module lets the fast loops add ``dW_ih`` and ``dW_hh`` straight into its gradients from
    the parts' row order (``into``); they equal, bit for bit, what the loop's backward returns
    without ``into``, and a second backward without ``zero_grad`` adds to them (twice the first)."""
    import rnnkit
    from rnnkit.functional.recurrent import layer_backward

    x = np.random.default_rng(3).standard_normal((6, 50, 5)).astype(np.float32)
    dy = np.random.default_rng(4).standard_normal((6, 50, 32)).astype(np.float32)
    with _two_threads():
        m = getattr(rnnkit, cell)(5, 32, seed=0)
        m(x)
        m.backward(dy)
        once = {k: v.copy() for k, v in m.grads.items()}
        m(x)
        m.backward(dy)
        twice = {k: v.copy() for k, v in m.grads.items()}
        m(x)
        cache = m._cache[0][0]
        p = m.params
        args = (dy, (np.zeros((50, 32), np.float32),) * m.ops.n_states, cache, p["weight_ih_l0"], p["weight_hh_l0"])
        _, _, g = layer_backward(m.ops, *args, skip=("state0",))
    assert {"W_ih", "W_hh"} <= set(g)
    np.testing.assert_array_equal(once["weight_ih_l0"], g["W_ih"])
    np.testing.assert_array_equal(once["weight_hh_l0"], g["W_hh"])
    for k in once:
        np.testing.assert_array_equal(twice[k], 2 * once[k])
