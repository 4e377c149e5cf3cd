"""`dss score`: score a JSONL of {"prediction": ..., "label": ...} with a task's metric.

    dss score --task svamp --predictions preds.jsonl --json
    dss score --task esnli --predictions ct2.jsonl --against torch.jsonl   # and how often two runtimes agree

--against OTHER: the share of rows whose answers are the same in both files (the task's answer, as accuracy
compares them; and identical text), rows paired by id.
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
    p.add_argument("--against", metavar="OTHER", help="another predictions file of the same rows: also print how "
                   "often the two agree")
    p.add_argument("--json", action="store_true", help='print {"accuracy": x, "n": N} (and "agreement")')
    p.set_defaults(func=run)


def run(args) -> int:
    from dss.tasks.scoring import agreement, score_file
    task = get_task(args.task)
    result = score_file(task, args.predictions)
    if args.against:
        result.update({k: v for k, v in agreement(task, args.predictions, args.against).items() if k != "n"})
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.task}: accuracy {result['accuracy']:.4f} ({result['accuracy'] * 100:.1f} %) "
              f"on {result['n']} rows")
        if args.against:
            print(f"agreement with {args.against}: {100 * result['agreement']:.2f} % of rows give the same answer "
                  f"({100 * result['same_text']:.2f} % the same text)")
    return 0
