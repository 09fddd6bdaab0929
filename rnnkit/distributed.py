"""Training a character LM on PyTorch's distributed engine, for users who outgrow one CPU.

``rnnkit train TEXT --engine torch --nproc 2`` (or, under any launcher that sets ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``, such as ``torchrun --nproc_per_node 2 -m
rnnkit.distributed TEXT ...``) trains the same model as ``rnnkit train`` in the same run
directory: the forward and backward passes run on PyTorch's twin of the model
(:class:`rnnkit.torch_twins.TorchCharLM`) inside ``DistributedDataParallel`` (gloo on CPU, NCCL
when every process has a GPU), and everything else is rnnkit's own, unchanged:

* the model is a :class:`DistributedCharLM`, a :class:`~rnnkit.models.CharLM` whose torch twin
  shares its parameter memory (``torch.from_numpy``), so rnnkit's optimizer, clipping,
  schedules, checkpoints and ``load_state_dict`` act on the arrays torch computes with;
* the trainer is :class:`~rnnkit.train.Trainer` on every process (process 0 writes the run
  directory), fed the same global batches; each process takes its share of the rows, DDP
  averages the gradients, and the loss, the carried state and the validation sums are
  gathered, so every process sees what a single process with the whole batch would see and
  makes the same decisions (early stopping, divergence).

So ``--batch-size`` is the global batch: 2 processes x B rows give the loss curve of 1 process
with 2B rows, and the run directory is an ordinary ``charlm`` run: ``rnnkit sample``, ``eval``,
``plot`` work on it and ``--resume`` continues it with either engine.
"""
from __future__ import annotations

import os
import socket
import sys

import numpy as np

from ._optional import require
from .errors import UserError
from .models.charlm import CharLM


def _torch():
    return require("torch", "torch", "--engine torch")


def _rows(n: int, rank: int, world: int) -> slice:
    """This process's share of ``n`` rows: contiguous, as even as can be."""
    bounds = np.linspace(0, n, world + 1).round().astype(int)
    return slice(int(bounds[rank]), int(bounds[rank + 1]))


class DistributedCharLM(CharLM):
    """A :class:`CharLM` whose forward and backward run on its torch twin, data-parallel over
    the processes of ``torch.distributed`` (one process without it). Its config, parameters,
    state dict and checkpoints are the CharLM's (kind ``charlm``)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        torch = _torch()
        from .interop import to_torch

        if self.dtype != np.float32:
            raise UserError(f"--engine torch: expected float32 weights, got {self.dtype}")
        self.twin = to_torch(self)
        params = {name: p for name, p, _ in self.named_parameters()}
        for name, p in self.twin.named_parameters():      # one memory for both: rnnkit's updates are torch's
            p.data = torch.from_numpy(params[name])
        dist = torch.distributed
        self.world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        self.rank = dist.get_rank() if self.world > 1 else 0
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(self.twin)
        else:
            self.net = self.twin

    # -- the collective pieces ---------------------------------------------------------
    def _sum(self, values):
        """Sum of ``values`` (floats) over the processes."""
        torch = _torch()
        t = torch.tensor(values, dtype=torch.float64)
        if self.world > 1:
            torch.distributed.all_reduce(t)
        return t.tolist()

    def _gather_state(self, state):
        """Every process's rows of the final state -> the global state (as one process has it)."""
        torch = _torch()
        parts = state if isinstance(state, tuple) else (state,)
        out = []
        for s in parts:
            s = s.detach().contiguous()
            if self.world > 1:
                sizes = [None] * self.world
                torch.distributed.all_gather_object(sizes, s.shape[1])
                pieces = [s.new_zeros((s.shape[0], k, s.shape[2])) for k in sizes]
                torch.distributed.all_gather(pieces, s)
                s = torch.cat(pieces, dim=1)
            out.append(s.numpy())
        return tuple(out) if isinstance(state, tuple) else out[0]

    def _local(self, x, y, state):
        torch = _torch()
        rows = _rows(x.shape[1], self.rank, self.world)
        xl = torch.from_numpy(np.ascontiguousarray(x[:, rows]))
        yl = torch.from_numpy(np.ascontiguousarray(y[:, rows]))
        st = None
        if state is not None:
            parts = state if isinstance(state, tuple) else (state,)
            parts = tuple(torch.from_numpy(np.ascontiguousarray(s[:, rows])) for s in parts)
            st = parts if isinstance(state, tuple) else parts[0]
        return xl, yl, st

    # -- the TaskModel contract, on torch ----------------------------------------------
    def train_step(self, batch, state=None):
        torch = _torch()
        x, y = batch
        if x.shape[1] % self.world:
            raise UserError(f"--batch-size {x.shape[1]}: expected a multiple of the {self.world} processes")
        xl, yl, st = self._local(x, y, state)
        self.twin.train(self.training)
        logits, new = self.net(xl, st)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), yl.reshape(-1))
        for p in self.twin.parameters():
            p.grad = None
        loss.backward()                                    # DDP averages the gradients over the processes
        grads = self.grad_dict()
        for name, p in self.twin.named_parameters():
            grads[name] += p.grad.numpy()
        (total,) = self._sum([float(loss.detach())])
        return total / self.world, self._gather_state(new), y.size

    def evaluate(self, batch, state=None):
        torch = _torch()
        x, y = batch
        xl, yl, st = self._local(x, y, state)
        self.twin.eval()
        with torch.no_grad():
            logits, new = self.twin(xl, st)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), yl.reshape(-1),
                                                     reduction="sum")
        (total,) = self._sum([float(loss)])
        return total, self._gather_state(new), y.size


