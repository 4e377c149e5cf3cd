"""`dss bench --launcher slurm`: every pending cell of the sweep as one job of a Slurm job array, through
submitit (pip install 'dss[slurm]'). Each job runs `dss train --config <cell>/cell.yaml` (under `accelerate
launch --num_processes G` when a cell has G > 1 GPUs) in the shared sweep folder.

    slurm: {partition: gpu, time_min: 240, gpus_per_cell: 1, cpus_per_cell: 8, mem_gb: 64,
            sbatch: {account: myproj, qos: high}, setup: ["module load cuda"], wait: false}

Submitting returns at once (`wait: false`): the report is rebuilt from whatever cells have finished, and
running the same command again submits only the cells that are neither finished nor live. A cell is live
while its `dss train` holds the run folder's lock, or while Slurm lists its recorded job as pending or
running (sweep folder: slurm_jobs.json, the job ids per cell; slurm/, submitit's scripts and logs).
`cluster: local` runs the same jobs as local processes (submitit's LocalExecutor): how the tests run it.

A job (`CellJob`) may run any number of times: its cell.yaml says resume: true, so a job that Slurm requeues
(preemption, a node failure, the time limit through submitit's checkpoint()) continues from the cell's last
checkpoint; after a crash, rerunning the same `dss bench` command submits what is neither finished nor live.
"""
from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dss.core.config import check, field_, load_config
from dss.core.errors import ConfigError
from dss.core.io import atomic_write, read_json
from dss.core.processes import dies_with_this_process
from dss.student import run_folder

LIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED"}
JOBS_FILE = "slurm_jobs.json"


@dataclass
class SlurmConfig:
    cluster: str = field_("slurm", "slurm, or local (the same jobs as local processes)", choices=("slurm", "local"))
    partition: str | None = field_(None, "Slurm partition (--partition)")
    time_min: int = field_(240, "time limit per cell, minutes (--time)", min=1)
    gpus_per_cell: int = field_(1, "GPUs per cell (>1: the cell runs under accelerate launch)", min=0)
    cpus_per_cell: int = field_(8, "CPUs per cell (--cpus-per-task)", min=1)
    mem_gb: float | None = field_(None, "memory per cell in GB (--mem)", min=0.1)
    sbatch: dict = field_({}, "more sbatch options, e.g. {account: proj, qos: high, constraint: a100}")
    setup: list[str] = field_([], "shell lines run before the cell, e.g. 'module load cuda', "
                              "'source .venv/bin/activate'")
    wait: bool = field_(False, "wait for the submitted jobs (default: submit, report what has finished, return)")

    def __post_init__(self):
        check(self)


def slurm_config(values: dict) -> SlurmConfig:
    return load_config(SlurmConfig, None, dict(values or {}))


def executor(scfg: SlurmConfig, folder: Path, name: str):
    try:
        import submitit
    except ImportError:
        raise ConfigError("launcher slurm needs submitit: pip install 'dss[slurm]'") from None
    try:
        ex = submitit.AutoExecutor(folder=str(folder), cluster=scfg.cluster)
    except RuntimeError as e:  # no srun/sbatch: not a Slurm machine
        raise ConfigError(f"launcher slurm: {e} (submit from a Slurm login node, or set slurm.cluster=local to "
                          "run the cells as local processes)") from None
    params = {"timeout_min": scfg.time_min, "gpus_per_node": scfg.gpus_per_cell, "cpus_per_task": scfg.cpus_per_cell,
              "name": name, "slurm_setup": list(scfg.setup)}
    if scfg.partition:
        params["slurm_partition"] = scfg.partition
    if scfg.mem_gb:
        params["mem_gb"] = scfg.mem_gb
    if scfg.sbatch:
        params["slurm_additional_parameters"] = {str(k): v for k, v in scfg.sbatch.items()}
    ex.update_parameters(**params)
    return ex


