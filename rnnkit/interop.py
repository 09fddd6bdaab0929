"""rnnkit <-> PyTorch, both ways.

* :func:`to_torch` gives the ``torch.nn`` module with the same outputs: ``RNN`` / ``LSTM`` /
  ``GRU`` (``proj_size`` included), ``Linear``, ``Embedding``, and for every application model
  its twin in :mod:`rnnkit.torch_twins` (character LM, sequence classifier, sequence model,
  forecaster, tagger, sequence-to-sequence).
* :func:`from_torch` the reverse.
* ``module.state_dict(format="torch")`` gives tensors that ``torch_module.load_state_dict``
  accepts; ``module.load_state_dict`` takes a torch state dict as it is.
* Tied weights stay tied (one ``Parameter`` in the twin, one array in rnnkit) and frozen
  parameters are ``requires_grad=False`` in torch, both ways.

Parameter names and layouts are PyTorch's throughout, so every conversion is a copy of the
same arrays. What torch cannot express (the hard-sigmoid gate) is a one-line error. Needs the
``torch`` extra (``pip install 'rnnkit[torch]'``).
"""
from __future__ import annotations

import numpy as np

from ._optional import require
from .errors import UserError


def _torch():
    return require("torch", "torch", "PyTorch interop")


def _torch_dtype(dtype):
    torch = _torch()
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def _rnn_kwargs(m) -> dict:
    if m.mode.endswith("_hard"):
        raise UserError(f"to_torch: {type(m).__name__}(gate='hard_sigmoid') has no torch.nn counterpart "
                        f"(torch's LSTM and GRU gates are the logistic sigmoid)")
    if "reset_before" in m.mode:
        raise UserError("to_torch: GRU(reset_after=False) has no torch.nn counterpart (torch's GRU applies the "
                        "reset gate after the recurrent product)")
    if m.mode not in ("rnn_tanh", "rnn_relu", "lstm", "gru"):
        raise UserError(f"to_torch: the {m.mode!r} cell has no torch.nn counterpart")
    if getattr(m, "zoneout", 0.0):
        raise UserError(f"to_torch: zoneout={m.zoneout!r} has no torch.nn counterpart (in evaluation it mixes each "
                        f"state with the previous one); the dropout options are off in evaluation and map exactly")
    on = [name for name in ("layer_norm", "peepholes", "coupled_gates", "cell_clip") if getattr(m, name, None)]
    if on:
        raise UserError(f"to_torch: {type(m).__name__}({', '.join(f'{n}={getattr(m, n)}' for n in on)}) has no "
                        f"torch.nn counterpart (torch's LSTM and GRU have no such cells)")
    dropped = [f"{n}={getattr(m, n)!r}" for n in ("recurrent_dropout", "input_dropout", "weight_dropout")
               if getattr(m, n, 0)]
    if dropped:
        import warnings

        warnings.warn(f"to_torch: {type(m).__name__}({', '.join(dropped)}): torch.nn has no such regulariser; the "
                      f"torch module computes the same outputs in evaluation (where they are off), but training it "
                      f"does not apply them", UserWarning, stacklevel=3)
    kw = dict(num_layers=m.num_layers, bias=m.bias, batch_first=m.batch_first, dropout=m.dropout,
              bidirectional=m.bidirectional)
    if getattr(m, "proj_size", 0):
        kw["proj_size"] = m.proj_size
    return kw


def _twins() -> dict:
    """rnnkit application model class -> its torch twin's class."""
    from . import torch_twins as T
    from .models.charlm import CharLM
    from .models.classifier import SequenceClassifier
    from .models.forecast import Forecaster
    from .models.handwriting import HandwritingModel
    from .models.seq2seq import Seq2Seq
    from .models.sequence import SequenceModel
    from .models.tagger import Tagger

    return {CharLM: T.TorchCharLM, SequenceClassifier: T.TorchClassifier, SequenceModel: T.TorchSequenceModel,
            Forecaster: T.TorchForecaster, Tagger: T.TorchTagger, Seq2Seq: T.TorchSeq2Seq,
            HandwritingModel: T.TorchHandwriting}


