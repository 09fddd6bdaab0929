"""Task models composed from :mod:`rnnkit.nn` modules."""
from .charlm import CharLM
from .classifier import SequenceClassifier
from .common import CELL_NAMES, make_rnn
from .forecast import Forecaster
from .handwriting import HandwritingModel
from .seq2seq import Seq2Seq
from .sequence import SequenceModel
from .tagger import Tagger

__all__ = ["CharLM", "SequenceModel", "SequenceClassifier", "Forecaster", "CELL_NAMES", "make_rnn", "Tagger", "Seq2Seq", "HandwritingModel"]
