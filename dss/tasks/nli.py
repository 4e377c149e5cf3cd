"""Natural language inference (ANLI, e-SNLI): premise and hypothesis in, a relation out."""
from __future__ import annotations

import re

from dss.tasks.base import Example, Parsed
from dss.tasks.release import ReleaseTask

NLI_LABELS = ("entailment", "neutral", "contradiction")  # dataset ids 0, 1, 2


def nli_input(premise: str, hypothesis: str) -> str:
    return f"Premise: {premise.strip()}\nHypothesis: {hypothesis.strip()}"


def nli_label(row: dict, field: str = "label") -> str:
    value = row[field]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 3:
        raise ValueError(f"field {field!r}: expected 0, 1 or 2, got {value!r}")
    return NLI_LABELS[value]


def resolve_nli_word(word: str) -> str | None:
    """The NLI label a parsed word means: exact, or an unambiguous prefix of >= 3 letters (PaLM was
    sometimes cut mid-word: 'contrad'), else None."""
    w = word.strip().strip(".").lower()
    if w in NLI_LABELS:
        return w
    hits = [lab for lab in NLI_LABELS if len(w) >= 3 and lab.startswith(w)]
    return hits[0] if len(hits) == 1 else None


class NLITask(ReleaseTask):
    metric = "accuracy"
    label_set = NLI_LABELS

    def reference_input(self, example: Example, eos_text: str) -> str:
        # run.py: tokenizer.eos_token.join([premise, hypothesis]), the texts as the dataset has them
        return eos_text.join([example.meta["premise"], example.meta["hypothesis"]])

    def row_to_example(self, row: dict, split: str, index: int) -> Example:
        for f in ("premise", "hypothesis"):
            if not isinstance(row.get(f), str):
                raise ValueError(f"field {f!r}: expected a string, got {row.get(f)!r}")
        rid = row.get("uid") or f"{self.name}-{split}-{index}"
        return Example(id=str(rid), input=nli_input(row["premise"], row["hypothesis"]),
                       label=nli_label(row), meta={"premise": row["premise"], "hypothesis": row["hypothesis"]})


# anli1:  "<rationale> So the answer is <label>.\n\nPremise: ..."
_SO_ANSWER = re.compile(r"^(?P<r>.*?)\s*So the answer is\s*(?P<l>[A-Za-z]+)", re.S)
# esnli:  "<rationale>\nAnswer: <label>\n\nPremise: ..."
_ANSWER_LINE = re.compile(r"^(?P<r>.*?)\s*\n?Answer:\s*(?P<l>[A-Za-z]*)", re.S)


def parse_nli(text: str, pattern: re.Pattern) -> Parsed:
    body = text.split("\n\nPremise:")[0]  # drop the few-shot continuation
    m = pattern.search(body)
    if not m:
        return Parsed(None, None)  # no answer found: the text is not a rationale
    return Parsed(resolve_nli_word(m.group("l")), m.group("r").strip() or None)
