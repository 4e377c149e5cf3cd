"""The multitask loss in closed form, the LR schedule, nested subsets, rows, batching and collation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dss.student import batching as D
from dss.student.config import TrainConfig
from dss.student.kinds import seq2seq
from dss.student.loss import lr_factor, multitask_loss
from dss.student.methods import METHODS
from dss.tasks.base import Example


def _batch(rows=6, tgt=5, vocab=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, tgt, vocab, generator=g)
    labels = torch.randint(0, vocab, (rows, tgt), generator=g)
    labels[0, 3:] = labels[4, 1:] = -100  # padding
    is_rationale = torch.tensor([False, True, False, True, True, False])[:rows]
    return logits, labels, is_rationale


def _ce(logits, labels):  # the reference: Hugging Face's token-mean loss over one task's own batch
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def test_alpha_edges_reduce_to_the_single_task_losses():
    logits, labels, rat = _batch()
    label_only, rationale_only = _ce(logits[~rat], labels[~rat]), _ce(logits[rat], labels[rat])
    loss, ll, rl = multitask_loss(logits, labels, rat, alpha=1.0)
    assert loss.item() == ll.item() and ll.item() == pytest.approx(label_only.item(), abs=1e-6)
    loss, ll, rl = multitask_loss(logits, labels, rat, alpha=0.0)
    assert loss.item() == rl.item() and rl.item() == pytest.approx(rationale_only.item(), abs=1e-6)
    loss, _, _ = multitask_loss(logits, labels, rat, alpha=0.3)
    assert loss.item() == pytest.approx(0.3 * label_only.item() + 0.7 * rationale_only.item(), abs=1e-6)


def test_perfect_predictions_give_zero_and_tasks_do_not_leak():
    _, labels, rat = _batch()
    perfect = F.one_hot(labels.clamp(min=0), 11).float() * 1e4  # [rows, tgt, vocab]
    assert multitask_loss(perfect, labels, rat, 0.5)[0].item() == pytest.approx(0.0, abs=1e-6)
    logits, labels, rat = _batch()
    changed = logits.clone()
    changed[rat] += torch.randn_like(changed[rat])  # rationale rows change: the label loss must not
    assert multitask_loss(changed, labels, rat, 1.0)[0].item() == multitask_loss(logits, labels, rat, 1.0)[0].item()


def test_global_token_counts_make_split_batches_add_up():
    """Micro-batches (or processes) normalised by the step's total counts sum to the full-batch loss."""
    logits, labels, rat = _batch()
    full = multitask_loss(logits, labels, rat, 0.5)
    n_label = ((labels != -100) & ~rat[:, None]).sum()
    n_rat = ((labels != -100) & rat[:, None]).sum()
    parts = [multitask_loss(logits[s], labels[s], rat[s], 0.5, n_label, n_rat) for s in (slice(0, 3), slice(3, 6))]
    for i in range(3):
        assert (parts[0][i] + parts[1][i]).item() == pytest.approx(full[i].item(), abs=1e-6)


def test_a_task_without_rows_contributes_zero():
    logits, labels, _ = _batch()
    none = torch.zeros(6, dtype=torch.bool)
    loss, _, rl = multitask_loss(logits, labels, none, 1.0)
    assert rl.item() == 0.0 and loss.item() == pytest.approx(_ce(logits, labels).item(), abs=1e-6)


def test_lr_schedule_warms_up_then_decays_to_zero():
    f = [lr_factor(s, warmup_steps=4, max_steps=20) for s in range(21)]
    assert f[:4] == [0.2, 0.4, 0.6, 0.8] and f[4] == 1.0 and f[20] == 0.0
    assert f[4:] == sorted(f[4:], reverse=True)
    assert lr_factor(0, 0, 10) == 1.0


