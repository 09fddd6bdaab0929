"""Handwriting as pen movement: kanjivg's characters (or the user's strokes) as sequences of pen
offsets ``(dx, dy, pen_up)``, and two baselines to judge a model's likelihood by.

**kanjivg** (the ``kanjivg`` package on PyPI, the ``handwriting`` extra) installs 11,662 SVG files
in a top-level ``kanji/`` directory of site-packages, read here through
``importlib.resources.files("kanji")``. Each file draws one character in a 109 x 109 box, one
``<path>`` per stroke, in writing order; the ``kvg:element`` attribute of the outer group names
the character, and groups with a ``kvg:radical`` attribute mark its radical(s). By default only
the 6,703 plain files are read (the 4,959 ``NNNNN-Variant.svg`` files redraw the same characters
in other styles).

**From strokes to points.** Each stroke's path is parsed by ``svg.path`` (the extra's maintained
SVG-path library) and measured along its arc: every segment is evaluated at ``DENSE`` equal
parameter steps (cubic Béziers, all that kanjivg draws, in Bernstein form from the parsed control
points; other segments through ``svg.path``'s ``point``), the polyline's cumulative length is
taken as the arc length, and points are placed every ``step`` units of it (linear
interpolation), the stroke's last point always included. So a stroke of length l gives
``ceil(l / step) + 1`` points, and strokes drawn fast or slow in the SVG are sampled alike (an
SVG records shape, not timing).

**Offsets.** The points of all strokes in writing order become offsets from the previous point,
in units of ``step`` (so a step along a stroke has length about 1); the first offset is the
first point's position relative to the centre of the box. ``pen_up = 1`` marks the last point of
each stroke (Graves 2013's end-of-stroke bit), so the offset that follows it is the jump to the
next stroke, and a character of k strokes has exactly k pen-ups. :func:`to_strokes` inverts
the map.

**The user's strokes** (:func:`read_strokes`): an ``.npz`` in the layout of
:mod:`rnnkit.data.readers` with D = 3 (``x`` (N, L, 3) + ``lengths``, or ``x_0, x_1, ...`` each
(L_i, 3)), or a ``.csv`` with the header ``sequence,dx,dy,pen`` and one point a row, the rows
of a sequence consecutive, fields separated by commas (no quoting). ``pen`` is 0 or 1.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError, where

EXTRA = "pip install 'rnnkit[handwriting]'"
BOX = 109.0            # kanjivg's viewBox is 0 0 109 109
STEP = 6.0             # default spacing of points along a stroke, in box units
DENSE = 16             # parameter steps per path segment when measuring arc length
CSV_HEADER = ["sequence", "dx", "dy", "pen"]
MAX_OFFSET = 1e6       # the largest |dx|, |dy| a file may hold: beyond it float32 training overflows
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _need(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"handwriting data needs the {package} package: {EXTRA}") from None


@dataclass
class Character:
    """One kanjivg character: ``strokes`` a list of (k_i, 2) point arrays in box units (x right, y
    down), ``offsets`` (L, 3) float32 as the model reads them, ``radicals`` the elements kanjivg marks
    as radicals (possibly none), ``radical`` the one it marks ``kvg:radical="general"`` (the
    character's dictionary radical; None when unmarked)."""

    char: str
    code: str
    strokes: list
    offsets: np.ndarray
    radicals: tuple = field(default_factory=tuple)
    radical: str | None = None

    @property
    def n_strokes(self) -> int:
        return len(self.strokes)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _attr(el, name):
    for k, v in el.attrib.items():
        if _local(k) == name:
            return v
    return None


def parse_kanjivg(data: bytes, code: str):
    """One SVG file -> ``(char, stroke path strings in writing order, radicals, the general radical
    or None)``."""
    root = ET.fromstring(data)
    char, radicals, paths, general = None, [], [], None
    for el in root.iter():
        tag = _local(el.tag)
        if tag == "g":
            element = _attr(el, "element")
            if char is None and element and (_attr(el, "id") or "").endswith(code):
                char = element
            if _attr(el, "radical") and element:
                radicals.append(element)
                if _attr(el, "radical") == "general" and general is None:
                    general = element
        elif tag == "path" and el.get("d"):
            paths.append(el.get("d"))
    return char or chr(int(code.split("-")[0], 16)), paths, tuple(dict.fromkeys(radicals)), general


def bernstein(t):
    """(n, 1) parameters -> (n, 4) cubic Bernstein weights, so ``weights @ [P0, P1, P2, P3]`` are curve points."""
    u = 1.0 - t
    return np.hstack([u ** 3, 3 * u * u * t, 3 * u * t * t, t ** 3])


_T = np.linspace(0.0, 1.0, DENSE + 1)[1:, None]                          # (DENSE, 1) parameters past 0
_WEIGHTS = bernstein(_T)


def stroke_points(d: str, step: float = STEP) -> np.ndarray:
    """An SVG path string -> (k, 2) points every ``step`` units of arc length (the end included)."""
    svg_path = _need("svg.path", "svg.path")
    path = svg_path.parse_path(d)
    dense = [np.array([path[0].point(0.0)])]
    for seg in path:
        if isinstance(seg, svg_path.CubicBezier):          # all of kanjivg's segments: Bernstein form, vectorised
            p = np.array([seg.start, seg.control1, seg.control2, seg.end])
            dense.append(_WEIGHTS @ p)                                   # (DENSE, 4) @ (4,)
        elif not isinstance(seg, svg_path.Move):
            dense.append(np.array([seg.point(float(u)) for u in _T[:, 0]]))
    z = np.concatenate(dense)
    arc = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(z)))])        # (n,) arc length at each dense point
    at = np.append(np.arange(0.0, arc[-1], step), arc[-1])               # where points go
    if len(at) > 1 and at[-1] - at[-2] < 1e-9:
        at = at[:-1]
    return np.stack([np.interp(at, arc, z.real), np.interp(at, arc, z.imag)], 1)


