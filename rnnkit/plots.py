"""matplotlib figures, each saved as PNG. matplotlib is imported inside each function with the
non-interactive Agg backend, so importing rnnkit never needs a display."""
from __future__ import annotations

import json
import os


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, plt, out_png) -> str:
    """Save ``fig`` as PNG through a temporary file and a rename (never a half-written image), then close it."""
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    tmp = out_png + ".tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, out_png)
    return out_png


def read_metrics(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_metrics(metrics_path, out_png) -> str:
    """Loss (and bits per character, when logged) against step, training and validation."""
    rows = read_metrics(metrics_path)
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_loss" in r]
    if not train and not val:
        raise ValueError(f"{metrics_path}: no loss values logged yet")
    has_bpc = any("bpc" in r for r in train)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2 if has_bpc else 1, figsize=(11 if has_bpc else 6, 4), squeeze=False)
    panels = [("loss", "val_loss", "loss (nats)")] + ([("bpc", "val_bpc", "bits per character")] if has_bpc else [])
    for ax, (k, vk, label) in zip(axes[0], panels):
        ax.plot([r["step"] for r in train], [r[k] for r in train], label="train", lw=1.2)
        if val:
            ax.plot([r["step"] for r in val], [r[vk] for r in val], "o-", label="validation", lw=1.5, ms=3)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(os.path.basename(os.path.dirname(os.path.abspath(metrics_path))))
    fig.tight_layout()
    return save_figure(fig, plt, out_png)
