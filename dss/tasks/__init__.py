"""The tasks: the Task API and its registry, the one data seam (disk or hub: `sources`), one module per benchmark
plus custom and demo, and the rationale files every stage reads. May import dss.core only.

The registry names each task's class; its module is imported when the task is first asked for (so `dss --help`
stays fast, and a task module never imports the registry: no import cycle).
"""
from __future__ import annotations

import importlib

from dss.core.errors import DataError
from dss.tasks.base import Task

# name -> "module:Class", in the order `dss tasks` lists them
TASKS = {
    "anli1": "dss.tasks.anli1:ANLI1",
    "cqa": "dss.tasks.cqa:CQA",
    "custom": "dss.tasks.custom:Custom",
    "demo": "dss.tasks.demo:Demo",
    "esnli": "dss.tasks.esnli:ESNLI",
    "svamp": "dss.tasks.svamp:SVAMP",
}


def task_names() -> list[str]:
    return list(TASKS)


def task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_task(name: str, **options) -> Task:
    """A task by name; options go to its constructor (e.g. custom: train_file=..., input_column=...)."""
    return task_class(name)(**options)
