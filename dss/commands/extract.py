"""`dss extract`: ask a teacher LLM for chain-of-thought answers and write rationale records.

    dss extract --task cqa --split train --teacher gemini:gemini-3.5-flash
    dss extract --task cqa --split train --teacher openai:llama3.1 --base-url http://localhost:11434/v1
    dss extract --task cqa --split train --teacher openai:gpt-4o-mini --samples 5 --filter consistent
    dss extract --task cqa --split train --teacher openai:gpt-4o-mini --samples 5 --early-stop 2 --max-cost 5
    dss extract --task cqa --split train --teacher gemini:gemini-3.5-flash --batch --limit 100
    dss extract --task cqa --split train --teacher openai:gpt-4o-mini --ids ids.txt
    dss extract --task custom --train-file my.jsonl --exemplars exemplars.yaml --teacher openai:gpt-4o-mini
    dss extract --task cqa --split train --import-released          # the release's PaLM answers
    dss extract --task demo --teacher replay:gemini-3.5-flash --replay-from task   # offline, priced as that model
    dss extract --task cqa --show-prompt                              # the exact prompt of one example
    dss extract --list-models --teacher gemini:gemini-3.5-flash      # what your key can use, with prices

Rerunning the same command resumes; options come from `ExtractConfig` (dss/teacher/extract_config.py).
"""
from __future__ import annotations

import argparse
import json

from dss.commands.common import add_task_args, task_from_args

# ExtractConfig fields whose flags `add_task_args` already provides
_TASK_FIELDS = ("task", "data_dir")
_FLAGS = {"ids_file": "--ids"}  # flag names that differ from the field name


def register(sub) -> None:
    from dss.core.config import add_flags
    from dss.teacher.extract_config import ExtractConfig
    p = sub.add_parser("extract", help="ask a teacher LLM for rationales (resumable)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_task_args(p, required=False)
    p.set_defaults(config_fields=add_flags(p, ExtractConfig, skip=_TASK_FIELDS, flags=_FLAGS))
    p.add_argument("--show-prompt", action="store_true", help="print the exact prompt for one example and exit")
    p.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    p.add_argument("--list-models", action="store_true",
                   help="list the models the teacher's endpoint and key can use (online; needs no --task)")
    p.set_defaults(func=run)


def run(args) -> int:
    from dss.core.config import flag_values, load_config
    from dss.core.errors import ConfigError
    from dss.teacher.extract import run as extract
    from dss.teacher.extract import show_prompt
    from dss.teacher.extract_config import ExtractConfig
    from dss.teacher.protocol import TeacherError
    if args.list_models:
        return _list_models(args)
    if not args.task:
        raise ConfigError("dss extract: --task is required (dss tasks lists them), except with --list-models")
    values = {"task": args.task, **flag_values(args, args.config_fields)}
    if args.data_dir:
        values["data_dir"] = args.data_dir
    cfg = load_config(ExtractConfig, None, values)
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


def _list_models(args) -> int:
    from dss.core.config import flag_values, load_config
    from dss.teacher.extract_config import ExtractConfig
    from dss.teacher.models import format_models, list_models
    from dss.teacher.protocol import TeacherError
    cfg = load_config(ExtractConfig, None, {"task": args.task or "demo", **flag_values(args, args.config_fields)})
    try:
        models = list_models(cfg)
    except TeacherError as e:
        raise _as_data_error(e) from None
    print(json.dumps(models) if args.json else format_models(models, cfg.spec))
    return 0


def _as_data_error(e):
    from dss.core.errors import DataError
    return DataError(str(e))
