"""A machine with NVIDIA GPUs and a torch that cannot use them is said loudly, once (dss.core.hardware): no
GPU needed, nvidia-smi and /dev are faked."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import torch

from dss.core import hardware


def fake_nvidia_smi(tmp_path, monkeypatch, lines: list[str]) -> None:
    """An nvidia-smi first on PATH that prints `lines` for -L."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + "".join(f"echo '{line}'\n" for line in lines))
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def cpu_torch(monkeypatch):
    """torch as a CPU build sees itself; the once-per-process memory cleared."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    hardware._warn_once.cache_clear()
    yield
    hardware._warn_once.cache_clear()


def test_nvidia_smi_lists_the_gpus(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, ["GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-a1)", "GPU 1: NVIDIA H100 NVL"])
    assert hardware.nvidia_gpus() == ["GPU 0: NVIDIA H100 80GB HBM3", "GPU 1: NVIDIA H100 NVL"]


def test_without_nvidia_smi_the_driver_device_files_count(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no nvidia-smi anywhere
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidiactl", "nvidia-uvm", "nvidia-modeset"):  # driver files that are not GPUs
        (dev / name).touch()
    assert hardware.nvidia_gpus(dev) == []
    for name in ("nvidia1", "nvidia0"):
        (dev / name).touch()
    assert hardware.nvidia_gpus(dev) == [str(dev / "nvidia0"), str(dev / "nvidia1")]


def test_a_cpu_torch_on_a_gpu_machine_is_warned_with_the_fix(cpu_torch, tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, ["GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-a1)"])
    message = hardware.cpu_torch_warning()
    assert "1 NVIDIA GPU(s) (GPU 0: NVIDIA H100 80GB HBM3)" in message and "is a CPU build" in message
    assert "dss will train on the CPU" in message
    assert "make install TORCH=torch TORCH_INDEX=https://download.pytorch.org/whl/cu" in message
    assert len(message.splitlines()) >= 5  # loud: a block, not a line
    # a CUDA build that cannot reach the GPUs says that instead
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    assert "CUDA 12.6" in hardware.cpu_torch_warning() and "driver" in hardware.cpu_torch_warning()


def test_no_warning_without_gpus_or_with_a_working_cuda_torch(cpu_torch, tmp_path, monkeypatch):
    assert hardware.cpu_torch_warning(gpus=[]) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert hardware.cpu_torch_warning(gpus=["GPU 0: NVIDIA H100 80GB HBM3"]) is None


def test_dss_train_warns_once_per_process_and_only_on_the_first(cpu_torch, tmp_path, monkeypatch, capsys):
    from dss.student.config import TrainConfig
    from dss.student.prepare import make_accelerator
    fake_nvidia_smi(tmp_path, monkeypatch, ["GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-b2)"])
    hardware.warn_cpu_torch(main=False)  # another process of the machine: nothing
    assert capsys.readouterr().err == ""
    cfg = TrainConfig(task="demo", output_dir=str(tmp_path / "run"), mixed_precision="no")
    make_accelerator(cfg)
    make_accelerator(cfg)  # a second run in the same process (a sweep's cells): not again
    err = capsys.readouterr().err
    assert err.count("WARNING: this machine has 1 NVIDIA GPU(s)") == 1 and "A100-SXM4-80GB" in err


ROOT = Path(__file__).resolve().parent.parent


def make_install(venv: Path, *args) -> str:
    """What `make install` would run (make -n) for the venv at `venv`."""
    return subprocess.run(["make", "-n", "-s", "-C", str(ROOT), f"VENV={venv}", "install", *args],
                          capture_output=True, text=True, timeout=60, env={**{k: v for k, v in os.environ.items()
                          if k not in ("TORCH", "TORCH_INDEX")}, "MAKEFLAGS": ""},
                          check=True).stdout


def test_make_install_reinstalls_torch_when_torch_or_its_index_changes(tmp_path):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").touch()
    (venv / ".torch").write_text('"torch==2.13.0"\n')  # what the default install records
    (venv / ".installed").touch()
    now = time.time()
    for age, name in ((20, "bin/activate"), (10, ".torch")):  # the venv, then torch, then dss: as make leaves them
        os.utime(venv / name, (now - age, now - age))
    assert "pip" not in make_install(venv)  # the same torch: nothing to do
    cuda = make_install(venv, "TORCH=torch==2.5.1", "TORCH_INDEX=https://download.pytorch.org/whl/cu124")
    assert ('pip install --quiet --force-reinstall --no-deps --index-url https://download.pytorch.org/whl/cu124 '
            '"torch==2.5.1"') in cuda
    assert "pip install --quiet -e" in cuda and "python -m dss.core.hardware" in cuda  # then dss, then the check
    assert "--force-reinstall" in make_install(venv, "TORCH=torch")  # another TORCH, no index
    assert "pip" not in make_install(venv, "TORCH=torch==2.13.0")  # the same, given
    # a CUDA venv: make install (or make test, demo ...) without TORCH keeps its torch, not the default CPU pin
    (venv / ".torch").write_text('--index-url https://download.pytorch.org/whl/cu126 "torch"\n')
    os.utime(venv / ".torch", (now - 10, now - 10))
    assert "pip" not in make_install(venv)
    assert "pip" not in make_install(venv, "TORCH=torch", "TORCH_INDEX=https://download.pytorch.org/whl/cu126")
    assert '--force-reinstall --no-deps "torch==2.13.0"' in make_install(venv, "TORCH=torch==2.13.0")
    (venv / ".torch").unlink()  # a venv made before torch was recorded: its torch is unknown, reinstalled
    assert '--force-reinstall --no-deps "torch==2.13.0"' in make_install(venv)
