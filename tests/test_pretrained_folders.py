"""`--model <folder>` on local folders shaped like the checkpoints users have (T5 v1.1, BART, mT5, UMT5: their
configs and tokenizer conventions, small and random): train, save, reload with the Auto classes, predict,
score, resume, and the reference input format's EOS text per family."""
from __future__ import annotations

import json

import pytest

from dss.commands.cli import main
from dss.tasks import get_task
from dss.testing.hf_folders import bart_folder, t5_folder

pytestmark = pytest.mark.slow

FAMILIES = {"t5": ("T5ForConditionalGeneration", "</s>"), "bart": ("BartForConditionalGeneration", "</s>"),
            "mt5": ("MT5ForConditionalGeneration", "</s>"), "umt5": ("UMT5ForConditionalGeneration", "</s>")}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(data dir, {family: folder}); the tokenizers are trained on the task's text, like a real one that has
    seen English: the prefixes are ordinary text to them, never added tokens."""
    from dss.testing.release import write_cqa
    root = tmp_path_factory.mktemp("hf")
    data = write_cqa(root, {"train": 40, "test": 10}, batch=16)
    exs = get_task("cqa").load("train", data)
    texts = [t for e in exs for t in (e.input, e.label, e.llm_rationale or "")] + ["predict: explain: so"] * 5
    out = {f: t5_folder(root / f, texts, family=f) for f in ("t5", "mt5", "umt5")}
    out["bart"] = bart_folder(root / "bart", texts)
    return data, out


def train_args(data, model, out, *extra):
    return ["train", "--task", "cqa", "--data-dir", str(data), "--model", str(model), "--method", "dss",
            "--label-prefix", "predict: ", "--rationale-prefix", "explain: ", "--batch-size", "4",
            "--max-eval-examples", "4", "--eval-max-new-tokens", "8", "--max-target-length", "48",
            "--no-tensorboard", "--log-steps", "1", "--output-dir", str(out), *extra]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_pretrained_shaped_folder_trains_saves_reloads_and_predicts(family, folders, tmp_path, capsys):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    data, models = folders
    run = tmp_path / "run"
    assert main(train_args(data, models[family], run, "--max-steps", "12", "--eval-steps", "6", "--lr", "3e-3")) == 0
    for name in ("config.json", "results.json", "predictions.jsonl", "metrics.jsonl", "model/dss.json"):
        assert (run / name).is_file(), name
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(run / "model"), AutoTokenizer.from_pretrained(run / "model")
    assert type(model).__name__ == FAMILIES[family][0] and tok.eos_token == FAMILIES[family][1]
    assert len(tok("predict: ", add_special_tokens=False)["input_ids"]) > 1  # text pieces, not one added token
    losses = [json.loads(x)["loss"] for x in open(run / "metrics.jsonl") if '"loss"' in x]
    assert sum(losses[-3:]) < sum(losses[:3]), losses  # it learns
    capsys.readouterr()
    assert main(["predict", "--model", str(run / "model"), "--task", "cqa", "--split", "test", "--data-dir",
                 str(data), "--limit", "3", "--score"]) == 0
    scored = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(scored) == 3 and all(r["prediction"] in r["scores"] and len(r["scores"]) == 5 for r in scored)
    assert main(["predict", "--model", str(run / "model"), "--input", "Where is a plate?", "--rationale"]) == 0


def test_a_t5_folder_run_resumes_exactly(folders, tmp_path, monkeypatch):
    import dss.student.loop as T
    data, models = folders
    args = ["--max-steps", "6", "--eval-steps", "3", "--eval-mode", "score"]
    assert main(train_args(data, models["t5"], tmp_path / "full", *args)) == 0
    save = T.save_checkpoint

    def crash_after_step_3(accelerator, run, step, state, *keep):
        save(accelerator, run, step, state, *keep)
        if step == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(T, "save_checkpoint", crash_after_step_3)
    assert main(train_args(data, models["t5"], tmp_path / "cut", *args)) == 130
    monkeypatch.setattr(T, "save_checkpoint", save)
    assert main(train_args(data, models["t5"], tmp_path / "cut", *args, "--resume")) == 0
    full, cut = ([json.loads(x) for x in open(tmp_path / r / "metrics.jsonl")] for r in ("full", "cut"))
    assert full == cut
    assert (tmp_path / "full" / "predictions.jsonl").read_text() == (tmp_path / "cut" / "predictions.jsonl").read_text()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_reference_format_joins_with_each_familys_eos(family, folders):
    from transformers import AutoTokenizer

    from dss.student.config import TrainConfig
    from dss.student.data import eos_text
    from dss.tasks.base import Example
    _, models = folders
    eos = eos_text(TrainConfig(task="esnli", model=str(models[family]), input_format="reference"))
    assert eos == FAMILIES[family][1]
    ex = Example("x", "", "entailment", meta={"premise": "A person jumps.", "hypothesis": "A person moves."})
    text = get_task("esnli").reference_input(ex, eos)
    tok = AutoTokenizer.from_pretrained(models[family])
    ids = tok(text)["input_ids"]
    inner = ids[1:-1] if tok.bos_token_id is not None and ids[0] == tok.bos_token_id else ids[:-1]
    assert inner.count(tok.eos_token_id) == 1  # one EOS token between premise and hypothesis, as in run.py


def test_a_sweep_over_two_pretrained_shaped_folders(folders, tmp_path, capsys):
    from dss.bench import report
    data, models = folders
    sweep = tmp_path / "sweep"
    argv = ["bench", "--tasks", "cqa", "--methods", "standard,dss", "--fractions", "1", "--seeds", "0",
            "--models", f"{models['t5']},{models['bart']}", "--data-dir", str(data), "--output-dir", str(sweep),
            "train.max_steps=2", "train.batch_size=4", "train.eval_steps=2", "train.max_eval_examples=4",
            "train.eval_mode=score", "train.label_prefix=predict: ", "train.rationale_prefix=explain: ",
            "train.tensorboard=false"]
    assert main(argv) == 0
    rows = report.read_csv(sweep / "results.csv")
    assert sorted((r["model"], r["method"]) for r in rows) == sorted(
        (str(models[f]), m) for f in ("t5", "bart") for m in ("standard", "dss"))
    assert all(r["params"] > 0 for r in rows)
