"""`dss active` end to end on the demo, offline (a replay of the demo's own answers, priced as a Gemini model):
every round is a run folder, each chain stays within its budget, and a study killed mid-way resumes to the same
choices and the same final table. `dss plan` reads the study."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dss.commands.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
# a tiny student and small rounds: 20 examples first, then 20 a round, 60 teacher requests a chain
ARGS = ["--config", str(ROOT / "configs" / "active" / "demo.yaml"), "--strategies",
        "random,uncertainty,student-first", "--seeds", "0", "--jobs", "1", "seed_size=20", "round_size=20",
        "budget_requests=60", "train.max_steps=12",
        "train.eval_steps=6", "train.d_model=16", "train.d_ff=32", "train.heads=2", "train.layers=1",
        "train.vocab_size=150", "train.batch_size=8"]


def table(study: Path) -> list[tuple]:
    lines = (study / "results.csv").read_text().splitlines()
    head = lines[0].split(",")
    keep = ("strategy", "seed", "round", "answered", "requests", "cost_usd", "test_accuracy", "valid_accuracy")
    return sorted(tuple(dict(zip(head, line.split(",")))[k] for k in keep) for line in lines[1:])


def choices(study: Path) -> dict:
    return {p.parent.parent.name: [json.loads(x) for x in p.read_text().splitlines()]
            for p in sorted(study.rglob("choices.jsonl"))}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    study = tmp_path_factory.mktemp("active") / "full"
    assert main(["active", *ARGS, "--output-dir", str(study)]) == 0
    return study


def test_every_round_is_a_run_folder_within_the_budget(full):
    rows = table(full)
    assert {r[0] for r in rows} == {"random", "uncertainty", "student-first"}
    for strategy in ("random", "uncertainty", "student-first"):
        mine = [r for r in rows if r[0] == strategy]
        assert [int(r[2]) for r in sorted(mine, key=lambda r: int(r[2]))] == [0, 1, 2]
        assert max(int(r[4]) for r in mine) <= 60  # the budget
        chain = full / strategy / "s0"
        for k in range(3):
            assert (chain / f"round_{k:02d}" / "results.json").is_file()
            assert (chain / f"round_{k:02d}" / "splits.json").is_file()
    picked = choices(full)
    assert picked["uncertainty"][1]["by"] == "closed-set margin" and len(picked["uncertainty"][1]["scores"]) == 20
    assert "gold labels" in picked["student-first"][1]["by"]
    assert all(len(set(sum((c["ids"] for c in picked[s]), []))) == 60 for s in picked)  # nobody asked twice


def test_a_killed_study_resumes_to_the_same_choices_and_table(full, tmp_path):
    study = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "dss", "active", *ARGS, "--output-dir", str(study)], cwd=ROOT,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:  # killed once the uncertainty chain has chosen its second round
        deadline = time.monotonic() + 240
        target = study / "uncertainty" / "s0" / "choices.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if target.is_file() and len(target.read_text().splitlines()) >= 2:
                break
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (study / "results.csv").exists()
    assert main(["active", *ARGS, "--output-dir", str(study)]) == 0
    assert choices(study) == choices(full)
    assert table(study) == table(full)


def test_plan_reads_the_study(full, capsys):
    assert main(["plan", str(full), "--target", "0.6", "--by", "requests"]) == 0
    out = capsys.readouterr().out
    assert "random: accuracy = " in out and "60.0 %" in out


def test_a_sweep_on_extracted_answers_reports_what_they_cost(tmp_path):
    answers = tmp_path / "demo-answers.jsonl"
    assert main(["extract", "--task", "demo", "--teacher", "replay:gemini-3.5-flash", "--replay-from", "task",
                 "--out", str(answers), "--concurrency", "1"]) == 0
    sweep = tmp_path / "sweep"
    assert main(["bench", "--tasks", "demo", "--methods", "dss", "--labels", "teacher", "--fractions", "0.125,0.25",
                 "--seeds", "0", "--output-dir", str(sweep), f"train.rationales={answers}", "train.max_steps=4",
                 "train.eval_steps=4", "train.d_model=16", "train.d_ff=32", "train.heads=2", "train.layers=1",
                 "train.tensorboard=false", "train.eval_max_new_tokens=3"]) == 0
    from dss.bench.report import read_csv
    from dss.tasks.rationales import read_rationale_file
    from dss.teacher.cost import answers_spend
    records = read_rationale_file(answers)
    for row in read_csv(sweep / "results.csv"):
        ids = set(json.loads((Path(row["run_dir"]) / "splits.json").read_text())["train"])
        assert row["teacher_requests"] == len(ids) == round(1600 * row["fraction"])  # one request an example
        assert row["teacher_cost_usd"] > 0
        assert row["teacher_cost_usd"] == pytest.approx(answers_spend(records, ids)["cost_usd"])
    assert "*teacher requests, USD*" in (sweep / "results.md").read_text()
