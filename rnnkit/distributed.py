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

import logging
import os
import sys
import tempfile

import numpy as np

from ._optional import require
from .errors import UserError
from .models.charlm import CharLM
from .models.classifier import SequenceClassifier


def _torch():
    return require("torch", "torch", "--engine torch")


class TorchEngine:
    """Mixin for an rnnkit model whose forward and backward run on its torch twin, data-parallel
    over the processes of ``torch.distributed`` (or one process without it). Its config,
    parameters, state dict and checkpoints stay the rnnkit model's. Call :meth:`_attach` at the
    end of ``__init__``; ``train_step`` / ``evaluate`` use :meth:`_share`, :meth:`_sum` and
    :meth:`_backward`."""

    def _attach(self):
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
        self.net = torch.nn.parallel.DistributedDataParallel(self.twin) if self.world > 1 else self.twin

    def _share(self, n: int) -> slice:
        """This process's rows of a batch of ``n``: contiguous, as even as can be."""
        bounds = np.linspace(0, n, self.world + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def _sum(self, values):
        """Sums of ``values`` (floats) over the processes."""
        torch = _torch()
        t = torch.tensor(values, dtype=torch.float64)
        if self.world > 1:
            torch.distributed.all_reduce(t)
        return t.tolist()

    def _backward(self, mean_loss, n_local: int, n_total: int):
        """Backward of this process's mean loss, weighted so that DDP's average of the processes'
        gradients is the gradient of the whole batch's mean (shares may differ by a row); the
        gradients land in rnnkit's arrays. Returns the whole batch's mean loss."""
        mean_loss.mul(n_local * self.world / n_total).backward()
        grads = self.grad_dict()
        for name, p in self.twin.named_parameters():
            if p.grad is not None:
                grads[name] += p.grad.numpy()
            p.grad = None
        (total,) = self._sum([float(mean_loss.detach()) * n_local])
        return total / n_total

    def _gather_state(self, state):
        """Every process's rows of a final state -> the whole batch's (as one process has it)."""
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


def _tensor(a):
    return _torch().from_numpy(np.ascontiguousarray(a))


class DistributedCharLM(TorchEngine, CharLM):
    """:class:`CharLM` on the torch engine (kind ``charlm``: its runs are ordinary runs)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._attach()

    def _local(self, x, y, state):
        rows = self._share(x.shape[1])
        st = None
        if state is not None:
            parts = tuple(_tensor(s[:, rows]) for s in (state if isinstance(state, tuple) else (state,)))
            st = parts if isinstance(state, tuple) else parts[0]
        return _tensor(x[:, rows]), _tensor(y[:, rows]), st

    def train_step(self, batch, state=None):
        torch = _torch()
        x, y = batch
        xl, yl, st = self._local(x, y, state)
        self.twin.train(self.training)
        logits, new = self.net(xl, st)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), yl.reshape(-1))
        return self._backward(loss, yl.numel(), y.size), self._gather_state(new), y.size

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


class DistributedClassifier(TorchEngine, SequenceClassifier):
    """:class:`SequenceClassifier` on the torch engine (kind ``classifier``)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._attach()

    def train_step(self, batch, state=None):
        torch = _torch()
        x, y, lengths = batch
        rows = self._share(x.shape[1])
        self.twin.train(self.training)
        if rows.stop > rows.start:
            logits = self.net(_tensor(x[:, rows]), _tensor(np.asarray(lengths)[rows]))
            loss = torch.nn.functional.cross_entropy(logits, _tensor(y[rows]))
        else:                          # a share of nothing still joins DDP's gradient exchange
            loss = sum(p.sum() for p in self.twin.parameters()) * 0.0
        return self._backward(loss, rows.stop - rows.start, x.shape[1]), None, x.shape[1]

    def evaluate(self, batch, state=None):
        torch = _torch()
        x, y, lengths = batch
        rows = self._share(x.shape[1])
        loss_sum = right = 0.0
        if rows.stop > rows.start:
            self.twin.eval()
            with torch.no_grad():
                logits = self.twin(_tensor(x[:, rows]), _tensor(np.asarray(lengths)[rows]))
                target = _tensor(y[rows])
                loss_sum = float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
                right = float((logits.argmax(-1) == target).sum())
        loss_sum, right = self._sum([loss_sum, right])
        return loss_sum, None, x.shape[1], {"correct": int(right), "n": x.shape[1]}


# -- launching ---------------------------------------------------------------------------------

def launch(fn, args: tuple, nproc: int):
    """``fn(rank, world, *args)`` in every process of a ``torch.distributed`` group: ``nproc``
    processes spawned on this machine, or, under a launcher that set ``RANK`` / ``WORLD_SIZE`` /
    ``MASTER_ADDR`` / ``MASTER_PORT`` (torchrun), this process as one of its group. Returns
    what process 0 returns (when it runs here).

    The spawned processes meet through a file in a temporary directory rather than a port: a
    port picked free here could be taken by another program before process 0 bound it."""
    torch = _torch()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return _in_group(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), fn, args, "env://")
    if nproc == 1:
        return fn(0, 1, *args)
    with tempfile.TemporaryDirectory(prefix="rnnkit-group-") as d:
        init = "file://" + os.path.join(d, "rendezvous")
        spawn_log = logging.getLogger("torch.multiprocessing.spawn")
        level = spawn_log.level
        spawn_log.setLevel(logging.ERROR)          # its "Terminating process ..." when one process stops the rest
        try:
            torch.multiprocessing.spawn(_spawned, args=(nproc, fn, args, init, d), nprocs=nproc, join=True)
        except torch.multiprocessing.ProcessExitedException:
            said = sorted(n for n in os.listdir(d) if n.startswith("error-"))
            if not said:
                raise
            with open(os.path.join(d, said[0]), encoding="utf-8") as f:
                raise UserError(f.read()) from None       # the process's one line, as one process would say it
        finally:
            spawn_log.setLevel(level)
    return None


