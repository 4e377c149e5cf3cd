"""The training methods, as one table that every stage asks instead of comparing names.

    m = METHODS[cfg.method]
    m.label_source(cfg.labels)   # "gold" | "teacher": where the label target comes from
    m.rationale_task             # a second task [rationale] x -> r, weighted 1 - alpha in the loss
    m.rationale_in_target        # single: the label target is "r So the answer is y"
    m.prefix_inputs              # inputs carry the task prefix (the label-only eval input too)
    m.shared_encoder             # the prefix starts the decoder instead, x encoded once for both tasks
"""
from __future__ import annotations

from dataclasses import dataclass

SINGLE_SEP = " So the answer is "  # `single`: target = rationale + SINGLE_SEP + label (the teacher's own format)


@dataclass(frozen=True)
class Method:
    name: str
    help: str
    fixed_source: str | None = None    # a fixed label source, or None: the run's `labels` setting decides
    rationale_task: bool = False
    rationale_in_target: bool = False
    prefix_inputs: bool = False
    shared_encoder: bool = False       # the task prefix starts the decoder; x is encoded once (dss.student.shared)

    def label_source(self, labels: str) -> str:
        return self.fixed_source or labels

    def alpha(self, alpha: float) -> float:
        """The label task's weight in the loss: alpha with a rationale task, else all of it."""
        return alpha if self.rationale_task else 1.0

    @property
    def explains(self) -> bool:
        """Whether the student can write a rationale (dss predict --rationale)."""
        return self.rationale_task or self.rationale_in_target

    def eval_source(self, text: str, label_prefix: str) -> str:
        """The input of label-only generation."""
        return label_prefix + text if self.prefix_inputs else text

    def parse_prediction(self, text: str) -> str:
        """The label in a generated text (`single` generates the rationale first, then the label)."""
        if self.rationale_in_target:
            return text.rsplit(SINGLE_SEP.strip(), 1)[-1].strip().rstrip(".").strip()
        return text.strip()

    def split_rationale(self, text: str) -> str:
        """The rationale part of a `single` student's output."""
        return text.rsplit(SINGLE_SEP.strip(), 1)[0].strip()


METHODS = {m.name: m for m in (
    Method("standard", "x -> gold label", fixed_source="gold"),
    Method("distill", "x -> teacher label (standard distillation)", fixed_source="teacher"),
    Method("dss", "[label] x -> y and [rationale] x -> r, loss = alpha * label + (1 - alpha) * rationale",
           rationale_task=True, prefix_inputs=True),
    Method("single", "x -> 'r So the answer is y' (the paper's single-task ablation)", rationale_in_target=True),
    Method("dss-shared", "DSS with x encoded once and the task prefix at the decoder's start: x -> [label] y and "
           "x -> [rationale] r (changes the method; opt-in; one process or DDP)", rationale_task=True,
           shared_encoder=True),
)}
METHOD_NAMES = tuple(METHODS)
