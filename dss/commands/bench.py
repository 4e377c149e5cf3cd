"""`dss bench`: a data-efficiency (and model-size) sweep: task x method x fraction x seed (x student) cells.

    dss bench --config configs/bench/demo.yaml
    dss bench --config configs/bench/demo.yaml --seeds 0,1 --shard 0/2 train.max_steps=100
    dss bench --config configs/bench/cqa.yaml --fractions 0.125,1 --jobs 2
    dss bench --tasks cqa --methods standard,dss --fractions 0.5,1 --seeds 0 --name cqa-quick
    dss bench --config configs/bench/model-size-tiny.yaml --models "tiny:d_model=64,layers=1;tiny:d_model=128"
    dss bench --config configs/bench/study.yaml --tasks custom --train-file my.jsonl --name study-my

Precedence: the YAML file, then flags, then key=value overrides. `train.KEY=VALUE` sets a `dss train` value for
every cell (e.g. train.max_steps=300). A cell counts as finished only when it finished with this sweep's data
and resolved settings: rerunning a killed sweep continues it, and a cell made otherwise is never reused (the
sweep refuses and names what changed, or retrains it with --retrain-changed). Output:
runs/<name>/{results.csv, results.md, curves.png, <cell folders>}.
"""
from __future__ import annotations

import argparse
import sys

from dss.commands.common import CUSTOM_OPTIONS
from dss.core.config import parse_overrides

# BenchConfig fields with a flag of their own below: a tiny spec holds commas (several are split on ';'),
# launch arguments are one shell-like string; the train values come as train.KEY=VALUE
_OWN_FLAGS = ("models", "launch_args", "train", "task_options")


def register(sub) -> None:
    from dss.bench.grid import BenchConfig
    from dss.core.config import add_flags
    p = sub.add_parser("bench", help="run a data-fraction / model-size sweep and tabulate and plot it",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML sweep config (configs/*.yaml); its first line gives its command")
    fields = add_flags(p, BenchConfig, skip=_OWN_FLAGS, flags={"tasks": ("--tasks", "--task")})
    p.add_argument("--models", help="students: tiny, tiny:d_model=64,layers=1 (';' between several tiny specs, "
                   "else ','), hub ids or local folders (default: tiny)")
    p.add_argument("--launch-args", help="extra `accelerate launch` arguments, as one string (default: none)")
    p.add_argument("--dry-run", action="store_true",
                   help="list this shard's cells: done, todo, or changed (and what changed)")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: rewrite results.csv/.md and the figures from the finished cells")
    g = p.add_argument_group("custom task (--tasks custom)")
    for opt in CUSTOM_OPTIONS:
        g.add_argument("--" + opt.replace("_", "-"), help=f"custom task: {opt.replace('_', ' ')}")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="BenchConfig values, or train.KEY=VALUE for every cell's dss train config")
    p.set_defaults(func=run, config_fields=fields)


def build_config(args):
    from dss.bench.grid import load_bench_config
    from dss.core.config import flag_values

    over = flag_values(args, args.config_fields)
    if args.models is not None:
        # tiny specs contain commas themselves: several students are separated by ';' when any is tiny:...
        over["models"] = args.models.split(";") if ";" in args.models or "tiny:" in args.models \
            else args.models.split(",")
    if args.launch_args is not None:
        over["launch_args"] = args.launch_args.split()
    custom = {o: getattr(args, o) for o in CUSTOM_OPTIONS if getattr(args, o, None) is not None}
    if custom:
        over["task_options"] = custom
    over.update(parse_overrides(args.overrides))
    return load_bench_config(args.config, over)


def run(args) -> int:
    from dss.bench import sweep

    cfg = build_config(args)
    out_dir = cfg.out_dir()
    if args.dry_run:
        print("\n".join(sweep.dry_run(cfg)))
        return 0
    if args.report_only:
        sweep.report_only(cfg)
        print((out_dir / "results.md").read_text())
        return 0
    result = sweep.run_sweep(cfg, argv=args.argv)
    print()
    print((out_dir / "results.md").read_text())
    print(f"dss bench: wrote {out_dir}/results.csv, results.md" + (", curves.png" if result["rows"] else ""))
    if result["failed"]:
        for cell, err in result["failed"]:
            print(f"dss bench: FAILED {cell.key}: {err}", file=sys.stderr)
        return 1
    return 0
