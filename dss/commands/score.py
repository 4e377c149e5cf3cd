"""`dss score`: score a JSONL of {"prediction": ..., "label": ...} with a task's metric.

    dss score --task svamp --predictions preds.jsonl --json
"""
from __future__ import annotations

import argparse
import json

from dss.core.errors import DataError
from dss.core.io import read_jsonl_numbered
from dss.tasks import get_task, task_names


def register(sub) -> None:
    p = sub.add_parser("score", help="score predictions with a task's metric", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help=f"task whose metric to use: {', '.join(task_names())}")
    p.add_argument("--predictions", required=True, help="JSONL with fields prediction and label")
    p.add_argument("--json", action="store_true", help='print {"accuracy": x, "n": N}')
    p.set_defaults(func=run)


def score_file(task_name: str, path: str) -> dict:
    task = get_task(task_name)
    preds, labels = [], []
    for lineno, row in read_jsonl_numbered(path):
        for field in ("prediction", "label"):
            if field not in row:
                raise DataError(f"{path}:{lineno}: field {field!r} is missing")
        if row["label"] is None or not isinstance(row["label"], (str, int, float)):
            raise DataError(f"{path}:{lineno}: field 'label' must be text")
        # a null or non-text prediction is a wrong answer, not an error
        pred = row["prediction"] if isinstance(row["prediction"], (str, int, float)) else None
        preds.append(None if pred is None else str(pred))
        labels.append(str(row["label"]))
    if not labels:
        raise DataError(f"{path}: no rows to score")
    return {"accuracy": task.accuracy(preds, labels), "n": len(labels)}


def run(args) -> int:
    result = score_file(args.task, args.predictions)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.task}: accuracy {result['accuracy']:.4f} ({result['accuracy'] * 100:.1f} %) on {result['n']} rows")
    return 0
