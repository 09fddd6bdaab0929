"""Task models composed from :mod:`rnnkit.nn` modules."""
from .charlm import CharLM
from .common import CELL_NAMES, make_rnn
from .sequence import SequenceModel

__all__ = ["CharLM", "SequenceModel", "CELL_NAMES", "make_rnn"]