def to_offsets(strokes, step: float = STEP) -> np.ndarray:
    """Strokes (list of (k_i, 2) points in box units) -> (L, 3) float32 ``(dx, dy, pen_up)``."""
    pts = np.concatenate(strokes, 0)                                     # (L, 2)
    pen = np.zeros(len(pts))
    pen[np.cumsum([len(s) for s in strokes]) - 1] = 1.0
    prev = np.vstack([[BOX / 2, BOX / 2], pts[:-1]])
    return np.column_stack([(pts - prev) / step, pen]).astype(np.float32)


def to_strokes(offsets, step: float = STEP) -> list:
    """(L, 3) offsets -> list of (k_i, 2) points in box units (the inverse of :func:`to_offsets`);
    points after the last pen-up form a final stroke."""
    offsets = np.asarray(offsets, np.float64)
    pts = BOX / 2 + np.cumsum(offsets[:, :2] * step, 0)
    ends = np.flatnonzero(offsets[:, 2] > 0.5) + 1
    return [s for s in np.split(pts, ends) if len(s)]


def kanjivg_files(variants: bool = False) -> list:
    """The installed kanjivg SVG files (``importlib.resources`` traversables), sorted by name;
    the style variants only when asked."""
    import importlib.resources

    try:
        root = importlib.resources.files("kanji")
    except ModuleNotFoundError:
        raise ImportError(f"handwriting data needs the kanjivg package: {EXTRA}") from None
    files = sorted((f for f in root.iterdir() if f.name.endswith(".svg") and (variants or "-" not in f.name)),
                   key=lambda f: f.name)
    if not files:
        raise ImportError(f"handwriting data: the kanjivg package has no SVG files in {root}; reinstall it: {EXTRA}")
    return files


