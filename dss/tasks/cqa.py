"""CommonsenseQA (via cos_e v1.11): a question with five answer choices; the label is the answer text."""
from __future__ import annotations

import re

from dss.tasks.base import Example, Parsed
from dss.tasks.release import ReleaseTask

LETTERS = "abcde"
# "<rationale> So the answer is (<letter>) <choice text>.\n\nQ: ..."
_ANSWER = re.compile(r"^(?P<r>.*?)\s*So the answer is\s*(?:\((?P<letter>[a-e])\))?\s*(?P<text>[^\n]*)", re.S | re.I)


def cqa_input(question: str, choices: list[str]) -> str:
    lines = [question.strip(), "Answer Choices:"]
    lines += [f"({LETTERS[i]}) {c}" for i, c in enumerate(choices)]
    return "\n".join(lines)


class CQA(ReleaseTask):
    name = "cqa"
    description = "CommonsenseQA: pick one of five answers; the label is the answer's text"
    metric = "accuracy"
    label_set = None  # open text (the choice set differs per question); chance is 1/5
    source = "release folder cqa/ (train, test = cos_e validation); hub `cos_e` v1.11; valid carved from train"
    hub = {"train": ("cos_e", "v1.11", "train"), "test": ("cos_e", "v1.11", "validation")}
    carve_valid = True

    def chance(self) -> float:
        return 0.2

    def reference_input(self, example: Example, eos_text: str) -> str:
        # data_utils.py CQADatasetLoader: the question as the dataset has it (dss strips it), then the choices
        choices = example.meta["choices"]
        return example.meta["question"] + "\nAnswer Choices:\n" + "\n".join(
            f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))

    def candidates(self, example: Example) -> list[str]:
        return list(example.meta["choices"])  # this question's five choices

    def row_to_example(self, row: dict, split: str, index: int) -> Example:
        choices, question, answer = row["choices"], row["question"], row["answer"]
        if not isinstance(question, str) or not question.strip():
            raise ValueError("field 'question': expected a non-empty string")
        if not isinstance(choices, list) or len(choices) != 5 or not all(isinstance(c, str) for c in choices):
            raise ValueError(f"field 'choices': expected a list of 5 strings, got {choices!r}")
        if not isinstance(answer, str) or answer not in choices:
            raise ValueError(f"field 'answer': {answer!r} is not one of the choices")
        return Example(id=str(row.get("id") or f"cqa-{split}-{index}"), input=cqa_input(question, choices),
                       label=answer, meta={"question": question, "choices": choices})

    def parse_completion(self, text: str, example: Example | None = None) -> Parsed:
        body = text.split("\n\nQ:")[0]  # drop the few-shot continuation
        m = _ANSWER.search(body)
        if not m:
            return Parsed(None, None)  # no answer found: the text is not a rationale
        rationale = m.group("r").strip() or None
        answer = m.group("text").strip().rstrip(".").strip()
        if not answer and m.group("letter") and example and len(example.meta.get("choices", [])) == 5:
            # only a letter was written: its choice is the answer
            return Parsed(example.meta["choices"][LETTERS.index(m.group("letter").lower())], rationale)
        # the label is the text the teacher wrote after the letter, as in the reference code
        return Parsed(answer or None, rationale)
