"""Stateful modules: parameters and gradients under PyTorch's names; ``forward`` / ``backward``."""
from .attention import Attention
from .conv import BatchNorm1d, Conv1d, ConvBranch
from .cells import GRUCell, LSTMCell, RNNCell
from .layers import Dropout, Embedding, InputNoise, Linear
from .module import Module
from .recurrent import GRU, LSTM, RNN, RNNBase
