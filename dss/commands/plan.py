"""`dss plan`: what teacher budget reaches a target accuracy, from a `dss active` study's measured points. A
saturating power law, accuracy = a - b * spend^-alpha, is fitted per strategy (dss/active/plan.py); `--fit-rounds`
fits on the first rounds only and shows its error on the rest.

    dss plan runs/active-demo --target 0.95
    dss plan runs/active-demo --target 0.95 --fit-rounds 3 --by requests
"""
from __future__ import annotations

import argparse

from dss.commands.common import results_csv
from dss.core.errors import DataError


def register(sub) -> None:
    p = sub.add_parser("plan", help="the teacher budget a target accuracy needs, from a dss active study",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", help="a `dss active` study folder (its results.csv), or the CSV itself")
    p.add_argument("--target", type=float, required=True, help="the test accuracy to reach, as a fraction (0.9)")
    p.add_argument("--by", default="cost_usd", choices=("cost_usd", "requests", "tokens"),
                   help="the spend to plan in (default: cost_usd)")
    p.add_argument("--fit-rounds", type=int, default=None,
                   help="fit on the first N rounds only and report the error on the others (default: all)")
    p.set_defaults(func=run)


def run(args) -> int:
    from dss.active.plan import format_plan, plan
    from dss.active.study import read_rows

    csv_path = results_csv(args.study, "dss active", "study")
    if not 0 < args.target < 1:
        raise DataError(f"--target {args.target}: a fraction between 0 and 1 (0.9 for 90 %)")
    rows = read_rows(csv_path)
    if args.by == "cost_usd" and all(r["cost_usd"] is None for r in rows):
        raise DataError(f"{csv_path}: no USD recorded (no price for the teacher's model): plan --by requests")
    print(format_plan(plan(rows, args.target, args.by, args.fit_rounds), args.target))
    return 0
