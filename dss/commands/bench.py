"""`dss bench`: a data-efficiency (and model-size) sweep: task x method x fraction x seed (x student) cells.

    dss bench --config configs/bench-svamp.yaml [--seeds 0,1] [--shard 0/2] [key=value ...] [train.KEY=VALUE ...]

Precedence: the YAML file, then flags, then key=value overrides. `train.KEY=VALUE` sets a `dss train` value for
every cell (e.g. train.max_steps=300). Finished cells (a valid results.json) are skipped, so rerunning a killed
sweep continues it. Output: runs/<name>/{results.csv, results.md, curves.png, <cell folders>}.
"""
from __future__ import annotations

import argparse
import sys

from dss.commands.common import CUSTOM_OPTIONS
from dss.config import parse_overrides

# flag -> BenchConfig field (only flags the user gave become overrides)
FLAGS = {"name": "name", "output_dir": "output_dir", "tasks": "tasks", "methods": "methods", "labels": "labels",
         "models": "models", "fractions": "fractions", "seeds": "seeds", "data_dir": "data_dir",
         "shard": "shard", "launcher": "launcher", "jobs": "jobs"}


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a data-fraction / model-size sweep and tabulate and plot it",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML sweep config (configs/*.yaml); its first line gives its command")
    p.add_argument("--name", help="sweep name: output to runs/<name> (default: the config file's name)")
    p.add_argument("--output-dir", help="sweep folder (default runs/<name>)")
    p.add_argument("--tasks", "--task", dest="tasks", help="comma-separated tasks, e.g. cqa,svamp")
    p.add_argument("--methods", help="comma-separated: standard,distill,dss,single (default standard,dss)")
    p.add_argument("--labels", help="comma-separated label sources for dss/single: gold,teacher (default gold)")
    p.add_argument("--models", help="comma-separated students: tiny, tiny:d_model=64,layers=1 (use ';' between "
                   "several tiny specs), hub ids or paths")
    p.add_argument("--fractions", help="comma-separated training fractions (default 0.125,0.25,0.5,0.75,1)")
    p.add_argument("--seeds", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--data-dir", help="release-layout data folder (default $DSS_DATA_DIR, then ./data, then hub)")
    p.add_argument("--shard", help="i/n: run the i-th of n disjoint shards (0-based), e.g. one per GPU")
    p.add_argument("--launcher", help="inprocess (default) | subprocess | accelerate (cell under accelerate launch)")
    p.add_argument("--jobs", help="cells trained at once, in worker processes that split the CPU cores (default 1)")
    p.add_argument("--launch-args", help="extra `accelerate launch` arguments, as one string")
    p.add_argument("--keep-going", action="store_true", help="after a failed cell, go on with the others")
    p.add_argument("--retrain-changed", action="store_true",
                   help="retrain cells whose data or training settings changed (default: refuse, naming them)")
    p.add_argument("--dry-run", action="store_true",
                   help="list this shard's cells: done, todo, or changed (and what changed)")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: rewrite results.csv/.md and the figures from the finished cells")
    g = p.add_argument_group("custom task (--tasks custom)")
    for opt in CUSTOM_OPTIONS:
        g.add_argument("--" + opt.replace("_", "-"), help=f"custom task: {opt}")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="BenchConfig values, or train.KEY=VALUE for every cell's dss train config")
    p.set_defaults(func=run)


def build_config(args):
    from dss.bench import load_bench_config

    over = {}
    for flag, key in FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            over[key] = value
    if args.models is not None:
        # tiny specs contain commas themselves: several students are separated by ';' when any is tiny:...
        over["models"] = args.models.split(";") if ";" in args.models or "tiny:" in args.models \
            else args.models.split(",")
    if args.launch_args is not None:
        over["launch_args"] = args.launch_args.split()
    for flag in ("keep_going", "retrain_changed"):
        if getattr(args, flag):
            over[flag] = True
    custom = {o: getattr(args, o) for o in CUSTOM_OPTIONS if getattr(args, o, None) is not None}
    if custom:
        over["task_options"] = custom
    over.update(parse_overrides(args.overrides))
    return load_bench_config(args.config, over)


def run(args) -> int:
    from dss import bench
    from dss.report import write_report

    cfg = build_config(args)
    out_dir = cfg.out_dir()
    cells = bench.grid(cfg)
    mine = bench.shard_cells(cells, cfg.shard)
    if args.dry_run:
        configs = {c: bench.train_config(cfg, c, out_dir) for c in mine}
        status = bench.sweep_status(mine, configs, out_dir)
        for cell in mine:
            state, why = status[cell]
            print(f"{state:<8} {cell.key}" + (f"  ({'; '.join(why)})" if why else ""))
        counts = {s: sum(v[0] == s for v in status.values()) for s in ("done", "todo", "changed")}
        print(f"{len(mine)} of {len(cells)} cells in shard {cfg.shard}: " +
              ", ".join(f"{n} {s}" for s, n in counts.items()))
        return 0
    if args.report_only:
        configs = {c: bench.train_config(cfg, c, out_dir) for c in cells}
        rows = bench.report_rows(cfg, cells, configs, out_dir)
        write_report(out_dir, rows, title=cfg.name or out_dir.name)
        print((out_dir / "results.md").read_text())
        return 0
    result = bench.run_sweep(cfg, argv=["dss"] + sys.argv[1:] if sys.argv[1:2] == ["bench"] else None)
    print()
    print((out_dir / "results.md").read_text())
    print(f"dss bench: wrote {out_dir}/results.csv, results.md" + (", curves.png" if result["rows"] else ""))
    if result["failed"]:
        for cell, err in result["failed"]:
            print(f"dss bench: FAILED {cell.key}: {err}", file=sys.stderr)
        return 1
    return 0
