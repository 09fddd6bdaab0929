"""Where benchmarks put what they measured: ``benchmarks/results/NAME.md`` (the table, as printed)
and ``NAME.json`` (the numbers)."""
from __future__ import annotations

import json
import os

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def save(name: str, md: str, data) -> None:
    """Print ``md`` and write it and ``data`` under ``benchmarks/results/``."""
    print(md)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{name}.md"), "w", encoding="utf-8") as f:
        f.write(md)
    with open(os.path.join(RESULTS, f"{name}.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
