"""Running a sweep: each cell's status (done, todo, or made with other data or settings), training this
shard's unfinished cells (in-process, `--jobs N` workers, or as `dss train` / `accelerate launch` processes),
and the report: results.csv, results.md and the figures from every finished cell of the grid.

    run_sweep(cfg)        # train what is left, then write the report

A cell is finished when `<cell>/results.json` holds the accuracies *and* its config.json records this sweep's
resolved settings and data fingerprint: rerunning a killed sweep trains only the cells that never finished,
and a cell made otherwise is never reused (refused, or retrained with retrain_changed).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from dss.bench import report
from dss.bench.grid import BenchConfig, Cell, grid, parse_model, shard_cells, train_config
from dss.bench.workers import run_parallel
from dss.core.config import to_dict
from dss.core.errors import ConfigError
from dss.core.io import atomic_write, read_json
from dss.core.processes import dies_with_this_process
from dss.student import run_folder


# ------------------------------------------------------------------------------------------ cell status
class Fingerprints:
    """Data fingerprints per distinct data source of the cells, computed once and only when a cell needs one."""

    def __init__(self):
        self.cache: dict[str, str] = {}

    def __call__(self, tcfg) -> str:
        key = json.dumps([tcfg.task, tcfg.data_dir, tcfg.task_options, tcfg.rationales], sort_keys=True,
                         default=str)
        if key not in self.cache:
            from dss.student.data import data_fingerprint
            self.cache[key] = data_fingerprint(tcfg)
        return self.cache[key]


def cell_status(cell: Cell, tcfg, out_dir: Path, fingerprint) -> tuple[str, list[str]]:
    """("done" | "todo" | "changed", what changed). A cell is done only when it finished with this sweep's
    resolved training settings on data with the same content; a started or finished cell made otherwise is
    "changed" (never reused, never resumed)."""
    run_dir = cell.run_dir(out_dir)
    finished = run_folder.read_results(run_dir) is not None
    if not finished and not list((run_dir / "checkpoints").glob("step_*")):
        return "todo", []  # nothing of it is reused: training starts over
    changes = run_folder.identity_changes(run_folder.read_config(run_dir), to_dict(tcfg), fingerprint(tcfg))
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


def prepare_cell(cell: Cell, out_dir: Path, tcfg) -> None:
    """A cell about to be trained, by any launcher: a stale results.json goes and an overwrite
    (--retrain-changed) is done now, once. Then the cell's config says resume=true, so its command continues
    from the last checkpoint whenever it runs again (a killed sweep rerun, a requeued Slurm job) and starts
    at step 0 when there is none; it still refuses a run made with other settings."""
    run_dir = cell.run_dir(out_dir)
    if (run_dir / "results.json").exists():  # unreadable or incomplete (cf. read_results): not a result
        (run_dir / "results.json").unlink()
    if tcfg.overwrite:
        with run_folder.run_lock(run_dir):  # never under a `dss train` that still writes it
            run_folder.clear_run(run_dir)
    tcfg.overwrite, tcfg.resume = False, True


def cell_command(cfg: BenchConfig, cell: Cell, out_dir: Path, tcfg) -> list[str]:
    """The `dss train` command of a cell run as its own process, its config written to <cell>/cell.yaml."""
    prepare_cell(cell, out_dir, tcfg)
    cell_yaml = cell.run_dir(out_dir) / "cell.yaml"
    atomic_write(cell_yaml, yaml.safe_dump(to_dict(tcfg), sort_keys=False))
    return launch_command(cfg, cell_yaml)


def run_cell(cfg: BenchConfig, cell: Cell, out_dir: Path, tcfg, train_fn: TrainFn | None = None) -> dict:
    """Train one cell (its TrainConfig `tcfg`) and return its results; the cell's results.json is the record."""
    run_dir = cell.run_dir(out_dir)
    if cfg.launcher == "inprocess":
        prepare_cell(cell, out_dir, tcfg)
        if train_fn is None:
            from dss.student.loop import train as train_fn
        results = train_fn(tcfg)
        if run_folder.read_results(run_dir) is None and isinstance(results, dict):
            atomic_write(run_dir / "results.json", json.dumps(results, indent=2))
    else:
        cmd = cell_command(cfg, cell, out_dir, tcfg)
        print("+ " + " ".join(cmd), flush=True)
        rc = subprocess.call(cmd, preexec_fn=dies_with_this_process())  # never an orphan that trains on
        if rc != 0:
            raise RuntimeError(f"cell {cell.key}: `{' '.join(cmd)}` exited with status {rc}")
    results = run_folder.read_results(run_dir)
    if results is None:
        raise RuntimeError(f"cell {cell.key}: training returned but {run_dir}/results.json is missing or "
                           f"lacks {', '.join(run_folder.REQUIRED_RESULTS)}")
    return results


