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
    assert set(out["x_reference"]) == {"score", "generate"} and min(out["x_reference"].values()) > 0
    assert out["settings"] == {"dss": {"precision": "no", "fast_kernels": True, "batch_size": 64},
                               "reference": {"precision": "no", "batch_size": 64}}
    for mode in eval_modes.MODES:
        assert out[mode]["examples_per_second_median"] >= out[mode]["examples_per_second_min"] > 0
        assert mode == "encoder" and out[mode]["accuracy"] is None or 0.0 <= out[mode]["accuracy"] <= 1.0


def test_eval_modes_on_cuda_without_a_gpu_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA GPU here"):
        eval_modes.main([str(tmp_path), "--device", "cuda"])