def load_kanjivg(n=None, seed=0, step: float = STEP, variants: bool = False, keep=None) -> list:
    """kanjivg characters as :class:`Character` records: all of them (about 6,700 without the
    variants, ~30 s here), or ``n`` drawn without replacement by ``seed``, in file order;
    ``keep(general radical or None)`` filters them before their paths are measured."""
    files = kanjivg_files(variants)
    if n is not None:
        if not 1 <= n <= len(files):
            raise UserError(f"--characters: expected a number in [1, {len(files)}], got {n}")
        pick = np.sort(np.random.default_rng(seed).choice(len(files), n, replace=False))
        files = [files[i] for i in pick]
    out = []
    for f in files:
        code = f.name[:-4]
        char, paths, radicals, general = parse_kanjivg(f.read_bytes(), code)
        if not paths or (keep is not None and not keep(general)):
            continue
        strokes = [stroke_points(d, step) for d in paths]
        out.append(Character(char, code, strokes, to_offsets(strokes, step), radicals, general))
    return out


def radical_counts(variants: bool = False) -> dict:
    """{general radical: characters} over kanjivg's files, most frequent first (reads the XML only)."""
    from collections import Counter

    counts = Counter(parse_kanjivg(f.read_bytes(), f.name[:-4])[3] for f in kanjivg_files(variants))
    counts.pop(None, None)
    return dict(counts.most_common())


def radical_dataset(top: int = 10, step: float = STEP) -> tuple[list, list]:
    """A recognition task from kanjivg's own attributes: the characters whose general radical is
    one of the ``top`` most frequent, as ``(offset sequences, radicals)``; the radical has to be
    recognised from the pen's movement."""
    common = set(list(radical_counts())[:top])
    chars = load_kanjivg(step=step, keep=common.__contains__)
    return [c.offsets for c in chars], [c.radical for c in chars]


# -- the user's strokes -------------------------------------------------------------------------


def check_strokes(seqs, path) -> list:
    """Sequences (L_i, 3) with ``pen`` in {0, 1}; one line naming the file, sequence and step otherwise."""
    for i, s in enumerate(seqs):
        if s.ndim != 2 or s.shape[1] != 3:
            raise UserError(f"{path}: sequence {i}: expected (dx, dy, pen) points, shape (L, 3), got shape {s.shape}")
        bad = np.flatnonzero((s[:, 2] != 0) & (s[:, 2] != 1))
        if bad.size:
            raise UserError(f"{path}: sequence {i}, step {bad[0]}: expected pen 0 or 1, got {s[bad[0], 2]}")
        big = np.flatnonzero(~(np.abs(s[:, :2]) <= MAX_OFFSET).all(axis=1))
        if big.size:
            raise UserError(f"{path}: sequence {i}, step {big[0]}: expected finite dx and dy of at most {MAX_OFFSET:g} "
                            f"in size (rescale the data), got {s[big[0], 0]}, {s[big[0], 1]}")
    if seqs and max(len(s) for s in seqs) < 2:
        raise UserError(f"{path}: expected sequences of at least 2 points (each point is predicted from the ones "
                        f"before it), got {len(seqs)} of at most 1")
    if seqs and not any(np.any(s[:, :2]) for s in seqs):
        raise UserError(f"{path}: expected pen movement, got dx = dy = 0 at every point")
    return [np.asarray(s, np.float32) for s in seqs]


