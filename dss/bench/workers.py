"""A sweep's cells, `jobs` at a time, each in a forked worker process that never outlives the sweep.

When the sweep stops (an exception, Ctrl-C, SIGTERM) it stops its running workers before it returns; when it is
killed outright the kernel kills them (dss.core.processes). So no worker trains on, holds a cell's lock, or
starts a queued cell once the sweep is gone, and a rerun right after continues every cell from its checkpoint.
"""
from __future__ import annotations

import os
import signal
import threading
import time

from dss.core.processes import die_with_parent, raise_terminated


def worker_init(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for subprocess launchers
    os.environ.setdefault("TQDM_DISABLE", "1")   # parallel progress bars garble each other; cells log when done
    os.environ.setdefault("DSS_QUIET", "1")      # and so do their phase lines
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        pass


def _worker(conn, parent: int, threads: int, run_one, cell) -> None:
    """One cell in a forked process: it dies with the sweep and sends back run_one(cell)'s outcome."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the sweep's own handler is inherited through fork
    signal.signal(signal.SIGINT, signal.SIG_DFL)   # Ctrl-C reaches the whole group: the sweep stops us
    die_with_parent(parent)
    worker_init(threads)
    outcome = run_one(cell)
    try:
        conn.send(outcome)
    except Exception:  # an exception that does not pickle still reaches the sweep as its text
        conn.send(RuntimeError(f"{type(outcome).__name__}: {outcome}"))
    conn.close()


def run_parallel(cells: list, run_one, jobs: int, log):
    """Yield (cell, run_one(cell)) as cells finish, `jobs` worker processes at a time (run_one returns its
    outcome, an exception included, rather than raising)."""
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")  # workers inherit the imported modules and a test's fake trainer
    threads = max(1, (os.cpu_count() or 1) // jobs)
    log(f"dss bench: {jobs} cells at a time, {threads} torch thread(s) each")
    queue, running = list(cells), {}  # result pipe -> (process, cell)
    previous = signal.signal(signal.SIGTERM, raise_terminated) \
        if threading.current_thread() is threading.main_thread() else None
    try:
        while queue or running:
            while queue and len(running) < jobs:
                cell = queue.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker, name=f"dss-bench {cell.key}",
                                   args=(send, os.getpid(), threads, run_one, cell))
                proc.start()
                send.close()
                running[recv] = (proc, cell)
            for recv in wait(list(running)):
                proc, cell = running.pop(recv)
                try:
                    outcome = recv.recv()
                except EOFError:  # the worker died without a word (killed, out of memory)
                    proc.join()
                    outcome = RuntimeError(f"cell {cell.key}: its worker process died (exit code {proc.exitcode})")
                proc.join()
                recv.close()
                yield cell, outcome
    except BaseException:
        if running:
            log(f"dss bench: stopping {len(running)} running cell(s): "
                f"{', '.join(c.key for _, c in running.values())} (checkpoints are kept; rerun to continue)")
        stop_workers([proc for proc, _ in running.values()])
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def stop_workers(procs, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL for any still alive after grace_s: every worker is gone when this returns."""
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()
