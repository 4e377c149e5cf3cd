"""NVIDIA GPUs that torch cannot use: a CPU build of torch on a GPU machine trains on the CPU without a word,
so `make install` and `dss train` say it loudly (once). `python -m dss.core.hardware` prints the warning, if
any, and exits 0.

    GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)   <- what `nvidia-smi -L` lists, one line per GPU
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

# the fix the warning prints; pick the index of the CUDA version your driver runs (nvidia-smi's header says it)
FIX = "make install TORCH=torch TORCH_INDEX=https://download.pytorch.org/whl/cu126"


def nvidia_gpus(dev: Path = Path("/dev")) -> list[str]:
    """This machine's NVIDIA GPUs, whatever torch sees: `nvidia-smi -L`'s "GPU N: <name>" lines when nvidia-smi
    is on PATH (it answers for the driver), else the driver's device files dev/nvidia0, dev/nvidia1, ... ([]
    when neither is there)."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        return [line.split(" (UUID")[0].strip() for line in out.splitlines() if line.startswith("GPU ")]
    return sorted(str(p) for p in dev.glob("nvidia[0-9]*"))


def cpu_torch_warning(gpus: list[str] | None = None) -> str | None:
    """A loud multi-line warning when this machine has NVIDIA GPUs (gpus, default nvidia_gpus()) that torch
    cannot use; None when torch has a GPU, or the machine none (nvidia-smi is not even asked then)."""
    import torch
    if torch.cuda.is_available():
        return None
    gpus = nvidia_gpus() if gpus is None else gpus
    if not gpus:
        return None
    if torch.version.cuda is None:
        why = f"the torch installed ({torch.__version__}) is a CPU build: torch.version.cuda is None"
    else:
        why = (f"torch {torch.__version__} (CUDA {torch.version.cuda}) cannot use them: torch.cuda.is_available() "
               "is False (a driver older than that CUDA, or CUDA_VISIBLE_DEVICES / the job hides them)")
    bar = "!" * 100
    return "\n".join([
        bar, f"WARNING: this machine has {len(gpus)} NVIDIA GPU(s) ({gpus[0]}), but {why}.",
        "WARNING: dss will train on the CPU, many times slower.",
        "Fix: install a CUDA build of torch, from the PyTorch index of the CUDA version your driver runs",
        f"(nvidia-smi's header says it; cu118, cu121, cu124, cu126, cu128 ...), e.g.\n    {FIX}", bar])


def warn_cpu_torch(main: bool = True) -> None:
    """cpu_torch_warning() on stderr, once per process; nothing where main is False (not the machine's first
    process: one warning per machine)."""
    if main:
        _warn_once()


@functools.cache
def _warn_once() -> None:
    message = cpu_torch_warning()
    if message:
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    warn_cpu_torch()