def _read_csv(path) -> list:
    from .readers import read_lines

    lines = read_lines(path, f"a header {','.join(CSV_HEADER)} and one point a row")
    header = [h.strip().lower() for h in lines[0].split(",")]
    if header != CSV_HEADER:
        raise UserError(f"{where(path, 1)}: expected the header {','.join(CSV_HEADER)}, got {lines[0][:60]!r}")
    seqs, ids, seen = [], [], set()
    for n, line in enumerate(lines[1:], 2):            # plain comma-separated numbers: no quoting
        if not line.strip():
            continue
        row = line.split(",")
        if len(row) != 4:
            raise UserError(f"{where(path, n)}: expected 4 fields (sequence,dx,dy,pen), got {len(row)}")
        try:
            dx, dy, pen = (float(v) for v in row[1:])
        except ValueError:
            raise UserError(f"{where(path, n)}: expected numbers for dx, dy and pen, "
                            f"got {','.join(row[1:])!r}") from None
        if not (abs(dx) <= FLOAT32_MAX and abs(dy) <= FLOAT32_MAX):      # NaN fails too
            raise UserError(f"{where(path, n)}: expected finite float32 dx and dy, got {dx}, {dy}")
        if pen not in (0.0, 1.0):
            raise UserError(f"{where(path, n)}: expected pen 0 or 1, got {row[3].strip()}")
        key = row[0].strip()
        if not ids or ids[-1] != key:
            if key in seen:
                raise UserError(f"{where(path, n)}: sequence {key!r} continues after other rows; keep each "
                                f"sequence's rows together")
            seen.add(key)
            ids.append(key)
            seqs.append([])
        seqs[-1].append((dx, dy, pen))
    if not seqs:
        raise UserError(f"{path}: expected at least one point after the header, got none")
    return [np.array(s, np.float32) for s in seqs]


