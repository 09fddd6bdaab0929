"""ONNX export of the demo-sized character LM: export time, and onnxruntime's latency per step
at batch 1 beside rnnkit's ``Stream`` (what ``rnnkit sample`` runs) and PyTorch's eager step.

Model: CharLM, 2-layer LSTM, hidden 256, embedding 64, vocabulary 100, random weights (latency
does not depend on them). One step is a whole sampling step: embedding of the last character,
both LSTM layers, the output layer's logits, the state carried to the next step. The sequence
rows run the whole-sequence graph (or forward) over 64 characters and report time per
character. Everything at 2 threads; medians of 7 blocks.

    python benchmarks/onnx_latency.py   # prints a Markdown table, writes benchmarks/results/onnx_latency.{md,json}

Run it alone: other processes on the 2 cores distort every figure.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
V, E, H, LAYERS, STEPS, BLOCKS, SEQ = 100, 64, 256, 2, 500, 7, 64


def _median_us(fn, per=STEPS):
    fn()                                               # warm-up (JIT, allocations)
    times = []
    for _ in range(BLOCKS):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) / per * 1e6)
    return statistics.median(times)


def build():
    from rnnkit.models import CharLM

    m = CharLM(V, E, H, LAYERS, cell="lstm", seed=0)
    m.eval()
    return m


def export_time(model):
    import rnnkit.onnx as rx

    times = []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(5):
            t = time.perf_counter()
            rx.export(model, os.path.join(d, "charlm.onnx"))   # build, onnx.checker, write both graphs
            times.append(time.perf_counter() - t)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    return statistics.median(times) * 1e3, size


def ort_sessions(model):
    import onnxruntime as ort

    import rnnkit.onnx as rx

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
    return {k: ort.InferenceSession(p.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            for k, p in rx.graphs(model).items()}


def ort_step(sess):
    zeros = np.zeros((LAYERS, 1, H), np.float32)
    feeds = {"token": np.array([1]), "h0": zeros, "c0": zeros}

    def run():
        for _ in range(STEPS):
            logits, h, c = sess.run(None, feeds)
            feeds["token"], feeds["h0"], feeds["c0"] = np.array([int(logits[0].argmax())]), h, c
    return run


def rnnkit_step(model):
    s = model.rnn.stream(1)
    Emb, W, b = model.embed.params["weight"], model.head.params["weight"].T, model.head.params["bias"]
    tok = [1]

    def run():
        for _ in range(STEPS):
            logits = s.step(Emb[tok[0]][None])[0] @ W + b
            tok[0] = int(logits.argmax())
    return run


def torch_model(model):
    import torch

    torch.set_num_threads(2)
    emb, lstm, head = torch.nn.Embedding(V, E), torch.nn.LSTM(E, H, LAYERS), torch.nn.Linear(H, V)
    emb.load_state_dict({k: torch.from_numpy(v) for k, v in model.embed.state_dict().items()})
    lstm.load_state_dict({k: torch.from_numpy(v) for k, v in model.rnn.state_dict().items()})
    head.load_state_dict({k: torch.from_numpy(v) for k, v in model.head.state_dict().items()})
    return emb.eval(), lstm.eval(), head.eval()


def torch_step(parts):
    import torch

    emb, lstm, head = parts
    state = [None, torch.tensor([[1]])]

    def run():
        with torch.no_grad():
            s, tok = state
            for _ in range(STEPS):
                y, s = lstm(emb(tok), s)                # (1, 1, H)
                tok = head(y[0]).argmax(-1, keepdim=True)
            state[:] = [s, tok]
    return run


def sequences(model, sess, parts):
    """Per-character time of the whole-sequence path over SEQ characters, and a check that the
    three libraries agree on its logits."""
    import torch

    x = np.random.default_rng(0).integers(0, V, (SEQ, 1))
    zeros = np.zeros((LAYERS, 1, H), np.float32)
    emb, lstm, head = parts
    ours = model.forward(x)[0]
    model.clear_cache()
    theirs = sess.run(["logits"], {"x": x, "h0": zeros, "c0": zeros})[0]
    with torch.no_grad():
        torch_out = head(lstm(emb(torch.from_numpy(x)))[0]).numpy()
    assert np.allclose(ours, theirs, atol=1e-5) and np.allclose(ours, torch_out, atol=1e-5)

    def ort_run():
        sess.run(["logits"], {"x": x, "h0": zeros, "c0": zeros})

    def ours_run():
        model.forward(x)
        model.clear_cache()

    def torch_run():
        with torch.no_grad():
            head(lstm(emb(torch.from_numpy(x)))[0])
    return {k: _median_us(f, SEQ) for k, f in (("onnxruntime", ort_run), ("rnnkit", ours_run), ("torch", torch_run))}


def main():
    import onnxruntime as ort
    import torch

    model = build()
    ms, size = export_time(model)
    sess = ort_sessions(model)
    parts = torch_model(model)
    step = {"onnxruntime": _median_us(ort_step(sess["step"])), "rnnkit": _median_us(rnnkit_step(model)),
            "torch": _median_us(torch_step(parts))}
    seq = sequences(model, sess["sequence"], parts)
    names = {"onnxruntime": f"onnxruntime {ort.__version__} (exported step graph)",
             "rnnkit": "rnnkit `Stream` (what `rnnkit sample` runs)", "torch": f"PyTorch {torch.__version__} eager"}
    lines = [f"CharLM: {LAYERS}-layer LSTM, hidden {H}, embedding {E}, vocabulary {V}; batch 1, 2 threads, "
             f"{platform.machine()} with {os.cpu_count()} CPUs.",
             f"Export (build both graphs, onnx.checker, write): {ms:.0f} ms, {size / 1e6:.1f} MB.", "",
             f"| path | µs per sampling step | µs per character, {SEQ}-character sequence |", "|---|---:|---:|"]
    lines += [f"| {names[k]} | {step[k]:.1f} | {seq[k]:.1f} |" for k in ("onnxruntime", "rnnkit", "torch")]
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "onnx_latency.md"), "w") as f:
        f.write(text + "\n")
    out = {"machine": platform.machine(), "cpus": os.cpu_count(),
           "model": dict(vocab=V, embed=E, hidden=H, layers=LAYERS),
           "export_ms": ms, "export_bytes": size, "step_us": step, "sequence_us_per_char": seq, "seq_len": SEQ,
           "versions": {"onnxruntime": ort.__version__, "torch": torch.__version__}}
    with open(os.path.join(HERE, "results", "onnx_latency.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()   # --help; no options
    main()
