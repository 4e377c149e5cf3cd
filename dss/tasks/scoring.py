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
