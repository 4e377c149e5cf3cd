"""The benchmark harness: a grid of `dss train` cells (task x model x labels x seed x fraction x method),
skipping finished cells; dss.report turns the finished cells into results.csv / results.md.

    cells = grid(cfg)                      # every cell of the sweep, in a fixed order
    run_sweep(cfg)                         # train this shard's unfinished cells, then write the report

A cell is finished when `<cell>/results.json` parses and holds the accuracies: rerunning a killed sweep
trains only the cells that never finished. Cells are shards of one grid (`shard="i/n"`, 0 <= i < n): any
number of processes, GPUs or machines that share the output folder can work on one sweep. Each cell runs
in-process (`launcher: inprocess`, fastest for tiny students), as `python -m dss train --config cell.yaml`
(`subprocess`), or under `accelerate launch ... -m dss train` (`accelerate`, one multi-GPU run per cell).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from dss.core.config import check, coerce, field_, load_config, to_dict
from dss.core.errors import ConfigError
from dss.core.io import atomic_write

METHODS = ("standard", "distill", "dss", "single")
LABELS = ("gold", "teacher")
LAUNCHERS = ("inprocess", "subprocess", "accelerate")
# keys that the grid sets per cell, so they cannot come from `train:` overrides
GRID_KEYS = ("task", "method", "labels", "model", "train_fraction", "seed", "output_dir", "data_dir",
             "task_options")
REQUIRED_RESULTS = ("valid_accuracy", "test_accuracy")


@dataclass
class BenchConfig:
    name: str = field_("", "sweep name; output goes to runs/<name> (default: the config file's name)")
    output_dir: str = field_("", "sweep folder (default runs/<name>)")
    tasks: list[str] = field_(["demo"], "tasks to benchmark (dss tasks lists them)")
    methods: list[str] = field_(["standard", "dss"], "training methods, one line per method on the curves",
                                choices=METHODS)
    labels: list[str] = field_(["gold"], "label sources for dss/single (standard always trains on gold "
                               "labels, distill on teacher labels)", choices=LABELS)
    models: list[str] = field_(["tiny"], "students: 'tiny', 'tiny:key=value,...' (tiny sizes), a hub id or "
                               "a local path; several give the model-size plot")
    fractions: list[float] = field_([0.125, 0.25, 0.5, 0.75, 1.0], "fractions of the training split "
                                    "(nested subsets, identical across methods for a seed)", min=1e-9, max=1.0)
    seeds: list[int] = field_([0, 1, 2], "seeds; tables show mean +- standard error over them", min=0)
    data_dir: str | None = field_(None, "release-layout data folder (default $DSS_DATA_DIR, then ./data, "
                                  "then the hub)")
    task_options: dict = field_({}, "options for --task custom (train_file, label_column, ...)")
    train: dict = field_({}, "TrainConfig values for every cell (max_steps, batch_size, lr, ...)")
    launcher: str = field_("inprocess", "how a cell runs: in this process, as a `dss train` subprocess, or "
                           "under `accelerate launch`", choices=LAUNCHERS)
    launch_args: list[str] = field_([], "extra `accelerate launch` arguments, e.g. --num_processes,8")
    shard: str = field_("0/1", "i/n: run only the i-th of n disjoint shards of the grid (0 <= i < n)")
    jobs: int = field_(1, "cells trained at once (worker processes sharing the cores; CPU sweeps: 2 on 2 cores "
                       "beats one 2-thread process for tiny students)", min=1)
    keep_going: bool = field_(False, "after a failed cell, go on with the others (exit status 1 at the end)")
    retrain_changed: bool = field_(False, "retrain finished or started cells whose data or training settings "
                                   "differ from this sweep's (default: refuse, naming what changed)")

    def __post_init__(self):
        check(self)
        shard_of(self.shard)
        for name in ("tasks", "methods", "models", "fractions", "seeds", "labels"):
            if not getattr(self, name):
                raise ConfigError(f"{name}: needs at least one value")
        clash = sorted(set(self.train) & set(GRID_KEYS))
        if clash:
            raise ConfigError(f"train: {', '.join(clash)} are set by the grid (use tasks/methods/labels/models/"
                              "fractions/seeds/data_dir/task_options)")

    def out_dir(self) -> Path:
        return Path(self.output_dir or Path("runs") / (self.name or "-".join(self.tasks)))


def shard_of(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise ConfigError(f"shard: expected i/n with 0 <= i < n (e.g. 0/4), got {text!r}")
    return int(m.group(1)), int(m.group(2))


# ----------------------------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Cell:
    task: str
    model: str
    labels: str
    seed: int
    fraction: float
    method: str

    @property
    def key(self) -> str:
        return f"{self.task}/{slug(self.model)}/{self.method}-{self.labels}/f{self.fraction:g}-s{self.seed}"

    def run_dir(self, out_dir: Path) -> Path:
        return Path(out_dir) / self.key


def slug(text: str) -> str:
    """A folder-safe name: google/t5-v1_1-base -> google--t5-v1_1-base; tiny:d_model=64 -> tiny-d_model=64."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", str(text).replace("/", "--")).strip("-") or "model"


