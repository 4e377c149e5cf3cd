"""kill -9 at any moment and a rerun: every example ends with exactly one record — none lost, none
duplicated, none half-written. A real `dss extract` subprocess against a loopback teacher."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dss.testing.fake_teacher import FakeTeacher
from dss.testing.release import write_cqa

ROOT = Path(__file__).resolve().parent.parent
N_ROWS = 334  # the carved train split of 334 cqa rows holds 300 examples


def extract_cmd(url, data_dir, out, limit=300):
    return [sys.executable, "-m", "dss", "extract", "--task", "cqa", "--split", "train", "--limit", str(limit),
            "--teacher", "openai:any", "--base-url", url, "--data-dir", str(data_dir), "--out", str(out),
            "--concurrency", "8", "--no-progress"]


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.fixture
def env():
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.pop("OPENAI_API_KEY", None)
    return e


def test_kill_9_then_rerun_gives_exactly_one_record_per_example(tmp_path, env):
    data = write_cqa(tmp_path / "data", {"train": N_ROWS}, with_teacher=False)
    out = tmp_path / "r.jsonl"
    with FakeTeacher(latency=0.02) as srv:
        # three kills at different depths of progress, each followed by a resume that gets killed again
        for target in (40, 120, 200):
            proc = subprocess.Popen(extract_cmd(srv.openai_url, data, out), cwd=tmp_path, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 30
            while count_lines(out) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
            assert target <= count_lines(out) < 300
        # a torn line, as a kill in the middle of a write leaves it
        with open(out, "ab") as fh:
            fh.write(b'{"id": "q1", "task": "cqa", "sta')
        done = subprocess.run(extract_cmd(srv.openai_url, data, out), cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "torn" in done.stdout
        asked = len(srv.generation_requests())
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == 300
    assert len({r["id"] for r in recs}) == 300
    assert all(r["status"] == "ok" and r["sample"] == 0 for r in recs)
    # answers already written were not asked again: at most the in-flight ones at each kill are repeated
    assert asked <= 300 + 3 * 8 + 1
