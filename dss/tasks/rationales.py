"""Rationale files, as every stage reads them: one JSON record a line, one line per (example, sample).

    {"id", "task", "split", "teacher", "prompt_sha", "sample", "status": "ok"|"unparsed"|"truncated"|"error"
     |"skipped", "label", "rationale", "raw", "usage", "latency_s", ...}

"truncated" is an answer the teacher's token limit cut off: whatever its text parses to, it has no label.
"skipped" is a sample early stopping did not need (`dss extract --early-stop`): no answer, and it carries
"samples_taken", how many samples its example took. Votes and training read only "ok" records, so a skipped
sample counts for nothing.

`dss extract` writes them (dss.teacher.store); `dss train --rationales F` attaches them to examples here
(`apply_rationales`), the same way a task attaches the release's completions. A last line without its newline
is a write that a kill interrupted: it is not a record.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from dss.core.errors import DataError
from dss.tasks.base import Example, Task

STATUSES = ("ok", "unparsed", "truncated", "error", "skipped")
REQUIRED = ("id", "sample", "status")


def scan(path) -> tuple[list[dict], int, int]:
    """(records, byte length of the complete prefix, number of torn lines).

    A complete line that is not a record is an error naming the line (the file was edited or is not a
    rationale file); a torn last line is skipped (the writer truncates the file to `good_len`).
    """
    path = Path(path)
    data = path.read_bytes() if path.exists() else b""
    records, pos, torn = [], 0, 0
    for lineno, line in enumerate(data.splitlines(keepends=True), 1):
        if not line.endswith(b"\n"):
            torn += 1  # only ever the last line
            break
        pos += len(line)
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{path}:{lineno}: not a JSON record ({e})") from None
        if not isinstance(rec, dict) or any(k not in rec for k in REQUIRED) or rec["status"] not in STATUSES:
            raise DataError(f"{path}:{lineno}: not a rationale record (needs {', '.join(REQUIRED)}; "
                            f"status one of {', '.join(STATUSES)})")
        records.append(rec)
    return records, pos, torn


def read_rationale_file(path) -> list[dict]:
    """All complete records of a rationale file (a torn last line is skipped)."""
    if not Path(path).is_file():
        raise DataError(f"{path}: no such rationale file")
    return scan(path)[0]


def latest(records: list[dict]) -> dict[tuple[str, int], dict]:
    """(id, sample) -> its last record (a rerun's record supersedes an earlier one)."""
    return {(str(r["id"]), int(r["sample"])): r for r in records}


def by_example(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for (rid, _), rec in latest(records).items():
        out.setdefault(rid, []).append(rec)
    return out


def vote(samples: list[dict], task: Task | None = None) -> tuple[str | None, str | None]:
    """Majority label over a sample set's parsed labels (self-consistency), compared as the task scores them
    (SVAMP equations by value), and the rationale of the first sample that gave it; ties go to the label seen
    first. Labels the task cannot read (an equation that does not evaluate) agree with no other label and lose
    to any readable one. (None, None) when no sample parsed."""
    label, rationales = vote_all(samples, task)
    return label, rationales[0] if rationales else None


def vote_all(samples: list[dict], task: Task | None = None) -> tuple[str | None, list[str]]:
    """The voted label and the distinct rationales of every sample that gave it, in sample order."""
    key = task.answer_key if task is not None else Task().answer_key
    ok = [r for r in sorted(samples, key=lambda r: int(r["sample"])) if r["status"] == "ok" and r.get("label")]
    if not ok:
        return None, []
    keyed = [(r, key(r["label"])) for r in ok]
    readable = [(r, k) for r, k in keyed if k is not None]
    if not readable:  # no two unreadable labels are the same answer: the first stands alone
        return ok[0]["label"], [ok[0]["rationale"]] if ok[0].get("rationale") else []
    counts = Counter(k for _, k in readable)
    best = max(counts.values())
    winner, won = next((r, k) for r, k in readable if counts[k] == best)
    agreeing = [r.get("rationale") for r, k in readable if k == won]
    if not agreeing[0]:
        return winner["label"], []  # the winner's own (empty) rationale stays what `vote` reports
    return winner["label"], list(dict.fromkeys(x for x in agreeing if x))


def apply_rationales(examples: list[Example], path, task: Task | None = None, filter: str | None = None) -> dict:
    """Overwrite each example's llm_label / llm_rationale from the file's records, matched by id.

    Several samples of an example are reduced by `vote_all` (the other rationales that reach the voted label
    go to ex.more_rationales, counted as "more_rationales"); an example without an ok record gets None: counted
    as "truncated" when an answer of it was cut off by the token limit, else as "unparsed" (all unparsed or
    errors), or as "missing" when it has no record. filter="consistent" also sets None where the teacher's label
    differs from the gold label. `task` (default: the records' own) decides how labels compare.
    Returns counts {"matched", "missing", "unparsed", "truncated", "more_rationales"} (+ "inconsistent" with
    that filter).
    """
    if filter not in (None, "none", "consistent"):
        raise DataError(f"filter {filter!r}: expected 'consistent' or none")
    records = read_rationale_file(path)
    task = task or _task_of(records)
    groups = by_example(records)
    counts = {"matched": 0, "missing": 0, "unparsed": 0, "truncated": 0, "more_rationales": 0}
    if filter == "consistent":
        counts["inconsistent"] = 0
    for ex in examples:
        recs = groups.get(str(ex.id))
        label, rationales = vote_all(recs, task) if recs else (None, [])
        rationale, more = (rationales[0], rationales[1:]) if rationales else (None, [])
        if not recs:
            counts["missing"] += 1
        elif label is None:
            counts["truncated" if any(r["status"] == "truncated" for r in recs) else "unparsed"] += 1
        elif filter == "consistent" and not task.is_correct(label, ex.label):
            counts["inconsistent"] += 1
            label, rationale, more = None, None, []
        else:
            counts["matched"] += 1
            counts["more_rationales"] += len(more)
        ex.llm_label, ex.llm_rationale, ex.more_rationales = label, rationale, more
    return counts


def _task_of(records: list[dict]) -> Task:
    """The task the records name (custom files compare as plain text)."""
    from dss.tasks import get_task
    name = next((r.get("task") for r in records if r.get("task")), None)
    try:
        return get_task(name) if name and name != "custom" else Task()
    except (DataError, TypeError):
        return Task()
