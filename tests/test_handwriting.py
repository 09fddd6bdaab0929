"""Handwriting as pen movement (issue 13): the mixture density output against finite differences
and a PyTorch autograd reference of the same formula, biased sampling, the kanjivg loader, the
user's stroke files, the model, the baselines and the command line end to end."""
import json
import math
import os

import numpy as np
import pytest
import torch

from rnnkit.functional.mdn import mdn_loss, mdn_loss_backward, mdn_raw, mdn_sample, mdn_size, mdn_split
from tests.helpers import numeric_grad


def _problem(shape=(4, 3), M=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(shape + (mdn_size(M),)).astype(dtype)
    target = rng.standard_normal(shape + (3,)).astype(dtype)
    target[..., 2] = rng.random(shape) < 0.3
    mask = rng.random(shape) < 0.8
    mask.flat[0] = True
    return y, target, mask


def torch_mdn_nll(y, target, M):
    """Graves (2013) eqs. 18-26 written directly with torch ops (no log-space tricks except logsumexp),
    for autograd to differentiate: the reference the hand-written backward is held to."""
    e_hat = y[..., 0]
    pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat = (y[..., 1 + k * M: 1 + (k + 1) * M] for k in range(6))
    x1, x2, x3 = target[..., 0:1], target[..., 1:2], target[..., 2]
    s1, s2, rho = torch.exp(s1_hat), torch.exp(s2_hat), torch.tanh(rho_hat)
    z1, z2 = (x1 - mu1) / s1, (x2 - mu2) / s2
    Z = z1 ** 2 + z2 ** 2 - 2 * rho * z1 * z2
    log_n = -torch.log(2 * math.pi * s1 * s2 * torch.sqrt(1 - rho ** 2)) - Z / (2 * (1 - rho ** 2))
    log_pi = torch.log_softmax(pi_hat, -1)
    e = torch.sigmoid(e_hat)
    return -torch.logsumexp(log_pi + log_n, -1) - (x3 * torch.log(e) + (1 - x3) * torch.log(1 - e))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mdn_loss_and_gradient_match_torch_autograd(reduction):
    M = 3
    y, target, mask = _problem(M=M)
    loss, cache = mdn_loss(y, target, mask, reduction=reduction)
    dy = mdn_loss_backward(cache, 0.7)
    yt = torch.tensor(y, requires_grad=True)
    nll = torch_mdn_nll(yt, torch.tensor(target), M) * torch.tensor(mask, dtype=torch.float64)
    ref = nll.sum() / (mask.sum() if reduction == "mean" else 1.0)
    (0.7 * ref).backward()
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dy, yt.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert np.all(dy[~mask] == 0)


def test_mdn_gradient_matches_finite_differences():
    y, target, mask = _problem(shape=(3, 2), M=2, seed=1)
    y[..., -2:] *= 2.0                                   # correlations near +-1 too
    _, cache = mdn_loss(y, target, mask)
    dy = mdn_loss_backward(cache)
    f = lambda: mdn_loss(y, target, mask)[0]  # noqa: E731
    for idx in np.ndindex(y.shape):
        np.testing.assert_allclose(dy[idx], numeric_grad(f, y, idx), rtol=1e-5, atol=1e-8, err_msg=str(idx))


def test_mdn_loss_is_finite_where_tanh_saturates():
    y, target, _ = _problem(shape=(2,), M=1, dtype=np.float32)
    y[..., -1] = 30.0                                    # tanh(30) == 1 in float32: 1 - rho^2 would be 0
    loss, cache = mdn_loss(y, target)
    assert np.isfinite(loss) and np.all(np.isfinite(mdn_loss_backward(cache)))


def test_mdn_raw_round_trips_parameters_and_the_single_gaussian_density():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((500, 2)) @ np.array([[1.0, 0.0], [0.6, 0.5]]) + [0.3, -1.0]
    mean, cov = x.mean(0), np.cov(x.T, bias=True)
    s = np.sqrt(np.diag(cov))
    y = mdn_raw(np.full(500, 0.25), [1.0], [mean[0]], [mean[1]], [s[0]], [s[1]], [cov[0, 1] / s[0] / s[1]])
    target = np.concatenate([x, np.zeros((500, 1))], 1)
    loss, _ = mdn_loss(y, target, reduction="sum")
    d = x - mean                                           # the bivariate normal written with the inverse covariance
    logdens = -np.log(2 * np.pi) - 0.5 * np.log(np.linalg.det(cov)) - 0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(loss, -logdens.sum() - 500 * np.log(0.75), rtol=1e-10)
    e_hat, pi_hat, *_ = mdn_split(y)
    np.testing.assert_allclose(1 / (1 + np.exp(-e_hat)), 0.25)


def test_mdn_sample_moments_bias_and_seed():
    mean, s, rho = np.array([1.0, -2.0]), np.array([0.5, 2.0]), 0.8
    y = mdn_raw(np.full(20000, 0.3), [0.5, 0.5], [1.0, 1.0], [-2.0, -2.0], [s[0]] * 2, [s[1]] * 2, [rho] * 2)
    out = mdn_sample(y, rng=0)
    np.testing.assert_allclose(out[:, :2].mean(0), mean, atol=0.05)
    np.testing.assert_allclose(out[:, :2].std(0), s, rtol=0.03)
    assert abs(np.corrcoef(out[:, 0], out[:, 1])[0, 1] - rho) < 0.02
    assert abs(out[:, 2].mean() - 0.3) < 0.02 and set(np.unique(out[:, 2])) <= {0.0, 1.0}
    biased = mdn_sample(y, rng=0, bias=1.0)                 # sigma shrinks by e^-b
    np.testing.assert_allclose(biased[:, :2].std(0), s * np.exp(-1.0), rtol=0.03)
    np.testing.assert_array_equal(mdn_sample(y[:50], rng=3), mdn_sample(y[:50], rng=3))
    with pytest.raises(ValueError, match="bias"):
        mdn_sample(y, bias=-1.0)


def test_mdn_bad_sizes_are_one_line():
    with pytest.raises(ValueError, match="1 \\+ 6M"):
        mdn_loss(np.zeros((2, 8)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="targets of shape"):
        mdn_loss(np.zeros((2, 7)), np.zeros((2, 2)))


# -- data: kanjivg and the user's strokes -------------------------------------------------------

from rnnkit.cli import main  # noqa: E402
from rnnkit.data import handwriting as HW  # noqa: E402


def test_kanjivg_character_parsed_with_strokes_radicals_and_pen_ups():
    f = next(f for f in HW.kanjivg_files() if f.name == "06f22.svg")
    char, paths, radicals, general = HW.parse_kanjivg(f.read_bytes(), "06f22")
    assert char == "漢" and len(paths) == 13 and radicals == ("氵",) and general == "氵"
    chars = HW.load_kanjivg(3, seed=1)
    assert len(chars) == 3 and len({c.code for c in chars}) == 3
    for c in chars:
        o = c.offsets
        assert o.dtype == np.float32 and o.ndim == 2 and o.shape[1] == 3
        assert o.shape[0] == sum(len(s) for s in c.strokes)
        assert int(o[:, 2].sum()) == c.n_strokes and o[-1, 2] == 1      # one pen-up per stroke, the last point's
        inside = np.ones(len(o), bool)
        inside[0] = False
        inside[np.flatnonzero(o[:-1, 2]) + 1] = False                    # the jumps onto each stroke
        assert np.all(np.hypot(o[inside, 0], o[inside, 1]) <= 1 + 1e-5)  # chord <= arc = one step
        for a, b in zip(HW.to_strokes(o), c.strokes):
            np.testing.assert_allclose(a, b, atol=1e-3)
    assert [c.code for c in HW.load_kanjivg(3, seed=1)] == [c.code for c in chars]


def test_stroke_points_every_step_along_the_arc():
    pts = HW.stroke_points("M10,10 L40,10", step=6.0)                 # a line segment: svg.path's own point()
    np.testing.assert_allclose(pts, [[10 + 6 * k, 10] for k in range(6)], atol=1e-9)
    pts = HW.stroke_points("M0,0 C10,0 20,0 25,0", step=6.0)          # a cubic drawn unevenly in t
    np.testing.assert_allclose(np.diff(pts[:, 0])[:-1], 6.0, atol=1e-6)
    assert pts[-1, 0] == pytest.approx(25.0)


def test_missing_kanjivg_names_the_extra(monkeypatch):
    import importlib.resources

    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(ImportError, match=r"kanjivg package: pip install 'rnnkit\[handwriting\]'"):
        HW.kanjivg_files()


def _csv(path, rows, header="sequence,dx,dy,pen"):
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def test_user_strokes_from_npz_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    seqs = [np.column_stack([rng.standard_normal((n, 2)), (np.arange(n) % 3 == 2)]).astype(np.float32) for n in (4, 7)]
    HW.save_npz(tmp_path / "s.npz", seqs)
    back = HW.read_strokes(tmp_path / "s.npz")
    assert [b.shape for b in back] == [(4, 3), (7, 3)] and np.array_equal(back[1], seqs[1])
    rows = [(f"s{i}", *p) for i, s in enumerate(seqs) for p in s.tolist()]
    back = HW.read_strokes(_csv(tmp_path / "s.csv", rows))
    np.testing.assert_allclose(back[0], seqs[0]) and np.testing.assert_allclose(back[1], seqs[1])


@pytest.mark.parametrize("content,match", [
    ("a,b,c,d\n1,0,0,0\n", r"s.csv, line 1: expected the header sequence,dx,dy,pen"),
    ("sequence,dx,dy,pen\na,0,0,2\n", r"s.csv, line 2: expected pen 0 or 1, got 2"),
    ("sequence,dx,dy,pen\na,0,0,0\na,x,0,1\n", r"s.csv, line 3: expected numbers for dx, dy and pen"),
    ("sequence,dx,dy,pen\na,0,0,0\na,0,0\n", r"s.csv, line 3: expected 4 fields"),
    ("sequence,dx,dy,pen\na,0,0,0\nb,0,0,1\na,1,1,1\n", r"s.csv, line 4: sequence 'a' continues after other rows"),
    ("sequence,dx,dy,pen\n", r"expected at least one point after the header"),
    ("sequence,dx,dy,pen\na,1e39,0,0\n", r"s.csv, line 2: expected finite float32 dx and dy, got 1e\+39, 0.0"),
    ("sequence,dx,dy,pen\na,1,\r,0\n", r"s.csv, line 2: expected numbers for dx, dy and pen"),
])
def test_bad_csv_is_one_line(tmp_path, content, match):
    (tmp_path / "s.csv").write_text(content)
    with pytest.raises(HW.UserError, match=match):
        HW.read_strokes(tmp_path / "s.csv")


def test_bad_npz_and_extension(tmp_path):
    np.savez(tmp_path / "two.npz", x=np.zeros((2, 5, 2), np.float32))
    with pytest.raises(HW.UserError, match=r"two.npz: sequence 0: expected \(dx, dy, pen\) points, shape \(L, 3\), got shape \(5, 2\)"):
        HW.read_strokes(tmp_path / "two.npz")
    np.savez(tmp_path / "pen.npz", x=np.full((1, 5, 3), 0.5, np.float32))
    with pytest.raises(HW.UserError, match=r"pen.npz: sequence 0, step 0: expected pen 0 or 1, got 0.5"):
        HW.read_strokes(tmp_path / "pen.npz")
    (tmp_path / "s.txt").write_text("1")
    with pytest.raises(HW.UserError, match=r"expected stroke sequences in a .npz or .csv file, got '.txt'"):
        HW.read_strokes(tmp_path / "s.txt")


# -- baselines --------------------------------------------------------------------------------


def _regime_data(n_seq=40, seed=0):
    """Strokes whose in-stroke offsets follow dx_t = 0.9 dx_{t-1} + noise, with random jumps between strokes."""
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n_seq):
        pts, prev = [], np.array([0.6, 0.0])
        for _ in range(3):
            pts.append([*(rng.standard_normal(2) * 3 + 4), 0.0])         # the jump onto the stroke
            for t in range(8):
                prev = 0.9 * prev + 0.1 * rng.standard_normal(2)
                pts.append([*prev, float(t == 7)])
        seqs.append(np.array(pts, np.float32))
    return seqs


def test_baselines_fit_what_they_model():
    train, test = _regime_data(60, 0), _regime_data(20, 1)
    g, a = HW.GaussianBaseline().fit(train), HW.AR1Baseline().fit(train)
    x = np.concatenate(test).astype(np.float64)
    d = x[:, :2] - g.mean                                           # the Gaussian's NLL written out
    ref = (np.log(2 * np.pi) + 0.5 * np.log(np.linalg.det(g.cov)) + 0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(g.cov), d)
           - (x[:, 2] * np.log(g.p_up) + (1 - x[:, 2]) * np.log(1 - g.p_up))).mean()
    assert HW.nll_per_point(g, test) == pytest.approx(ref, rel=1e-9)
    A0 = a.params[0][0]
    np.testing.assert_allclose(A0[:, :2], 0.9 * np.eye(2), atol=0.05)      # the in-stroke recursion is recovered
    assert HW.nll_per_point(a, test) < HW.nll_per_point(g, test) - 1.0