def effective_labels(method: str, labels: str) -> str:
    """standard fine-tuning is defined by gold labels and standard distillation by teacher labels."""
    return {"standard": "gold", "distill": "teacher"}.get(method, labels)


def grid(cfg: BenchConfig) -> list[Cell]:
    """All cells, deduplicated, seed-major so that a half-finished sweep already has whole curves."""
    cells: list[Cell] = []
    for task in cfg.tasks:
        for model in cfg.models:
            for labels in cfg.labels:
                for seed in cfg.seeds:
                    for fraction in cfg.fractions:
                        for method in cfg.methods:
                            cell = Cell(task, model, effective_labels(method, labels), seed, float(fraction),
                                        method)
                            if cell not in cells:
                                cells.append(cell)
    return cells


def shard_cells(cells: list[Cell], shard: str) -> list[Cell]:
    """This shard's cells, in grid order. Cells are dealt round-robin in an order fixed by their keys' hashes,
    so shards get equal counts (+-1) and a mix of methods and fractions, and agree without talking."""
    i, n = shard_of(shard)
    dealt = sorted(cells, key=lambda c: hashlib.sha1(c.key.encode()).hexdigest())
    mine = {c for p, c in enumerate(dealt) if p % n == i}
    return [c for c in cells if c in mine]


def parse_model(spec: str) -> dict:
    """'tiny:d_model=64,num_layers=2' -> {'model': 'tiny', 'd_model': '64', 'num_layers': '2'}."""
    if not spec.startswith("tiny:"):
        return {"model": spec}
    out = {"model": "tiny"}
    for item in filter(None, spec[len("tiny:"):].split(",")):
        if "=" not in item:
            raise ConfigError(f"models: {spec!r}: expected tiny:key=value,...")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cell_overrides(cfg: BenchConfig, cell: Cell, out_dir: Path) -> dict:
    """The TrainConfig values of one cell: the sweep's `train:` values, then the grid's."""
    values = dict(cfg.train)
    values.update(parse_model(cell.model))
    values.update(task=cell.task, method=cell.method, labels=cell.labels, train_fraction=cell.fraction,
                  seed=cell.seed, output_dir=str(cell.run_dir(out_dir)))
    if cfg.data_dir:
        values["data_dir"] = cfg.data_dir
    if cfg.task_options:
        values["task_options"] = dict(cfg.task_options)
    return values


def train_config(cfg: BenchConfig, cell: Cell, out_dir: Path):
    from dss.student.config import TrainConfig
    return load_config(TrainConfig, None, cell_overrides(cfg, cell, out_dir))


# ------------------------------------------------------------------------------------------ cell status
def read_results(run_dir: Path) -> dict | None:
    """results.json of a finished cell, or None (absent, half-written by a killed run, or incomplete)."""
    from dss.student.run_folder import read_results as read
    return read(run_dir)


