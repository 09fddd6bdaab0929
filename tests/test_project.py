"""Project hygiene: CI runs exactly README's test command; the package imports without heavy modules."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    cmd = "pip install -e '.[dev]' && python -m pytest -n 2"
    assert cmd in ci
    assert f"python3 -m venv .venv && . .venv/bin/activate && {cmd}" in readme
    assert "pip install -e . && rnnkit demo" in readme


def test_help_imports_no_numpy():
    code = "import sys; from rnnkit.cli import build_parser; build_parser(); print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


FORBIDDEN = {   # package -> what it must never import (imports point down only)
    "functional": {"kernels", "nn", "models", "apps", "train", "commands", "cli", "data"},
    "kernels": {"nn", "models", "apps", "train", "commands", "cli", "data"},
    "nn": {"models", "apps", "train", "commands", "cli", "data"},
    "models": {"apps", "train", "commands", "cli"},
    "data": {"nn", "models", "apps", "train", "commands", "cli"},
    "train": {"apps", "commands", "cli"},
    "apps": {"commands", "cli"},
}


def _imports(path):
    import ast

    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            parts = path.relative_to(ROOT / "rnnkit").parts[:-1]
            base = parts[: len(parts) - (node.level - 1)]
            target = (list(base) + (node.module.split(".") if node.module else []))
            if target:
                yield target[0]
            else:
                yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnkit."):
            yield node.module.split(".")[1]


def test_imports_point_down_only():
    """functional never imports kernels (the time loop is chosen in nn/), nothing imports the apps
    or the command line from below, and so on (DESIGN.md's layers)."""
    bad = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / "rnnkit" / package).glob("*.py")):
            for target in _imports(path):
                if target in forbidden:
                    bad.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not bad, bad


def test_thread_count_from_the_environment():
    code = ("import rnnkit; from rnnkit.threads import num_threads; rnnkit.LSTM(2, 3); print(num_threads()); "
            "rnnkit.set_num_threads(2); print(num_threads())")
    import os

    env = dict(os.environ, RNNKIT_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["1", "2"]
    env["RNNKIT_NUM_THREADS"] = "many"
    r = subprocess.run([sys.executable, "-m", "rnnkit", "classify", "train", "--dataset", "dna", "--steps", "1"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "RNNKIT_NUM_THREADS: expected an integer >= 1 or 'auto', got 'many'" in r.stderr


def test_loop_parts_from_the_environment():
    """RNNKIT_LOOP_PARTS sets how many parts the fast time loop's batch is split into (1 unless
    set); a bad value is one line before anything is written."""
    import os

    code = "import rnnkit; from rnnkit import threads; rnnkit.LSTM(2, 3); print(threads.batch_parts(40))"
    run = lambda env: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)  # noqa: E731
    assert run(dict(os.environ)).stdout.strip() == "[(0, 40)]"
    assert run(dict(os.environ, RNNKIT_LOOP_PARTS="2")).stdout.strip() == "[(0, 20), (20, 40)]"
    env = dict(os.environ, RNNKIT_LOOP_PARTS="two")
    r = subprocess.run([sys.executable, "-m", "rnnkit", "classify", "train", "--dataset", "dna", "--steps", "1"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "RNNKIT_LOOP_PARTS: expected an integer >= 1, got 'two'" in r.stderr
