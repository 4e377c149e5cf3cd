"""Shared fixtures: the real release data (skipped when absent) and tiny release-layout folders."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from dss.testing.fake_teacher import FakeTeacher
from dss.testing.release import write_cqa

ROOT = Path(__file__).resolve().parent.parent


def _shared_data_dir() -> Path | None:
    for cand in (os.environ.get("DSS_DATA_DIR"), ROOT.parent / "shared" / "dss-data"):
        if cand and (Path(cand) / "cqa" / "cqa_test.json").is_file():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark data with PaLM outputs; tests that need it skip when it is absent."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip("needs the release data: set DSS_DATA_DIR or place it at ../shared/dss-data")
    return path


@pytest.fixture
def tiny_cqa_dir(tmp_path) -> Path:
    """A 40-row cqa train and 10-row test with teacher completions, in the release layout."""
    return write_cqa(tmp_path, {"train": 40, "test": 10}, batch=16)


@pytest.fixture
def srv(request, monkeypatch):
    """A fake teacher on 127.0.0.1 (dss.testing.fake_teacher); both providers' API key is the test module's KEY,
    which no message or file may then show."""
    monkeypatch.setenv("OPENAI_API_KEY", request.module.KEY)
    monkeypatch.setenv("GEMINI_API_KEY", request.module.KEY)
    with FakeTeacher() as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh_accelerator_state():
    """Each test starts without Accelerate's per-process AcceleratorState (its precision is fixed once made)."""
    yield
    from accelerate.state import AcceleratorState
    AcceleratorState._reset_state()
