"""`dss train`: flags, a YAML config and key=value overrides -> TrainConfig -> dss.train.train.

    dss train --task demo --method dss --model tiny --max-steps 200
    dss train --config configs/train_demo.yaml lr=3e-4 output_dir=runs/x
    torchrun --nproc_per_node 2 -m dss train ...      (or: accelerate launch -m dss train ...)

Precedence: TrainConfig defaults < --config YAML < flags < key=value overrides.
"""
from __future__ import annotations

import argparse
import dataclasses
import json

from dss.commands.common import add_task_args, task_options

TASK_FIELDS = ("task", "data_dir", "task_options")  # handled by add_task_args


def add_config_flags(p: argparse.ArgumentParser, cls, skip=TASK_FIELDS) -> list[str]:
    """One --flag per config field (help and choices from the field); values stay strings until
    load_config coerces them. Returns the field names."""
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag, meta = "--" + f.name.replace("_", "-"), f.metadata
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_ = f"{meta.get('help', '')} (default {default!r})"
        if f.type in ("bool", bool):
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            p.add_argument(flag, dest=f.name, default=None, choices=meta.get("choices"), metavar=None
                           if meta.get("choices") else f.name.upper(), help=help_)
        names.append(f.name)
    return names


def register(subparsers) -> None:
    from dss.train_config import TrainConfig

    p = subparsers.add_parser("train", help="train a student (standard, distill, dss, single) into a run folder",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML file of TrainConfig keys")
    add_task_args(p, required=False)
    p.set_defaults(config_fields=add_config_flags(p.add_argument_group("training"), TrainConfig))
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="TrainConfig overrides, applied last")
    p.set_defaults(func=run)


def config_from_args(args):
    from dss.config import load_config, parse_overrides
    from dss.train_config import TrainConfig

    values = {k: getattr(args, k) for k in args.config_fields if getattr(args, k) is not None}
    if args.task:
        values["task"] = args.task
        if task_options(args):
            values["task_options"] = task_options(args)
    if args.data_dir:
        values["data_dir"] = args.data_dir
    values.update(parse_overrides(args.overrides))
    return load_config(TrainConfig, args.config, values)


def run(args) -> int:
    from dss.train import train

    cfg = config_from_args(args)
    results = train(cfg)
    from accelerate import PartialState

    if PartialState().is_main_process:
        keys = ("valid_accuracy", "test_accuracy", "best_step", "train_examples", "examples_per_second")
        print(json.dumps({k: results.get(k) for k in keys}))
        print(f"run folder: {cfg.output_dir}")
    return 0
