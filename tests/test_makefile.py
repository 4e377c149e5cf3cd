"""The Makefile's user targets, checked with `make -n` (the commands they would run): a custom study that asks a
teacher passes the exemplars its prompt needs, or stops naming the variable."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_n(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_a_study_with_a_teacher_passes_the_exemplars_to_the_extraction():
    done = make_n("study", "DATA=my.jsonl", "TEACHER=openai:m", "EXEMPLARS=ex.yaml")
    assert done.returncode == 0, done.stderr
    extract = next(line for line in done.stdout.splitlines() if " extract " in line)
    assert "--task custom" in extract and "--exemplars ex.yaml" in extract
    assert "--out runs/study-my-rationales.jsonl" in extract
    bench = next(line for line in done.stdout.splitlines() if " bench " in line)
    assert "train.rationales=runs/study-my-rationales.jsonl" in bench


def test_a_study_with_a_teacher_and_no_exemplars_stops_naming_them():
    done = make_n("study", "DATA=my.jsonl", "TEACHER=openai:m")
    assert done.returncode != 0 and "set EXEMPLARS=" in done.stderr


def test_extract_takes_exemplars():
    done = make_n("extract", "DATA=my.jsonl", "TEACHER=openai:m", "EXEMPLARS=ex.yaml")
    assert done.returncode == 0 and "--exemplars ex.yaml" in done.stdout