def _spawned(rank, world, fn, args, init, d):
    """A spawned process's whole life. After a clean teardown it leaves at once, skipping the
    interpreter's finalisation: everything it made is written and closed by then. Before the
    barrier and this exit, about one two-process run in a dozen here had a process abort after
    its work was done (``terminate called without an active exception``, from PyTorch's C++
    side), which failed the whole command."""
    from multiprocessing import util

    try:
        _in_group(rank, world, fn, args, init)
    except (UserError, ValueError, TypeError, OSError, UnicodeDecodeError, ImportError) as exc:
        if os.environ.get("RNNKIT_DEBUG"):
            raise
        # what the command line prints as one line: handed to the parent, which says it as its own
        # (torch's spawn would print this process's traceback)
        with open(os.path.join(d, f"error-{rank}"), "w", encoding="utf-8") as f:
            f.write(str(exc))
        sys.stderr.flush()
        os._exit(2)
    util._run_finalizers(0)          # what the skipped exit would release (semaphores; else a "leaked" warning)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _in_group(rank, world, fn, args, init):
    torch = _torch()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))   # the cores, shared between the processes
    backend = "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= world else "gloo"
    torch.distributed.init_process_group(backend, init_method=init, rank=rank, world_size=world)
    try:
        out = fn(rank, world, *args)
        torch.distributed.barrier()              # no process tears the group down while another still uses it
        return out
    finally:
        torch.distributed.destroy_process_group()


def train_lm_process(rank: int, world: int, spec: dict) -> int:
    """One process of ``rnnkit train --engine torch``: the model and data exactly as ``rnnkit
    train`` builds them, and rnnkit's Trainer (process 0 writes ``spec['out']``)."""
    torch = _torch()
    from . import io
    from .apps import lm
    from .apps.common import resumed_config
    from .data.corpus import load_corpus
    from .data.text import CharVocab
    from .train import Trainer, TrainConfig

    corpus = load_corpus(spec["text_file"])
    out = spec["out"]
    if spec["resume"]:
        ckpt = io.load(os.path.join(out, "checkpoint.npz"))
        vocab, extra = CharVocab.from_dict(ckpt["extra"]["vocab"]), ckpt["extra"]
        config = resumed_config(ckpt, spec.get("changes"))
        model = DistributedCharLM.from_config(ckpt["model_config"])
    else:
        ckpt = None
        vocab = corpus.vocab
        config = TrainConfig(**spec["config"])
        m = spec["model"]
        model = DistributedCharLM(len(vocab), m["embed_size"], m["hidden_size"], m["num_layers"], m["cell"],
                                  m["dropout"], seed=config.seed, tie_weights=m.get("tie_weights", False))
        extra = {"vocab": vocab.to_dict(), "text_digest": corpus.digest, "data": spec["data"]}
    d = extra["data"]
    train, val = lm.stream_data(corpus, vocab, d["seq_len"], d["batch_size"], d["val_fraction"])
    torch.manual_seed(config.seed * 1000 + rank)       # torch's dropout masks, per process
    trainer = Trainer(model, train, val, config, out if rank == 0 else None, extra=extra,
                      progress=spec.get("progress", True) and rank == 0)
    replaced = False
    if rank == 0 and ckpt is None:
        from . import runs

        replaced = spec.get("overwrite", False) and runs.read_config(out) is not None
        runs.prepare(out, lm.KIND, overwrite=spec.get("overwrite", False))     # --overwrite deletes only now
    if ckpt is not None:
        trainer.restore(ckpt)
    from .apps.common import run_new_or_resumed

    result = run_new_or_resumed(trainer, out if rank == 0 else None, new=ckpt is None, replaced=replaced)
    if rank == 0:
        print(lm.summary(result, out))
    return 0


def main(argv=None) -> int:
    """``python -m rnnkit.distributed TEXT [rnnkit train options]``: ``rnnkit train --engine torch``."""
    from .cli import main as cli_main

    argv = sys.argv[1:] if argv is None else argv
    return cli_main(["train", *argv, "--engine", "torch"])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
