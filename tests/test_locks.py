"""The one lock (dss.core.locks) behind `dss train`'s run folder and `dss extract`'s output: flock where the
filesystem has it; where flock fails with ENOSYS (Lustre without -o flock) or DSS_LOCK=file says so, a lock file
with a heartbeat that a live holder keeps and a dead one (another pid on this host, or no heartbeat) gives up."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import sys
import time

import pytest
from test_train import tiny_args

from dss.commands.cli import main
from dss.core import locks
from dss.core.errors import ConfigError, DataError
from dss.teacher import store


@pytest.fixture
def no_flock(monkeypatch):
    """A filesystem without flock, as Lustre mounted without -o flock answers."""
    def flock(fh, op):
        raise OSError(errno.ENOSYS, "Function not implemented")
    monkeypatch.setattr(fcntl, "flock", flock)
    monkeypatch.setattr(locks, "_said", set())


def hold_lock_file(lock_path, **fields):
    """The lock file another process would leave: its content and, through mtime, its last heartbeat."""
    info = {"pid": os.getpid(), "host": locks.HOST, "since": "2025-01-01 00:00:00", "token": "x", **fields}
    held = lock_path.with_name(lock_path.name + ".held")
    held.parent.mkdir(parents=True, exist_ok=True)
    held.write_text(json.dumps(info))
    return held


def test_flock_where_it_works_and_busy_names_the_holder(tmp_path):
    lock = locks.acquire(tmp_path / ".lock")
    assert lock.kind == "flock" and not (tmp_path / ".lock.held").exists()
    assert locks.held(tmp_path / ".lock")
    with pytest.raises(locks.Busy, match=rf"pid {os.getpid()} on {locks.HOST} since"):
        locks.acquire(tmp_path / ".lock")
    lock.release()
    assert not locks.held(tmp_path / ".lock")


def test_without_flock_a_lock_file_with_a_heartbeat(tmp_path, no_flock, monkeypatch, capsys):
    monkeypatch.setattr(locks, "HEARTBEAT_S", 0.05)
    lock = locks.acquire(tmp_path / ".lock")
    assert lock.kind == "lock file (flock unsupported on this filesystem: ENOSYS)"
    assert "dss: lock in force: lock file (flock unsupported on this filesystem: ENOSYS)" in capsys.readouterr().err
    held = tmp_path / ".lock.held"
    info = json.loads(held.read_text())
    assert info["pid"] == os.getpid() and info["host"] == locks.HOST
    os.utime(held, (time.time() - 100, time.time() - 100))
    time.sleep(0.3)
    assert time.time() - held.stat().st_mtime < 5  # the heartbeat refreshed it
    assert locks.held(tmp_path / ".lock")
    with pytest.raises(locks.Busy, match=rf"pid {os.getpid()} on {locks.HOST} since .*; lock file, heartbeat"):
        locks.acquire(tmp_path / ".lock")  # the holder is alive (this very process)
    lock.release()
    assert not held.exists() and not locks.held(tmp_path / ".lock")
    locks.acquire(tmp_path / ".lock").release()  # taken again at once
    assert "lock in force" not in capsys.readouterr().err  # said once per process


def test_a_stale_lock_file_is_taken_over_a_live_one_on_another_node_is_not(tmp_path, no_flock):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    held = hold_lock_file(tmp_path / ".lock", pid=int(dead.stdout))  # this host, its process gone
    assert not locks.held(tmp_path / ".lock")
    locks.acquire(tmp_path / ".lock").release()

    hold_lock_file(tmp_path / ".lock", host="node7", pid=4242)  # another node: only its heartbeat tells
    with pytest.raises(locks.Busy, match=r"pid 4242 on node7 since 2025-01-01 00:00:00; lock file, heartbeat 0 s"):
        locks.acquire(tmp_path / ".lock")
    os.utime(held, (time.time() - locks.STALE_S - 5, time.time() - locks.STALE_S - 5))
    lock = locks.acquire(tmp_path / ".lock")  # its heartbeat stopped: the node crashed
    assert json.loads(held.read_text())["pid"] == os.getpid()
    lock.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]  # the stale file moved aside and gone


def test_dss_lock_file_forces_the_lock_file_and_flock_users_honour_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DSS_LOCK", "file")
    monkeypatch.setattr(locks, "_said", set())
    lock = locks.acquire(tmp_path / ".lock")
    assert lock.kind == "lock file (DSS_LOCK=file)" and (tmp_path / ".lock.held").is_file()
    lock.release()
    monkeypatch.delenv("DSS_LOCK")
    # Lustre's localflock: a flock user on another node gets the flock; the live lock file refuses it
    hold_lock_file(tmp_path / ".lock", host="node7", pid=4242)
    with pytest.raises(locks.Busy, match="pid 4242 on node7"):
        locks.acquire(tmp_path / ".lock")
    assert locks.held(tmp_path / ".lock")
    monkeypatch.setenv("DSS_LOCK", "sometimes")
    with pytest.raises(ConfigError, match="DSS_LOCK='sometimes'"):
        locks.acquire(tmp_path / ".lock")


@pytest.mark.slow
def test_dss_train_without_flock(tiny_cqa_dir, tmp_path, no_flock, capsys):
    run = tmp_path / "run"
    args = ["--method", "dss", "--max-steps", "2", "--eval-steps", "2", "--eval-max-new-tokens", "8"]
    hold_lock_file(run / ".lock", host="node7", pid=4242)
    assert main(tiny_args(tiny_cqa_dir, run, *args)) == 2
    err = capsys.readouterr().err
    assert "being written by another `dss train` (pid 4242 on node7 since 2025-01-01 00:00:00; lock file" in err
    (run / ".lock.held").unlink()
    assert main(tiny_args(tiny_cqa_dir, run, *args)) == 0
    assert "lock in force: lock file (flock unsupported on this filesystem: ENOSYS)" in capsys.readouterr().err
    assert (run / "results.json").is_file() and not (run / ".lock.held").exists()


def test_an_extraction_output_without_flock(tmp_path, no_flock):
    rf = store.RecordFile(tmp_path / "r.jsonl")
    assert (tmp_path / "r.jsonl.lock.held").is_file()
    with pytest.raises(DataError, match=rf"another `dss extract` is writing this file \(pid {os.getpid()} on"):
        store.RecordFile(tmp_path / "r.jsonl")
    rf.close()
    assert not (tmp_path / "r.jsonl.lock.held").exists()
    store.RecordFile(tmp_path / "r.jsonl").close()
