"""Several teacher rationales per example (rationales_per_example=k): which samples count, the rows they make,
the loss they enter, and a run and a sweep that use them."""
from __future__ import annotations

import json

import pytest
import torch

from dss.bench.grid import BenchConfig, grid, train_config
from dss.core.errors import ConfigError
from dss.student.batching import training_items
from dss.student.config import TrainConfig
from dss.student.kinds.seq2seq import collate
from dss.student.loss import multitask_loss
from dss.tasks import rationales
from dss.tasks.base import Example
from dss.teacher import store


def rec(i, k, status, label, why):
    return {"id": i, "sample": k, "status": status, "label": label, "rationale": why, "raw": "..."}


def test_the_other_rationales_that_reach_the_voted_label_are_kept(tmp_path):
    path = tmp_path / "r.jsonl"
    store.write_records(path, [rec("a", 0, "ok", "y", "r0"), rec("a", 1, "ok", "x", "against"),
                               rec("a", 2, "ok", "y", "r2"), rec("a", 3, "ok", "y", "r0"),   # a repeat of r0
                               rec("a", 4, "unparsed", None, None), rec("a", 5, "ok", "y", "r5"),
                               rec("b", 0, "ok", "z", "only")])
    exs = [Example("a", "in", "y"), Example("b", "in", "z")]
    counts = rationales.apply_rationales(exs, path)
    assert (exs[0].llm_label, exs[0].llm_rationale, exs[0].more_rationales) == ("y", "r0", ["r2", "r5"])
    assert (exs[1].llm_rationale, exs[1].more_rationales) == ("only", [])
    assert counts["more_rationales"] == 2
    assert rationales.vote(rationales.by_example(rationales.read_rationale_file(path))["a"]) == ("y", "r0")


def items_for(k, method="dss"):
    exs = [Example("a", "x1", "y", llm_label="y", llm_rationale="r0", more_rationales=["r1", "r2"]),
           Example("b", "x2", "n", llm_label="n", llm_rationale="s0"),
           Example("c", "x3", "n", llm_label=None, llm_rationale=None, more_rationales=[])]
    return training_items(exs, TrainConfig(task="demo", method=method, rationales_per_example=k))


@pytest.mark.parametrize("k,want", [(1, [2, 2, 1]), (2, [3, 2, 1]), (3, [4, 2, 1]), (9, [4, 2, 1])])
def test_each_rationale_is_its_own_row_and_the_label_row_is_not_repeated(k, want):
    items, stats = items_for(k)
    assert [len(rows) for rows in items] == want
    for rows in items:
        assert sum(r.task == 0 for r in rows) == 1  # one label row per example, whatever k
    assert [r.target for r in items[0][1:]] == ["r0", "r1", "r2"][:k]
    assert {r.source for r in items[0][1:]} == {"[rationale] x1"}
    assert stats.get("rationale_rows", 0) == (sum(want) - 3 if k > 1 else 0)
    std, _ = items_for(k, "standard")
    assert [len(rows) for rows in std] == [1, 1, 1]  # methods without a rationale task ignore k, like alpha


def test_the_rationale_loss_is_the_token_mean_over_all_rationale_rows():
    # 1 label row (2 tokens), 2 rationale rows (3 and 1 tokens): alpha still splits the loss between the tasks
    feats = [{"input_ids": [[5, 1], [6, 1], [6, 1]], "labels": [[3, 1], [4, 4, 1], [2]], "task": [0, 1, 1]}]
    batch = collate(feats, pad_id=0)
    logits = torch.randn(3, 3, 8)
    labels = torch.tensor([[3, 1, -100], [4, 4, 1], [2, -100, -100]])
    is_r = torch.tensor([False, True, True])
    loss, lab, rat = multitask_loss(logits, labels, is_r, 0.3)
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none",
                                           ignore_index=-100).view(3, 3)
    assert torch.allclose(rat, ce[1:].sum() / 4) and torch.allclose(lab, ce[0].sum() / 2)
    assert torch.allclose(loss, 0.3 * lab + 0.7 * rat)
    assert (int(batch["n_label_tokens"]), int(batch["n_rationale_tokens"])) == (2, 4)


def test_single_refuses_several_rationales():
    with pytest.raises(ConfigError, match="rationales_per_example"):
        TrainConfig(task="demo", method="single", rationales_per_example=2)


@pytest.mark.slow
def test_a_run_trains_on_several_rationales_and_says_how_many(tiny_cqa_dir, tmp_path):
    from dss.commands.cli import main
    from dss.tasks import get_task
    train = get_task("cqa").load("train", tiny_cqa_dir)
    recs = tmp_path / "rationales.jsonl"
    store.write_records(recs, [rec(ex.id, k, "ok", ex.label, f"reason {k} for {i}")
                               for i, ex in enumerate(train) for k in range(3)])
    run = tmp_path / "run"
    assert main(["train", "--task", "cqa", "--data-dir", str(tiny_cqa_dir), "--model", "tiny", "--d-model", "32",
                 "--d-ff", "64", "--heads", "2", "--layers", "1", "--vocab-size", "200", "--batch-size", "4",
                 "--no-tensorboard", "--rationales", str(recs), "--rationales-per-example", "3",
                 "--max-steps", "2", "--eval-steps", "2", "--max-eval-examples", "2", "--output-dir", str(run)]) == 0
    data = json.loads((run / "results.json").read_text())["data"]
    n = len(train)
    assert data["rationale_file"]["more_rationales"] == 2 * n and data["rationale_rows"] == 3 * n
    assert json.loads((run / "config.json").read_text())["config"]["rationales_per_example"] == 3


def test_a_sweep_compares_k_as_a_method_variant(tmp_path):
    cfg = BenchConfig(tasks=["demo"], methods=["standard", "dss", "dss:rationales_per_example=3"],
                      fractions=[0.5], seeds=[0])
    cells = grid(cfg)
    assert [c.method for c in cells] == ["standard", "dss", "dss:rationales_per_example=3"]
    tcfg = train_config(cfg, cells[2], tmp_path)
    assert (tcfg.method, tcfg.rationales_per_example) == ("dss", 3)
    assert train_config(cfg, cells[1], tmp_path).rationales_per_example == 1
    assert cells[2].run_dir(tmp_path).parent.name == "dss-rationales_per_example=3-gold"
    for bad, match in [("nope:alpha=1", "not one of"), ("dss:alpha", "key=value"), ("dss:seed=3", "set by the grid")]:
        with pytest.raises(ConfigError, match=match):
            BenchConfig(tasks=["demo"], methods=[bad])
