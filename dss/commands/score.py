"""`dss score`: score a JSONL of {"prediction": ..., "label": ...} with a task's metric.

    dss score --task svamp --predictions preds.jsonl --json
"""
from __future__ import annotations

import argparse
import json

from dss.tasks import get_task, task_names


def register(sub) -> None:
    p = sub.add_parser("score", help="score predictions with a task's metric", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help=f"task whose metric to use: {', '.join(task_names())}")
    p.add_argument("--predictions", required=True, help="JSONL with fields prediction and label")
    p.add_argument("--json", action="store_true", help='print {"accuracy": x, "n": N}')
    p.set_defaults(func=run)


def run(args) -> int:
    from dss.tasks.scoring import score_file
    result = score_file(get_task(args.task), args.predictions)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.task}: accuracy {result['accuracy']:.4f} ({result['accuracy'] * 100:.1f} %) "
              f"on {result['n']} rows")
    return 0
