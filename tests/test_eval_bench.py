"""benchmarks/eval_modes.py: every mode runs on the same checkpoint and rows; dss's modes run as `dss train`
evaluates (its config's precision and fast kernels), the reference's with transformers' own modules."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from test_train import tiny_args

from dss.commands.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import eval_modes  # noqa: E402


def test_eval_modes_times_every_mode_on_the_same_rows(tiny_cqa_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(tiny_args(tiny_cqa_dir, run, "--method", "dss", "--max-steps", "6", "--eval-steps", "6",
                          "--mixed-precision", "no")) == 0
    capsys.readouterr()
    assert eval_modes.main([str(run), "--repeats", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["rows"] == 10 and out["repeats"] == 2 and out["device"] == "cpu"
    assert set(out["x_reference"]) == set(eval_modes.ANSWERING) and min(out["x_reference"].values()) > 0
    assert out["settings"] == {"dss": {"precision": "no", "fast_kernels": True, "batch_size": 64},
                               "reference": {"precision": "no", "batch_size": 64}}
    for mode in eval_modes.MODES:
        assert out[mode]["examples_per_second_median"] >= out[mode]["examples_per_second_min"] > 0
        assert mode == "encoder" and out[mode]["accuracy"] is None or 0.0 <= out[mode]["accuracy"] <= 1.0
    if eval_modes.has_ct2():  # the export answers as PyTorch in fp32 (this run's precision)
        assert {"ct2-score", "ct2-int8-generate"} <= set(out["x_reference"])
        assert out["ct2-score"]["accuracy"] == out["score"]["accuracy"]
        assert out["ct2-generate"]["accuracy"] == out["generate"]["accuracy"]
    # cost per 1M predictions: the machine's price over each mode's median examples/s; no extraction, no teacher
    costs = out["costs"]
    assert costs["teacher"] is None and costs["price_per_hour"] == 0.085
    eps = out["score"]["examples_per_second_median"]
    assert costs["student_usd"]["score"] == pytest.approx(1e6 / eps * 0.085 / 3600, rel=1e-3)


def test_prediction_costs_price_the_teacher_from_an_extraction(tmp_path):
    from dss.bench.costs import prediction_costs
    records = [{"id": f"e{i}", "sample": 0, "status": "ok", "teacher": "openai:gpt-4o-mini", "model": "gpt-4o-mini",
                "attempts": 1, "usage": {"input_tokens": 1000, "output_tokens": 100}} for i in range(4)]
    path = tmp_path / "teacher.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    got = prediction_costs(tmp_path, examples_per_second=100.0, price_per_hour=3.6, rationale_file=path)
    assert got["student"]["usd"] == pytest.approx(10.0)  # 1e6 predictions at 100/s: 10,000 s at $0.001 a second
    # gpt-4o-mini: $0.15 per 1M input tokens, $0.60 per 1M output: $0.00021 an answer
    assert got["teacher"]["examples"] == 4 and got["teacher"]["usd"] == pytest.approx(210.0)
    assert got["teacher_over_student"] == 21.0
    # the run's own extraction prices it by default; one moved away since leaves no teacher figure, not an error
    (tmp_path / "config.json").write_text(json.dumps({"config": {"rationales": str(path)}}))
    assert prediction_costs(tmp_path, 100.0, 3.6)["teacher"]["usd"] == pytest.approx(210.0)
    path.rename(tmp_path / "moved.jsonl")
    assert prediction_costs(tmp_path, 100.0, 3.6)["teacher"] is None


def test_eval_modes_on_cuda_without_a_gpu_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA GPU here"):
        eval_modes.main([str(tmp_path), "--device", "cuda"])
