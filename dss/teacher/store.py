"""Rationale records on disk: one JSON object a line, one line per (example, sample).

    {"id", "task", "split", "teacher", "prompt_sha", "sample", "status": "ok"|"unparsed"|"error",
     "label", "rationale", "raw", "usage", "latency_s", ...}

`apply_rationales(examples, path)` is what the trainer calls (`dss train --rationales F`); `RecordFile` is
what the extractor writes through.

Crash safety: each record is one `write()` of a whole line, flushed as it completes; a run holds a lock
file so two runs never write the same file; on open a torn last line (a kill mid-write) is cut off.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

try:
    import fcntl  # POSIX: one writer per output file
except ImportError:  # pragma: no cover - Windows: no lock, do not run two extractions on one file
    fcntl = None

from dss import metrics
from dss.tasks.base import DataError, Example

STATUSES = ("ok", "unparsed", "error")
REQUIRED = ("id", "sample", "status")


def scan(path) -> tuple[list[dict], int, int]:
    """(records, byte length of the complete prefix, number of bad lines).

    A last line without its newline is a write that a kill interrupted: it is not a record, and the
    extractor truncates the file to `good_len` before appending. A complete line that is not a record is an
    error naming the line (the file was edited or is not a rationale file).
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


def read_records(path) -> list[dict]:
    """All complete records of a rationale file (a torn last line is skipped)."""
    if not Path(path).is_file():
        raise DataError(f"{path}: no such rationale file")
    return scan(path)[0]


def latest(records: list[dict]) -> dict[tuple[str, int], dict]:
    """(id, sample) -> its last record (a rerun's record supersedes an earlier one)."""
    return {(str(r["id"]), int(r["sample"])): r for r in records}


def _vote_key(label: str, metric: str):
    if metric == "equation":
        try:
            return metrics.safe_eval(label)  # exact: equal values vote together
        except metrics.UnsafeExpression:
            pass
    return metrics.normalize(label)


def vote(samples: list[dict], metric: str = "accuracy") -> tuple[str | None, str | None]:
    """Majority label over a sample set's parsed labels (self-consistency) and the rationale of the first
    sample that gave it; ties go to the label seen first. (None, None) when no sample parsed."""
    ok = [r for r in sorted(samples, key=lambda r: int(r["sample"])) if r["status"] == "ok" and r.get("label")]
    if not ok:
        return None, None
    counts = Counter(_vote_key(r["label"], metric) for r in ok)
    best = max(counts.values())
    winner = next(r for r in ok if counts[_vote_key(r["label"], metric)] == best)
    return winner["label"], winner.get("rationale")


def by_example(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for (rid, _), rec in latest(records).items():
        out.setdefault(rid, []).append(rec)
    return out


def apply_rationales(examples: list[Example], path, filter: str | None = None, metric: str | None = None,
                     task=None) -> dict:
    """Overwrite each example's llm_label / llm_rationale from the file's records, matched by id.

    Several samples of an example are reduced by majority vote (labels compared as the task scores them);
    an example whose records are all unparsed
    or errors gets None, as does one with no record (counted as missing). filter="consistent" also sets
    None where the teacher's label differs from the gold label. Returns counts
    {"matched", "missing", "unparsed"} (+ "inconsistent" with that filter).
    """
    if filter not in (None, "none", "consistent"):
        raise DataError(f"filter {filter!r}: expected 'consistent' or none")
    records = read_records(path)
    if metric is None:  # vote as the records' task scores (SVAMP equations by value)
        metric = task.metric if task is not None else _metric_of(records)
    groups = by_example(records)
    counts = {"matched": 0, "missing": 0, "unparsed": 0}
    if filter == "consistent":
        counts["inconsistent"] = 0
    for ex in examples:
        recs = groups.get(str(ex.id))
        label, rationale = vote(recs, metric) if recs else (None, None)
        if not recs:
            counts["missing"] += 1
        elif label is None:
            counts["unparsed"] += 1
        elif filter == "consistent" and not _agrees(label, ex.label, metric, task):
            counts["inconsistent"] += 1
            label, rationale = None, None
        else:
            counts["matched"] += 1
        ex.llm_label, ex.llm_rationale = label, rationale
    return counts


def _metric_of(records: list[dict]) -> str:
    from dss.tasks import get_task
    name = next((r.get("task") for r in records if r.get("task")), None)
    try:
        return get_task(name).metric if name and name != "custom" else "accuracy"
    except (DataError, TypeError):
        return "accuracy"


def _agrees(pred: str, gold: str, metric: str, task) -> bool:
    if task is not None:
        return task.is_correct(pred, gold)
    if metric == "equation":
        return metrics.equation_match(pred, gold)
    return metrics.normalize(pred) == metrics.normalize(gold)


def write_records(path, records: list[dict]) -> None:
    """Write a whole rationale file atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class RecordFile:
    """The append-only output: locked for the run, repaired on open, one flushed line per record."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.path.with_name(self.path.name + ".lock"), "w")
        try:
            if fcntl is not None:
                fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise DataError(f"{self.path}: another `dss extract` is writing this file") from None
        self.records, good_len, self.torn = scan(self.path)
        if self.torn:  # a kill interrupted the last write: cut it off, it is redone
            with open(self.path, "r+b") as fh:
                fh.truncate(good_len)
        self._fh = None
        self._frozen = False

    def rewrite(self, keep: list[dict]) -> None:
        write_records(self.path, keep)
        self.records = keep

    def freeze(self) -> None:
        """Accept no more records (threads abandoned at the end of a run must not write)."""
        self._frozen = True

    def append(self, rec: dict) -> None:
        if self._frozen:
            return
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")  # one write of a whole line
        self._fh.flush()
        self.records.append(rec)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._lock_fh.close()
