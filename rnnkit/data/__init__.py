"""Data: text for language models, generated long-range tasks."""
