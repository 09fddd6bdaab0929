"""Pure NumPy math, no state: each forward returns ``(out, cache)``, each backward takes the cache."""
from .activations import hard_sigmoid, sigmoid
from .gru import gru_step, gru_step_backward
from .lstm import lstm_step, lstm_step_backward
from .recurrent import CELLS, CellOps, layer_backward, layer_forward, length_mask, reverse_index, reverse_time
from .rnn import rnn_relu_step, rnn_relu_step_backward, rnn_tanh_step, rnn_tanh_step_backward
