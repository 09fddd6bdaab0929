"""The ``rnnkit`` command.

Each subcommand lives in :mod:`rnnkit.commands` as a module with ``register(subparsers)`` (argparse
only, so ``--help`` starts fast) and ``run(args)`` (which imports what it needs). User errors
(bad values, missing files) end as one line on stderr and exit status 2; set ``RNNKIT_DEBUG=1``
to see the traceback.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
import threading

from . import __version__
from .commands import COMMANDS
from .commands._args import OneLineParser, check_resume, given_options
from .errors import Terminated, UserError  # noqa: F401  (re-exported: rnnkit.cli.UserError)


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="rnnkit",
        description="Recurrent neural networks (RNN, LSTM, GRU) in NumPy: train, sample, evaluate, plot.",
        epilog="environment: RNNKIT_NUM_THREADS=n sets rnnkit's threads (default: the cores); "
               "RNNKIT_NUM_THREADS=auto lets training time its steps on every core and on one and keep the "
               "faster, for a machine shared with other work.",
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(f"rnnkit.commands.{name}").register(sub)
    return parser


def _terminate(signum, frame):
    raise Terminated()


# every argument that names a file or a directory, as the user typed it: an empty one (an unset
# shell variable) is refused here, for every command, before it can mean "here" or "the built-in set"
PATH_ARGS = {"run_dir": "RUN_DIR", "runs": "RUN_DIR", "text_file": "TEXT_FILE", "file": "FILE", "train": "--train",
             "valid": "--valid", "test": "--test", "data": "--data", "input": "--input", "dataset": "--dataset",
             "out": "--out", "output": "--output", "png": "--png", "scores": "--scores", "prefix": "PREFIX"}


def _default_action(argv: list) -> list:
    """``rnnkit forecast --dataset x`` means ``rnnkit forecast train --dataset x``: a command whose
    module names a ``DEFAULT_ACTION`` runs it when an option follows the command's name (a word
    there is an action, so a misspelt one is refused by name, and a bare command asks for one)."""
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(f"rnnkit.commands.{argv[0]}")
        default = getattr(module, "DEFAULT_ACTION", None)
        if default and len(argv) > 1 and argv[1].startswith("-") and argv[1] not in ("-h", "--help"):
            return [argv[0], default, *argv[1:]]
    return argv


def _unrecognized(parser, argv, extra) -> None:
    """Refuse arguments no parser took, by the (sub)command they were given to, naming the closest
    option it has (``--stpes``: did you mean --steps?); exits with status 2."""
    import argparse
    import difflib

    leaf, words = parser, list(argv)
    while True:
        sub = next((a for a in leaf._actions if isinstance(a, argparse._SubParsersAction)), None)
        word = next((w for w in words if sub is not None and w in sub.choices), None)
        if word is None:
            break
        leaf, words = sub.choices[word], words[words.index(word) + 1:]
    options = [o for a in leaf._actions for o in a.option_strings if o.startswith("--")]
    hint = ""
    for e in extra:
        if e.startswith("--"):
            close = difflib.get_close_matches(e.split("=", 1)[0], options, n=1, cutoff=0.6)
            if close:
                hint = f"; did you mean {close[0]}?"
                break
    leaf.error(f"unrecognized arguments: {' '.join(extra)}{hint}")


def main(argv=None) -> int:
    parser = build_parser()
    argv = _default_action(list(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unrecognized(parser, argv, extra)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    # SIGTERM unwinds like Ctrl-C (locks released, partial files removed, status 143); training
    # defers it to the end of a step and saves a checkpoint first
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return _run(args, argv)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _run(args, argv) -> int:
    try:
        from .io import is_device
        from .runs import check_output, refuse_existing

        for dest, name in PATH_ARGS.items():
            values = getattr(args, dest, None)
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, str) and not value.strip():
                    got = "an empty string" if not value else f"only spaces ({value!r})"
                    raise UserError(f"{name}: expected a path, got {got}")
        for dest, directory in (("out", True), ("output", False), ("png", False), ("scores", False)):
            if getattr(args, dest, None) == "-" and not (dest == "output" and getattr(args, "text_output", False)):
                raise UserError(f"--{dest} -: expected a {'directory' if directory else 'file'} name "     # a text
                                f"('-' means stdout only for a text --output)")     # --output goes to io.write_output
            if getattr(args, dest, None) not in (None, "-"):                 # before any work
                check_output(getattr(args, dest), directory, f"--{dest}")
                if not directory and not getattr(args, "checks_own_outputs", False):
                    refuse_existing([getattr(args, dest)], getattr(args, "overwrite", False), f"--{dest}")
        png = getattr(args, "png", None)
        if isinstance(png, str) and png != "-" and not png.lower().endswith(".png") and not is_device(png):
            raise UserError(f"--png {png}: expected a file name ending in .png (figures are written as PNG)")
        if getattr(args, "resume", False):
            check_resume(args, given_options(build_parser(), argv))
        return args.run(args) or 0
    except KeyboardInterrupt as exc:
        status = getattr(exc, "exit_status", 130)
        print(f"rnnkit: {'terminated' if status == 143 else 'interrupted'}", file=sys.stderr)
        return status
    except BrokenPipeError as exc:
        # the reader of stdout went away (``rnnkit sample RUN | head``): stop quietly, as a process killed by
        # SIGPIPE does, and keep Python from reporting the flush of stdout at exit; another pipe's end is an error
        if os.environ.get("RNNKIT_DEBUG") or not _stdout_closed():
            if os.environ.get("RNNKIT_DEBUG"):
                raise
            print(f"rnnkit {args.command}: error: {exc}", file=sys.stderr)
            return 2
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except MemoryError:
        if os.environ.get("RNNKIT_DEBUG"):
            raise
        hidden = "--hidden-size" if hasattr(args, "hidden_size") else "--hidden"       # experiment spells it so
        print(f"rnnkit {args.command}: error: ran out of memory; use a smaller {hidden}, --batch-size or "
              f"sequence length (rnnkit train --dry-run estimates what a configuration needs)", file=sys.stderr)
        return 2
    except (UserError, ValueError, TypeError, OSError, UnicodeDecodeError, ImportError) as exc:
        if os.environ.get("RNNKIT_DEBUG"):
            raise
        print(f"rnnkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader is gone (the pipe reports an error when polled)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