# -- the model --------------------------------------------------------------------------------

from rnnkit.models.handwriting import HandwritingModel  # noqa: E402


def _batch(rng, L=6, N=3):
    x = rng.standard_normal((L, N, 3))
    x[..., 2] = rng.random((L, N)) < 0.3
    return x, None, np.array([L, L - 2, 3])


def test_model_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    m = HandwritingModel(5, 2, 2, dtype=np.float64, seed=0)
    batch = _batch(rng)
    m.zero_grad()
    loss, _, count = m.train_step(batch)
    assert count == 6 + 4 + 3
    grads = {name: g.copy() for name, _, g in m.named_parameters()}

    def f():
        out, _ = m.forward(batch[0], batch[2])
        m.clear_cache()
        return mdn_loss(out, batch[0], m._mask(batch[0], batch[2]))[0]
    for name, p, _ in m.named_parameters():
        for idx in [np.unravel_index(i, p.shape) for i in rng.choice(p.size, min(4, p.size), replace=False)]:
            np.testing.assert_allclose(grads[name][idx], numeric_grad(f, p, idx), rtol=1e-5, atol=1e-8, err_msg=name)
    total, _, n = m.evaluate(batch)
    assert total / n == pytest.approx(loss)


@pytest.mark.parametrize("cell,layers", [("lstm", 1), ("gru", 2)])
def test_model_matches_its_torch_twin_and_torch_autograd(cell, layers):
    """The whole step (recurrent layers, head, mixture loss, backward) against torch: the twin from
    ``to_torch`` runs the network, ``torch_mdn_nll`` the loss, autograd the gradients."""
    from rnnkit.interop import from_torch, to_torch

    rng = np.random.default_rng(1)
    m = HandwritingModel(6, layers, 3, cell=cell, dtype=np.float64, seed=2)
    x, _, lengths = _batch(rng, L=7, N=3)
    m.zero_grad()
    loss, _, _ = m.train_step((x, None, lengths))
    twin = to_torch(m)
    out = twin(torch.tensor(x), lengths)
    mask = torch.tensor(m._mask(x, lengths), dtype=torch.float64)
    ref = (torch_mdn_nll(out, torch.tensor(x), 3) * mask).sum() / mask.sum()
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-10)
    for name, p in twin.named_parameters():
        np.testing.assert_allclose(m.grad_dict()[name], p.grad.numpy(), rtol=1e-8, atol=1e-11, err_msg=name)
    back = from_torch(twin)
    assert all(np.array_equal(v, m.state_dict()[k]) for k, v in back.state_dict().items())


