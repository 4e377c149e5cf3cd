"""The task interface: what every benchmark, the demo and custom datasets provide.

A task turns raw rows into `Example`s (the student's input text, the gold label text, and, where a teacher
answered, the teacher's label and rationale), knows its metric, and parses teacher completions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from dss.core import metrics
from dss.core.errors import DataError

SPLITS = ("train", "valid", "test")


@dataclass
class Example:
    id: str                       # stable across runs: derived from the source row, never from order of loading
    input: str                    # the student's input text x
    label: str                    # the gold label text y
    llm_label: str | None = None  # teacher's parsed label (None: no teacher output, or it did not parse)
    llm_rationale: str | None = None
    # other rationales of the teacher's samples that reach the same (voted) label, in sample order, distinct
    # from llm_rationale and each other: `rationales_per_example` > 1 trains on them too
    more_rationales: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # raw fields prompts need (premise, choices, ...)

    def to_dict(self) -> dict:
        return {"id": self.id, "input": self.input, "label": self.label,
                "llm_label": self.llm_label, "llm_rationale": self.llm_rationale}


@dataclass
class Parsed:
    label: str | None      # None when the completion has no recognisable answer
    rationale: str | None  # None as well when no answer was found: a repetition loop or an echoed next
                           # question is not an explanation, and must never be trained on as one


class Task:
    """Base class; a benchmark is one small subclass registered by name in `dss.tasks`."""

    name: str = ""
    description: str = ""
    metric: str = "accuracy"              # "accuracy" (normalized exact match) or "equation" (SVAMP)
    label_set: tuple[str, ...] | None = None  # closed label set, None when answers are open text
    source: str = ""                       # where the data comes from, for `dss tasks`
    teacher: str = "teacher (PaLM 540B)"   # who wrote llm_label/llm_rationale, as tables and plots name it

    def splits(self) -> tuple[str, ...]:
        return SPLITS

    def chance(self) -> float | None:
        """Accuracy of a uniform guess over the label set (None when the label space is open)."""
        return 1.0 / len(self.label_set) if self.label_set else None

    def load(self, split: str, data_dir=None) -> list[Example]:
        raise NotImplementedError

    def reference_input(self, example: Example, eos_text: str) -> str:
        """The student's input as the reference code (google-research/distilling-step-by-step) builds it;
        most tasks build it as dss does. `eos_text` is the student tokenizer's EOS token text ("</s>" for T5)."""
        return example.input

    def candidates(self, example: Example) -> list[str] | None:
        """The answers an example's label comes from (closed-set scoring), or None for open text."""
        return list(self.label_set) if self.label_set else None

    def reference_parser(self):
        """The reference code's reading of this task's teacher completions, (rationale, label) from a text
        (dss.tasks.reference), or None for a task the reference code never had."""
        from dss.tasks.reference import PARSERS
        return PARSERS.get(self.name)

    def reference_train(self, data_dir=None) -> tuple[list[Example], bool]:
        """What the reference code subsamples (its whole train file), and whether it then carves valid out of
        the subset (tasks without a valid split of their own)."""
        return self.load("train", data_dir), False

    def rationale_origin(self, data_dir=None) -> str:
        """Where this task's train rationales come from, and why there may be none (for error messages)."""
        return f"task {self.name!r} comes with no teacher rationales; pass rationales=FILE from `dss extract`"

    def teacher_completions(self, split: str, data_dir=None) -> dict[str, str]:
        """{example id: raw completion} of the task's own teacher, in the format `parse_completion` reads (what a
        replay teacher answers with `--replay-from task`)."""
        raise DataError(f"task {self.name!r} has no teacher answers of its own: replay an earlier `dss extract` "
                        "output with --replay-from FILE")

    def parse_completion(self, text: str, example: Example | None = None) -> Parsed:
        """Split a teacher completion into label and rationale (tolerating the few-shot continuation)."""
        raise NotImplementedError

    def answer_key(self, text: str | None):
        """What two answers share exactly when they are the same answer (a correct prediction, one vote):
        the normalized text, or for equations the exact value; None for an answer that cannot be read."""
        if text is None:
            return None
        if self.metric == "equation":
            try:
                return metrics.safe_eval(text)
            except metrics.UnsafeExpression:
                return None
        return metrics.normalize(text)

    def is_correct(self, prediction: str | None, label: str) -> bool:
        key = self.answer_key(prediction)
        return key is not None and key == self.answer_key(label)

    def teacher_stats(self, examples: list) -> dict:
        """{"teacher_parsed", "teacher_unparsed", "teacher_accuracy"} over examples: accuracy of the teacher's
        parsed labels against gold, an unparsed answer counting as wrong; None without teacher outputs."""
        answered = [e for e in examples if "teacher" in e.meta or e.llm_label is not None]
        parsed = sum(e.llm_label is not None for e in examples)
        correct = sum(self.is_correct(e.llm_label, e.label) for e in examples)
        return {"teacher_parsed": parsed, "teacher_unparsed": len(answered) - parsed,
                "teacher_accuracy": round(correct / len(examples), 4) if answered else None}

    def accuracy(self, predictions, labels) -> float:
        scores = [self.is_correct(p, y) for p, y in zip(predictions, labels, strict=True)]
        return sum(scores) / len(scores) if scores else 0.0

    def check_split(self, split: str) -> None:
        if split not in self.splits():
            raise DataError(f"task {self.name!r} has no split {split!r}; it has {', '.join(self.splits())}")


