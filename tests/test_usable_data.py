"""Data that cannot train what a run asks for stops before training, naming the cause: DSS without a single
rationale, teacher labels that match nothing, an empty train split. Nothing trains silently on less."""
from __future__ import annotations

import json

import pytest
from test_train import TINY

from dss.commands.cli import main
from dss.tasks import get_task


def write_rows(path, n, rationale_column="rationale"):
    with open(path, "w") as fh:
        for i in range(n):
            row = {"id": f"r{i}", "input": f"is {i} even ?", "label": "yes" if i % 2 == 0 else "no"}
            if rationale_column:
                row[rationale_column] = f"{i} is {'even' if i % 2 == 0 else 'odd'}"
            fh.write(json.dumps(row) + "\n")
    return path


def train(tmp_path, data, *extra) -> int:
    return main(["train", "--task", "custom", "--train-file", str(data), *TINY, "--max-steps", "2",
                 "--eval-steps", "2", "--output-dir", str(tmp_path / "run"), *extra])


@pytest.mark.parametrize("labels", ["gold", "teacher"])
def test_dss_with_a_misspelt_rationale_column_names_it(tmp_path, capsys, labels):
    data = write_rows(tmp_path / "d.jsonl", 40)
    assert train(tmp_path, data, "--method", "dss", "--rationale-column", "why", "--labels", labels) == 2
    err = capsys.readouterr().err
    assert "no column 'why'" in err and "its columns: id, input, label, rationale" in err
    assert not (tmp_path / "run" / "results.json").exists()


def test_dss_on_a_file_without_rationales_is_an_error_and_standard_still_trains(tmp_path, capsys):
    data = write_rows(tmp_path / "d.jsonl", 40, rationale_column=None)
    assert train(tmp_path, data, "--method", "dss") == 2
    assert "none of the 32 train examples has one" in capsys.readouterr().err
    assert train(tmp_path, data, "--method", "standard") == 0


def test_a_rationale_file_for_another_split_is_named(tmp_path, capsys):
    data = write_rows(tmp_path / "d.jsonl", 40, rationale_column=None)
    test_ids = [e.id for e in get_task("custom", train_file=str(data)).load("test")]
    recs = tmp_path / "test-rationales.jsonl"
    recs.write_text("".join(json.dumps({"id": i, "sample": 0, "status": "ok", "label": "yes", "rationale": "r",
                                        "task": "custom", "split": "test"}) + "\n" for i in test_ids))
    assert train(tmp_path, data, "--method", "dss", f"rationales={recs}") == 2
    err = capsys.readouterr().err
    assert "gave 0 of 32 train examples a parsed answer" in err and "another task or split" in err
    # teacher labels that match no id: the same cause, named, instead of sentencepiece's internal error
    assert train(tmp_path, data, "--method", "distill", f"rationales={recs}", "overwrite=true") == 2
    assert "has a teacher label to train on" in capsys.readouterr().err


def test_some_missing_rationales_are_said_in_the_first_lines(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    write_rows(data, 40)
    lines = data.read_text().splitlines()
    for k in range(0, 40, 4):  # every fourth row without its rationale
        row = json.loads(lines[k])
        del row["rationale"]
        lines[k] = json.dumps(row)
    data.write_text("\n".join(lines) + "\n")
    assert train(tmp_path, data, "--method", "dss") == 0
    err = capsys.readouterr().err
    said = next(ln for ln in err.splitlines() if "no usable rationale" in ln)
    assert err.index(said) < err.index("training dss")  # before the first step
    n = int(said.split("dss train: ")[1].split()[0])
    assert json.loads((tmp_path / "run" / "results.json").read_text())["data"]["missing_rationale"] == n > 0


@pytest.mark.parametrize("n_rows", [1, 2])
def test_too_few_rows_to_carve_a_train_split(tmp_path, capsys, n_rows):
    data = write_rows(tmp_path / "d.jsonl", n_rows)
    assert train(tmp_path, data, "--method", "standard") == 2
    assert f"its {n_rows} row(s) leave no" in capsys.readouterr().err
    assert main(["data", "stats", "--task", "custom", "--train-file", str(data)]) != 0
    assert "leave no" in capsys.readouterr().err
