"""The error type for mistakes in what the user asked for or handed in.

Every layer may raise :class:`UserError` (a ``ValueError``): the command line prints it as one
line, ``rnnkit <command>: error: <message>``, never as a traceback. A message names what was
expected and what arrived, and where: the file and line, the shape, the dtype or the range.
"""
from __future__ import annotations


class UserError(ValueError):
    """An error in what the user asked for; printed as one line, never as a traceback."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled like Ctrl-C (training saves a checkpoint; locks are released), exit
    status 143."""

    exit_status = 143


def where(path, line=None) -> str:
    """``'data.tsv, line 7'`` (or just the path): the place a message about a file starts with."""
    return f"{path}, line {line}" if line is not None else f"{path}"