def slurm_state(job_id: str, folder: Path) -> str:
    """Slurm's state of a recorded job (sacct, through submitit); UNKNOWN when it cannot say."""
    try:
        import submitit
        return str(submitit.SlurmJob(folder=str(folder), job_id=str(job_id)).state).split()[0].upper()
    except Exception:  # no sacct here, or the job is too old for the accounting database
        return "UNKNOWN"


def live_cells(cells, out_dir: Path, scfg: SlurmConfig) -> set:
    jobs = read_json(Path(out_dir) / JOBS_FILE) or {}
    live = set()
    for cell in cells:
        if run_folder.locked(cell.run_dir(out_dir)):
            live.add(cell)
        elif scfg.cluster == "slurm" and cell.key in jobs and \
                slurm_state(jobs[cell.key], Path(out_dir) / "slurm") in LIVE:
            live.add(cell)
    return live


class CellJob:
    """A cell's job: its `dss train` command, which continues from the cell's last checkpoint whenever it runs
    again (its cell.yaml says resume: true), so a job Slurm reruns as is (a requeue) goes on where it stopped.

    At the time limit, or when preempted with a signal, Slurm sends USR2 (submitit's --signal=USR2@90) and
    submitit's handler in this process calls checkpoint(): the same command is queued again. The handler then
    exits out of __call__'s wait, which stops the training first (its checkpoints stay)."""

    def __init__(self, command: list[str], cwd: str):
        self.command, self.cwd = list(command), cwd

    def __call__(self) -> None:
        print("+ " + " ".join(self.command), flush=True)
        dies = dies_with_this_process()

        def child_setup():
            dies()
            # Slurm signals every process of the job; the decision to requeue is this process's (checkpoint())
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)

        proc = subprocess.Popen(self.command, cwd=self.cwd, preexec_fn=child_setup)
        try:
            rc = proc.wait()
        finally:
            stop(proc)
        if rc != 0:
            raise RuntimeError(f"`{' '.join(self.command)}` exited with status {rc}")

    def checkpoint(self):
        from submitit.helpers import DelayedSubmission
        return DelayedSubmission(CellJob(self.command, self.cwd))


def stop(proc: subprocess.Popen, grace_s: float = 60.0) -> None:
    """SIGTERM (dss train stops, its lock released), then SIGKILL if it is still alive after grace_s: within
    the 90 s Slurm leaves between USR2 and its own kill."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def submit(cfg, todo, out_dir: Path, command, log=print) -> list:
    """Submit the cells of `todo` that are not live as one job array; `command(cell)` prepares a cell and
    returns its `dss train` command (called for the submitted cells only: a live cell's folder is left alone).
    Returns the submitted jobs."""
    scfg = slurm_config(cfg.slurm)
    live = live_cells(todo, out_dir, scfg)
    if live:
        log(f"dss bench: {len(live)} cell(s) still pending or running, not submitted again "
            f"(e.g. {sorted(c.key for c in live)[0]})")
    pending = [c for c in todo if c not in live]
    if not pending:
        return []
    ex = executor(scfg, Path(out_dir) / "slurm", f"dss-{Path(out_dir).name}")
    cell_jobs = [CellJob(command(c), str(Path.cwd())) for c in pending]
    with ex.batch():  # one job array on Slurm
        jobs = [ex.submit(job) for job in cell_jobs]
    ids = read_json(Path(out_dir) / JOBS_FILE) or {}
    ids.update({c.key: str(j.job_id) for c, j in zip(pending, jobs)})
    atomic_write(Path(out_dir) / JOBS_FILE, json.dumps(ids, indent=2))
    log(f"dss bench: submitted {len(jobs)} cell(s) to {scfg.cluster} (jobs {jobs[0].job_id} ...); rerun the same "
        "command to rebuild the report from the finished cells and submit what is left")
    if scfg.wait:
        for cell, job in zip(pending, jobs):
            try:
                job.result()
            except Exception as e:  # the cell's own log is in slurm/; the next run resubmits it
                log(f"dss bench: cell {cell.key} (job {job.job_id}) failed: {str(e).strip().splitlines()[-1:]}")
    return jobs
