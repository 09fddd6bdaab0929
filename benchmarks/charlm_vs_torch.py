"""End-to-end proof: the same character LSTM trained with rnnkit and with PyTorch.

2-layer LSTM, hidden 256, embedding 64, sequence 64, batch 32, Adam 2e-3, gradient clipping at
norm 5, truncated BPTT with the state carried between windows, on tiny-shakespeare
(``../shared/data/tinyshakespeare.txt``, 10% held out). Both start from the same initial weights
(rnnkit's, copied into PyTorch) and see the same batches; the table gives validation bits per
character at each evaluation and the wall time of each library.

    python benchmarks/charlm_vs_torch.py --steps 600
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402

from rnnkit.data.text import CharVocab, StreamBatches, read_text, split_ids  # noqa: E402
from rnnkit.models import CharLM  # noqa: E402
from rnnkit.optim import Adam, clip_grad_norm  # noqa: E402
from speed import torch_charlm  # noqa: E402  (this folder is on the path when run as a script)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEXT = os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare.txt")


def evaluate_rnnkit(model, val):
    total, count, state = 0.0, 0, None
    for i in range(len(val)):
        loss, state, n = model.evaluate(val.batch(i), state)
        total, count = total + loss, count + n
    return total / count / math.log(2)


@torch.no_grad()
def evaluate_torch(model, val):
    total, count, state = 0.0, 0, None
    for i in range(len(val)):
        x, y = val.batch(i)
        logits, state = model(torch.from_numpy(x), state)
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                   torch.from_numpy(y).reshape(-1), reduction="sum").item()
        count += y.size
    return total / count / math.log(2)


def train_rnnkit(model, train, steps, lr, clip, val, eval_every):
    opt = Adam(model, lr=lr)
    curve, state, t_train = [], None, 0.0
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        model.zero_grad()
        _, state, _ = model.train_step(train.batch((step - 1) % len(train)), state)
        clip_grad_norm(model, clip)
        opt.step()
        t_train += time.perf_counter() - t0
        if step % eval_every == 0 or step == steps:
            model.eval()
            curve.append((step, evaluate_rnnkit(model, val)))
            model.train()
    return curve, t_train


def train_torch(model, train, steps, lr, clip, val, eval_every):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    curve, state, t_train = [], None, 0.0
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        x, y = train.batch((step - 1) % len(train))
        opt.zero_grad()
        logits, state = model(torch.from_numpy(x), state)
        state = tuple(s.detach() for s in state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        t_train += time.perf_counter() - t0
        if step % eval_every == 0 or step == steps:
            curve.append((step, evaluate_torch(model, val)))
    return curve, t_train


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", default=DEFAULT_TEXT)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "charlm_vs_torch.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    text = read_text(args.text)
    vocab = CharVocab.from_text(text)
    tr_ids, va_ids = split_ids(vocab.encode(text), 0.1)
    train, val = StreamBatches(tr_ids, 32, 64), StreamBatches(va_ids, 32, 64)
    ours = CharLM(len(vocab), 64, args.hidden, args.layers, "lstm", seed=0)
    theirs = torch_charlm("lstm", len(vocab), 64, args.hidden, args.layers)
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    print(f"tiny-shakespeare: {len(text):,} characters, vocabulary {len(vocab)}; {args.layers}-layer LSTM "
          f"hidden {args.hidden}, seq 64, batch 32, Adam 2e-3, clip 5, {args.steps} steps, same initial weights")
    c_ours, t_ours = train_rnnkit(ours, train, args.steps, 2e-3, 5.0, val, args.eval_every)
    c_theirs, t_theirs = train_torch(theirs, train, args.steps, 2e-3, 5.0, val, args.eval_every)
    print(f"{'step':>6} | {'rnnkit val bpc':>14} | {'torch val bpc':>13} | {'difference':>10}")
    rows = []
    for (s, a), (_, b) in zip(c_ours, c_theirs):
        rows.append({"step": s, "rnnkit_val_bpc": a, "torch_val_bpc": b, "relative_difference": (a - b) / b})
        print(f"{s:>6} | {a:14.4f} | {b:13.4f} | {(a - b) / b:+10.2%}")
    print(f"training time: rnnkit {t_ours:.1f} s ({t_ours / args.steps * 1e3:.0f} ms/step), "
          f"torch {t_theirs:.1f} s ({t_theirs / args.steps * 1e3:.0f} ms/step), ratio {t_ours / t_theirs:.2f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"steps": args.steps, "rows": rows, "rnnkit_seconds": t_ours, "torch_seconds": t_theirs,
                   "hidden": args.hidden, "layers": args.layers}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
