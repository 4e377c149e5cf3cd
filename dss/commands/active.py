"""`dss active`: spend a teacher budget where it teaches. Chains of rounds (one per strategy and seed) train a DSS
student on the teacher's answers so far, then choose which pool examples the teacher answers next, until each
chain's budget is spent; the report puts test accuracy against teacher requests and USD.

    dss active --config configs/active/demo.yaml
    dss active --config configs/active/demo.yaml --strategies random,uncertainty --seeds 0 budget_requests=300
    dss active --config configs/active/esnli.yaml --data-dir ../shared/dss-data --dry-run

Precedence: the YAML file, then flags, then key=value overrides (`train.KEY=VALUE`, `extract.KEY=VALUE` for every
round's `dss train` / `dss extract`). Output: runs/<name>/{results.csv, results.md, cost.png, <strategy>/s<seed>/}.
Rerunning a killed study resumes it exactly (recorded choices are replayed).
"""
from __future__ import annotations

import argparse

_OWN_FLAGS = ("train", "extract", "task_options")


def register(sub) -> None:
    from dss.active.config import ActiveConfig
    from dss.core.config import add_flags
    p = sub.add_parser("active", help="active, budget-capped distillation: which examples the teacher answers",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML study config (configs/active/*.yaml); its first line gives its command")
    fields = add_flags(p, ActiveConfig, skip=_OWN_FLAGS)
    p.add_argument("--dry-run", action="store_true", help="list the chains and the rounds each has recorded")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="ActiveConfig values, or train.KEY=VALUE / extract.KEY=VALUE for every round")
    p.set_defaults(func=run, config_fields=fields)


def run(args) -> int:
    from dss.active.config import load_active_config
    from dss.core.config import flag_values, parse_overrides

    over = flag_values(args, args.config_fields)
    over.update(parse_overrides(args.overrides))
    cfg = load_active_config(args.config, over)
    if args.dry_run:
        from dss.active.study import chain_summary
        for (strategy, seed), rounds in chain_summary(cfg).items():
            print(f"{strategy:<14} s{seed}: {rounds} round(s) recorded")
        return 0
    from dss.active.study import run_active
    run_active(cfg, argv=args.argv)
    print((cfg.out_dir() / "results.md").read_text())
    print(f"dss active: wrote {cfg.out_dir()}/results.csv, results.md, cost.png")
    return 0
