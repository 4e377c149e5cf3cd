"""A sweep's worker processes never outlive it: `dss bench --jobs 2` killed (SIGKILL) or terminated (SIGTERM)
leaves no worker training, none holding a cell's lock, and no queued cell started; SIGTERM stops cleanly."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def children(pid: int) -> set[int]:
    """Every descendant of pid, from /proc."""
    parent_of = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent_of[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent_of.items() if pp in frontier} - out
        out |= frontier
    return out


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; only its parent's wait is missing


def locked(lock: Path) -> bool:
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.parametrize("launcher", ["inprocess", "subprocess"])
def test_killed_sweep_leaves_no_worker(tmp_path, sig, launcher):
    sweep = tmp_path / "sweep"
    # 4 cells, 2 at a time: 2 train (for ever, at this step count) and 2 wait in the queue
    cmd = [sys.executable, "-m", "dss", "bench", "--config", "configs/bench/demo.yaml", "--output-dir", str(sweep),
           "--seeds", "0", "--fractions", "0.125,0.25", "--jobs", "2", "--launcher", launcher,
           "train.max_steps=1000000", "train.eval_steps=1000000", "train.d_model=16", "train.d_ff=32",
           "train.heads=2", "train.layers=1"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(list(sweep.rglob(".lock"))) == 2 and all(map(locked, sweep.rglob(".lock"))),
                 120, "two cells training")
        wait_for(lambda: len(list(sweep.rglob("metrics.jsonl"))) == 2, 120, "both cells past their first steps")
        workers = children(proc.pid)
        assert len(workers) >= 2
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
        wait_for(lambda: not any(alive(p) for p in workers), 30, "the workers to stop")
    finally:
        if proc.poll() is None:
            proc.kill()
    locks = list(sweep.rglob(".lock"))
    assert len(locks) == 2 and not any(map(locked, locks))  # a rerun can take every cell at once
    started = [d.parent for d in sweep.rglob("config.json")]
    assert len(started) == 2  # the queued cells never started
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, err[-2000:]
        assert "stopping 2 running cell(s)" in out and "terminated (SIGTERM)" in err
