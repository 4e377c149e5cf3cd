"""A sweep's definition: BenchConfig, and the grid of its cells (task x model x labels x seed x fraction x
method), each with its `dss train` config and folder; shards of the grid for processes that share a folder.

    cfg = load_bench_config("configs/bench/demo.yaml", {"seeds": "0,1"})
    cells = grid(cfg); mine = shard_cells(cells, "0/2"); tcfg = train_config(cfg, cells[0], cfg.out_dir())
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from dss.core.config import check, field_, load_config, load_sectioned
from dss.core.errors import ConfigError
from dss.student.config import SEED_MAX
from dss.student.methods import METHOD_NAMES, METHODS

LABELS = ("gold", "teacher")


LAUNCHERS = ("inprocess", "subprocess", "accelerate", "slurm")


# keys that the grid sets per cell, so they cannot come from `train:` overrides
GRID_KEYS = ("task", "method", "labels", "model", "train_fraction", "seed", "output_dir", "data_dir",
             "task_options")


@dataclass
class BenchConfig:
    name: str = field_("", "sweep name; output goes to runs/<name> (default: the config file's name)")
    output_dir: str = field_("", "sweep folder (default runs/<name>)")
    tasks: list[str] = field_(["demo"], "tasks to benchmark (dss tasks lists them)")
    methods: list[str] = field_(["standard", "dss"], "training methods, one line per method on the curves: "
                                f"{', '.join(METHOD_NAMES)}, or a variant with its own settings, e.g. "
                                "'dss:rationales_per_example=3' or 'dss:alpha=0.8'")
    labels: list[str] = field_(["gold"], "label sources for dss/single (standard always trains on gold "
                               "labels, distill on teacher labels)", choices=LABELS)
    models: list[str] = field_(["tiny"], "students: 'tiny', 'tiny:key=value,...' (tiny sizes), a hub id or "
                               "a local path; several give the model-size plot")
    fractions: list[float] = field_([0.125, 0.25, 0.5, 0.75, 1.0], "fractions of the training split "
                                    "(nested subsets, identical across methods for a seed)", min=1e-9, max=1.0)
    seeds: list[int] = field_([0, 1, 2], "seeds; tables show mean +- standard error over them", min=0,
                              max=SEED_MAX)
    data_dir: str | None = field_(None, "release-layout data folder (default $DSS_DATA_DIR, then ./data, "
                                  "then the hub)")
    task_options: dict = field_({}, "options for --task custom (train_file, label_column, ...)")
    train: dict = field_({}, "TrainConfig values for every cell (max_steps, batch_size, lr, ...)")
    train_by_fraction: dict = field_({}, "TrainConfig values for the cells of one fraction, over `train:`, "
                                     "e.g. {0.125: {max_steps: 400}, 1.0: {max_steps: 1000}} (budgets scaled to "
                                     "the data)")
    launcher: str = field_("inprocess", "how a cell runs: in this process, as a `dss train` subprocess, or "
                           "under `accelerate launch`", choices=LAUNCHERS)
    launch_args: list[str] = field_([], "extra `accelerate launch` arguments, e.g. --num_processes,8")
    slurm: dict = field_({}, "launcher slurm: {partition, time_min, gpus_per_cell, cpus_per_cell, mem_gb, sbatch: "
                         "{option: value}, setup: [shell lines], cluster: slurm|local, wait} (dss/bench/slurm.py)")
    shard: str = field_("0/1", "i/n: run only the i-th of n disjoint shards of the grid (0 <= i < n)")
    jobs: int = field_(1, "cells trained at once (worker processes sharing the cores; CPU sweeps: 2 on 2 cores "
                       "beats one 2-thread process for tiny students)", min=1)
    device: str = field_("any", "cuda: refuse to start without a CUDA GPU (the paper's sweeps)",
                         choices=("any", "cuda"))
    min_train_rows: dict = field_({}, "refuse to start when a task's train split has fewer rows, e.g. {esnli: "
                                  "549367} where the offline copy holds a 10,000-row subset")
    keep_going: bool = field_(False, "after a failed cell, go on with the others (exit status 1 at the end)")
    retrain_changed: bool = field_(False, "retrain finished or started cells whose data or training settings "
                                   "differ from this sweep's (default: refuse, naming what changed)")

    def __post_init__(self):
        check(self)
        shard_of(self.shard)
        # the name is one folder under runs/: `../x` or `/x` would put a sweep's files anywhere
        if self.name and not re.fullmatch(r"\w[\w.+=-]*", self.name):
            raise ConfigError(f"name: {self.name!r} is not a sweep name: one folder name under runs/, of letters, "
                              "digits and . _ - + = (starting with a letter or digit); output_dir=PATH puts a "
                              "sweep elsewhere")
        for name in ("tasks", "methods", "models", "fractions", "seeds", "labels"):
            if not getattr(self, name):
                raise ConfigError(f"{name}: needs at least one value")
        for spec in self.methods:
            parse_method(spec)
        if self.slurm or self.launcher == "slurm":
            from dss.bench.slurm import slurm_config
            slurm_config(self.slurm)  # unknown or out-of-range keys fail here
        clash = sorted(set(self.train) & set(GRID_KEYS))
        if clash:
            raise ConfigError(f"train: {', '.join(clash)} are set by the grid (use tasks/methods/labels/models/"
                              "fractions/seeds/data_dir/task_options)")

        self.train_by_fraction = by_fraction(self.train_by_fraction, self.fractions)

    def out_dir(self) -> Path:
        return Path(self.output_dir or Path("runs") / (self.name or "-".join(self.tasks)))


def by_fraction(table: dict, fractions: list[float]) -> dict[float, dict]:
    """train_by_fraction with float keys, each value a mapping of non-grid TrainConfig keys. A non-empty table
    must cover every fraction the sweep runs (a mistyped key would otherwise leave a fraction on the default
    budget); it may hold more (a sweep run on a subset, `fractions=0.125,0.25`)."""
    out = {}
    for key, values in (table or {}).items():
        try:
            fraction = float(key)
        except (TypeError, ValueError):
            raise ConfigError(f"train_by_fraction: {key!r} is not a fraction") from None
        if not isinstance(values, dict):
            raise ConfigError(f"train_by_fraction.{key}: expected a mapping of train settings, got {values!r}")
        clash = sorted(set(values) & set(GRID_KEYS))
        if clash:
            raise ConfigError(f"train_by_fraction.{key}: {', '.join(clash)} are set by the grid")
        out[fraction] = dict(values)
    missing = [f for f in fractions if out and float(f) not in out]
    if missing:
        raise ConfigError(f"train_by_fraction: no entry for fraction(s) {', '.join(f'{f:g}' for f in missing)} "
                          f"(it has {', '.join(f'{f:g}' for f in out)})")
    return out


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
        return f"{self.task}/{slug(self.model)}/{slug(self.method)}-{self.labels}/f{self.fraction:g}-s{self.seed}"

    def run_dir(self, out_dir: Path) -> Path:
        return Path(out_dir) / self.key


def slug(text: str) -> str:
    """A folder-safe name: google/t5-v1_1-base -> google--t5-v1_1-base; tiny:d_model=64 -> tiny-d_model=64."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", str(text).replace("/", "--")).strip("-") or "model"