def carve_split(n: int, test_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """Deterministic (train_idx, valid_idx) over n rows.

    Same indices as `datasets.Dataset.train_test_split(test_size=test_fraction, seed=seed)`, which the
    reference code used: CQA 9,741 -> 8,766 / 975, SVAMP 800 -> 720 / 80.
    """
    n_valid = math.ceil(test_fraction * n)
    perm = np.random.default_rng(seed).permutation(n)
    # train takes all the rest (HF computes floor((1 - f) * n), which float error can make one short)
    return [int(i) for i in perm[n_valid:]], [int(i) for i in perm[:n_valid]]


def attach_completions(examples: list[Example], completions: list[str] | None, task: Task,
                       where: str) -> list[Example]:
    """Fill llm_label / llm_rationale from completions aligned by index; unparsed ones stay None."""
    if completions is None:
        return examples
    if len(completions) != len(examples):
        raise DataError(f"{where}: {len(completions)} teacher completions for {len(examples)} rows; "
                        "they must be aligned by index")
    for ex, text in zip(examples, completions):
        p = task.parse_completion(text, ex)
        ex.llm_label, ex.llm_rationale = p.label, p.rationale
        # kept so unparsed answers can be counted and shown, never silently lost
        ex.meta["teacher"] = "parsed" if p.label is not None else "unparsed"
        if p.label is None:
            ex.meta["teacher_raw"] = text
    return examples


def warn_unseen_labels(task: Task, splits: dict[str, list[Example]], warn: Callable[[str], None]) -> None:
    """warn("warning: ...") once, naming how many valid/test examples have a gold label that no train example
    has, for a task with a closed label set (open answers, such as SVAMP's numbers, are new by nature): the
    student never learns such a label, and closed-set scoring (eval_mode=score) never answers one outside the
    task's label set (for a custom task, inferred from train)."""
    if not task.label_set or not splits.get("train"):
        return
    seen = {task.answer_key(e.label) for e in splits["train"]}
    counts, unseen = [], {}
    for split in ("valid", "test"):
        new = [e.label for e in splits.get(split) or [] if task.answer_key(e.label) not in seen]
        if new:
            counts.append(f"{len(new)} of {len(splits[split])} {split}")
            unseen.update(dict.fromkeys(new))
    if not counts:
        return
    shown = ", ".join(map(repr, list(unseen)[:5])) + (f" and {len(unseen) - 5} more" if len(unseen) > 5 else "")
    closed = {task.answer_key(label) for label in task.label_set}
    never = any(task.answer_key(label) not in closed for label in unseen)
    warn(f"warning: {' and '.join(counts)} examples have a label never seen in train ({shown}): the student "
         "never learns such a label" + (", and under eval_mode=score (which answers from the task's label set) "
                                        "these examples can never be answered" if never else ""))

