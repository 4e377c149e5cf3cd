"""The answer format of the generic chain-of-thought template (custom and demo tasks)."""
from __future__ import annotations

import re

from dss.tasks.base import Parsed

# "<rationale> So the answer is <label>.\n\n..."  (the same closing words as the ANLI/CQA prompts)
_ANSWER = re.compile(r"^(?P<r>.*?)\s*So the answer is:?\s*(?P<l>[^\n]*)", re.S | re.I)


def parse_generic(text: str) -> Parsed:
    body = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]  # drop any few-shot continuation
    m = _ANSWER.search(body)
    if not m:
        return Parsed(None, None)  # no answer found: the text is not a rationale
    label = m.group("l").strip()
    label = label[:-1].rstrip() if label.endswith(".") else label
    return Parsed(label or None, m.group("r").strip() or None)
