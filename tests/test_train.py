"""`dss train` end to end on a 2-layer-or-less T5 and 40 rows: run folder, methods, resume, configs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dss.commands.cli import main

pytestmark = pytest.mark.slow  # each test trains a tiny model for seconds

TINY = ["--model", "tiny", "--d-model", "32", "--d-ff", "64", "--heads", "2", "--layers", "1",
        "--vocab-size", "200", "--batch-size", "4", "--log-steps", "1", "--no-tensorboard"]


def tiny_args(data_dir, out, *extra) -> list[str]:
    return ["train", "--task", "cqa", "--data-dir", str(data_dir), *TINY, "--output-dir", str(out), *extra]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def losses(run: Path) -> list[dict]:
    return [r for r in read_jsonl(run / "metrics.jsonl") if "loss" in r]


def test_dss_run_folder_is_complete_and_loss_falls(tiny_cqa_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(tiny_args(tiny_cqa_dir, run, "--method", "dss", "--max-steps", "16", "--eval-steps", "8",
                          "--lr", "3e-3", "--eval-max-new-tokens", "12", "--tensorboard")) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["best_step"] in (8, 16)
    for name in ("config.json", "metrics.jsonl", "results.json", "predictions.jsonl", "model/dss.json",
                 "model/model.safetensors", "model/tokenizer.json", "tokenizer/spiece.model"):
        assert (run / name).is_file(), name
    assert list((run / "checkpoints").glob("step_00000016/*"))
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    log = losses(run)
    assert [r["step"] for r in log] == list(range(1, 17))
    assert {"lr", "loss", "label_loss", "rationale_loss"} <= set(log[0])
    first, last = (sum(r["loss"] for r in rs) / 4 for rs in (log[:4], log[-4:]))
    assert last < first - 0.3, (first, last)
    res = json.loads((run / "results.json").read_text())
    assert res["train_examples"] == 36 and res["test_examples"] == 10 and res["examples_per_second"] > 0
    assert 0 <= res["valid_accuracy"] <= 1 and 0 <= res["test_accuracy"] <= 1
    preds = read_jsonl(run / "predictions.jsonl")
    assert len(preds) == 10 and set(preds[0]) == {"id", "input", "prediction", "label", "correct", "eval_mode"}
    assert res["test_accuracy"] == sum(p["correct"] for p in preds) / 10
    info = json.loads((run / "config.json").read_text())
    assert info["config"]["method"] == "dss" and info["versions"]["torch"] and "rerun" in info
    assert info["rerun"].startswith("dss train ") and "max_steps=16" in info["rerun"]

    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    model = AutoModelForSeq2SeqLM.from_pretrained(run / "model")
    tok = AutoTokenizer.from_pretrained(run / "model")
    assert model.config.d_model == 32
    assert tok.convert_ids_to_tokens(tok("[label] Where")["input_ids"])[0] == "[label]"
    assert tok.convert_ids_to_tokens(tok("[rationale] x")["input_ids"])[0] == "[rationale]"


@pytest.mark.parametrize("method", ["standard", "distill", "single"])
def test_other_methods_train(method, tiny_cqa_dir, tmp_path):
    run = tmp_path / method
    assert main(tiny_args(tiny_cqa_dir, run, "--method", method, "--max-steps", "4", "--eval-steps", "4",
                          "--max-target-length", "24")) == 0
    res = json.loads((run / "results.json").read_text())
    assert res["method"] == method and res["best_step"] == 4 and "rationale_loss" not in losses(run)[0]


def test_resume_equals_uninterrupted(tiny_cqa_dir, tmp_path, monkeypatch):
    import dss.student.loop as T

    args = ["--method", "dss", "--max-steps", "8", "--eval-steps", "4", "--dropout", "0.1"]
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "full", *args)) == 0

    save = T.save_checkpoint

    def crash_after_step_4(accelerator, run, step, state, *keep):
        save(accelerator, run, step, state, *keep)
        if step == 4:
            raise KeyboardInterrupt  # killed right after the step-4 checkpoint
    monkeypatch.setattr(T, "save_checkpoint", crash_after_step_4)
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "cut", *args)) == 130
    assert not (tmp_path / "cut" / "results.json").exists()
    monkeypatch.setattr(T, "save_checkpoint", save)
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "cut", *args)) == 2  # refuses to clobber without --resume
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "cut", *args, "--resume")) == 0

    full, cut = (json.loads((tmp_path / r / "results.json").read_text()) for r in ("full", "cut"))
    for k in ("valid_accuracy", "test_accuracy", "best_step"):
        assert full[k] == cut[k], k
    assert read_jsonl(tmp_path / "full" / "metrics.jsonl") == read_jsonl(tmp_path / "cut" / "metrics.jsonl")
    from safetensors.torch import load_file
    a, b = (load_file(tmp_path / r / "checkpoints" / "step_00000008" / "model.safetensors") for r in ("full", "cut"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    # a finished run resumed again is a no-op that returns its results
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "cut", *args, "--resume")) == 0


def test_yaml_config_flags_and_overrides(tiny_cqa_dir, tmp_path, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"task: cqa\ndata_dir: {tiny_cqa_dir}\nmethod: standard\nmax_steps: 50\nd_model: 32\n"
                   "d_ff: 64\nheads: 2\nlayers: 1\nvocab_size: 200\nbatch_size: 4\ntensorboard: false\n")
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--max-steps", "3", f"output_dir={run}", "eval_steps=3",
                 "max_eval_examples=3"]) == 0
    got = json.loads((run / "config.json").read_text())["config"]
    assert got["max_steps"] == 3 and got["method"] == "standard" and got["max_eval_examples"] == 3
    assert json.loads((run / "results.json").read_text())["test_examples"] == 3
    assert main(["train", "--config", str(cfg), "no_such_key=1"]) == 2
    assert "unknown key(s) no_such_key" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "alpha=1.5"]) == 2


def test_rationales_file_replaces_released_teacher_outputs(tiny_cqa_dir, tmp_path):
    from dss.tasks import get_task
    train = get_task("cqa").load("train", tiny_cqa_dir)
    recs = tmp_path / "rationales.jsonl"
    with open(recs, "w") as fh:
        for i, ex in enumerate(train[:30]):  # 30 of 36 examples; two of them unparsed
            status = "unparsed" if i < 2 else "ok"
            fh.write(json.dumps({"id": ex.id, "task": "cqa", "split": "train", "teacher": "fake", "prompt_sha": "x",
                                 "sample": 0, "status": status, "label": ex.label if status == "ok" else None,
                                 "rationale": f"my reason {i}", "raw": "", "usage": {}, "latency_s": 0.0}) + "\n")
    run = tmp_path / "run"
    assert main(tiny_args(tiny_cqa_dir, run, "--method", "distill", "--rationales", str(recs),
                          "--max-steps", "2", "--eval-steps", "2", "--max-eval-examples", "2")) == 0
    data = json.loads((run / "results.json").read_text())["data"]
    assert data["rationale_file"]["matched"] == 28 and data["dropped_no_label"] == 8
    assert data["train_examples"] == 28


def test_train_configs_load():
    from dss.core.config import load_config
    from dss.student.config import TrainConfig
    configs = sorted((Path(__file__).resolve().parent.parent / "configs" / "train").glob("*.yaml"))
    assert configs
    for path in configs:
        assert path.read_text().startswith("# dss train --config "), path
        load_config(TrainConfig, path)


def test_a_single_run_never_lands_in_a_sweep_folder(tmp_path, capsys):
    from dss.student.config import TrainConfig
    assert TrainConfig(task="demo", method="dss").output_dir == "runs/demo-dss"  # `make demo` is runs/demo
    assert TrainConfig(task="cqa", method="single", labels="teacher").output_dir == "runs/cqa-single-teacher"
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "bench.yaml").write_text("name: sweep\n")
    assert main(["train", "--task", "demo", "--output-dir", str(sweep), "--max-steps", "1"]) == 2
    assert "folder of a `dss bench` sweep" in capsys.readouterr().err


def test_training_says_what_it_does_in_a_few_plain_lines(tiny_cqa_dir, tmp_path, capsys):
    """stderr is not a terminal here: progress is a plain line every 5 %, no carriage-return redraws, and no
    "Loading weights" / "Writing" bars at the checkpoints."""
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "run", "--max-steps", "40", "--eval-steps", "20",
                          "--log-steps", "10", "--eval-max-new-tokens", "4")) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "Loading weights" not in err and "Writing" not in err
    for phase in ("loading cqa data", "36 train examples", "training a tokenizer", "tokenizing 72 rows",
                  "step 20/40: valid accuracy", "step 40/40 (100 %, loss", "test accuracy"):
        assert phase in err, phase
    assert sum(line.startswith("dss train: step ") for line in err.splitlines()) == 20 + 2
    assert len(err) < 4000
