"""Every example users copy from README.md and docs/**/*.md works as written.

The fenced blocks are read from the markdown at collection time (nothing is copied here):

* each ```python block runs in a fresh temporary directory, after the earlier ```python blocks of
  the same section (they build on each other), in one namespace;
* each ```bash block runs its commands in order, in one shell (``set -e -o pipefail``), in a fresh
  temporary directory with the installed ``rnnkit`` and this ``python`` first on PATH.

A command that installs something, needs data from outside the repository or trains for long is
not run: it has its own SKIPPED item with the reason (and an ``rnnkit ...`` command's arguments are
still checked against the real parser there, so a renamed option fails the test). A command that
reads what a skipped one writes (``rnnkit sample runs/mytext`` after a two-minute ``rnnkit train
... --out runs/mytext``) is run as written on a small stand-in run made by ``STAND_INS``, or skipped
when there is none. The documentation's placeholder files (``TEXT_FILE``, ``my.csv``, ...) are
generated in each directory (``PLACEHOLDERS``).

When a new example is slow, add a rule to ``SKIPS`` naming its runtime; when the library is wrong
about an example that is right, list the block in ``XFAILS``.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK_TIMEOUT = 120          # seconds for one bash block (a runaway example fails instead of hanging)

# (regular expression searched in the command, why it is not run). First match wins.
SKIPS = [
    (r"^python3 -m venv\b|^pip install\b", "installs packages (the test runs in the installed dev environment)"),
    (r"^apt-get download\b|\bdpkg-deb -x\b|^export RNNKIT_DATA=",
     "fetches and unpacks Debian packages with apt-get: data from outside the repository"),
    (r"^torchrun\b", "a multi-machine launch template ('...' stands for torchrun's own options)"),
    (r"^python benchmarks/", "a benchmark: minutes to hours"),
    (r"^rnnkit demo\b", "trains for about two minutes"),
    (r"^rnnkit train TEXT_FILE --cell lstm --hidden-size 256", "2000 steps of a 2x256 LSTM: over 90 s here"),
    (r"^rnnkit train TEXT_FILE --out runs/mytext --resume --steps 4000", "extends the run above to 4000 steps: minutes"),
    (r"^rnnkit train data/big\b", "the default 2x256 LSTM for its default steps: over 90 s here"),
    (r"^rnnkit train TEXT_FILE --embed-size 256 --hidden-size 256\b",
     "a 2x256 LSTM for the default steps: over 90 s here"),
    (r"^rnnkit train TEXT_FILE --engine torch --nproc 2", "two DDP processes for the default steps: over 60 s here"),
    (r"^rnnkit classify train --train train.npz --seed 2\b", "800 default steps: about 13 s here"),
    (r"^rnnkit classify train --train bm_train\.ts\b", "800 default steps: about 13 s here"),
    (r"^rnnkit forecast --dataset sunspots\b", "about 9 s here; the forecast of load.csv runs (arguments checked)"),
    (r"^rnnkit forecast --dataset my\.csv\b", "about 9 s here; the forecast of load.csv runs (arguments checked)"),
    (r"^rnnkit classify train --dataset japanese-vowels\b",
     "about 8 s here; classify train on train.npz runs (arguments checked)"),
    (r"^rnnkit tag train --train \$WIKI\b", "600 steps on the wiki treebank: about 55 s here"),
    (r"^rnnkit tag train --out runs/dna\b", "about 53 s here"),
    (r"^rnnkit seq2seq train --train g2p\.tsv\b", "--time-limit 600: up to ten minutes"),
    (r"^rnnkit seq2seq train --task dates\b", "3000 default steps: over 60 s here"),
    (r"^rnnkit experiment (vanishing|truncation)\b", "over 60 s here"),
    (r"^rnnkit experiment exploding\b", "about 10-13 s here"),
    (r"^rnnkit handwriting train\b", "over 60 s here"),
]

# run directory a skipped command writes -> a small run made in its place, so that the commands
# that read it (sample, eval, plot, export, predict, translate, ...) run as written
STAND_INS = {
    "runs/mytext": "rnnkit train TEXT_FILE --out runs/mytext --steps 10 --hidden-size 32 --num-layers 1 --no-progress",
    "runs/mine2": "rnnkit classify train --train train.npz --seed 2 --steps 20 --out runs/mine2 --no-progress",
    "runs/tr-pos": "rnnkit tag train --train $WIKI --steps 5 --hidden-size 16 --out runs/tr-pos --no-progress",
    "runs/g2p": "awk 'NR % 40 == 0' g2p.tsv > g2p-sample.tsv && rnnkit seq2seq train --train g2p-sample.tsv "
                "--tgt-tokens words --hidden-size 16 --steps 5 --out runs/g2p --no-progress",
    "runs/dates": "rnnkit seq2seq train --task dates --steps 10 --hidden-size 16 --out runs/dates --no-progress",
    "runs/hand": "rnnkit handwriting train --characters 50 --steps 5 --hidden-size 16 --out runs/hand --no-progress",
}

# "file:line" of a block (or of a command) -> why it fails: a library bug, kept visible
XFAILS: dict[str, str] = {}


def _text(n: int, offset: int = 0) -> str:
    import pydoc_data.topics                          # the text `rnnkit demo` learns

    return "\n".join(pydoc_data.topics.topics.values())[offset:offset + n]


def _csv() -> str:
    import math

    return "t,load\n" + "".join(f"{i},{50 + 10 * math.sin(i / 4) + i / 20:.3f}\n" for i in range(400))


# files the documentation names as the user's own
PLACEHOLDERS = {
    "TEXT_FILE": lambda: _text(100_000),
    "OTHER_TEXT_FILE": lambda: _text(20_000, offset=100_000),
    "BIG_TEXT_FILE": lambda: _text(300_000),
    "my.csv": _csv,
}


# ---------------------------------------------------------------------------------------------
# reading the markdown

@dataclass
class Command:
    line: int
    text: str
    skip: str | None = None

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text.replace("\\\n", " "), comments=True)     # bash drops backslash-newline

    @property
    def writes(self) -> set[str]:
        """Paths (and $VARIABLES) this command creates."""
        w, out = self.words, set()
        for i, word in enumerate(w[:-1]):
            if word in ("--out", "-o", "--output", "--png", ">"):
                out.add(w[i + 1])
        m = re.match(r"^(?:export\s+)?([A-Za-z_]\w*)=", self.text)
        if m:
            out |= {f"${m.group(1)}", f"${{{m.group(1)}}}"}
        return out

    def reads(self, path: str) -> bool:
        """Whether this command uses ``path`` (named as an argument other than an output, or resumed)."""
        if path.startswith("$"):
            return path in self.text and not self.text.startswith(path[1:].strip("{}") + "=")
        w = self.words
        outputs = {w[i + 1] for i, word in enumerate(w[:-1]) if word in ("--out", "-o", "--output", "--png", ">")}
        return path in w and (path not in outputs or "--resume" in w)


@dataclass
class Block:
    doc: Path
    line: int                      # of the opening fence
    lang: str
    code: str
    section: str
    commands: list[Command] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")


def read_blocks(doc: Path) -> list[Block]:
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks, section, i = [], "", 0
    while i < len(lines):
        if lines[i].startswith("#"):
            section = lines[i]
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(m.group(1)):
            j += 1
        assert j < len(lines), f"{doc.name}:{i + 1}: a code block is never closed"
        block = Block(doc, i + 1, m.group(2).lower(), "\n".join(lines[i + 1:j]) + "\n", section)
        if block.lang in ("bash", "sh", "shell", "console"):
            block.commands = split_commands(lines[i + 1:j], i + 2)
        blocks.append(block)
        i = j + 1
    return blocks


def split_commands(lines: list[str], first: int) -> list[Command]:
    """One Command per shell command: backslash continuations and quotes spanning lines joined."""
    commands, acc, start = [], [], 0
    for k, line in enumerate(lines):
        if not acc and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not acc:
            start = first + k
        acc.append(line)
        text = "\n".join(acc)
        if text.endswith("\\"):
            continue
        try:
            shlex.split(text, comments=True)
        except ValueError:                      # a quote still open: the command goes on
            continue
        commands.append(Command(start, text))
        acc = []
    assert not acc, f"line {start}: a command is never finished"
    return commands


BLOCKS = [b for doc in DOC_FILES for b in read_blocks(doc)]
for _c in (c for b in BLOCKS for c in b.commands):          # the commands not to run, with their reasons
    _c.skip = next((reason for pattern, reason in SKIPS if re.search(pattern, _c.text)), None)


def producers(block: Block, upto: Command) -> dict[str, Command]:
    """What the commands before ``upto`` (this block's, then the same file's earlier bash blocks') write."""
    made: dict[str, Command] = {}
    for b in BLOCKS:
        if b.doc != block.doc or b.line > block.line or not b.commands:
            continue
        for c in b.commands:
            if b is block and c.line >= upto.line:
                break
            for path in c.writes:
                made[path] = c
    return made


def steps(block: Block) -> tuple[list[tuple[Command, str]], list[tuple[Command, str]]]:
    """(what the block's test runs: (command, "" or a stand-in's note), its commands not run: (command, why))."""
    run, skipped, done = [], [], set()
    for c in block.commands:
        if c.skip:
            skipped.append((c, c.skip))
            continue
        missing = None
        for path, maker in producers(block, c).items():
            if not c.reads(path) or path in done:
                continue
            if maker.skip and path in STAND_INS:
                run.append((Command(c.line, STAND_INS[path]), f"# stand-in for {path} (line {maker.line}: {maker.skip})"))
                done.add(path)
            elif maker.skip:
                missing = f"reads {path}, which line {maker.line} writes ({maker.skip})"
            elif maker not in block.commands:
                missing = f"reads {path} from another block (line {maker.line}): not supported, add a stand-in"
        if missing:
            skipped.append((c, missing))
            continue
        run.append((c, ""))
        done |= c.writes
    return run, skipped


def _param(block: Block, item: str, kind: str, payload):
    marks = [pytest.mark.xfail(strict=True, reason=XFAILS[item])] if item in XFAILS else []
    return pytest.param(block, payload, id=f"{item}-{kind}", marks=marks)


def _cases():
    for block in BLOCKS:
        if block.lang in ("python", "py"):
            yield _param(block, block.where, "python", None)
        elif block.commands:
            run, skipped = steps(block)
            if run:
                yield _param(block, block.where, "bash", run)
            for c, why in skipped:
                yield _param(block, f"{block.doc.relative_to(ROOT)}:{c.line}", "skipped", (c, why))


CASES = list(_cases())


# ---------------------------------------------------------------------------------------------
# running them

def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("RNNKIT_NUM_THREADS", "1")      # conftest's choice: two workers on two cores
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _make_placeholders(directory: Path) -> None:
    for name, make in PLACEHOLDERS.items():
        (directory / name).write_text(make(), encoding="utf-8")


def _run_python(block: Block) -> None:
    earlier = [b for b in BLOCKS if b.doc == block.doc and b.section == block.section
               and b.lang in ("python", "py") and b.line < block.line]
    namespace = {"__name__": "__main__"}
    for b in [*earlier, block]:
        code = "\n" * b.line + b.code                  # tracebacks give the markdown's line numbers
        exec(compile(code, str(b.doc), "exec"), namespace)


def _run_bash(block: Block, run: list[tuple[Command, str]], cwd: Path) -> None:
    for c, note in run:
        if not note:
            _check_args(c)                        # a wrong option fails at once, before any training
    _make_placeholders(cwd)
    script = ["set -e -o pipefail", "trap 'echo \"docs example failed: line $__doc_line\" >&2' ERR"]
    for c, note in run:
        shown = f"{block.doc.name}:{c.line}" + (f" {note.lstrip('# ')}" if note else "")
        script += [f"__doc_line={c.line}", f"echo {shlex.quote('+ ' + shown)} >&2", c.text]
    script = "\n".join(script) + "\n"
    try:
        r = subprocess.run(["bash", "-c", script], cwd=cwd, env=_env(), capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where}: took over {BLOCK_TIMEOUT} s; add a rule to SKIPS naming its runtime")
    if r.returncode:
        tail = "\n".join(r.stderr.replace("\r", "\n").splitlines()[-15:])
        pytest.fail(f"{block.where}: exit status {r.returncode}\n--- script\n{script}--- stderr (end)\n{tail}",
                    pytrace=False)


def _check_args(c: Command) -> None:
    """An ``rnnkit ...`` command's options and values, read by rnnkit's own parser (nothing runs)."""
    words = c.words
    if not words or words[0] != "rnnkit":
        return
    from rnnkit import cli

    argv = [re.sub(r"^\$\{?\w+\}?$", "PLACEHOLDER", w) for w in words[1:]]     # $WIKI -> a path
    shell = [i for i, w in enumerate(argv) if w.startswith((">", "<", "|", "&", ";", "2>"))]
    argv = argv[:shell[0]] if shell else argv                                  # a redirection is the shell's
    try:
        cli.build_parser().parse_args(cli._default_action(argv))
        refused = False
    except SystemExit as e:                     # argparse's way out; its message is on stderr
        refused = bool(e.code)
    if refused:
        pytest.fail(f"line {c.line}: `{c.text}` is refused by rnnkit's argument parser (stderr below)", pytrace=False)


def _check_skipped(c: Command, why: str) -> None:
    """Fail when a command that is not run could not run anyway (an unknown option, a missing script)."""
    words = c.words
    _check_args(c)
    if len(words) >= 2 and words[0] == "python" and words[1].startswith("benchmarks/"):
        script = ROOT / words[1]
        assert script.is_file(), f"line {c.line}: {words[1]} does not exist"
        # its options' values, checked by its own argparse (--help exits once they are read); only for
        # scripts that parse arguments at all: the others would run the benchmark
        if len(words) > 2 and "ArgumentParser" in script.read_text(encoding="utf-8"):
            r = subprocess.run([sys.executable, str(script), *words[2:], "--help"], cwd=ROOT, env=_env(),
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
            assert r.returncode == 0, f"line {c.line}: `{c.text}` is refused: {r.stderr.strip()}"
    pytest.skip(f"not run: {why}")


@pytest.mark.parametrize("block, payload", CASES)
def test_docs_example(block, payload, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if block.lang in ("python", "py"):
        _run_python(block)
    elif isinstance(payload, tuple):
        _check_skipped(*payload)
    else:
        _run_bash(block, payload, tmp_path)


def test_examples_are_found():
    """The markdown reader sees the blocks (a change of fence style must not turn the test into a no-op)."""
    langs = [b.lang for b in BLOCKS]
    assert langs.count("python") >= 1 and langs.count("bash") >= 10
    assert sum(1 for case in CASES if case.id.endswith("-bash")) >= 5
    unknown = {b.lang for b in BLOCKS} - {"python", "py", "bash", "sh", "shell", "console", "text", ""}
    assert not unknown, f"code blocks of a language this test does not run: {unknown}"
