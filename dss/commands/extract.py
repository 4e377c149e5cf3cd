"""`dss extract`: ask a teacher LLM for chain-of-thought answers and write rationale records.

    dss extract --task cqa --split train --teacher gemini:gemini-2.5-flash
    dss extract --task cqa --split train --teacher openai:llama3.1 --base-url http://localhost:11434/v1
    dss extract --task cqa --split train --teacher openai:gpt-4o-mini --dry-run
    dss extract --task cqa --split train --import-released          # the release's PaLM answers
    dss extract --task cqa --show-prompt                              # the exact prompt of one example

Rerunning the same command resumes; options come from `ExtractConfig` (dss/teacher/extract_config.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import typing

from dss.commands.common import add_task_args, task_from_args
from dss.config import _base_type

# ExtractConfig fields whose flags `add_task_args` already provides
_TASK_FIELDS = ("task", "data_dir")
_FLAGS = {"ids_file": "--ids"}  # flag names that differ from the field name


def register(sub) -> None:
    from dss.teacher.extract_config import ExtractConfig
    p = sub.add_parser("extract", help="ask a teacher LLM for rationales (resumable)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_task_args(p)
    hints = typing.get_type_hints(ExtractConfig)
    for f in dataclasses.fields(ExtractConfig):
        if f.name in _TASK_FIELDS:
            continue
        flag = _FLAGS.get(f.name, "--" + f.name.replace("_", "-"))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        helptext = f.metadata["help"] + ("" if default in (None, [], True, False) else f" (default {default})")
        base, _ = _base_type(hints[f.name])
        if base is bool and default is True:
            p.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false", help=helptext)
        elif base is bool:
            p.add_argument(flag, dest=f.name, action="store_true", help=helptext)
        elif base is list:
            p.add_argument(flag, dest=f.name, action="append", default=None,
                           help=helptext + "; repeat for several")
        else:
            p.add_argument(flag, dest=f.name, type=base, default=default,
                           choices=f.metadata.get("choices"), help=helptext)
    p.add_argument("--show-prompt", action="store_true", help="print the exact prompt for one example and exit")
    p.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    p.set_defaults(func=run)


def run(args) -> int:
    from dss.teacher.client import TeacherError
    from dss.teacher.extract import run as extract
    from dss.teacher.extract import show_prompt
    from dss.teacher.extract_config import ExtractConfig
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(ExtractConfig) if hasattr(args, f.name)}
    values = {k: v for k, v in values.items() if v is not None or k in ("temperature",)}
    cfg = ExtractConfig(**values)
    task = task_from_args(args)
    if args.show_prompt:
        print(show_prompt(cfg, task))
        return 0
    try:
        summary = extract(cfg, task)
    except TeacherError as e:
        raise _as_data_error(e) from None
    if args.json:
        print(json.dumps(summary))
    return 0


def _as_data_error(e):
    from dss.tasks.base import DataError
    return DataError(str(e))
