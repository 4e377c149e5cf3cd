"""`dss predict` on a trained tiny run: --input, --file, --split, --rationale."""
from __future__ import annotations

import json

import pytest
from test_train import read_jsonl, tiny_args

from dss.commands.cli import main

pytestmark = pytest.mark.slow


def test_predict_input_file_split_and_rationale(tiny_cqa_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(tiny_args(tiny_cqa_dir, run, "--method", "dss", "--max-steps", "8", "--eval-steps", "8",
                          "--eval-max-new-tokens", "8", "--max-target-length", "16")) == 0
    model = str(run / "model")
    capsys.readouterr()

    assert main(["predict", "--model", model, "--input", "Where would you find item 3?"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["predict", "--model", model, "--input", "Where would you find item 3?", "--rationale"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("rationale: ")

    # the run's own test predictions come back from --split test (same model, same greedy decoding)
    assert main(["predict", "--model", model, "--task", "cqa", "--split", "test", "--data-dir",
                 str(tiny_cqa_dir)]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    want = read_jsonl(run / "predictions.jsonl")
    assert [(g["id"], g["prediction"], g["correct"]) for g in got] == \
        [(w["id"], w["prediction"], w["correct"]) for w in want]

    f = tmp_path / "in.jsonl"
    f.write_text("".join(json.dumps({"id": w["id"], "input": w["input"], "label": w["label"]}) + "\n"
                         for w in want[:3]))
    assert main(["predict", "--model", model, "--file", str(f), "--rationale", "--output",
                 str(tmp_path / "out.jsonl")]) == 0
    recs = read_jsonl(tmp_path / "out.jsonl")
    assert [r["prediction"] for r in recs] == [w["prediction"] for w in want[:3]]
    assert all(isinstance(r["rationale"], str) and "correct" in r for r in recs)  # task from the run's dss.json


def test_predict_refuses_rationales_from_a_standard_student(tiny_cqa_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(tiny_args(tiny_cqa_dir, run, "--method", "standard", "--max-steps", "2", "--eval-steps", "2",
                          "--max-eval-examples", "2", "--eval-max-new-tokens", "4")) == 0
    assert main(["predict", "--model", str(run / "model"), "--input", "x", "--rationale"]) == 2
    assert "no rationale task" in capsys.readouterr().err


def test_predict_bad_inputs_say_what_is_wrong(tiny_cqa_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(tiny_args(tiny_cqa_dir, run, "--method", "standard", "--max-steps", "2", "--eval-steps", "2",
                          "--max-eval-examples", "2", "--eval-max-new-tokens", "4")) == 0
    model = str(run / "model")
    capsys.readouterr()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["predict", "--model", model, "--file", str(empty)]) == 2
    assert f"{empty}: no rows" in capsys.readouterr().err
    number = tmp_path / "n.jsonl"
    number.write_text('{"input": "fine"}\n{"input": 5}\n')
    assert main(["predict", "--model", model, "--file", str(number)]) == 2
    assert f"{number}:2: field 'input' must be text, got int" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "runs" / "nope" / "model"), "--input", "x"]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "Repo id" not in err


@pytest.mark.parametrize("content,message", [
    ('{"method": "dss-v2", "task": "cqa"}', "method: 'dss-v2' is not one of standard"),
    ('{"method": "dss", "task": ', "cannot read the student's settings: Expecting value"),
    ('["dss"]', "expected a JSON object of the student's settings, got list"),
    ('{"method": null}', "field 'method': expected text, got None"),
    ('{"max_input_length": "512"}', "field 'max_input_length': expected an integer, got '512'"),
    ('{"max_input_length": true}', "field 'max_input_length': expected an integer, got True"),
    ('{"task": 3}', "field 'task': expected text or null, got 3"),
    ('{"label_prefix": "x", "rationale_prefix": "x"}', "label_prefix and rationale_prefix must differ"),
])
def test_a_bad_dss_json_is_an_error_naming_it(content, message, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "dss.json").write_text(content)
    assert main(["predict", "--model", str(model), "--input", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dss predict: error: {model / 'dss.json'}: ") and message in err and "\n" not in err


def test_a_checkpoint_without_dss_json_is_a_standard_student(tiny_cqa_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(tiny_args(tiny_cqa_dir, run, "--method", "standard", "--max-steps", "1", "--eval-steps", "1",
                          "--max-eval-examples", "2", "--eval-max-new-tokens", "4")) == 0
    (run / "model" / "dss.json").unlink()
    capsys.readouterr()
    assert main(["predict", "--model", str(run / "model"), "--input", "x", "--max-new-tokens", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