def launch_command(cfg: BenchConfig, cell_yaml: Path) -> list[str]:
    gpus = 1
    if cfg.launcher == "slurm":
        from dss.bench.slurm import slurm_config
        gpus = slurm_config(cfg.slurm).gpus_per_cell
    if cfg.launcher == "accelerate" or gpus > 1:
        procs = ["--num_processes", str(gpus)] if gpus > 1 else []
        # `accelerate launch` of this interpreter's environment, whatever PATH the job has
        return [sys.executable, "-m", "accelerate.commands.launch", *procs, *cfg.launch_args, "-m", "dss", "train",
                "--config", str(cell_yaml)]
    return [sys.executable, "-m", "dss", "train", "--config", str(cell_yaml)]


def preflight(cfg: BenchConfig) -> None:
    """Fail before the first cell, with one message naming everything missing (a train split, a hub student,
    a GPU, a train split smaller than the sweep needs), instead of failing in every cell."""
    problems = [p for p in (*_data_problems(cfg), *_student_problems(cfg)) if p]
    if cfg.device == "cuda" and cfg.launcher != "slurm":  # a Slurm sweep's GPUs are on the compute nodes
        import torch
        if not torch.cuda.is_available():
            problems.append("no CUDA GPU here (this sweep sets device: cuda)")
    if problems:
        raise ConfigError(f"sweep {cfg.name or cfg.out_dir()} cannot run here:\n" +
                          "\n".join(f"  - {p}" for p in problems))


def _data_problems(cfg: BenchConfig):
    from dss.tasks import get_task
    for task_name in cfg.tasks:
        task = get_task(task_name, **(cfg.task_options if task_name == "custom" else {}))
        try:
            n = len(task.load("train", cfg.data_dir))
        except ValueError as e:  # ConfigError or DataError: the loader's message names the files and the hub
            yield f"{task_name} train: {str(e).splitlines()[0]}"
            continue
        need = cfg.min_train_rows.get(task_name, 0)
        if n < need:
            yield (f"{task_name} train has {n:,} rows here, the sweep needs {need:,} (the full split: the hub, "
                   "or `dss data download` for the full release)")


def _student_problems(cfg: BenchConfig):
    for model in cfg.models:
        spec = parse_model(model)["model"]
        if spec == "tiny" or Path(spec).exists():
            continue
        try:
            from transformers import AutoConfig
            AutoConfig.from_pretrained(spec, trust_remote_code=False)
        except Exception as e:
            from dss.student.model import load_problem
            yield f"student {spec!r}: {load_problem(spec, e)} ({type(e).__name__}: {str(e).splitlines()[0][:150]})"


# ------------------------------------------------------------------------------------------- the sweep
def run_sweep(cfg: BenchConfig, train_fn: TrainFn | None = None, argv: list[str] | None = None,
              plot: bool = True, log=print, make_config=train_config) -> dict:
    """Train this shard's unfinished cells, then rewrite results.csv / results.md / curves.png from every
    finished cell of the grid. Returns {"trained": [...], "skipped": [...], "failed": [...], "rows": [...]}."""
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
    if cfg.launcher == "slurm" and todo:
        from dss.bench import slurm
        slurm.submit(cfg, todo, out_dir, lambda c: cell_command(cfg, c, out_dir, configs[c]), log)
        todo = []  # the jobs train them; the report below holds what has finished
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
        log(f"dss bench: [{k}/{len(todo)}] {cell.key}: valid {report.pct(res['valid_accuracy'])}  "
            f"test {report.pct(res['test_accuracy'])}  ({timing['seconds']:.0f} s, {timing['cpu_seconds']:.0f} CPU s)")
    rows = report_rows(cfg, cells, configs, out_dir, log)
    write_report(out_dir, rows, title=cfg.name or out_dir.name, plot=plot)
    return {"trained": trained, "skipped": skipped, "failed": failed, "rows": rows, "out_dir": out_dir}


def dry_run(cfg: BenchConfig) -> list[str]:
    """What this shard would do, a line per cell (done, todo, or changed and what changed), and a count."""
    out_dir, cells = cfg.out_dir(), grid(cfg)
    mine = shard_cells(cells, cfg.shard)
    status = sweep_status(mine, {c: train_config(cfg, c, out_dir) for c in mine}, out_dir)
    lines = [f"{status[c][0]:<8} {c.key}" + (f"  ({'; '.join(status[c][1])})" if status[c][1] else "") for c in mine]
    counts = {s: sum(v[0] == s for v in status.values()) for s in ("done", "todo", "changed")}
    return lines + [f"{len(mine)} of {len(cells)} cells in shard {cfg.shard}: " +
                    ", ".join(f"{n} {s}" for s, n in counts.items())]


