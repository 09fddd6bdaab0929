r"""Regularisation inside the time loop: recurrent dropout and zoneout, forward and backward.

Both compose the cell's own step functions (:data:`rnnkit.functional.recurrent.CELLS`), so every
cell family, gate function and the packed-sequence masking get them without a new step.

**Recurrent dropout** (Gal & Ghahramani 2016, "A Theoretically Grounded Application of Dropout in
Recurrent Neural Networks"; Keras's ``recurrent_dropout``): one mask :math:`m` (N, H) per
sequence, the same at every step, on the state where it enters the recurrent product,

.. math::
    \text{pre}_t = x_t W_{ih}^T + b_{ih} + (h_{t-1} \odot m) W_{hh}^T + b_{hh},
    \qquad m_{nj} \in \{0, 1/(1-p)\}

The cell state and the GRU's carried term :math:`z \odot h_{t-1}` keep the unmasked
:math:`h_{t-1}`. The steps take it as ``h_rec`` and their backward as ``rec_mask``.

**Zoneout** (Krueger et al. 2017, "Zoneout: Regularizing RNNs by Randomly Preserving Hidden
Activations"): each unit of each state keeps its previous value with probability :math:`z`,

.. math::
    s_t = d_t \odot s_{t-1} + (1 - d_t) \odot \tilde s_t,\qquad d_t \sim \mathrm{Bernoulli}(z)

with a fresh mask :math:`d_t` every step (training) or :math:`d_t = z` (evaluation: the
expectation, as in the paper). :math:`\tilde s_t` is the cell's step; :math:`s` is ``h`` (and
``c`` for the LSTM, with its own :math:`z_c`). The output is the zoned-out ``h``. Backward:
the step receives :math:`(1 - d_t) \odot g` and the previous state gets :math:`d_t \odot g` more.

At a padded step (``mask`` false) the state is carried, the output is zero and nothing flows
into the step. The time loop that applies the masks is the reference one,
:func:`rnnkit.functional.recurrent.sequence_forward` / ``sequence_backward`` (``noise=``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class StepNoise(NamedTuple):
    """The masks one direction of one layer uses inside its time loop (processing order)."""

    rec: np.ndarray | None  # (N, H) recurrent-dropout mask on h_{t-1} in the recurrent product, 0 or 1/(1-p)
    zone: tuple | None      # per state (h, or h and c): (L, N, H) masks d_t (1 = keep the previous value),
                            # a float z (evaluation: the expectation), or None (that state is not zoned out)


def zone_at(zone, t):
    """The zoneout masks of step ``t``: per state, its (N, H) mask, the float z, or None."""
    return tuple(z[t] if isinstance(z, np.ndarray) else z for z in zone)
