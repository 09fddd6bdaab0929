"""Run directories: who owns one, what kind of run it holds, and loading its model.

A run directory is written by one training command and holds ``config.json`` (its ``kind``,
the rnnkit version, the model and training settings, the data description), ``checkpoint.npz``
(everything a resume needs), ``best.npz`` (the weights with the best validation loss),
``metrics.jsonl`` and whatever the application adds (scores, figures).

* :func:`prepare` is called before anything is trained or written: a directory that holds
  another run is never overwritten unless the user says ``--resume`` (same kind) or
  ``--overwrite``; a directory with files that are not a run's is never deleted.
* :class:`RunLock` marks a directory as in use by one process (pid and host in ``run.lock``);
  a second process refuses, and a lock left by a dead process is reported, not taken.
* :func:`load` returns the trained model of any run, whatever its kind.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys

from . import __version__, io
from .errors import UserError

LOCK = "run.lock"

# What rnnkit writes in a run directory, by name (and by kind): --overwrite deletes a run only
# when nothing else is there, so a file the user put beside the run is never lost with it
RUN_FILES = frozenset({"config.json", "checkpoint.npz", "best.npz", "metrics.jsonl", "scores.json", LOCK,
                       "curves.png"})
KIND_FILES = {"forecaster": {"future.csv", "forecast.png"}, "classifier": {"confusion.png"},
              "seq2seq": {"attention.png"}, "handwriting": {"samples.png"}}
EXPERIMENT_FILES = frozenset({
    "runs.json", "results.csv", "results.md", "gradient_flow.png", "gradient_flow_profile.png", "loss_curves.png",
    "exploding.csv", "exploding.md", "exploding.png", "truncation_cost.csv", "truncation_cost.md",
    "truncation_adding.csv", "truncation_adding.md", "truncation.png"})
SUB_RUN_FILES = RUN_FILES | {"result.json"}     # each of an experiment's runs, in OUT/runs/NAME/


EXPORT_NAME = re.compile(r"model(\.[\w-]+)?\.onnx")      # rnnkit export's default names
TEMPORARY = re.compile(r"\.(.+)\.[^.]+\.tmp")             # io.atomic_write_bytes's temporary of NAME
SAMPLES_NAME = re.compile(r"samples-n.+\.png")              # handwriting sample's default names


def run_owned(out_dir, name: str, kind=None) -> bool:
    """Whether the file ``name`` in the ``kind`` run directory ``out_dir`` is one rnnkit writes
    there: the files every run has, its kind's figures and tables, an ONNX export under its default
    name (``model*.onnx``), a handwriting run's samples (``samples-n*.png``), or the temporary file
    an interrupted write of one of these left (``.NAME.XXXX.tmp``). A directory is none of these
    (an experiment's ``runs/`` is judged by :func:`foreign_files`)."""
    path = os.path.join(out_dir, name)
    if os.path.islink(path) or os.path.isdir(path):
        return False
    experiment = str(kind or "").startswith("experiment-")
    own = (name in RUN_FILES or name in KIND_FILES.get(kind, ()) or (experiment and name in EXPERIMENT_FILES)
           or bool(EXPORT_NAME.fullmatch(name)) or (kind == "handwriting" and bool(SAMPLES_NAME.fullmatch(name))))
    return own or _own_temporary(name, lambda n: not n.startswith(".") and run_owned(out_dir, n, kind))


def foreign_files(out_dir, kind) -> list:
    """What in the ``kind`` run directory ``out_dir`` is not the run's own (:func:`run_owned`), an
    experiment's ``runs/`` looked into: its runs' files are theirs, anything else there is named as
    ``runs/NAME/FILE``."""
    out = []
    for e in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, e)
        if (e == "runs" and str(kind).startswith("experiment-") and os.path.isdir(path)
                and not os.path.islink(path)):
            out += _foreign_in_runs(path)
        elif not run_owned(out_dir, e, kind):
            out.append(e)
    return out


def _sub_run_owned(name: str) -> bool:
    """A file an experiment's run holds: its run files, its curves, an export of it."""
    return (name in SUB_RUN_FILES or bool(EXPORT_NAME.fullmatch(name))
            or _own_temporary(name, lambda n: n in SUB_RUN_FILES))


