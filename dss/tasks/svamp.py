"""SVAMP: arithmetic word problems; the label is an equation such as `( 84.0 / 2.0 )`, scored by value."""
from __future__ import annotations

import re

from dss.tasks.base import Example, Parsed
from dss.tasks.release import ReleaseTask

# "<rationale> The answer is (<expression>).\n\nQ: ..."
_ANSWER = re.compile(r"^(?P<r>.*?)\s*The answer is\s*(?P<e>[^\n]*)", re.S)


def answer_expression(text: str) -> str:
    """The expression after 'The answer is', without the final period.

    The prompt's format is '(<expression>).', but PaLM sometimes wrote '(12 - 2) - 7.': read whole, that is
    the teacher's answer (3), so the whole line is kept rather than only its first parenthesized group.
    """
    e = text.strip()
    return e[:-1].rstrip() if e.endswith(".") else e


class SVAMP(ReleaseTask):
    name = "svamp"
    description = "SVAMP: write the equation that answers an arithmetic word problem (scored by its value)"
    metric = "equation"
    label_set = None
    source = "release folder svamp/ (train 800, test 200); valid carved from train (no hub copy)"
    carve_valid = True

    def chance(self) -> None:
        return None

    def row_to_example(self, row: dict, split: str, index: int) -> Example:
        if "input" in row:  # release layout: body and question already joined
            text = row["input"]
        else:               # SVAMP.json layout
            text = f"{row['Body'].strip()}\n{row['Question'].strip()}"
        label = row.get("label", row.get("Equation"))
        if not isinstance(text, str) or not text.strip():
            raise ValueError("field 'input': expected a non-empty string")
        if not isinstance(label, str) or not label.strip():
            raise ValueError("field 'label': expected an equation string")
        return Example(id=str(row.get("ID") or f"svamp-{split}-{index}"), input=text, label=label.strip())

    def parse_completion(self, text: str, example: Example | None = None) -> Parsed:
        body = text.split("\n\nQ:")[0]
        m = _ANSWER.search(body)
        if not m:
            return Parsed(None, None)  # no answer found: the text is not a rationale
        return Parsed(answer_expression(m.group("e")) or None, m.group("r").strip() or None)