class Fingerprints:
    """Data fingerprints per distinct data source of the cells, computed once and only when a cell needs one."""

    def __init__(self):
        self.cache: dict[str, str] = {}

    def __call__(self, tcfg) -> str:
        key = json.dumps([tcfg.task, tcfg.data_dir, tcfg.task_options, tcfg.rationales], sort_keys=True,
                         default=str)
        if key not in self.cache:
            from dss.student.prepare import data_fingerprint
            self.cache[key] = data_fingerprint(tcfg)
        return self.cache[key]


def cell_status(cell: Cell, tcfg, out_dir: Path, fingerprint) -> tuple[str, list[str]]:
    """("done" | "todo" | "changed", what changed). A cell is done only when it finished with this sweep's
    resolved training settings on data with the same content; a started or finished cell made otherwise is
    "changed" (never reused, never resumed)."""
    from dss.student.run_folder import identity_changes, read_config
    run_dir = cell.run_dir(out_dir)
    finished = read_results(run_dir) is not None
    if not finished and not list((run_dir / "checkpoints").glob("step_*")):
        return "todo", []  # nothing of it is reused: training starts over
    changes = identity_changes(read_config(run_dir), to_dict(tcfg), fingerprint(tcfg))
    if changes:
        return "changed", changes
    return ("done" if finished else "todo"), []


def sweep_status(cells: list[Cell], configs: dict, out_dir: Path) -> dict[Cell, tuple[str, list[str]]]:
    fingerprint = Fingerprints()
    return {c: cell_status(c, configs[c], out_dir, fingerprint) for c in cells}


def refuse_changed(status: dict, retrain: bool) -> None:
    changed = [(c, why) for c, (s, why) in status.items() if s == "changed"]
    if changed and not retrain:
        lines = [f"  {c.key}: {'; '.join(why[:3])}{' ...' if len(why) > 3 else ''}" for c, why in changed[:5]]
        raise ConfigError(f"{len(changed)} cell(s) of this sweep were trained with other data or settings:\n"
                          + "\n".join(lines) + ("\n  ..." if len(changed) > 5 else "") +
                          "\nUse another sweep name (--name / NAME=) to keep them, or pass --retrain-changed "
                          "to retrain them here.")


# ------------------------------------------------------------------------------------------- launchers
TrainFn = Callable[[object], dict]


