"""A full disk while training: one line naming the disk (torch alone says `[enforce fail at
inline_container.cc:672]`), the checkpoints written before stay whole, and the resumed run is the uninterrupted
one. End to end on a small tmpfs (needs root to mount one; skipped with the reason otherwise)."""
from __future__ import annotations

import errno
import os
import subprocess
from collections import namedtuple

import pytest
from test_resume import ARGS, comparable
from test_train import tiny_args

from dss.commands.cli import main
from dss.core import io

Usage = namedtuple("Usage", "total used free")


def test_no_space_messages(tmp_path, monkeypatch):
    assert "no space left on" in io.no_space_message(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    assert "no space left" in io.no_space_message(RuntimeError("I/O error: No space left on device (os error 28)"),
                                                  tmp_path)
    torch_words = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    monkeypatch.setattr(io.shutil, "disk_usage", lambda p: Usage(100, 100, 0))
    assert f"(writing under {tmp_path / 'run'}; 0.0 MiB free)" in io.no_space_message(torch_words, tmp_path / "run")
    monkeypatch.setattr(io.shutil, "disk_usage", lambda p: Usage(1 << 40, 0, 1 << 40))
    assert io.no_space_message(torch_words, tmp_path) is None  # space left: not a full disk, said as it is
    assert io.no_space_message(ValueError("bad"), tmp_path) is None
    with pytest.raises(io.DataError, match="no space left on .*; rerun"):
        with io.disk_space(tmp_path, "rerun"):
            raise OSError(errno.EDQUOT, "Disk quota exceeded")


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()[:100]}): needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder) -> None:
    with open(folder / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1 << 16))
                fh.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC


@pytest.mark.slow
def test_a_full_disk_at_a_checkpoint_is_named_and_resume_is_exact(tiny_cqa_dir, tmp_path, small_disk, monkeypatch,
                                                                  capsys):
    import dss.student.loop as T

    assert main(tiny_args(tiny_cqa_dir, tmp_path / "full", *ARGS)) == 0
    save = T.save_checkpoint

    def full_at_step_20(accelerator, run, step, state, *keep):
        if step == 20:
            fill(small_disk)
        save(accelerator, run, step, state, *keep)
    monkeypatch.setattr(T, "save_checkpoint", full_at_step_20)
    run = small_disk / "run"
    capsys.readouterr()
    assert main(tiny_args(tiny_cqa_dir, run, *ARGS)) == 2
    err = capsys.readouterr().err
    assert f"no space left on {small_disk}" in err and "rerun with resume=true" in err and "Traceback" not in err
    monkeypatch.undo()
    os.remove(small_disk / "filler")
    assert main(tiny_args(tiny_cqa_dir, run, *ARGS, "--resume")) == 0
    assert "resuming" in capsys.readouterr().err
    assert comparable(run) == comparable(tmp_path / "full")
