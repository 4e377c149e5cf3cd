"""FSDP (v2, fully_shard) on 2 CPU processes (gloo): accelerate runs FSDP on GPUs only, so the launch goes through
tests/fsdp_cpu.py, which turns the Accelerator into an FSDP one. Every forward is then a collective: the
save of the student, evaluation with uneven shares of examples, and steps where one process has no rationale
row must all finish (a hang fails the test at its timeout), and the run must equal a 1-process run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import read_jsonl

from dss.commands.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
# 13 valid/test examples in batches of 3: one process gets 7 (3 batches), the other 6 (2 batches)
ARGS = ["--method", "dss", "--max-steps", "6", "--eval-steps", "3", "--batch-size", "8", "--d-model", "32",
        "--d-ff", "64", "--heads", "2", "--layers", "1", "--vocab-size", "200", "--no-tensorboard",
        "--max-eval-examples", "13", "--eval-batch-size", "3", "--eval-max-new-tokens", "4",
        "--mixed-precision", "no", "--dropout", "0"]


def fsdp_train(*args) -> subprocess.CompletedProcess:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2",
                           str(ROOT / "tests" / "fsdp_cpu.py"), "train", *args],
                          env=env, capture_output=True, text=True, timeout=240, check=False)


def test_fsdp_saves_evaluates_unevenly_and_equals_one_process(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    proc = fsdp_train("--task", "demo", *ARGS, "keep_checkpoints=2", "--output-dir", str(two))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["train", "--task", "demo", *ARGS, "--output-dir", str(one)]) == 0
    assert (two / "checkpoints" / "step_00000006" / "pytorch_model_fsdp_0").is_dir()  # sharded, as on GPUs
    # resume from the sharded step-3 checkpoint: the same run
    full = read_jsonl(two / "metrics.jsonl")
    shutil.rmtree(two / "checkpoints" / "step_00000006")
    (two / "results.json").unlink()
    proc = fsdp_train("--task", "demo", *ARGS, "keep_checkpoints=2", "--resume", "--output-dir", str(two))
    assert proc.returncode == 0 and "resuming" in proc.stderr, proc.stderr[-3000:]
    assert read_jsonl(two / "metrics.jsonl") == full
    for a, b in zip(read_jsonl(one / "metrics.jsonl"), read_jsonl(two / "metrics.jsonl")):
        assert a.keys() == b.keys() and all(b[k] == pytest.approx(a[k], rel=1e-4) for k in a if k != "lr")
    assert read_jsonl(two / "predictions.jsonl") == read_jsonl(one / "predictions.jsonl")

    import torch
    from transformers import AutoModelForSeq2SeqLM
    m1, m2 = (AutoModelForSeq2SeqLM.from_pretrained(r / "model") for r in (one, two))  # the full weights
    for (name, p1), p2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.allclose(p1, p2, atol=1e-5), name


def test_fsdp_scores_and_trains_steps_where_one_process_has_no_rationale(tmp_path):
    data = tmp_path / "d.jsonl"
    with open(data, "w") as fh:  # one example in 8 has a rationale: most steps leave a process without one
        for i in range(160):
            row = {"id": f"r{i}", "input": f"is {i} even ?", "label": "yes" if i % 2 == 0 else "no"}
            if i % 8 == 0:
                row["rationale"] = f"{i} ends in an even digit"
            fh.write(json.dumps(row) + "\n")
    run = tmp_path / "run"
    # batches in random order (grouped by length, the rows with a rationale would share batches)
    proc = fsdp_train("--task", "custom", "--train-file", str(data), *ARGS, "--eval-mode", "score",
                      "--no-group-by-length", "--output-dir", str(run))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((run / "results.json").read_text())
    assert res["data"]["missing_rationale"] > 100 and res["eval_mode"] == "score"
    assert all("scores" in p for p in read_jsonl(run / "predictions.jsonl"))


@pytest.mark.parametrize("env,said", [("ACCELERATE_USE_FSDP", "an FSDP config was given, but accelerate runs"),
                                      ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed is not supported")])
def test_fsdp_turned_ddp_and_deepspeed_are_refused_by_name(tmp_path, monkeypatch, capsys, env, said):
    monkeypatch.setenv(env, "true")
    assert main(["train", "--task", "demo", *ARGS, "--output-dir", str(tmp_path / "run")]) == 2
    assert said in capsys.readouterr().err


def test_fsdp_version_1_and_lora_under_fsdp_are_refused():
    from types import SimpleNamespace

    from dss.core.errors import ConfigError
    from dss.student import fsdp
    from dss.student.config import TrainConfig
    acc = SimpleNamespace(state=SimpleNamespace(fsdp_plugin=SimpleNamespace(fsdp_version=1)),
                          distributed_type=SimpleNamespace(value="FSDP"))
    with pytest.raises(ConfigError, match="fsdp_version: 2"):
        fsdp.prepare(None, TrainConfig(), acc)
    acc.state.fsdp_plugin.fsdp_version = 2
    with pytest.raises(ConfigError, match="LoRA under FSDP"):
        fsdp.prepare(None, TrainConfig(lora_r=4), acc)


def test_share_embeddings_points_t5_stacks_at_the_input_embedding():
    from transformers import T5Config, T5ForConditionalGeneration

    from dss.student.fsdp import share_embeddings
    model = T5ForConditionalGeneration(T5Config(vocab_size=40, d_model=8, d_kv=4, d_ff=16, num_layers=1,
                                                num_heads=2, decoder_start_token_id=0))
    assert model.encoder.embed_tokens is not model.shared  # two modules, one weight: two FSDP groups
    assert share_embeddings(model) == 2
    assert model.encoder.embed_tokens is model.shared and model.decoder.embed_tokens is model.shared
