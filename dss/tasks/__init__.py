"""The tasks: the Task API and its registry, the one data seam (disk or hub: `sources`), one module per benchmark
plus custom and demo, and the rationale files every stage reads. May import dss.core only."""
from __future__ import annotations

from dss.core.errors import DataError
from dss.tasks.base import Task

_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    _REGISTRY[cls.name] = cls
    return cls


def task_names() -> list[str]:
    _import_all()
    return list(_REGISTRY)


def get_task(name: str, **options) -> Task:
    """A task by name; options go to its constructor (e.g. custom: train_file=..., input_column=...)."""
    _import_all()
    if name not in _REGISTRY:
        raise DataError(f"unknown task {name!r}; known tasks: {', '.join(_REGISTRY)}")
    return _REGISTRY[name](**options)


def _import_all() -> None:
    # imported lazily so `dss.tasks.base` stays importable from the task modules themselves
    from dss.tasks import anli1, cqa, custom, demo, esnli, svamp  # noqa: F401