def run_cell(cfg: BenchConfig, cell: Cell, out_dir: Path, tcfg, train_fn: TrainFn | None = None) -> dict:
    """Train one cell (its TrainConfig `tcfg`) and return its results; the cell's results.json is the record."""
    run_dir = cell.run_dir(out_dir)
    if (run_dir / "results.json").exists():  # unreadable or incomplete (cf. read_results): not a result
        (run_dir / "results.json").unlink()
    if _has_checkpoints(run_dir) and not getattr(tcfg, "overwrite", False):
        tcfg.resume = True  # a killed cell continues from its last checkpoint (or starts over if it had none)
    if cfg.launcher == "inprocess":
        if train_fn is None:
            from dss.student.loop import train as train_fn
        results = train_fn(tcfg)
        if read_results(run_dir) is None and isinstance(results, dict):
            atomic_write(run_dir / "results.json", json.dumps(results, indent=2))
    else:
        cell_yaml = run_dir / "cell.yaml"
        atomic_write(cell_yaml, yaml.safe_dump(to_dict(tcfg), sort_keys=False))
        cmd = launch_command(cfg, cell_yaml)
        print("+ " + " ".join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            raise RuntimeError(f"cell {cell.key}: `{' '.join(cmd)}` exited with status {rc}")
    results = read_results(run_dir)
    if results is None:
        raise RuntimeError(f"cell {cell.key}: training returned but {run_dir}/results.json is missing or "
                           f"lacks {', '.join(REQUIRED_RESULTS)}")
    return results


def launch_command(cfg: BenchConfig, cell_yaml: Path) -> list[str]:
    if cfg.launcher == "accelerate":
        return ["accelerate", "launch", *cfg.launch_args, "-m", "dss", "train", "--config", str(cell_yaml)]
    return [sys.executable, "-m", "dss", "train", "--config", str(cell_yaml)]


def _has_checkpoints(run_dir: Path) -> bool:
    """Whether a killed attempt left anything of a run (a checkpoint, or only its first files)."""
    from dss.student.run_folder import RUN_FILES
    return any((Path(run_dir) / f).exists() for f in RUN_FILES)



def preflight(cfg: BenchConfig) -> None:
    """Fail before the first cell, with the loader's own message, when a train split or a student is missing
    (e.g. ANLI's train split or a hub model offline) instead of failing in every cell."""
    from dss.tasks import get_task
    for task_name in cfg.tasks:
        task = get_task(task_name, **(cfg.task_options if task_name == "custom" else {}))
        task.load("train", cfg.data_dir)
    for model in cfg.models:
        spec = parse_model(model)["model"]
        if spec == "tiny" or Path(spec).exists():
            continue
        try:
            from transformers import AutoConfig
            AutoConfig.from_pretrained(spec)
        except Exception as e:
            raise ConfigError(f"student {spec!r} is neither 'tiny' nor a local folder and the Hugging Face hub "
                              f"could not provide it ({type(e).__name__}: {str(e)[:200]}). Download it on a "
                              "machine with the hub, or pass a local path in models.") from None


# ------------------------------------------------------------------------------------------- the sweep
def run_sweep(cfg: BenchConfig, train_fn: TrainFn | None = None, argv: list[str] | None = None,
              plot: bool = True, log=print, make_config=train_config) -> dict:
    """Train this shard's unfinished cells, then rewrite results.csv / results.md / curves.png from every
    finished cell of the grid. Returns {"trained": [...], "skipped": [...], "failed": [...], "rows": [...]}."""
    from dss.report import pct, write_report  # dss.report builds on this module: imported here
    out_dir = cfg.out_dir()
    if (out_dir / "config.json").is_file() and not (out_dir / "bench.yaml").is_file():
        raise ConfigError(f"{out_dir} holds a single `dss train` run; give the sweep another name or output_dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = grid(cfg)
    mine = shard_cells(cells, cfg.shard)
    # every cell's config is built first: a bad `train:` key fails now, not after an hour of training
    configs = {cell: make_config(cfg, cell, out_dir) for cell in cells}
    status = sweep_status(mine, configs, out_dir)
    refuse_changed(status, cfg.retrain_changed)
    todo = [c for c in mine if status[c][0] != "done"]
    skipped = [c for c in mine if c not in todo]
    for c in todo:
        if status[c][0] == "changed":  # --retrain-changed: the old cell is replaced, never resumed
            configs[c].overwrite = True
    atomic_write(out_dir / "bench.yaml", yaml.safe_dump(
        {"command": " ".join(argv) if argv else None, **to_dict(cfg)}, sort_keys=False))
    n_changed = sum(status[c][0] == "changed" for c in todo)
    log(f"dss bench: {out_dir}: {len(cells)} cells in the grid, {len(mine)} in shard {cfg.shard}, "
        f"{len(skipped)} already finished, {len(todo)} to train" +
        (f" ({n_changed} of them retrained: their data or settings changed)" if n_changed else ""))
    if todo and train_fn is None:
        preflight(cfg)
    trained, failed = [], []
    for k, (cell, outcome) in enumerate(_run_cells(cfg, todo, out_dir, configs, train_fn, log), 1):
        if isinstance(outcome, BaseException):
            if not cfg.keep_going:
                raise outcome
            log(f"dss bench: cell {cell.key} failed: {type(outcome).__name__}: {outcome}")
            failed.append((cell, f"{type(outcome).__name__}: {outcome}"))
            continue
        res, timing = outcome
        # wall and CPU time per cell, for budgeting sweeps; beside results.json, which the trainer owns
        atomic_write(cell.run_dir(out_dir) / "bench_cell.json", json.dumps(timing))
        trained.append(cell)
        log(f"dss bench: [{k}/{len(todo)}] {cell.key}: valid {pct(res['valid_accuracy'])}  "
            f"test {pct(res['test_accuracy'])}  ({timing['seconds']:.0f} s, {timing['cpu_seconds']:.0f} CPU s)")
    rows = report_rows(cfg, cells, configs, out_dir, log)
    write_report(out_dir, rows, title=cfg.name or out_dir.name, plot=plot)
    return {"trained": trained, "skipped": skipped, "failed": failed, "rows": rows, "out_dir": out_dir}


def report_rows(cfg: BenchConfig, cells: list[Cell], configs: dict, out_dir: Path, log=print) -> list[dict]:
    """The report's rows: every finished cell of the grid (all shards) made with this sweep's data and
    settings; a finished cell made otherwise is left out, and said so."""
    from dss.report import collect
    status = sweep_status(cells, configs, out_dir)
    stale = [c for c in cells if status[c][0] == "changed"]
    if stale:
        log(f"dss bench: {len(stale)} finished cell(s) left out of the report: trained with other data or "
            f"settings (e.g. {stale[0].key}: {'; '.join(status[stale[0]][1][:2])})")
    return collect(cfg, [c for c in cells if status[c][0] == "done"], out_dir)


def _cpu_seconds() -> float:
    import resource
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed_cell(cfg, cell, out_dir, tcfg, train_fn):
    """(results, {"seconds": wall, "cpu_seconds": cpu}) or the exception; CPU time budgets a sweep even on a
    busy machine, where wall time says little."""
    t0, c0 = time.time(), _cpu_seconds()
    try:
        res = run_cell(cfg, cell, out_dir, tcfg, train_fn)
    except Exception as e:  # reported by the caller, which decides whether to go on
        return e
    return res, {"seconds": round(time.time() - t0, 1), "cpu_seconds": round(_cpu_seconds() - c0, 1)}


def _worker_init(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for subprocess launchers
    os.environ.setdefault("TQDM_DISABLE", "1")   # parallel progress bars garble each other; cells log when done
    os.environ.setdefault("DSS_QUIET", "1")      # and so do their phase lines
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        pass


def _run_cells(cfg, todo, out_dir, configs, train_fn, log):
    """Yield (cell, (results, seconds) or the exception) as cells finish, `cfg.jobs` at a time."""
    if cfg.jobs == 1 or len(todo) <= 1:
        for k, cell in enumerate(todo, 1):
            log(f"dss bench: [{k}/{len(todo)}] training {cell.key}")
            yield cell, _timed_cell(cfg, cell, out_dir, configs[cell], train_fn)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    threads = max(1, (os.cpu_count() or 1) // cfg.jobs)
    log(f"dss bench: {cfg.jobs} cells at a time, {threads} torch thread(s) each")
    # fork: workers inherit the imported modules (and a test's fake trainer) without pickling them
    with ProcessPoolExecutor(cfg.jobs, mp_context=multiprocessing.get_context("fork"),
                             initializer=_worker_init, initargs=(threads,)) as pool:
        futures = {pool.submit(_timed_cell, cfg, c, out_dir, configs[c], train_fn): c for c in todo}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise



def load_bench_config(yaml_path=None, overrides: dict | None = None) -> BenchConfig:
    """BenchConfig from YAML + overrides; `train.KEY=VALUE` overrides go into the per-cell `train` values."""
    overrides = dict(overrides or {})
    train_over = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith("train.")}
    rest = {k: v for k, v in overrides.items() if not k.startswith("train.")}
    if train_over:
        base = {}
        if yaml_path:
            base = (yaml.safe_load(Path(yaml_path).read_text()) or {}).get("train") or {}
        rest["train"] = {**base, **coerce("train", rest.get("train", {}), dict), **train_over}
    cfg = load_config(BenchConfig, yaml_path, rest)
    if not cfg.name and yaml_path:
        cfg.name = Path(yaml_path).stem
    return cfg
