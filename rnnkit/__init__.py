"""rnnkit: recurrent neural networks from first principles in NumPy.

The public classes are imported on first use (PEP 562), so ``rnnkit --help`` starts without
loading NumPy.
"""
__version__ = "0.1.0"

_EXPORTS = {
    "RNN": "nn", "LSTM": "nn", "GRU": "nn", "RNNCell": "nn", "LSTMCell": "nn", "GRUCell": "nn",
    "Linear": "nn", "Embedding": "nn", "Dropout": "nn", "InputNoise": "nn", "Module": "nn", "Attention": "nn",
    "CharLM": "models", "SequenceModel": "models", "SequenceClassifier": "models", "Forecaster": "models",
    "Seq2Seq": "models", "Tagger": "models", "Vocab": "data.vocab",
    "load": "runs", "Trainer": "train", "TrainConfig": "train", "UserError": "errors",
    "set_num_threads": "threads",
    "set_loop_parts": "threads",
}
__all__ = list(_EXPORTS)
# submodules the README calls as ``rnnkit.onnx.export(...)`` after a plain ``import rnnkit``
_SUBMODULES = {"onnx", "interop", "keras", "optim", "diagnostics", "functional", "data", "io", "runs", "plots",
               "models", "nn", "kernels", "train", "threads", "distributed", "apps", "errors", "products"}


def __getattr__(name):
    import importlib

    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"rnnkit.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"rnnkit.{name}")     # the import binds it on the package
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
