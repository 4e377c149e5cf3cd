"""`dss report PATH`: one self-contained HTML page of a `dss train` run, a `dss bench` sweep or a `dss active`
study, to open from disk (no network, no server): the curves with chance and the teacher, the tables (mean ±
standard error over seeds, each seed's value on demand), the teacher's spend where known, a sample of test
examples (input, gold, the teacher's label and rationale, the student's answer and its own rationale, filterable
to where the student is wrong or disagrees with the teacher), and the sampled run's config and provenance.

    dss report runs/demo
    dss report runs/demo-dss --sample 20 --seed 1
    dss report runs/active-demo --out active-demo.html --no-rationales
    dss report runs/demo --price-per-hour 0.17                 # the machine the student answers on

A sweep's sample comes from the cell of a method with rationales at the largest fraction, seed 0 (the page says
which); a study's from the last round of its first chain. The student's rationales are generated for the sample
by the run's model (seconds for a small student; --no-rationales skips them). The cost per 1M predictions sets
the run's measured test throughput at --price-per-hour against the teacher's mean cost per answer in the
extraction the run trained on, or in --teacher-file (e.g. `dss extract --teacher replay:gemini-3.5-flash
--replay-from task --task demo --split test --out demo-test.jsonl` prices the demo's answers as that model).
"""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page of a run, a sweep or an active study",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="a `dss train` run folder, a `dss bench` sweep folder or a `dss active` study folder")
    p.add_argument("--out", help="the HTML file to write (default: PATH/report.html)")
    p.add_argument("--sample", type=int, default=50, metavar="N",
                   help="test examples to show, drawn at random from the sampled run (default: 50; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="the seed of that draw (default: 0)")
    p.add_argument("--no-rationales", action="store_true",
                   help="do not generate the student's own rationales for the sample (no model is loaded)")
    p.add_argument("--price-per-hour", type=float, default=None, metavar="USD",
                   help="what an hour of the machine the student answers on costs, for the cost per 1M predictions "
                        "(default: 0.085, a 2-vCPU cloud VM on demand)")
    p.add_argument("--teacher-file", metavar="FILE",
                   help="a `dss extract` output whose answers price the teacher's (default: the extraction the "
                        "sampled run trained on)")
    p.set_defaults(func=run)


def run(args) -> int:
    from dss.core.errors import ConfigError
    from dss.report.page import write_report

    if args.sample < 0:
        raise ConfigError(f"--sample {args.sample}: expected 0 or more test examples")
    from dss.bench.costs import DEFAULT_PRICE_PER_HOUR
    if args.price_per_hour is not None and args.price_per_hour <= 0:
        raise ConfigError(f"--price-per-hour {args.price_per_hour}: expected a price above 0 USD")
    price = DEFAULT_PRICE_PER_HOUR if args.price_per_hour is None else args.price_per_hour
    out = write_report(args.path, args.out, args.sample, args.seed, not args.no_rationales,
                       price_per_hour=price, teacher_file=args.teacher_file)
    print(f"dss report: wrote {out} (open it in a browser; it loads nothing from elsewhere)")
    return 0
