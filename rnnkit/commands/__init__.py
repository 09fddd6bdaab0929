"""Subcommands of ``rnnkit``, in the order ``--help`` lists them. Each module has
``register(subparsers)`` and sets ``run`` as the parser default."""
COMMANDS: list[str] = ["demo", "train", "prepare", "sample", "eval", "plot", "experiment", "forecast", "classify",
                       "seq2seq", "tag", "handwriting", "export"]