def effective_labels(method: str, labels: str) -> str:
    """standard fine-tuning is defined by gold labels and standard distillation by teacher labels."""
    return METHODS[parse_method(method)[0]].label_source(labels)


def grid(cfg: BenchConfig) -> list[Cell]:
    """All cells, deduplicated, seed-major so that a half-finished sweep already has whole curves."""
    cells: list[Cell] = []
    for task in cfg.tasks:
        for model in cfg.models:
            for seed in cfg.seeds:
                for fraction in cfg.fractions:
                    for labels in cfg.labels:
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


def parse_method(spec: str) -> tuple[str, dict]:
    """'dss:rationales_per_example=3,alpha=0.8' -> ('dss', {'rationales_per_example': '3', 'alpha': '0.8'})."""
    name, _, rest = str(spec).partition(":")
    if name not in METHOD_NAMES:
        raise ConfigError(f"methods: {spec!r}: {name!r} is not one of {', '.join(METHOD_NAMES)}")
    values = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"methods: {spec!r}: expected {name}:key=value,...")
        if key.strip() in GRID_KEYS:
            raise ConfigError(f"methods: {spec!r}: {key.strip()} is set by the grid")
        values[key.strip()] = value.strip()
    return name, values


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
    values.update(cfg.train_by_fraction.get(cell.fraction, {}))
    values.update(parse_model(cell.model))
    method, method_values = parse_method(cell.method)
    values.update(method_values)
    values.update(task=cell.task, method=method, labels=cell.labels, train_fraction=cell.fraction,
                  seed=cell.seed, output_dir=str(cell.run_dir(out_dir)))
    if cfg.data_dir:
        values["data_dir"] = cfg.data_dir
    if cfg.task_options:
        values["task_options"] = dict(cfg.task_options)
    return values


def train_config(cfg: BenchConfig, cell: Cell, out_dir: Path):
    from dss.student.config import TrainConfig
    return load_config(TrainConfig, None, cell_overrides(cfg, cell, out_dir))


def load_bench_config(yaml_path=None, overrides: dict | None = None) -> BenchConfig:
    """BenchConfig from YAML + overrides; `train.KEY=VALUE` overrides go into the per-cell `train` values (and
    `slurm.KEY=VALUE` into `slurm`)."""
    return load_sectioned(BenchConfig, yaml_path, overrides, ("train", "slurm"))
