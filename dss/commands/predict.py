"""`dss predict`: labels (and rationales) from a trained student.

    dss predict --model runs/demo-dss/model --input "ben has a fig . cara has a plum . same kind ?"
    dss predict --model runs/demo-dss/model --input "ben has a fig . cara has a saw . same kind ?" --rationale
    dss predict --model runs/demo-dss/model --file inputs.jsonl --output demo_preds.jsonl
    dss predict --model runs/cqa-dss/model --task cqa --split test --limit 5
    dss predict --model runs/cqa-dss/model --task cqa --split test --limit 5 --score
    dss predict --model runs/demo-dss/model --input "ben has a fig . cara has a saw . same kind ?" --score
    dss predict --model runs/demo-dss/model --input "ben has a fig . cara has a saw . same kind ?" --runtime ct2

--runtime ct2 (or ct2-int8) answers with the student's CTranslate2 export (`dss export`; made beside the model
folder when missing or older than the student): the same inputs, decoding and scoring. --model may also
name an export folder itself.

--file holds JSON lines with an `input` field (the student's input text, as `dss data show` prints it) and
optionally `id` and `label`; with labels and a task, accuracy is printed too.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dss.core.errors import ConfigError


def register(subparsers) -> None:
    from dss.student.runtimes import RUNTIMES
    p = subparsers.add_parser("predict", help="labels (and rationales) from a trained student",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a run's model folder (runs/NAME/model) or any seq2seq checkpoint")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="one input text")
    src.add_argument("--file", help="JSONL with an `input` field per line (optional `id`, `label`)")
    src.add_argument("--split", choices=("train", "valid", "test"), help="a split of --task")
    p.add_argument("--task", help="task name: scores labels with its metric (default: the run's task)")
    p.add_argument("--data-dir", default=None, help="data folder for --split (default: $DSS_DATA_DIR)")
    p.add_argument("--rationale", action="store_true", help="also generate the rationale (dss/single students)")
    p.add_argument("--score", action="store_true", help="answer by closed-set scoring: the candidate the label "
                   "task scores highest, from --candidates, a row's `candidates`, or the task's answer set")
    p.add_argument("--candidates", help="comma-separated candidate answers for --score (default: the task's)")
    p.add_argument("--batch-size", type=int, default=32, help="inputs per generation batch (default: 32)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="tokens to generate (default: what "
                   "training used)")
    p.add_argument("--runtime", default=None, choices=tuple(RUNTIMES), help="torch, or the CTranslate2 export: "
                   "ct2 (float32) or ct2-int8 (default: torch, or ct2 when --model is an export folder)")
    p.add_argument("--limit", type=int, default=None, help="predict only the first N inputs")
    p.add_argument("--output", help="write JSONL here instead of stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from dss.student.predict import predict, read_inputs, scored, student_info
    from dss.tasks import get_task

    task_name = args.task or student_info(args.model).get("task")
    task = get_task(task_name) if task_name and task_name != "custom" else None
    if args.input is not None:
        rows = [{"id": "input", "input": args.input}]
    elif args.file:
        rows = read_inputs(args.file)
    else:
        if task is None:
            raise ConfigError("--split needs --task (or give --input / --file)")
        rows = [{"id": e.id, "input": e.input, "label": e.label, "candidates": task.candidates(e)}
                for e in task.load(args.split, args.data_dir)]
    rows = rows[:args.limit] if args.limit else rows
    sets = candidate_sets(args, rows, task) if args.score or args.candidates else None
    preds = predict(args.model, [r["input"] for r in rows], rationale=args.rationale,
                    batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, candidates=sets,
                    runtime=args.runtime or "torch")
    if args.input is not None and not args.output:
        print(preds[0]["prediction"])
        if args.rationale:
            print(f"rationale: {preds[0]['rationale']}")
        return 0
    records, accuracy = scored(rows, preds, task)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    if args.output:
        Path(args.output).write_text(lines)
    else:
        sys.stdout.write(lines)
    if accuracy is not None:
        n = sum("correct" in r for r in records)
        print(f"accuracy: {accuracy:.4f} ({round(accuracy * n)}/{n})", file=sys.stderr)
    return 0


def candidate_sets(args, rows: list[dict], task) -> list[list[str]]:
    """Per row: --candidates, else the row's own `candidates`, else the task's answer set."""
    given = [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None
    fallback = list(task.label_set) if task is not None and task.label_set else None
    sets = [given or r.get("candidates") or fallback for r in rows]
    if any(not s for s in sets):
        raise ConfigError("--score needs candidates: pass --candidates a,b,c, give rows a `candidates` list, "
                          "or a --task with a closed answer set")
    return sets
