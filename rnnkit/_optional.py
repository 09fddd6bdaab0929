"""Optional packages (the extras): imported when a feature needs them, with one line naming the
extra that installs them when they are missing."""
from __future__ import annotations

import importlib


def require(module: str, extra: str, what: str):
    """``import module``, or an ``ImportError`` saying that ``what`` needs it and which extra has it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{what} needs {module}: pip install 'rnnkit[{extra}]'") from None
