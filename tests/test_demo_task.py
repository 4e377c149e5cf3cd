"""The embedded demo task: deterministic, disjoint, parseable, balanced, and built so rationales carry evidence."""
from __future__ import annotations

import re

import pytest

from dss.tasks import get_task
from dss.tasks.base import SPLITS
from dss.tasks.demo import KIND_OF, KINDS, LABELS, SIZES, generate

_FACT = re.compile(r"(\w+) has an? (\w+) \.")


@pytest.fixture(scope="module")
def demo():
    task = get_task("demo")
    return task, {s: task.load(s) for s in SPLITS}


def test_sizes_and_metadata(demo):
    task, data = demo
    assert {s: len(v) for s, v in data.items()} == SIZES
    assert task.name == "demo" and task.metric == "accuracy" and task.label_set == LABELS
    assert task.chance() == 0.5 and task.description and task.source


def test_deterministic_per_seed_and_seed_matters():
    a, b = generate(0), generate(0)
    assert [e.to_dict() for e in a["train"]] == [e.to_dict() for e in b["train"]]
    c = generate(1)
    assert [e.input for e in c["test"]] != [e.input for e in a["test"]]
    # a fresh task object yields the same rows (nothing depends on load order or call count)
    t1, t2 = get_task("demo"), get_task("demo")
    t2.load("test")
    assert [e.to_dict() for e in t1.load("train")] == [e.to_dict() for e in t2.load("train")]


def test_ids_stable_unique_and_split_named(demo):
    _, data = demo
    ids = [e.id for s in SPLITS for e in data[s]]
    assert len(ids) == len(set(ids))
    assert data["train"][0].id == "demo-train-0000" and data["test"][-1].id == f"demo-test-{SIZES['test'] - 1:04d}"
    assert all(e.id.startswith(f"demo-{s}-") for s in SPLITS for e in data[s])


def test_splits_disjoint(demo):
    _, data = demo
    inputs = {s: {e.input for e in data[s]} for s in SPLITS}
    assert all(len(inputs[s]) == len(data[s]) for s in SPLITS)   # no duplicate inputs inside a split
    assert not inputs["test"] & inputs["train"]
    assert not inputs["valid"] & inputs["train"]
    assert not inputs["valid"] & inputs["test"]


def test_every_rationale_parses_to_the_label(demo):
    task, data = demo
    for s in SPLITS:
        for e in data[s]:
            p = task.parse_completion(e.llm_rationale)
            assert p.label == e.label == e.llm_label, e
            assert p.rationale and "So the answer" not in p.rationale
            assert task.is_correct(p.label, e.label)


def test_labels_balanced(demo):
    _, data = demo
    for s in SPLITS:
        share = sum(e.label == "yes" for e in data[s]) / len(data[s])
        assert 0.4 < share < 0.6, (s, share)


def test_rationale_states_the_deciding_facts_and_the_step(demo):
    """What makes the design work: the label depends on the hidden kind of the two things in the input; the
    rationale names the kinds of exactly those things, and the kinds never appear in the input."""
    _, data = demo
    for e in data["train"] + data["test"]:
        facts = _FACT.findall(e.input)
        assert len(facts) == 2
        things = [t for _, t in facts]
        kinds = [KIND_OF[t] for t in things]
        assert e.label == ("yes" if kinds[0] == kinds[1] else "no")          # label decided by the two facts
        assert not set(KINDS) & set(e.input.split())                        # the step is not in the input
        # the rationale states the hidden step: both kinds, in a fixed order (so its first word depends on the
        # set of kinds, as the label does), then the answer
        m = re.fullmatch(r"(\w+) and (\w+) \. So the answer is (yes|no) \.", e.llm_rationale)
        assert m, e
        assert [m.group(1), m.group(2)] == sorted(kinds, key=list(KINDS).index) and m.group(3) == e.label


def test_label_alone_cannot_be_read_off_one_fact(demo):
    """Every thing occurs with both answers in train, so no single word decides the label."""
    _, data = demo
    seen: dict[str, set[str]] = {}
    for e in data["train"]:
        for _, t in _FACT.findall(e.input):
            seen.setdefault(t, set()).add(e.label)
    assert set(seen) == set(KIND_OF) and all(v == {"yes", "no"} for v in seen.values())


def test_vocabulary_small_and_inputs_short(demo):
    _, data = demo
    words = {w for s in SPLITS for e in data[s] for w in (e.input + " " + e.llm_rationale).split()}
    assert len(words) < 80
    assert max(len(e.input.split()) for e in data["train"]) <= 16


def test_imperfect_teacher_at_stated_rate():
    task = get_task("demo", teacher_error=0.2)
    rows = task.load("train")
    wrong = [e for e in rows if e.llm_label != e.label]
    assert 0.15 < len(wrong) / len(rows) < 0.25
    assert [e.input for e in rows] == [e.input for e in get_task("demo").load("train")]
    for e in wrong:
        assert task.parse_completion(e.llm_rationale).label == e.llm_label
    with pytest.raises(ValueError):
        get_task("demo", teacher_error=1.5)
