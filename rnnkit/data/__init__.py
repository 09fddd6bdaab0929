"""Data: text for language models, generated long-range tasks."""


def __getattr__(name):
    """``rnnkit.data.text`` and the other modules here after a plain ``import rnnkit``."""
    import importlib
    import importlib.util

    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