def _foreign_in_runs(path) -> list:
    """What in an experiment's ``runs/`` is not its runs' own, as ``runs/NAME/FILE`` paths."""
    out = []
    for r in sorted(os.listdir(path)):
        sub = os.path.join(path, r)
        if not os.path.isdir(sub) or os.path.islink(sub):
            out.append(f"runs/{r}")
            continue
        out += [f"runs/{r}/{f}" for f in sorted(os.listdir(sub))
                if not _sub_run_owned(f) or not os.path.isfile(os.path.join(sub, f))]
    return out


def _own_temporary(name: str, owned) -> bool:
    """``.NAME.XXXX.tmp`` (:func:`rnnkit.io.atomic_write_bytes`'s temporary) of a name ``owned`` accepts."""
    m = TEMPORARY.fullmatch(name)
    return bool(m) and owned(m.group(1))


def read_config(run_dir) -> dict | None:
    """The run's ``config.json``, or None when there is none; a damaged one is a one-line error."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UserError(f"{path}: expected the run's JSON settings, could not read it "
                        f"({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
    return cfg


def _json_name(value) -> str:
    """What a JSON value is, for a message: ``a number (3)``, ``a list``, ``null``."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
    name = names.get(type(value), type(value).__name__)
    return f"{name} ({value!r})" if isinstance(value, (bool, int, float, str)) else name


def config_kind(cfg: dict, run_dir) -> str:
    """The kind the settings ``cfg`` of ``run_dir`` record: ``"kind"``, or the model's (older runs).
    Settings of another shape than rnnkit writes (``"model"`` not an object, no ``"kind"`` string)
    are a one-line error naming the file, not an AttributeError deep in a command."""
    path = os.path.join(run_dir, "config.json")
    model = cfg.get("model", {})
    if not isinstance(model, dict):
        raise UserError(f'{path}: expected "model" to be a JSON object (the model settings rnnkit writes), '
                        f"got {_json_name(model)}")
    holder = cfg if "kind" in cfg else model if "kind" in model else None
    kind = None if holder is None else holder["kind"]
    if not isinstance(kind, str) or not kind:
        raise UserError(f'{path}: expected "kind", the run\'s kind as a string (charlm, classifier, ...), got '
                        f"{'none' if holder is None else _json_name(kind)}")
    return kind


def saved_kind(tree: dict):
    """The kind a saved tree (weights, a checkpoint) records: its own ``"kind"``, or its model
    config's (None when neither says)."""
    model_config = tree.get("model_config")
    return tree.get("kind") or (model_config.get("kind") if isinstance(model_config, dict) else None)


def _a(kind) -> str:
    return f"an {kind}" if str(kind)[:1] in "aeiou" else f"a {kind}"