def test_nested_subset_is_nested_deterministic_and_ceil():
    xs = list(range(101))
    a, b = D.nested_subset(xs, 0.125, seed=3), D.nested_subset(xs, 0.25, seed=3)
    assert len(a) == math.ceil(0.125 * 101) and len(b) == math.ceil(0.25 * 101)
    assert set(a) <= set(b) and a == D.nested_subset(xs, 0.125, seed=3)
    assert a != D.nested_subset(xs, 0.125, seed=4) and D.nested_subset(xs, 1.0, 0) == xs


def _ex(i, llm_label="y", rationale="because"):
    return Example(id=str(i), input=f"x{i}", label=f"gold{i}", llm_label=llm_label, llm_rationale=rationale)


def test_rows_per_method_and_drop_counts():
    exs = [_ex(0), _ex(1, llm_label=None), _ex(2, rationale=None)]
    items, stats = D.training_items(exs, TrainConfig(method="distill"))
    assert [[(r.source, r.target) for r in it] for it in items] == [[("x0", "y")], [("x2", "y")]]
    assert stats["dropped_no_label"] == 1 and stats["train_examples"] == 2
    items, stats = D.training_items(exs, TrainConfig(method="dss"))
    assert [(r.source, r.target, r.task) for r in items[0]] == [("[label] x0", "gold0", 0),
                                                                 ("[rationale] x0", "because", 1)]
    # x1's rationale leads to no parsed teacher answer, x2 has none: both train the label task only
    assert [len(it) for it in items] == [2, 1, 1] and stats["missing_rationale"] == 2
    items, stats = D.training_items(exs, TrainConfig(method="single", labels="teacher"))
    assert items[0][0].target == "because So the answer is y" and stats["train_examples"] == 1
    assert METHODS["single"].parse_prediction("because So the answer is y.") == "y"
    items, _ = D.training_items(exs, TrainConfig(method="standard"))
    assert [it[0].target for it in items] == ["gold0", "gold1", "gold2"]


def test_length_grouped_sampler_is_deterministic_full_and_grouped():
    lengths = [int(x) for x in torch.randint(5, 200, (103,), generator=torch.Generator().manual_seed(0))]
    s = D.LengthGroupedBatchSampler(lengths, batch_size=4, batches_per_step=2, seed=1)
    batches = s.epoch_batches(0)
    assert len(batches) == len(s) == 12 * 2 and s.steps_per_epoch == 12 and all(len(b) == 4 for b in batches)
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == len(flat) and batches == s.epoch_batches(0)
    assert batches == D.LengthGroupedBatchSampler(lengths, 4, 2, seed=1).epoch_batches(0)  # (seed, epoch) only
    assert s.epoch_batches(1)[0] != batches[0] and s.epoch_batches(2)[0] != s.epoch_batches(1)[0]
    def pad(bs):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in bs)
    plain = D.LengthGroupedBatchSampler(lengths, 4, 2, seed=1, group_by_length=False)
    assert pad(batches) < pad(plain.epoch_batches(0)) / 3


def test_collate_pads_each_task_to_its_own_longest_row_and_counts_tokens():
    feats = [{"input_ids": [[5, 6, 1], [7, 1]], "labels": [[8, 1], [9, 9, 9, 1]], "task": [0, 1]},
             {"input_ids": [[5, 1]], "labels": [[3, 1]], "task": [0]}]
    b = seq2seq.collate(feats, pad_id=0)
    label, rationale = b["parts"]
    assert label["input_ids"].tolist() == [[5, 6, 1], [5, 1, 0]]
    assert label["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert label["labels"].tolist() == [[8, 1], [3, 1]] and label["is_rationale"].tolist() == [False, False]
    assert rationale["labels"].tolist() == [[9, 9, 9, 1]] and rationale["is_rationale"].tolist() == [True]
    assert b["n_label_tokens"].item() == 4 and b["n_rationale_tokens"].item() == 4
    (joint,) = seq2seq.collate(feats, pad_id=0, split_tasks=False)["parts"]
    assert joint["labels"].shape == (3, 4) and joint["labels"][0].tolist() == [8, 1, -100, -100]