# -- launching ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(spec: dict, nproc: int) -> int:
    """Train the run ``spec`` describes (see :func:`worker`) on ``nproc`` processes of this
    machine, or, under a launcher that set ``RANK`` / ``WORLD_SIZE``, as one of its processes."""
    torch = _torch()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), spec)
    if nproc == 1:
        return worker(0, 1, spec)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    torch.multiprocessing.spawn(_spawned, args=(nproc, spec), nprocs=nproc, join=True)
    return 0


def _spawned(rank, world, spec):
    worker(rank, world, spec)


def worker(rank: int, world: int, spec: dict) -> int:
    """One process: join the group, build the model and data exactly as ``rnnkit train`` does,
    and run rnnkit's Trainer (process 0 writes ``spec['out']``)."""
    torch = _torch()
    from . import io
    from .apps import lm
    from .apps.common import resumed_config
    from .data.text import CharVocab, read_text
    from .train import Trainer, TrainConfig

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    if world > 1:
        backend = "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= world else "gloo"
        torch.distributed.init_process_group(backend, rank=rank, world_size=world)
    try:
        text = read_text(spec["text_file"])
        out = spec["out"]
        if spec["resume"]:
            ckpt = io.load(os.path.join(out, "checkpoint.npz"))
            vocab, extra = CharVocab.from_dict(ckpt["extra"]["vocab"]), ckpt["extra"]
            config = resumed_config(ckpt, spec.get("changes"))
            model = DistributedCharLM.from_config(ckpt["model_config"])
        else:
            ckpt = None
            vocab = CharVocab.from_text(text)
            config = TrainConfig(**spec["config"])
            m = spec["model"]
            model = DistributedCharLM(len(vocab), m["embed_size"], m["hidden_size"], m["num_layers"], m["cell"],
                                      m["dropout"], seed=config.seed)
            extra = {"vocab": vocab.to_dict(), "text_digest": lm.text_digest(text), "data": spec["data"]}
        d = extra["data"]
        train, val = lm.stream_data(text, vocab, d["seq_len"], d["batch_size"], d["val_fraction"])
        torch.manual_seed(config.seed * 1000 + rank)       # torch's dropout masks, per process
        trainer = Trainer(model, train, val, config, out if rank == 0 else None, extra=extra,
                          progress=spec.get("progress", True) and rank == 0)
        if ckpt is not None:
            trainer.restore(ckpt)
        result = trainer.run()
        if rank == 0:
            print(lm.summary(result, out))
        return 0
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()


def main(argv=None) -> int:
    """``python -m rnnkit.distributed TEXT [rnnkit train options]``: ``rnnkit train --engine torch``."""
    from .cli import main as cli_main

    argv = sys.argv[1:] if argv is None else argv
    return cli_main(["train", *argv, "--engine", "torch"])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
