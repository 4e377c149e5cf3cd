"""--report-to wandb,mlflow (through Accelerate's trackers): each gets the resolved config and the same metrics
as metrics.jsonl. W&B runs offline (its run file read back here), MLflow with a local file store."""
from __future__ import annotations

import json

import pytest

from dss.commands.cli import main

pytestmark = pytest.mark.slow

TINY = ["--task", "cqa", "--model", "tiny", "--d-model", "32", "--d-ff", "64", "--heads", "2", "--layers", "1",
        "--vocab-size", "200", "--batch-size", "4", "--max-steps", "4", "--eval-steps", "2", "--log-steps", "1",
        "--max-eval-examples", "4", "--lr", "2e-3"]


def jsonl(path):
    return [json.loads(x) for x in open(path)]


def test_wandb_offline_and_mlflow_get_the_config_and_every_metric(tiny_cqa_dir, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from dss.testing.wandb_log import history_and_config
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file://{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data-dir", str(tiny_cqa_dir), "--output-dir", str(run),
                 "--report-to", "wandb,mlflow"]) == 0
    ours = jsonl(run / "metrics.jsonl")
    losses = {r["step"]: r["loss"] for r in ours if "loss" in r}
    valid = {r["step"]: r["valid_accuracy"] for r in ours if "valid_accuracy" in r}
    config = json.loads((run / "config.json").read_text())["config"]

    (wandb_file,) = run.glob("wandb/offline-run-*/run-*.wandb")
    history, wb_config = history_and_config(wandb_file)
    assert {h["_step"]: h["loss"] for h in history if "loss" in h} == losses
    assert {h["_step"]: h["valid_accuracy"] for h in history if "valid_accuracy" in h} == valid
    assert wb_config["lr"] == config["lr"] and wb_config["method"] == "dss" and "rationales_per_example" in wb_config

    client = MlflowClient(uri)
    (exp,) = [e for e in client.search_experiments() if e.name == "dss"]
    (ml_run,) = client.search_runs([exp.experiment_id])
    assert ml_run.info.run_name == "run" and float(ml_run.data.params["lr"]) == config["lr"]
    assert {m.step: m.value for m in client.get_metric_history(ml_run.info.run_id, "loss")} == pytest.approx(losses)
    assert {m.step: m.value for m in client.get_metric_history(ml_run.info.run_id, "valid_accuracy")} == valid


def test_a_missing_tracker_package_is_named(tiny_cqa_dir, tmp_path, monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    assert main(["train", *TINY, "--data-dir", str(tiny_cqa_dir), "--output-dir", str(tmp_path / "r"),
                 "--report-to", "wandb"]) == 2
    assert "pip install wandb" in capsys.readouterr().err