def read_strokes(path) -> list:
    """The user's pen-offset sequences, ``.npz`` or ``.csv`` (see the module's notes) -> list of
    (L_i, 3) float32."""
    from .readers import check_path, read_npz_sequences

    path = check_path(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        xs, _ = read_npz_sequences(path)
        return check_strokes(xs, path)
    if ext == ".csv":
        return _read_csv(path)
    raise UserError(f"{path}: expected stroke sequences in a .npz or .csv file, "
                    f"got {repr(ext) if ext else 'no extension'}")


def save_npz(path, seqs, labels=None) -> None:
    """Sequences (L_i, 3) as the ``.npz`` :func:`read_strokes` (and ``rnnkit classify``) read:
    ``x`` (N, L, 3) zero-padded, ``lengths``, and ``y`` when labels are given."""
    lengths = np.array([len(s) for s in seqs], np.int64)
    x = np.zeros((len(seqs), lengths.max(), 3), np.float32)             # (N, L, 3)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    extra = {} if labels is None else {"y": np.asarray(labels)}
    import io as pyio

    from ..io import atomic_write_bytes

    buf = pyio.BytesIO()
    np.savez(buf, x=x, lengths=lengths, **extra)
    atomic_write_bytes(path, buf.getvalue())              # an interrupted write leaves no half a file


# -- baselines ------------------------------------------------------------------------------------

START = np.array([0.0, 0.0, 1.0], np.float32)   # the input before a sequence's first point: "the pen is up"


def previous_points(seq) -> np.ndarray:
    """(L, 3) -> (L, 3): the point before each one, :data:`START` before the first (what a model of
    point t reads)."""
    return np.vstack([START, seq[:-1]]).astype(np.float32)


class GaussianBaseline:
    """One bivariate Gaussian over every offset (mean and full covariance fitted by maximum
    likelihood) and one pen-up probability: the likelihood of a model that ignores all context."""

    def fit(self, seqs) -> "GaussianBaseline":
        x = np.concatenate(seqs).astype(np.float64)                       # (P, 3)
        self.mean, self.cov = x[:, :2].mean(0), np.cov(x[:, :2].T, bias=True)
        self.p_up = float(np.clip(x[:, 2].mean(), 1e-6, 1 - 1e-6))      # finite odds when every pen bit is 1 (or 0)
        return self

    def raw(self, seq) -> np.ndarray:
        """The mixture-density output (L, 7) that encodes this baseline at every point of ``seq``."""
        s = np.sqrt(np.diag(self.cov))
        n = len(seq)
        return mdn_single(np.full(n, self.p_up), np.tile(self.mean, (n, 1)), np.tile(s, (n, 1)),
                          np.full(n, self.cov[0, 1] / (s[0] * s[1])))


class AR1Baseline:
    r"""An order-1 model: given the previous point :math:`(dx', dy', p')` (``START`` before the
    first), the offset is Gaussian with a linear mean and a full covariance, and the pen bit is
    Bernoulli, fitted separately in three regimes of that previous point: k = 2 when
    :math:`p' = 1` (the next offset is the jump to a new stroke); k = 1 when the previous offset is
    longer than ``jump`` (kanjivg offsets are in sampling steps, so only the jump onto a stroke is
    longer than 1: this point starts the stroke's drawing); k = 0 otherwise (inside a stroke):

    .. math::  (dx, dy) \mid k \sim \mathcal N(A_k [dx', dy', 1]^T, \Sigma_k), \quad
               P(\text{pen up} \mid k) = q_k

    :math:`A_k` by least squares (the maximum-likelihood fit), :math:`\Sigma_k` the covariance of its
    residuals, :math:`q_k` the pen-up frequency (add-one smoothed)."""

    def __init__(self, jump: float = 1.0 + 1e-3):
        self.jump = jump

    def regimes(self, prev) -> np.ndarray:
        """(L, 3) previous points -> (L,) regime 0, 1 or 2 (see the class notes)."""
        long = np.hypot(prev[:, 0], prev[:, 1]) > self.jump
        return np.where(prev[:, 2] > 0.5, 2, np.where(long, 1, 0))

    def fit(self, seqs) -> "AR1Baseline":
        x = np.concatenate(seqs).astype(np.float64)                       # (P, 3) targets
        prev = np.concatenate([previous_points(s) for s in seqs]).astype(np.float64)
        k_of = self.regimes(prev)
        pooled = self._fit_rows(prev, x, np.ones(len(x), bool))
        # a regime with fewer than 4 points (data without pen-ups, or without jumps longer than
        # ``jump``, as offsets in other units than kanjivg's) takes the fit over every point
        self.params = [self._fit_rows(prev, x, k_of == k) if (k_of == k).sum() >= 4 else pooled for k in range(3)]
        return self

    @staticmethod
    def _fit_rows(prev, x, rows):
        design = np.column_stack([prev[rows, :2], np.ones(rows.sum())])            # (P_k, 3)
        A = np.linalg.lstsq(design, x[rows, :2], rcond=None)[0].T                 # (2, 3)
        resid = x[rows, :2] - design @ A.T
        q = (x[rows, 2].sum() + 1.0) / (rows.sum() + 2.0)
        return A, np.cov(resid.T, bias=True) + 1e-6 * np.eye(2), float(q)

    def raw(self, seq) -> np.ndarray:
        prev = previous_points(seq).astype(np.float64)
        k = self.regimes(prev)                                            # (L,)
        A = np.stack([p[0] for p in self.params])[k]                      # (L, 2, 3)
        cov = np.stack([p[1] for p in self.params])[k]                    # (L, 2, 2)
        q = np.array([p[2] for p in self.params])[k]
        mean = np.einsum("lij,lj->li", A, np.column_stack([prev[:, :2], np.ones(len(prev))]))
        s = np.sqrt(np.stack([cov[:, 0, 0], cov[:, 1, 1]], 1))
        return mdn_single(q, mean, s, cov[:, 0, 1] / (s[:, 0] * s[:, 1]))


def mdn_single(p_up, mean, s, rho) -> np.ndarray:
    """(L,) pen-up probabilities, (L, 2) means and standard deviations, (L,) correlations -> the
    one-component mixture-density output (L, 7) that encodes them."""
    from ..functional.mdn import mdn_raw

    return mdn_raw(p_up, np.ones((len(mean), 1)), mean[:, :1], mean[:, 1:], s[:, :1], s[:, 1:], rho[:, None])


def nll_per_point(model, seqs) -> float:
    """Mean negative log-likelihood (nats per point) of ``seqs`` under a baseline's :meth:`raw`,
    by the same :func:`~rnnkit.functional.mdn.mdn_loss` the network is trained with."""
    from ..functional.mdn import mdn_loss

    total = sum(mdn_loss(model.raw(s), np.asarray(s, np.float64), reduction="sum")[0] for s in seqs)
    return total / sum(len(s) for s in seqs)
