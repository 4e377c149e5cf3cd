"""`dss data`: inspect, export and download benchmark data.

    dss data stats --task cqa
    dss data stats --task custom --train-file my.jsonl --json
    dss data show --task cqa --split train --n 2
    dss data export --task cqa --split test --out cqa_test.jsonl
    dss data download --archive datasets.zip --dest data
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dss.commands.common import add_task_args, task_from_args
from dss.core.errors import DataError
from dss.tasks import sources
from dss.tasks.base import warn_unseen_labels


def register(sub) -> None:
    p = sub.add_parser("data", help="inspect, export and download data", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    s = dsub.add_parser("stats", help="rows per split, parsed teacher outputs, teacher accuracy")
    add_task_args(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=run_stats)

    for name, helptext in (("show", "print normalized examples as the student sees them"),
                           ("export", "write normalized examples to a JSONL file")):
        e = dsub.add_parser(name, help=helptext)
        add_task_args(e)
        e.add_argument("--split", required=True, choices=("train", "valid", "test"), help="which split")
        if name == "show":
            e.add_argument("--n", type=int, default=5, help="how many examples (default: 5)")
            e.set_defaults(func=run_show)
        else:
            e.add_argument("--out", required=True, help="output JSONL path")
            e.set_defaults(func=run_export)

    d = dsub.add_parser("download", help="fetch the original release datasets.zip and unpack it into data/")
    d.add_argument("--archive", default=sources.RELEASE_URL,
                   help="URL or local path of datasets.zip (default: the google-research release)")
    d.add_argument("--dest", default=str(sources.REPO_DATA), help="where to unpack (default: data/)")
    d.set_defaults(func=run_download)


def run_stats(args) -> int:
    task = task_from_args(args)
    out, loaded = {"task": args.task, "splits": {}}, {}
    for split in task.splits():
        try:
            loaded[split] = task.load(split, args.data_dir)
            out["splits"][split] = {"rows": len(loaded[split]), **task.teacher_stats(loaded[split])}
        except DataError as e:  # e.g. anli1 train offline: report it, keep the other splits
            out["splits"][split] = {"rows": None, "teacher_parsed": None, "teacher_accuracy": None,
                                    "error": str(e)}
    warn_unseen_labels(task, loaded, lambda message: print(f"dss data stats: {message}", file=sys.stderr))
    # any split that failed is an error for the exit status (scripts must not read a failure as success)
    status = 1 if any(v.get("error") for v in out["splits"].values()) else 0
    if args.json:
        print(json.dumps(out))
        return status
    print(f"{args.task}  (chance {task.chance():.1%})" if task.chance() else args.task)
    for split, s in out["splits"].items():
        if s.get("error"):
            print(f"  {split:5s}  not available: {s['error'].splitlines()[0]}")
            continue
        acc = "no teacher outputs" if s["teacher_accuracy"] is None else \
            f"teacher accuracy {s['teacher_accuracy'] * 100:.1f} %"
        print(f"  {split:5s}  {s['rows']:6d} rows  {s['teacher_parsed']:6d} teacher answers parsed  "
              f"{s['teacher_unparsed']:4d} unparsed  {acc}")
    return status


def run_show(args) -> int:
    task = task_from_args(args)
    for ex in task.load(args.split, args.data_dir)[:args.n]:
        print(json.dumps(ex.to_dict(), ensure_ascii=False, indent=2))
    return 0


def run_export(args) -> int:
    task = task_from_args(args)
    examples = task.load(args.split, args.data_dir)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n")
    print(f"wrote {len(examples)} {args.task}/{args.split} examples to {out}")
    return 0


def run_download(args) -> int:
    written = sources.download_release(Path(args.dest), args.archive)
    if not written:
        raise DataError(f"{args.archive}: the archive held no task folders")
    print(f"unpacked {', '.join(written)} into {args.dest}")
    return 0
