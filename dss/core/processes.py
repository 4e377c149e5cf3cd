"""Child processes that never outlive the process that started them (a sweep's workers, a cell's `dss train`).

A parent killed with SIGKILL runs no cleanup, so its children must learn of its death from the kernel: on Linux,
prctl(PR_SET_PDEATHSIG) sends them a signal when their parent dies. Elsewhere this is a no-op.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where a command installed `raise_terminated`: it stops as Ctrl-C does (its children
    stopped, its files consistent), and the CLI exits with 143."""


def raise_terminated(signum, frame):
    raise Terminated()


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Have the kernel send `sig` to this process when its parent dies; exit now if it already has (the
    parent may die between fork and this call, which prctl cannot see)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def dies_with_this_process(sig: int = signal.SIGTERM):
    """A `preexec_fn` for subprocess.Popen: the child gets `sig` when this process dies (SIGTERM by default,
    which `accelerate launch` and torchrun pass on to the processes they started)."""
    parent = os.getpid()
    return lambda: die_with_parent(parent, sig)
