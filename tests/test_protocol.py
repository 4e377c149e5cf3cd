"""protocol=reference: the reference code's subsets (checked against `datasets`' train_test_split, as run.py calls
it), schedule, batches, loss averaging, generation length, parsing and accuracy, and its figure (the last model's
test accuracy) beside dss's in every report. Every run folder records the ids it used (splits.json)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dss.commands.cli import main
from dss.tasks import reference

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--d-model", "32", "--d-ff", "64", "--heads", "2", "--layers", "1", "--vocab-size", "300",
        "--no-tensorboard", "--batch-size", "16", "--max-steps", "1", "--eval-steps", "1", "--eval-max-new-tokens", "2"]


def reference_subsets(path: Path, fraction: float, seed: int, carve_valid: bool, id_of) -> tuple[list, list]:
    """run.py's train (and carved valid) ids, computed as it computes them: with `datasets`."""
    from datasets import Dataset
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ds = Dataset.from_dict({"i": list(range(len(rows)))})
    if fraction < 1.0:
        ds = ds.train_test_split(test_size=1.0 - fraction, seed=seed)["train"]
    if not carve_valid:
        return [id_of(rows[i], i) for i in ds["i"]], []
    parts = ds.train_test_split(test_size=0.1, seed=0)
    return [id_of(rows[i], i) for i in parts["train"]["i"]], [id_of(rows[i], i) for i in parts["test"]["i"]]


@pytest.mark.slow
@pytest.mark.parametrize("task,fraction,seed", [("esnli", 0.125, 0), ("esnli", 0.125, 1), ("cqa", 0.25, 1)])
def test_splits_json_holds_the_reference_subsets(shared_data, tmp_path, task, fraction, seed):
    run = tmp_path / "run"
    cap = ["--max-eval-examples", "40"] if task == "esnli" else []  # e-SNLI's valid is its own 9,842 rows
    assert main(["train", "--task", task, "--data-dir", str(shared_data), "--method", "standard", *TINY, *cap,
                 "protocol=reference", f"train_fraction={fraction}", f"seed={seed}",
                 "--output-dir", str(run)]) == 0
    splits = json.loads((run / "splits.json").read_text())
    source = shared_data / task / f"{task}_train.json"
    if task == "esnli":
        train, _ = reference_subsets(source, fraction, seed, False, lambda row, i: f"esnli-train-{i}")
        valid = [f"esnli-valid-{i}" for i in range(40)]  # its valid split, in order, as evaluated
    else:
        train, valid = reference_subsets(source, fraction, seed, True, lambda row, i: row["id"])
    assert splits["train"] == train and splits["valid"] == valid
    assert len(splits["test"]) == (40 if task == "esnli" else 1221)


