"""rnnkit: recurrent neural networks from first principles in NumPy."""
__version__ = "0.1.0"

from .nn import (  # noqa: E402
    GRU, LSTM, RNN, Dropout, Embedding, GRUCell, Linear, LSTMCell, Module, RNNCell,
)

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "Linear", "Embedding", "Dropout", "Module"]