def to_torch(module):
    """The ``torch.nn`` module equivalent to an rnnkit module or model, with its weights."""
    torch = _torch()
    from .models.common import modules_of
    from .nn import RNNBase
    from .nn.layers import Embedding, Linear

    dt = _torch_dtype(module.dtype)
    twins = _twins()
    model_class = next((c for c in type(module).__mro__ if c in twins), None)   # subclasses too (the engines')
    if isinstance(module, RNNBase):
        from .torch_twins import torch_rnn

        kw = _rnn_kwargs(module)
        out = torch_rnn(module.mode, module.input_size, module.hidden_size, kw.pop("num_layers"), dtype=dt, **kw)
    elif isinstance(module, Linear):
        out = torch.nn.Linear(module.in_features, module.out_features, bias="bias" in module.params, dtype=dt)
    elif isinstance(module, Embedding):
        out = torch.nn.Embedding(module.num_embeddings, module.embedding_dim, dtype=dt)
    elif model_class is not None:
        for m in modules_of(module):                           # a variant torch cannot express: one line
            if isinstance(m, RNNBase):
                _rnn_kwargs(m)
            elif "reset_before" in getattr(m, "mode", ""):
                raise UserError("to_torch: GRUCell(reset_after=False) has no torch.nn counterpart")
        out = twins[model_class](**{k: v for k, v in module.config.items() if k != "kind"}, dtype=dt)
        out.rnnkit_config = dict(module.config)
    else:
        raise UserError(f"to_torch: expected an rnnkit RNN / LSTM / GRU, Linear, Embedding or application model "
                        f"({', '.join(c.__name__ for c in twins)}), got {type(module).__name__}")
    out.load_state_dict(module.state_dict(format="torch"))
    for name in module.frozen_names():                         # frozen: torch's requires_grad=False
        out.get_parameter(name).requires_grad_(False)
    out.train(module.training)
    return out


def from_torch(module, dtype=None):
    """The rnnkit module or model equivalent to a ``torch.nn.RNN / LSTM / GRU``, ``Linear``,
    ``Embedding`` or one of the twins of :mod:`rnnkit.torch_twins`, with its weights (``dtype``:
    the torch module's, float32 or float64, unless given)."""
    torch = _torch()
    from . import nn as rk

    if not isinstance(module, torch.nn.Module):
        hint = (" (a state dict? build the rnnkit module and call its load_state_dict)"
                if isinstance(module, dict) else "")
        raise TypeError(f"from_torch: expected a torch.nn module, got {type(module).__name__}{hint}")
    first = next(module.parameters(), None)
    if first is not None and first.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"from_torch: expected float32 or float64 weights, got {first.dtype}; call module.float() "
                        f"first")
    dtype = np.dtype(dtype or (np.float64 if first is not None and first.dtype == torch.float64 else np.float32))
    tn = torch.nn
    if isinstance(module, (tn.RNN, tn.LSTM, tn.GRU)):
        kw = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
                  dropout=module.dropout, bidirectional=module.bidirectional, dtype=dtype)
        if isinstance(module, tn.LSTM):
            out = rk.LSTM(module.input_size, module.hidden_size, proj_size=module.proj_size, **kw)
        elif isinstance(module, tn.GRU):
            out = rk.GRU(module.input_size, module.hidden_size, **kw)
        else:
            out = rk.RNN(module.input_size, module.hidden_size, nonlinearity=module.nonlinearity, **kw)
    elif isinstance(module, tn.Linear):
        out = rk.Linear(module.in_features, module.out_features, bias=module.bias is not None, dtype=dtype)
    elif isinstance(module, tn.Embedding):
        on = [f"{k}={getattr(module, k)!r}" for k, off in (("max_norm", None), ("scale_grad_by_freq", False))
              if getattr(module, k, off) != off]
        if on:       # they change what is looked up, or its gradient at every step
            raise UserError(f"from_torch: Embedding({', '.join(on)}) has no rnnkit counterpart (rnnkit's Embedding "
                            f"is a plain lookup: every row is read as stored and trained)")
        if module.padding_idx is not None:   # the same lookup; only training differs
            import warnings

            warnings.warn(f"from_torch: Embedding(padding_idx={module.padding_idx}): rnnkit's Embedding looks the "
                          f"row up the same way but trains it like any other (torch keeps its gradient at zero)",
                          UserWarning, stacklevel=2)
        out = rk.Embedding(module.num_embeddings, module.embedding_dim, dtype=dtype)
    elif type(module) in {twin: cls for cls, twin in _twins().items()}:
        cls = {twin: cls for cls, twin in _twins().items()}[type(module)]
        cfg = getattr(module, "rnnkit_config", None) or getattr(module, "config", None)
        if cfg is None:
            raise UserError(f"from_torch: this {type(module).__name__} has no rnnkit configuration (make twins with "
                            f"to_torch, which records it as .rnnkit_config)")
        out = cls.from_config(cfg, dtype=dtype)
    else:
        raise UserError(f"from_torch: expected torch.nn.RNN / LSTM / GRU / Linear / Embedding or an rnnkit twin, "
                        f"got {type(module).__name__}")
    out.load_state_dict({k: v.detach().cpu() for k, v in module.state_dict().items()})
    out.set_frozen([name for name, p in module.named_parameters() if not p.requires_grad])
    out.train(module.training)
    return out