@pytest.mark.slow
def test_a_reference_sweep_logs_the_base_rate_first_and_reports_both_figures(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    assert main(["bench", "--tasks", "demo", "--methods", "standard,dss", "--fractions", "0.125", "--seeds", "0",
                 "--output-dir", str(sweep), "train.protocol=reference", "train.max_steps=6", "train.eval_steps=3",
                 "train.log_steps=1", "train.lr=0.002", "train.d_model=32", "train.d_ff=64", "train.heads=2",
                 "train.layers=1", "train.eval_max_new_tokens=3", "train.tensorboard=false"]) == 0
    cells = sorted(p.parent for p in sweep.rglob("results.json"))
    assert len(cells) == 2
    for cell in cells:
        metrics = [json.loads(x) for x in (cell / "metrics.jsonl").read_text().splitlines()]
        assert metrics[0]["step"] == 1 and metrics[0]["lr"] == 0.002  # no warm-up: the base rate first
        assert [m["step"] for m in metrics if "test_accuracy" in m] == [3, 6]  # test at every evaluation
        config = json.loads((cell / "config.json").read_text())["config"]
        assert (config["protocol"], config["warmup_steps"], config["group_by_length"], config["input_format"]) == \
            ("reference", 0, False, "reference")
        assert json.loads((cell / "results.json").read_text())["precision"] == "no"  # fp32 unless asked
        assert set(json.loads((cell / "splits.json").read_text())) >= {"train", "valid", "test"}
    header = (sweep / "results.csv").read_text().splitlines()[0].split(",")
    assert "test_accuracy_last" in header
    rows = [dict(zip(header, line.split(","))) for line in (sweep / "results.csv").read_text().splitlines()[1:]]
    assert all(r["test_accuracy_last"] != "" for r in rows)
    assert "**test, last model**" in (sweep / "results.md").read_text()
    assert (sweep / "curves.png").is_file() and (sweep / "curves-last.png").is_file()
    assert main(["plot", str(sweep), "--metric", "test_accuracy_last", "--no-table"]) == 0


def test_reference_parsers_keep_the_reference_flaws():
    assert reference.esnli("The premise says so.\nAnswer: neutral\n\nPre") == ("The premise says so.", "neutral\n\nPre")
    assert reference.esnli("no answer line") == ("no answer line", " ")
    assert reference.cqa("Either works. So the answer is either (a) aquarium or (e) pond.\n\nQ: x") == \
        ("Either works.", "aquarium or")
    assert reference.cqa("Fish live there. So the answer is (b) pond.") == ("Fish live there.", "pond")
    assert reference.cqa("Nothing to say.") == ("", " ")
    assert reference.svamp("Add them. The answer is (3 + 4).\n\nQ: next") == ("Add them.", "(3 + 4)")
    assert reference.svamp("Add them. The answer is 7.") == ("Add them.", " ")
    assert reference.anli1("It says so. So the answer is entailment.\n\nPremise: p") == ("It says so.", "entailment")
    assert reference.anli1("no answer") == ("", "")


def test_reference_accuracy_is_exact_and_svamp_is_python_floats():
    assert reference.match("entailment", "entailment", "accuracy")
    assert not reference.match("entailment.", "entailment", "accuracy")  # dss's normalization would accept it
    assert not reference.match(" pond", "pond", "accuracy")
    assert reference.float_value("( 5.0 + 3.0 )") == 8.0 and reference.float_value("7 / 2") == 3.5
    assert reference.float_value("0.1 + 0.2") == 0.30000000000000004  # float arithmetic, as eval has it
    assert not reference.match("0.1 + 0.2", "0.3", "equation")  # (dss's exact arithmetic says equal)
    for bad in ("(2 * x)", "1 / 0", "__import__('os')", "", "2 ** 3"):
        assert math.isnan(reference.float_value(bad))
    assert not reference.match("(2 * x)", "(2 * x)", "equation")  # nan is never equal


def test_the_last_partial_batch_is_kept_and_every_example_is_seen_once_an_epoch():
    from dss.student.batching import LengthGroupedBatchSampler
    order = LengthGroupedBatchSampler([5] * 37, batch_size=4, batches_per_step=2, seed=3, group_by_length=False,
                                      keep_last=True, min_last=2)
    assert order.steps_per_epoch == 5  # 4 whole steps of 8 and one of 5
    batches = order.epoch_batches(0)
    assert sorted(i for b in batches for i in b) == list(range(37))
    assert [len(b) for b in batches[-2:]] == [3, 2]
    dropped = LengthGroupedBatchSampler([5] * 37, 4, 2, 3, group_by_length=False)
    assert dropped.steps_per_epoch == 4 and dropped.epoch_batches(0) == batches[:8]  # dss's protocol: the same


def test_reference_loss_is_the_mean_of_each_micro_batchs_token_means():
    import torch
    from accelerate import Accelerator

    from dss.student import loop
    from dss.student.config import TrainConfig
    from dss.student.kinds import seq2seq
    from dss.student.loss import multitask_loss
    torch.manual_seed(0)
    from transformers import T5Config, T5ForConditionalGeneration
    model = T5ForConditionalGeneration(T5Config(vocab_size=30, d_model=8, d_kv=4, d_ff=16, num_layers=1,
                                                num_heads=2, decoder_start_token_id=0, dropout_rate=0.0))
    feats = [{"input_ids": [[5, 6, 1], [7, 1]], "labels": [[8, 1], [9, 10, 11, 12, 1]], "task": [0, 1]},
             {"input_ids": [[5, 1]], "labels": [[8, 9, 10, 1]], "task": [0]}]
    micro = [seq2seq.collate([feats[0]], 0), seq2seq.collate([feats[1]], 0)]  # micro-batches of 2 and 4 label tokens
    expected = []
    for m in micro:
        part_losses = []
        for part in m["parts"]:
            logits = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"],
                           labels=part["labels"]).logits
            part_losses.append(multitask_loss(logits, part["labels"], part["is_rationale"], 0.5,
                                              m["n_label_tokens"].clamp(min=1), m["n_rationale_tokens"].clamp(min=1)))
        expected.append(sum(p[0] for p in part_losses).item())
    acc = Accelerator(cpu=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    got = loop.train_step(model, micro, TrainConfig(protocol="reference", max_grad_norm=0), acc, opt, sched,
                          seq2seq)
    assert got[0].item() == pytest.approx(sum(expected) / 2, rel=1e-5)  # the reference: mean of per-micro means
    dss = loop.train_step(model, micro, TrainConfig(max_grad_norm=0), acc, opt, sched, seq2seq)
    assert dss[0].item() != pytest.approx(got[0].item(), rel=1e-3)  # dss: one token mean over the whole step


def test_reference_generation_length_counts_the_start_token(monkeypatch):
    from types import SimpleNamespace

    from dss.student import evaluate as E
    from dss.student.config import TrainConfig
    asked = []
    monkeypatch.setattr(E, "generate", lambda *a, **k: asked.append(a[6]) or ["yes"] * len(a[2]))
    task = SimpleNamespace(metric="accuracy", is_correct=lambda p, y: p == y)
    tok = lambda text_target, **k: {"input_ids": [[0]] * len(text_target)}  # noqa: E731
    tok.batch_decode = lambda ids, **k: ["yes"] * len(ids)
    examples = [SimpleNamespace(input="x", label="yes")]
    model = SimpleNamespace(config=SimpleNamespace(is_encoder_decoder=True))
    acc = SimpleNamespace(unwrap_model=lambda m: m)
    E.evaluate(model, tok, task, examples, TrainConfig(eval_max_new_tokens=64), acc)
    E.evaluate(model, tok, task, examples, TrainConfig(eval_max_new_tokens=64, protocol="reference"), acc)
    assert asked == [64, 63]


def test_the_offline_paper_config_is_the_paper_protocol():
    from dss.bench import grid
    cfg = grid.load_bench_config(ROOT / "configs" / "bench" / "paper-offline.yaml", {})
    paper = grid.load_bench_config(ROOT / "configs" / "bench" / "paper.yaml", {})
    assert cfg.train["protocol"] == paper.train["protocol"] == "reference"
    assert cfg.models == ["tiny"] and "anli1" not in cfg.tasks and cfg.device == "any"
