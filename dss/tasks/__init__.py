"""Task registry: a benchmark is one small module that registers a `Task` subclass by name."""
from __future__ import annotations

from dss.core.errors import DataError  # noqa: F401
from dss.tasks.base import SPLITS, Example, Parsed, Task

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
