"""`dss tasks`: the registered tasks with their splits, label sets, metric and data source.

    dss tasks
"""
from __future__ import annotations

import argparse

from dss.tasks import get_task, task_names


def register(sub) -> None:
    p = sub.add_parser("tasks", help="list the registered tasks", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=run)


def run(args) -> int:
    for name in task_names():
        t = get_task(name)
        labels = ", ".join(t.label_set) if t.label_set else "open text"
        chance = f"{t.chance():.1%}" if t.chance() else "n/a"
        print(f"{name}\n  {t.description}\n  splits: {', '.join(t.splits())}\n  labels: {labels}"
              f"\n  metric: {t.metric} (chance {chance})\n  data:   {t.source}\n")
    return 0
