"""Task models composed from :mod:`rnnkit.nn` modules."""
from .charlm import CharLM
from .common import CELL_NAMES, make_rnn

__all__ = ["CharLM", "CELL_NAMES", "make_rnn"]
