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
