"""Scoring a file of predictions with a task's metric (`dss score`)."""
from __future__ import annotations

from dss.core.errors import DataError
from dss.core.io import read_jsonl_numbered
from dss.tasks.base import Task


def score_file(task: Task, path) -> dict:
    """{"accuracy", "n"} of JSON lines {"prediction", "label"}; a null or non-text prediction is a wrong
    answer, a missing or non-text label an error naming the line."""
    preds, labels = [], []
    for lineno, row in read_jsonl_numbered(path):
        for field in ("prediction", "label"):
            if field not in row:
                raise DataError(f"{path}:{lineno}: field {field!r} is missing")
        if row["label"] is None or not isinstance(row["label"], (str, int, float)):
            raise DataError(f"{path}:{lineno}: field 'label' must be text")
        pred = row["prediction"] if isinstance(row["prediction"], (str, int, float)) else None
        preds.append(None if pred is None else str(pred))
        labels.append(str(row["label"]))
    if not labels:
        raise DataError(f"{path}: no rows to score")
    return {"accuracy": task.accuracy(preds, labels), "n": len(labels)}


def agreement(task: Task, path, other) -> dict:
    """{"agreement", "same_text", "n"}: how often two predictions files of the same rows give the same answer
    (the task's answer key, as accuracy compares; `same_text`: identical text). Rows pair by `id` when every
    row of both has one, else by line; a row missing from either file is an error naming it."""
    rows = {}
    for name in (path, other):
        rows[name] = [(lineno, row) for lineno, row in read_jsonl_numbered(name)]
        for lineno, row in rows[name]:
            if "prediction" not in row:
                raise DataError(f"{name}:{lineno}: field 'prediction' is missing")
    a, b = rows[path], rows[other]
    if all("id" in r for _, r in a + b):
        ids_b = {str(r["id"]): r for _, r in b}
        for lineno, r in a:
            if str(r["id"]) not in ids_b:
                raise DataError(f"{path}:{lineno}: id {r['id']!r} has no row in {other}")
        if len(ids_b) != len(a):
            raise DataError(f"{other} has {len(ids_b)} rows, {path} {len(a)}: not the same rows")
        pairs = [(r, ids_b[str(r["id"])]) for _, r in a]
    elif len(a) != len(b):
        raise DataError(f"{path} has {len(a)} rows and {other} {len(b)}, without ids to pair them by")
    else:
        pairs = [(r, s) for (_, r), (_, s) in zip(a, b)]
    if not pairs:
        raise DataError(f"{path}: no rows to compare")
    text = [(str(r["prediction"]), str(s["prediction"])) for r, s in pairs]
    same_key = [task.answer_key(x) == task.answer_key(y) and (task.answer_key(x) is not None or x == y)
                for x, y in text]
    return {"agreement": sum(same_key) / len(pairs), "same_text": sum(x == y for x, y in text) / len(pairs),
            "n": len(pairs)}
