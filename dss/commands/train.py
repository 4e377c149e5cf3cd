"""`dss train`: flags, a YAML config and key=value overrides -> TrainConfig -> dss.student.loop.train.

    dss train --task demo --method dss --model tiny --max-steps 200
    dss train --task demo --method standard
    dss train --task cqa --method dss
    dss train --config configs/train/cqa.yaml lr=3e-4 output_dir=runs/cqa-lr3e-4
    dss train --task custom --train-file my.jsonl --method dss
    torchrun --nproc_per_node 2 -m dss train ...      (or: accelerate launch -m dss train ...)

Precedence: TrainConfig defaults < --config YAML < flags < key=value overrides.
"""
from __future__ import annotations

import argparse
import json
import signal

from dss.commands.common import add_task_args, task_options
from dss.core.processes import raise_terminated

TASK_FIELDS = ("task", "data_dir", "task_options")  # handled by add_task_args


def register(subparsers) -> None:
    from dss.core.config import add_flags
    from dss.student.config import TrainConfig

    p = subparsers.add_parser("train", help="train a student (standard, distill, dss, single) into a run folder",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML file of TrainConfig keys")
    add_task_args(p, required=False)
    p.set_defaults(config_fields=add_flags(p.add_argument_group("training"), TrainConfig, skip=TASK_FIELDS))
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="TrainConfig overrides, applied last")
    p.set_defaults(func=run)


def config_from_args(args):
    from dss.core.config import flag_values, load_config, parse_overrides
    from dss.student.config import TrainConfig

    values = flag_values(args, args.config_fields)
    if args.task:
        values["task"] = args.task
        if task_options(args):
            values["task_options"] = task_options(args)
    if args.data_dir:
        values["data_dir"] = args.data_dir
    values.update(parse_overrides(args.overrides))
    return load_config(TrainConfig, args.config, values)


def run(args) -> int:
    from dss.student.loop import train

    cfg = config_from_args(args)
    # SIGTERM (Slurm's preemption, a requeued cell's job) stops training as Ctrl-C does: its lock is released,
    # which a lock file (dss.core.locks) needs for a rerun on another node to start at once
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        results = train(cfg)
    finally:
        signal.signal(signal.SIGTERM, previous)
    from accelerate import PartialState

    if PartialState().is_main_process:
        keys = ("valid_accuracy", "test_accuracy", "best_step", "train_examples", "examples_per_second")
        print(json.dumps({k: results.get(k) for k in keys}))
        print(f"run folder: {cfg.output_dir}")
    return 0