def prepare(out_dir, kind: str, resume=False, overwrite=False, remedy=None, delete=True) -> None:
    """Check that ``out_dir`` may receive a ``kind`` run before anything is trained.

    New or empty: fine (``resume`` is then an error). Holding a run: ``resume`` needs the same
    kind and a checkpoint; ``overwrite`` deletes the old run's directory when it holds nothing
    but what rnnkit writes there (:func:`run_owned`), else refuses; neither is an error
    that says what is there and what to do: ``remedy``, for a command without ``--resume`` and
    ``--overwrite``, or those two. Not a run and not empty: refused, even with ``overwrite``.

    ``delete=False`` checks all of that but leaves an old run for ``overwrite`` in place: the
    applications check ``--out`` first and delete only in :func:`rnnkit.apps.common.fit`, after
    every other check (data, memory), so a refused command never costs the user the old run.
    """
    out_dir = os.fspath(out_dir)
    if resume and overwrite:
        raise UserError("--resume and --overwrite: expected one of them, got both")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"--out {out_dir}: expected a directory, got an existing file")
    entries = [e for e in os.listdir(out_dir) if e != LOCK] if os.path.isdir(out_dir) else []
    if not entries:
        if resume:
            raise UserError(f"--resume: {out_dir} holds no run to resume (no checkpoint.npz)")
        return
    cfg = read_config(out_dir)
    found = None if cfg is None else config_kind(cfg, out_dir)
    if found is None:
        raise UserError(f"--out {out_dir}: expected a new or empty directory, got one with files that are not an "
                        f"rnnkit run ({', '.join(sorted(entries)[:4])}{', ...' if len(entries) > 4 else ''}); "
                        f"choose another --out")
    if resume:
        if found != kind:
            raise UserError(f"--resume: {out_dir} holds {_a(found)} run, not {_a(kind)} run")
        if not os.path.exists(os.path.join(out_dir, "checkpoint.npz")):
            raise UserError(f"--resume: {out_dir} has no checkpoint.npz to resume from")
        RunLock(out_dir).check_free()           # before the resume reads or trims anything there
        return
    if overwrite:
        if "rnnkit_version" not in cfg:         # every run rnnkit writes records its version
            raise UserError(f"--overwrite: {out_dir} holds a config.json that rnnkit did not write (it records no "
                            f"rnnkit_version), and rnnkit deletes only its own runs; choose another --out")
        foreign = foreign_files(out_dir, found)
        if foreign:
            shown = ", ".join(foreign[:4]) + (", ..." if len(foreign) > 4 else "")
            raise UserError(f"--overwrite: {out_dir} holds files beside the run that are not its own ({shown}), and "
                            f"--overwrite deletes a run only with nothing else in its directory; move them out, or "
                            f"choose another --out")
        RunLock(out_dir).check_free()
        if delete:
            shutil.rmtree(out_dir)
        return
    if found != kind:                           # --resume cannot continue another kind of run
        raise UserError(f"{out_dir} already holds {_a(found)} run, not {_a(kind)} run; choose another --out "
                        f"(or --overwrite to replace it)")
    remedy = remedy or "pass --resume to continue it, --overwrite to replace it, or choose another --out"
    raise UserError(f"{out_dir} already holds {_a(found)} run; {remedy}")


def check_output(path, directory: bool, flag: str) -> None:
    """Before any work: ``path`` can be written as a directory (``directory``) or a file, i.e. it
    is not the wrong kind of thing already, no part of its parent is a file, and the nearest
    existing parent is writable."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        if directory and not os.path.isdir(path):
            raise UserError(f"{flag} {path}: expected a directory, got an existing file")
        if not directory and os.path.isdir(path):
            raise UserError(f"{flag} {path}: expected a file name, got a directory")
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f"{flag} {path}: cannot be created, {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{flag} {path}: cannot be created, {parent} is not writable")


def refuse_existing(paths, overwrite: bool, flag: str) -> None:
    """Before any work: a file the user named as an output is never replaced unless ``overwrite``
    (``--overwrite``); what rnnkit writes under its own default names inside a run directory (curves,
    attention maps, samples, ``model.onnx``) is made again from the run and is rewritten freely."""
    if overwrite:
        return
    from .io import is_device

    for path in paths:
        if os.path.isfile(path) and not is_device(path):       # /dev/null, /dev/stdout, a pipe: written to
            raise UserError(f"{flag} {path}: the file exists; pass --overwrite to replace it, or name another file")


def require_kind(run_dir, kinds) -> dict:
    """The config of the run in ``run_dir``; a one-line error when it is missing or of another kind."""
    run_dir = os.fspath(run_dir)
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if os.path.isfile(run_dir):
        parent = os.path.dirname(run_dir) or "."
        inside = read_config(parent) is not None and os.path.basename(run_dir) in (
            "best.npz", "checkpoint.npz", "config.json", "metrics.jsonl")
        data = os.path.splitext(run_dir)[1].lower() in (".npz", ".ts", ".csv", ".tsv", ".txt", ".conll", ".conllu")
        hint = (f"pass its directory {parent}" if inside else
                "pass the directory a training command wrote (its --out)"
                + ("; where a command also reads a data file, RUN_DIR comes first" if data else ""))
        raise UserError(f"expected a run directory, got the file {run_dir}; {hint}")
    if not os.path.isdir(run_dir):
        raise UserError(f"run directory not found: {run_dir}")
    cfg = read_config(run_dir)
    if cfg is None:
        raise UserError(f"{run_dir} is not an rnnkit run directory (no config.json in it)")
    found = config_kind(cfg, run_dir)
    if found.startswith("experiment-"):
        raise UserError(f"{run_dir} holds an experiment ({found}), not a run: its figures and tables are in it "
                        f"already, and each of its training runs is a run directory in {os.path.join(run_dir, 'runs')}")
    if kinds and found not in kinds:
        want = " or ".join(_a(k) for k in kinds)
        raise UserError(f"{run_dir} holds {_a(found)} run, not {want} run")
    return cfg


def load_tree(run_dir, which: str = "best") -> tuple[dict, str]:
    """The saved tree of ``best.npz`` (falling back to ``checkpoint.npz``) or, for ``which='last'``,
    the reverse, checked to be the weights of the kind config.json records. Returns ``(tree, path)``."""
    names = ["best.npz", "checkpoint.npz"] if which == "best" else ["checkpoint.npz", "best.npz"]
    for name in names:
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            try:
                tree = io.load(path)
            except ValueError as exc:
                raise UserError(str(exc)) from None
            if not isinstance(tree, dict) or "model" not in tree or "model_config" not in tree:
                raise UserError(f"{path}: expected an rnnkit run's weights (model and model_config), got other content")
            # the model is rebuilt from the weights' own config, so weights of another run (a copied
            # file, an edited config.json) would load as a model the caller does not expect
            cfg = read_config(run_dir)
            kind = None if cfg is None else config_kind(cfg, run_dir)
            saved = saved_kind(tree)
            if kind is not None and saved != kind:
                raise UserError(f"{run_dir}: config.json describes {_a(kind)} run, but {name} holds the weights of "
                                f"{_a(saved)} model; expected the run's own weights")
            return tree, path
    raise UserError(f"{run_dir} has no weights yet (no best.npz or checkpoint.npz in it)")


def fallback_note(model, run_dir, which, command) -> None:
    """One line on stderr when ``which='best'`` found no best.npz and ``model`` has the last
    checkpoint's weights instead (a run stopped before its first validation, or without one)."""
    if which == "best" and getattr(model, "run_weights", None) == "checkpoint.npz":
        print(f"{command}: note: {run_dir} has no best.npz (no validation score saved yet); using its last "
              f"checkpoint", file=sys.stderr)


