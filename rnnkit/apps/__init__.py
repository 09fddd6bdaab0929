"""The applications: each module reads load -> model -> Trainer -> score, plot.

``lm`` (character language models), ``classify``, ``tag``, ``seq2seq``, ``forecast`` and
``experiments`` (vanishing / exploding gradients, truncation). Every one trains through
:func:`rnnkit.apps.common.fit`, so every one has run directories, resume, Ctrl-C and SIGTERM,
early stopping, validation, progress and the divergence guard.
"""