def test_model_sampling_shapes_and_seed():
    m = HandwritingModel(8, 1, 3, sample_length=7, seed=0)
    a, b, c = m.sample(4, rng=5), m.sample(4, rng=5), m.sample(4, rng=6)
    assert a.shape == (7, 4, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert set(np.unique(a[..., 2])) <= {0.0, 1.0}
    assert m.sample(2, length=3, bias=2.0, rng=0).shape == (3, 2, 3)
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        m.sample(0)


# -- the command line, end to end -------------------------------------------------------------

TINY = ["--hidden-size", "8", "--components", "2", "--batch-size", "4", "--eval-every", "5", "--no-progress"]


def test_cli_train_sample_eval_on_user_strokes_and_resume(tmp_path, capsys):
    rows = [(f"s{i}", *p) for i, s in enumerate(_regime_data(20)) for p in s.tolist()]
    data, run = str(_csv(tmp_path / "mine.csv", rows)), str(tmp_path / "run")
    assert main(["handwriting", "train", "--data", data, "--steps", "5", "--out", run] + TINY) == 0
    scores = json.loads((tmp_path / "run" / "scores.json").read_text())
    assert scores["n_test"] == 2 and scores["n_valid"] == 2 and scores["steps"] == 5
    assert set(scores["nll_per_point"]) == {"rnnkit", "single Gaussian", "order-1 (AR(1), 3 regimes)"}
    assert (tmp_path / "run" / "samples.png").stat().st_size > 0
    assert main(["handwriting", "train", "--data", data, "--steps", "8", "--out", run, "--resume", "--no-progress"]) == 0
    assert json.loads((tmp_path / "run" / "scores.json").read_text())["steps"] == 8
    capsys.readouterr()
    assert main(["handwriting", "eval", run]) == 0
    out = capsys.readouterr().out
    resumed = json.loads((tmp_path / "run" / "scores.json").read_text())["nll_per_point"]["rnnkit"]
    assert f"rnnkit: {resumed:.4f} nats" in out
    png = str(tmp_path / "s.png")
    assert main(["handwriting", "sample", run, "--num", "3", "--length", "10", "--bias", "0.5", "-o", png]) == 0
    assert os.path.getsize(png) > 0


def test_cli_train_on_kanjivg(tmp_path):
    run = str(tmp_path / "run")
    assert main(["handwriting", "train", "--characters", "10", "--steps", "2", "--out", run] + TINY) == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["data"]["source"].startswith("kanjivg") and cfg["data"]["characters"] == 10


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("sequence,dx,dy,pen\na,0,0,3\n")
    assert main(["handwriting", "train", "--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "r")] + TINY) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rnnkit handwriting: error: {tmp_path / 'bad.csv'}, line 2: expected pen 0 or 1, got 3"
    assert main(["handwriting", "eval", str(tmp_path)]) == 2
    assert "not an rnnkit run directory" in capsys.readouterr().err
    rows = [("a", 0, 0, 1), ("b", 0, 0, 1)]
    assert main(["handwriting", "train", "--data", str(_csv(tmp_path / "two.csv", rows)), "--out",
                 str(tmp_path / "r2")] + TINY) == 2
    assert "split: 2 sequences give 0 test, 0 validation" in capsys.readouterr().err


def test_radical_recognition_files_for_classify(tmp_path, monkeypatch):
    import rnnkit.apps.handwriting as app
    from rnnkit.data.readers import read_sequences

    files = HW.kanjivg_files()
    some = [f for f in files if f.name[:3] in ("06c", "06d")][:60]        # U+6Cxx-6Dxx: many with the water radical
    monkeypatch.setattr(HW, "kanjivg_files", lambda variants=False: some)
    counts = HW.radical_counts()
    assert list(counts.values()) == sorted(counts.values(), reverse=True) and sum(counts.values()) <= len(some)
    top2 = list(counts)[:2]
    train, test = app.export_radicals(str(tmp_path / "rad"), top=2, test_fraction=0.25, log=lambda *a: None)
    (xs, y), (xt, yt) = read_sequences(train), read_sequences(test)
    assert len(xs) + len(xt) == counts[top2[0]] + counts[top2[1]]
    assert set(y) == set(yt) == set(top2) and all(x.shape[1] == 3 for x in xs + xt)
    chars = HW.load_kanjivg(keep=lambda radical: radical == top2[1])
    assert len(chars) == counts[top2[1]] and all(c.radical == top2[1] and c.radical in c.radicals for c in chars)
