"""Shared fixtures: the real release data (skipped when absent) and tiny release-layout folders."""
from __future__ import annotations

import json
import os
import zipfile
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
def sandbox(tmp_path, tiny_cqa_dir, monkeypatch):
    """A working folder with what the --help examples (and the docs' commands) name: configs/, a custom file,
    inputs, predictions, a finished sweep's results.csv, a release archive; DSS_DATA_DIR holds a tiny cqa
    release."""
    from dss.bench import report
    work = tmp_path / "work"
    work.mkdir()
    (work / "configs").symlink_to(ROOT / "configs")
    (work / "my.jsonl").write_text("".join(json.dumps({"input": f"is {i} even ?", "label": ["yes", "no"][i % 2],
                                                       "rationale": f"{i} ends in {i % 10} ."}) + "\n"
                                           for i in range(60)))
    (work / "inputs.jsonl").write_text('{"id": "a", "input": "ben has a fig . cara has a plum . same kind ?"}\n')
    (work / "preds.jsonl").write_text('{"prediction": "( 1.0 + 2.0 )", "label": "3"}\n')
    for name, answer in (("ct2.jsonl", "entailment"), ("torch.jsonl", "Entailment")):
        (work / name).write_text(json.dumps({"id": "e1", "prediction": answer, "label": "entailment"}) + "\n")
    (work / "ids.txt").write_text(next(iter(json.loads(line)["id"] for line in
                                            open(tiny_cqa_dir / "cqa" / "cqa_train.json"))) + "\n")
    (work / "exemplars.yaml").write_text("".join(f"- input: is {i} even ?\n  rationale: {i} ends in {i} .\n"
                                                 f"  label: {['yes', 'no'][i % 2]}\n" for i in range(6)))
    row = {"task": "demo", "method": "dss", "labels": "gold", "model": "tiny", "fraction": 1.0, "seed": 0,
           "train_examples": 10, "test_examples": 4, "valid_accuracy": 0.5, "test_accuracy": 0.5,
           "test_accuracy_last": 0.4, "chance": 0.5, "run_dir": "x"}
    (work / "runs" / "demo").mkdir(parents=True)
    (work / "runs" / "demo" / "results.csv").write_text(report.rows_to_csv([row]))
    from dss.active.study import rows_csv  # a finished `dss active` study: what `dss plan` reads
    (work / "runs" / "active-demo").mkdir()
    (work / "runs" / "active-demo" / "results.csv").write_text(rows_csv([
        {"strategy": "random", "seed": 0, "round": k, "answered": c, "requests": c, "tokens": 300 * c,
         "cost_usd": c * 1e-4, "test_accuracy": 0.97 - 2.5 * c ** -0.5} for k, c in enumerate((100, 200, 300, 400))]))
    with zipfile.ZipFile(work / "datasets.zip", "w") as z:
        z.write(tiny_cqa_dir / "cqa" / "cqa_test.json", "datasets/cqa/cqa_test.json")
    monkeypatch.chdir(work)
    monkeypatch.setenv("DSS_DATA_DIR", str(tiny_cqa_dir))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    return work


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