def report_only(cfg: BenchConfig) -> list[dict]:
    """Rewrite results.csv, results.md and the figures from the finished cells; train nothing."""
    out_dir, cells = cfg.out_dir(), grid(cfg)
    rows = report_rows(cfg, cells, {c: train_config(cfg, c, out_dir) for c in cells}, out_dir)
    write_report(out_dir, rows, title=cfg.name or out_dir.name)
    return rows


def report_rows(cfg: BenchConfig, cells: list[Cell], configs: dict, out_dir: Path, log=print) -> list[dict]:
    """The report's rows: every finished cell of the grid (all shards) made with this sweep's data and
    settings; a finished cell made otherwise is left out, and said so."""
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


def _run_cells(cfg, todo, out_dir, configs, train_fn, log):
    """Yield (cell, (results, seconds) or the exception) as cells finish, `cfg.jobs` at a time."""
    if cfg.jobs == 1 or len(todo) <= 1:
        for k, cell in enumerate(todo, 1):
            log(f"dss bench: [{k}/{len(todo)}] training {cell.key}")
            yield cell, _timed_cell(cfg, cell, out_dir, configs[cell], train_fn)
        return
    yield from run_parallel(todo, lambda cell: _timed_cell(cfg, cell, out_dir, configs[cell], train_fn),
                            cfg.jobs, log)


# ------------------------------------------------------------------------------------------- the rows
def count_params(run_dir: Path, results: dict) -> int | None:
    """The student's parameter count: as the trainer recorded it, else (older runs) from the saved model's
    safetensors headers (no torch needed)."""
    recorded = run_folder.read_parameters(run_dir, results)
    files = sorted((Path(run_dir) / "model").glob("*.safetensors"))
    if recorded is not None or not files:
        return recorded
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return total


def collect(cfg: BenchConfig, cells: list[Cell], out_dir: Path) -> list[dict]:
    """One CSV row per finished cell of the grid (all shards), with chance and teacher accuracy."""
    facts: dict[str, dict] = {}
    rows = []
    for cell in cells:
        run_dir = cell.run_dir(out_dir)
        res = run_folder.read_results(run_dir)
        if res is None:
            continue
        n_test = res.get("test_examples")
        if (cell.task, n_test) not in facts:
            facts[cell.task, n_test] = report.task_facts(cell.task, cfg.data_dir, cfg.task_options, n_test,
                                                  cfg.train.get("rationales"))
        try:
            timing = json.loads((run_dir / "bench_cell.json").read_text())
        except (OSError, ValueError):
            timing = {}
        rows.append({"task": cell.task, "method": cell.method, "labels": cell.labels, "model": cell.model,
                     "fraction": cell.fraction, "seed": cell.seed, "train_examples": res.get("train_examples"),
                     "valid_accuracy": res["valid_accuracy"], "test_accuracy": res["test_accuracy"],
                     "test_accuracy_last": res.get("test_accuracy_last"),
                     "best_step": res.get("best_step"), "params": count_params(run_dir, res),
                     "examples_per_second": res.get("examples_per_second"), "seconds": timing.get("seconds"),
                     "cpu_seconds": timing.get("cpu_seconds"),
                     "test_examples": n_test, **facts[cell.task, n_test],
                     **teacher_spend(cfg.train.get("rationales"), run_dir), "run_dir": str(run_dir)})
    return rows


def teacher_spend(rationales, run_dir: Path) -> dict:
    """What the teacher's answers to a cell's train subset cost (requests, tokens, USD at the list price of the
    model its records name), where the cells train on a `dss extract` file; empty otherwise (the released
    answers recorded no usage)."""
    ids = (read_json(Path(run_dir) / "splits.json") or {}).get("train")
    if not rationales or ids is None:
        return {}
    from dss.tasks.rationales import read_rationale_file
    from dss.teacher.cost import answers_spend
    spend = answers_spend(read_rationale_file(rationales), set(ids))
    return {"teacher_requests": spend["requests"], "teacher_tokens": spend["tokens"],
            "teacher_cost_usd": spend["cost_usd"]}


def write_report(out_dir: Path, rows: list[dict], title: str = "", plot: bool = True) -> list[Path]:
    """results.csv, results.md and (unless plot=False) the figures, all written atomically."""
    out_dir = Path(out_dir)
    atomic_write(out_dir / "results.csv", report.rows_to_csv(rows))
    atomic_write(out_dir / "results.md", report.markdown(rows, title))
    written = [out_dir / "results.csv", out_dir / "results.md"]
    if plot and rows:
        from dss.bench.plot import plot_sweep  # matplotlib only when figures are drawn
        written += plot_sweep(rows, out_dir)
    return written
