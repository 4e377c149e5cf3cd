"""Arguments shared by subcommands that read a task: --task, --data-dir, and the custom-file options."""
from __future__ import annotations

import argparse
from pathlib import Path

from dss.core.errors import ConfigError, DataError
from dss.tasks import get_task, task_names
from dss.tasks.base import Task

CUSTOM_OPTIONS = ("train_file", "valid_file", "test_file", "input_column", "label_column",
                  "rationale_column", "teacher_label_column", "id_column")


def add_task_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--task", required=required, help=f"task name: {', '.join(task_names())}")
    p.add_argument("--data-dir", default=None,
                   help="folder in the release layout ({task}/{task}_{split}.json, {task}/llm/...); "
                        "default $DSS_DATA_DIR, then ./data, then the Hugging Face hub")
    g = p.add_argument_group("custom task (--task custom)")
    g.add_argument("--train-file", help="JSONL, CSV or saved HF dataset folder with the training rows")
    g.add_argument("--valid-file", help="validation rows (default: carved deterministically from train)")
    g.add_argument("--test-file", help="test rows (default: carved deterministically from train)")
    g.add_argument("--input-column", default="input", help="column holding the input text (default input)")
    g.add_argument("--label-column", default="label", help="column holding the label (default label)")
    g.add_argument("--rationale-column", default="rationale",
                   help="column holding a rationale, optional per row (default rationale)")
    g.add_argument("--teacher-label-column", default=None, help="column holding the teacher's label, if any")
    g.add_argument("--id-column", default="id", help="column holding a stable id (default id; else file-line)")


def task_options(args: argparse.Namespace) -> dict:
    """Constructor options for the chosen task (only `custom` takes any)."""
    if args.task != "custom":
        given = [o for o in ("train_file", "valid_file", "test_file") if getattr(args, o, None)]
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} is only for --task custom")
        return {}
    return {o: getattr(args, o) for o in CUSTOM_OPTIONS if getattr(args, o, None) is not None}


def task_from_args(args: argparse.Namespace) -> Task:
    return get_task(args.task, **task_options(args))


def results_csv(path, made_by: str, kind: str) -> Path:
    """The results.csv a `dss plot`/`dss plan` argument names: the file itself or the folder holding it."""
    path = Path(path)
    csv_path = path if path.suffix == ".csv" else path / "results.csv"
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: no such file; run `{made_by}` first (or pass a {kind} folder)")
    return csv_path
