"""The suite runs under ``pytest -n 2``: two worker processes on this project's two cores. Each
worker, and the command-line processes tests start, uses one rnnkit thread unless the
environment says otherwise: two processes whose threads meet at every time step, on two cores,
wait for each other's descheduled threads (the CLI and run tests took 71 s
at the default against 48 s at one thread, measured here). Tests that are about threads set
their own count (``test_kernels.py`` runs the split loop on two threads)."""
import os

os.environ.setdefault("RNNKIT_NUM_THREADS", "1")
