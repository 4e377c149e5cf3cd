"""Batch order, kills and resume, and the run folder's lock: a resumed run is the uninterrupted run, exactly."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import read_jsonl, tiny_args

from dss.commands.cli import main
from dss.student.kinds import seq2seq

pytestmark = pytest.mark.slow

# 36 train rows in batches of 4: 9 steps an epoch, so 30 steps are 3 1/3 epochs; checkpoints every 10 steps
ARGS = ["--method", "dss", "--max-steps", "30", "--eval-steps", "10", "--dropout", "0.1",
        "--eval-max-new-tokens", "8"]
TIMING = ("train_seconds", "examples_per_second", "eval_examples_per_second")


def crash_at(monkeypatch, step: int) -> None:
    """Make training die (as if killed) when it is about to run optimizer step `step`."""
    import dss.student.loop as T
    real, calls = T.train_step, {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == step:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(T, "train_step", dying)


def comparable(run: Path) -> tuple:
    res = json.loads((run / "results.json").read_text())
    res = {k: v for k, v in res.items() if k not in TIMING}
    return res, read_jsonl(run / "metrics.jsonl"), read_jsonl(run / "predictions.jsonl")


def test_each_epoch_has_its_own_batch_order_and_resume_skips_to_the_same_place():
    from accelerate import Accelerator

    import dss.student.loop as T
    from dss.student.config import TrainConfig
    feats = [{"input_ids": [[i + 3, 1]], "labels": [[i + 3, 1]], "task": [0], "length": 4 + i % 7}
             for i in range(40)]
    cfg = TrainConfig(batch_size=4, max_steps=25, group_by_length=True)
    order, acc = T.batch_order(feats, cfg), Accelerator(cpu=True)
    first = lambda micro: micro[0]["parts"][0]["input_ids"][:, 0].tolist()  # noqa: E731
    full = [first(m) for m in T.step_batches(feats, order, 0, cfg, acc, 0, seq2seq)]
    assert len(full) == 25 and order.steps_per_epoch == 10
    assert full[0] != full[10] and full[10] != full[20]  # epochs 0, 1, 2 start differently
    assert sorted(sum(full[:10], [])) == sorted(sum(full[10:20], []))  # each epoch is a permutation
    assert [first(m) for m in T.step_batches(feats, order, 13, cfg, acc, 0, seq2seq)] == full[13:]


def test_killed_in_epoch_2_and_resumed_equals_uninterrupted(tiny_cqa_dir, tmp_path, monkeypatch, capsys):
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert main(tiny_args(tiny_cqa_dir, full, *ARGS)) == 0
    crash_at(monkeypatch, 24)  # after the step-20 checkpoint, inside epoch 2 (steps 19-27)
    assert main(tiny_args(tiny_cqa_dir, cut, *ARGS)) == 130
    logged = [r["step"] for r in read_jsonl(cut / "metrics.jsonl")]
    assert logged[-1] == 23 and (cut / "checkpoints" / "step_00000020").is_dir()
    with open(cut / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 50, "lr": 0.00061')  # a write cut off by the kill
    monkeypatch.undo()
    assert main(tiny_args(tiny_cqa_dir, cut, *ARGS)) == 2  # never continues silently
    assert "pass resume=true" in capsys.readouterr().err
    assert main(tiny_args(tiny_cqa_dir, cut, *ARGS, "--resume")) == 0
    assert comparable(cut) == comparable(full)
    steps = [r["step"] for r in read_jsonl(cut / "metrics.jsonl") if "loss" in r]
    assert steps == list(range(1, 31))  # every step once: the killed attempt's steps 21-23 were dropped


def test_resume_before_the_first_checkpoint_says_so_and_starts_over(tiny_cqa_dir, tmp_path, monkeypatch, capsys):
    args = [*ARGS, "--max-steps", "12"]
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "full", *args)) == 0
    crash_at(monkeypatch, 4)
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "cut", *args)) == 130
    monkeypatch.undo()
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "cut", *args)) == 2
    assert "a started run" in capsys.readouterr().err
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "cut", *args, "--resume")) == 0
    assert "holds no checkpoint yet (a run killed before its first one); starting at step 0" in \
        capsys.readouterr().err
    assert comparable(tmp_path / "cut") == comparable(tmp_path / "full")


def test_resume_refuses_other_settings(tiny_cqa_dir, tmp_path, capsys):
    run = tmp_path / "run"
    args = [*ARGS, "--max-steps", "4", "--eval-steps", "4"]
    assert main(tiny_args(tiny_cqa_dir, run, *args)) == 0
    assert main(tiny_args(tiny_cqa_dir, run, *args, "--resume", "--lr", "0.01")) == 2
    assert "lr: 0.001 -> 0.01" in capsys.readouterr().err
    assert main(tiny_args(tiny_cqa_dir, run, *args, "--resume")) == 0  # same settings: its results


def test_a_second_train_into_a_busy_folder_refuses_and_a_stale_lock_does_not_block(tiny_cqa_dir, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"fh = open({str(run / '.lock')!r}, 'a+'); fcntl.flock(fh, fcntl.LOCK_EX)\n"
        "fh.write('pid 4242 on host since now'); fh.flush(); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = [*ARGS, "--max-steps", "2", "--eval-steps", "2"]
        assert main(tiny_args(tiny_cqa_dir, run, *args)) == 2
        assert "being written by another `dss train` (pid 4242 on host since now)" in capsys.readouterr().err
        assert not (run / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died without cleaning up: its lock file stays, but the lock went with it
    assert (run / ".lock").read_text().startswith("pid 4242")
    assert main(tiny_args(tiny_cqa_dir, run, *args)) == 0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_floats_are_rejected_at_config_time(value, capsys):
    assert main(["train", "--task", "demo", f"--alpha={value}", "--max-steps", "1"]) == 2
    assert "alpha" in capsys.readouterr().err
    assert main(["train", "--task", "demo", f"lr={value}"]) == 2
    assert "not a finite number" in capsys.readouterr().err or "below the minimum" in capsys.readouterr().err
