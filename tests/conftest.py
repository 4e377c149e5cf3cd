"""Shared fixtures: the real release data (skipped when absent) and tiny release-layout folders."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

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


def write_release(root: Path, task: str, split: str, rows: list[dict], completions: list[str] | None = None,
                  batch: int = 1000) -> Path:
    """Write rows (and aligned completions, in batches) in the release layout under root."""
    d = root / task
    (d / "llm").mkdir(parents=True, exist_ok=True)
    with open(d / f"{task}_{split}.json", "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    if completions is not None:
        for k in range(0, len(completions), batch):
            (d / "llm" / f"{split}_CoT_{k // batch}.json").write_text(json.dumps(completions[k:k + batch]))
    return root


@pytest.fixture
def tiny_cqa_dir(tmp_path) -> Path:
    """A 40-row cqa train and 10-row test with teacher completions, in the release layout."""
    def rows(n, split):
        out, comps = [], []
        for i in range(n):
            choices = [f"thing{i}a", f"thing{i}b", f"place {i}", f"idea{i}", f"tool{i}"]
            out.append({"id": f"{split}{i}", "question": f"Where would you find item {i}?", "choices": choices,
                        "answer": choices[i % 5], "abstractive_explanation": "", "extractive_explanation": ""})
            letter = "abcde"[i % 5]
            comps.append(f"Item {i} is found at {choices[i % 5]}. So the answer is ({letter}) {choices[i % 5]}."
                         f"\n\nQ: next question?\nAnswer Choices:\n(a) x")
        return out, comps
    for split, n in (("train", 40), ("test", 10)):
        r, c = rows(n, split)
        write_release(tmp_path, "cqa", split, r, c, batch=16)
    return tmp_path