def load(run_dir, which: str = "best", kinds=()):
    """The trained model of the run in ``run_dir``, in eval mode, whatever its kind.

    ``which`` is ``'best'`` (best validation weights; the last checkpoint when there was no
    validation) or ``'last'``. ``kinds`` restricts the kinds accepted (a one-line error names the
    kind found). The run's extra information (vocabularies, data settings) is ``model.run_extra``,
    the file the weights came from ``model.run_weights``.
    """
    from .models.base import model_from_config

    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir: expected a path to a run directory, got {type(run_dir).__name__}")
    if which not in ("best", "last", "checkpoint"):          # "checkpoint": another name for "last"
        raise ValueError(f"which: expected 'best' or 'last', got {which!r}")
    require_kind(run_dir, kinds)
    tree, path = load_tree(run_dir, which)
    try:
        model = model_from_config(tree["model_config"])
        model.load_state_dict(tree["model"])
    except UserError:                  # already one line about something else (an environment variable)
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, MemoryError) as exc:
        raise UserError(f"{path}: the saved model cannot be rebuilt ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:200]})") from None
    model.eval()
    model.run_extra = tree.get("extra", {})
    model.run_weights = os.path.basename(path)          # which file: best.npz may have been missing
    return model


class RunLock:
    """``with RunLock(out_dir):`` marks the directory as written by this process."""

    def __init__(self, run_dir):
        self.path = os.path.join(os.fspath(run_dir), LOCK)
        self.held = False

    def owner(self) -> dict | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"pid": None, "host": "?"}

    def check_free(self) -> None:
        info = self.owner()
        if info is None:
            return
        pid, host = info.get("pid"), info.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            raise UserError(f"{self.path}: a lock left by process {pid}, which is no longer running; the run it "
                            f"wrote is intact up to its last checkpoint. Delete {self.path} to use the directory again")
        raise UserError(f"{os.path.dirname(self.path)} is in use by process {pid} on {host} ({self.path}); "
                        f"wait for it to finish or choose another --out")

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "rnnkit": __version__})
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            self.check_free()
            raise UserError(f"{self.path}: the directory is locked") from None
        with os.fdopen(fd, "w") as f:
            f.write(payload)
        self.held = True
        return self

    def __exit__(self, *exc):
        if self.held:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.held = False
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
