"""`dss plot runs/<sweep>`: redraw a sweep's figures and results.md from its results.csv (no training).

    dss plot runs/demo
    dss plot runs/demo/results.csv --no-table
    dss plot runs/demo --metric test_accuracy_last       # the last model (the reference's figure, the paper's points)
"""
from __future__ import annotations

import argparse

from dss.commands.common import results_csv
from dss.core.errors import DataError


def register(sub) -> None:
    p = sub.add_parser("plot", help="redraw a sweep's curves.png (and model_size.png) from its results.csv",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="sweep folder holding results.csv (e.g. runs/demo), or the CSV itself")
    p.add_argument("--no-table", action="store_true", help="do not rewrite results.md")
    p.add_argument("--metric", choices=("test_accuracy", "test_accuracy_last", "valid_accuracy"),
                   help="the accuracy to draw: test_accuracy (the checkpoint chosen on valid; curves.png), "
                   "test_accuracy_last (the last model, the reference's figure, with the paper's points; "
                   "curves-last.png) or valid_accuracy (curves-valid.png); default: test_accuracy, and "
                   "test_accuracy_last where the cells have it")
    p.set_defaults(func=run)


def run(args) -> int:
    from dss.bench.plot import plot_sweep
    from dss.bench.report import markdown, read_csv
    from dss.core.io import atomic_write

    csv_path = results_csv(args.sweep, "dss bench", "sweep")
    rows = read_csv(csv_path)
    if not rows:
        raise DataError(f"{csv_path}: no finished cells to plot")
    out_dir = csv_path.parent
    if args.metric and all(r.get(args.metric) is None for r in rows):
        raise DataError(f"{csv_path}: no cell has {args.metric} (test_accuracy_last: train with protocol=reference "
                        "or test_last=true)")
    written = plot_sweep(rows, out_dir, [args.metric] if args.metric else None)
    if not args.no_table:
        atomic_write(out_dir / "results.md", markdown(rows, out_dir.name))
        written.append(out_dir / "results.md")
        print((out_dir / "results.md").read_text())
    print("dss plot: wrote " + ", ".join(str(w) for w in written))
    return 0
