"""What `dss report` was given, read once: a `dss train` run folder, a `dss bench` sweep (results.csv and a folder
per cell) or a `dss active` study (results.csv with strategy and round columns), its result rows, the settings
it was made with, and the one run whose test examples the page shows.

    src = open_folder("runs/demo")    # Source(kind="sweep", rows=[...], run=Path(".../dss-gold/f1-s0"), ...)
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dss.core.errors import DataError
from dss.core.io import read_json
from dss.student import run_folder
from dss.student.methods import METHODS


@dataclass
class Source:
    kind: str                 # "run" | "sweep" | "active"
    path: Path
    rows: list[dict]          # results.csv rows (sweep, active); a run's one row of results.json
    spec: dict = field(default_factory=dict)  # bench.yaml / active.yaml: the settings and command; {} for a run
    run: Path | None = None   # the run whose test examples the page samples (None: no cell folder is here)
    why: str = ""             # which run that is and why, as the page says it

    @property
    def title(self) -> str:
        return self.spec.get("name") or self.path.name


def open_folder(path) -> Source:
    """The folder's Source; a folder that is none of the three (or has no finished result) is a DataError."""
    path = Path(path)
    csv_path = path / "results.csv"
    if csv_path.is_file():
        with open(csv_path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        return (_active if "strategy" in header else _sweep)(path)
    if run_folder.read_config(path) is not None:
        results = run_folder.read_results(path)
        if results is None:
            raise DataError(f"{path}: the run has not finished (no complete results.json); report it when "
                            "`dss train` is done")
        return Source("run", path, [results], run=path, why="this run")
    what = "no such folder" if not path.is_dir() else "neither results.csv nor a run's config.json"
    raise DataError(f"{path}: {what}; give a `dss train` run folder, a `dss bench` sweep or a `dss active` study")


def _spec(path: Path) -> dict:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, yaml.YAMLError):  # provenance only: the page says the settings are unknown
        spec = {}
    return spec if isinstance(spec, dict) else {}


def _sweep(path: Path) -> Source:
    from dss.bench.report import method_label, read_csv
    rows = read_csv(path / "results.csv")
    if not rows:
        raise DataError(f"{path}/results.csv: no finished cells yet")
    tasks, models = list(dict.fromkeys(r["task"] for r in rows)), list(dict.fromkeys(r["model"] for r in rows))
    # the run that shows most of what DSS is: a method that explains, with the most data, the first seed
    ranked = sorted(rows, key=lambda r: (not explains(r["method"]), -r["fraction"], r["seed"],
                                         tasks.index(r["task"]), models.index(r["model"])))
    run, best = _first_here(ranked, path)
    if run is None:
        return Source("sweep", path, rows, _spec(path / "bench.yaml"),
                      why=f"no cell's run folder is here (results.csv names {rows[0]['run_dir']})")
    why = (f"the {method_label(best['method'], best['labels'])} cell at {100 * best['fraction']:g} % of the "
           f"training data, seed {best['seed']} ({best['task']}, student {best['model']})")
    return Source("sweep", path, rows, _spec(path / "bench.yaml"), run, why)


def explains(method: str) -> bool:
    """Whether a sweep's method (a name, or "dss:alpha=0.8": the name and its settings) writes rationales."""
    known = METHODS.get(method.split(":", 1)[0])
    return bool(known and known.explains)


def _active(path: Path) -> Source:
    from dss.active.study import read_rows
    rows = read_rows(path / "results.csv")
    if not rows:
        raise DataError(f"{path}/results.csv: no finished rounds yet")
    spec = _spec(path / "active.yaml")
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    # the student that learnt from the most teacher answers of the first chain
    ranked = sorted(rows, key=lambda r: (strategies.index(r["strategy"]), r["seed"], -r["round"]))
    run, best = _first_here(ranked, path)
    if run is None:
        return Source("active", path, rows, spec, why="no round's run folder is here")
    why = (f"the last round ({best['round']}) of chain {best['strategy']} s{best['seed']}: its student trained on "
           f"{best['answered']} teacher answers")
    return Source("active", path, rows, spec, run, why)


def _first_here(ranked: list[dict], folder: Path) -> tuple[Path | None, dict | None]:
    """The first row whose run folder is here and finished, with that folder."""
    for r in ranked:
        run = locate(r.get("run_dir") or "", folder)
        if run is not None:
            return run, r
    return None, None


def locate(run_dir: str, folder: Path) -> Path | None:
    """A run folder as results.csv names it (relative to where the sweep ran): under `folder` by the name's
    tail (a sweep moved, or reported from another directory), else as named."""
    if not run_dir:
        return None
    parts = Path(run_dir).parts
    for cand in [*(folder.joinpath(*parts[-k:]) for k in range(1, len(parts) + 1)), Path(run_dir)]:
        if cand.is_dir() and run_folder.read_results(cand) is not None:
            return cand
    return None


def run_files(run: Path) -> tuple[dict, dict]:
    """(config.json, results.json) of a run: how it was made and what it measured."""
    return run_folder.read_config(run) or {}, read_json(run / "results.json") or {}
