"""`dss bench --launcher slurm` through submitit: local jobs (real subprocesses) that train the cells in the
shared sweep folder, resubmission of only unfinished and not-live cells, the sbatch script a Slurm cluster
would get (a fake `sbatch`/`srun`/`sacct` on PATH that record what they are given), and a cell's job that
continues from its checkpoint whenever it is rerun (a requeue) and requeues itself at the time limit."""
from __future__ import annotations

import fcntl
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from test_resume import comparable, crash_at

from dss.bench import report
from dss.bench.slurm import CellJob
from dss.commands.cli import main

pytest.importorskip("submitit")

TINY = ["train.max_steps=2", "train.batch_size=4", "train.eval_steps=2", "train.max_eval_examples=4",
        "train.d_model=16", "train.heads=2", "train.d_ff=32", "train.layers=1", "train.vocab_size=120",
        "train.tensorboard=false", "train.threads=1"]


def argv(data, sweep, *extra):
    return ["bench", "--tasks", "cqa", "--methods", "standard,dss", "--fractions", "1", "--seeds", "0",
            "--data-dir", str(data), "--output-dir", str(sweep), "--launcher", "slurm", *TINY, *extra]


@pytest.mark.slow
def test_local_jobs_train_the_cells_and_a_rerun_submits_only_what_is_left(tiny_cqa_dir, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    assert main(argv(tiny_cqa_dir, sweep, "slurm.cluster=local", "slurm.wait=true")) == 0
    rows = report.read_csv(sweep / "results.csv")
    assert sorted(r["method"] for r in rows) == ["dss", "standard"]
    jobs = json.loads((sweep / "slurm_jobs.json").read_text())
    assert set(jobs) == {"cqa/tiny/standard-gold/f1-s0", "cqa/tiny/dss-gold/f1-s0"}
    capsys.readouterr()
    assert main(argv(tiny_cqa_dir, sweep, "slurm.cluster=local", "slurm.wait=true")) == 0
    assert "0 to train" in capsys.readouterr().out and json.loads((sweep / "slurm_jobs.json").read_text()) == jobs
    (sweep / "cqa/tiny/dss-gold/f1-s0/results.json").unlink()  # one cell lost its result: only it goes again
    assert main(argv(tiny_cqa_dir, sweep, "slurm.cluster=local", "slurm.wait=true")) == 0
    again = json.loads((sweep / "slurm_jobs.json").read_text())
    assert again["cqa/tiny/standard-gold/f1-s0"] == jobs["cqa/tiny/standard-gold/f1-s0"]
    assert again["cqa/tiny/dss-gold/f1-s0"] != jobs["cqa/tiny/dss-gold/f1-s0"]
    assert len(report.read_csv(sweep / "results.csv")) == 2


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch answers "Submitted batch job 4242" and records its script; sacct says job 4242's tasks run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "sbatch": f'#!/bin/sh\necho "$@" >> {bin_dir}/sbatch.calls\necho "Submitted batch job 4242"\n',
        "srun": "#!/bin/sh\nexit 0\n",
        "sacct": "#!/bin/sh\nprintf 'JobID|State|NodeList\\n4242_0|RUNNING|n1\\n4242_1|PENDING|None\\n'\n",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_the_sbatch_script_and_a_live_array_is_not_submitted_twice(tiny_cqa_dir, tmp_path, fake_slurm, capsys):
    from submitit.core.utils import DelayedSubmission
    sweep = tmp_path / "sweep"
    extra = ["slurm.partition=gpu", "slurm.gpus_per_cell=2", "slurm.time_min=90", "slurm.sbatch={account: proj}",
             "slurm.setup=[module load cuda]"]
    assert main(argv(tiny_cqa_dir, sweep, *extra)) == 0
    (script_path,) = (fake_slurm / "sbatch.calls").read_text().split()
    script = open(script_path).read()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2", "#SBATCH --time=90",
                 "#SBATCH --account=proj", "#SBATCH --array=0-1", "module load cuda"):
        assert line in script, line
    job = DelayedSubmission.load(sweep / "slurm" / "4242_0_submitted.pkl").function
    assert job.command[1:5] == ["-m", "accelerate.commands.launch", "--num_processes", "2"]
    assert job.command[-3:-1] == ["train", "--config"] and job.command[-1].endswith("f1-s0/cell.yaml")
    assert "No finished cells yet" in (sweep / "results.md").read_text()
    capsys.readouterr()
    assert main(argv(tiny_cqa_dir, sweep, *extra)) == 0  # sacct: both tasks pending or running
    assert "2 cell(s) still pending or running" in capsys.readouterr().out
    assert len((fake_slurm / "sbatch.calls").read_text().split()) == 1


def test_a_cell_whose_run_is_locked_is_not_submitted(tiny_cqa_dir, tmp_path, fake_slurm, capsys):
    sweep = tmp_path / "sweep"
    run = sweep / "cqa/tiny/dss-gold/f1-s0"
    run.mkdir(parents=True)
    with open(run / ".lock", "a+") as fh:  # a `dss train` of this cell is writing it now
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert main(argv(tiny_cqa_dir, sweep, "slurm.partition=gpu")) == 0
    assert "1 cell(s) still pending or running" in capsys.readouterr().out
    assert list(json.loads((sweep / "slurm_jobs.json").read_text())) == ["cqa/tiny/standard-gold/f1-s0"]


def test_no_slurm_here_is_a_clear_error(tiny_cqa_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun, no sbatch
    assert main(argv(tiny_cqa_dir, tmp_path / "sweep")) == 2
    assert "slurm.cluster=local" in capsys.readouterr().err


def submitted(sweep: Path) -> list[CellJob]:
    """The cells' jobs as fake sbatch got them (job array 4242), in array order."""
    from submitit.core.utils import DelayedSubmission
    return [DelayedSubmission.load(sweep / "slurm" / f"4242_{k}_submitted.pkl").function for k in range(2)]


def same_rows(sweep: Path) -> list[dict]:
    rows = report.read_csv(sweep / "results.csv")
    timing = ("run_dir", "seconds", "cpu_seconds", "examples_per_second")
    return [{k: v for k, v in r.items() if k not in timing} for r in rows]


@pytest.mark.slow
def test_a_killed_cell_job_rerun_as_is_continues_and_the_report_is_the_uninterrupted_one(
        tiny_cqa_dir, tmp_path, fake_slurm, capfd):
    steps = ["train.max_steps=6", "train.eval_steps=2", "train.dropout=0.1", "train.eval_max_new_tokens=8"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert main(argv(tiny_cqa_dir, full, *steps)) == 0
    for job in submitted(full):
        job()
    assert main(argv(tiny_cqa_dir, full, *steps)) == 0  # sacct: still listed; the report holds both cells

    assert main(argv(tiny_cqa_dir, cut, *steps)) == 0
    killed, other = submitted(cut)
    with pytest.MonkeyPatch.context() as mp:  # the job is killed after its step-2 checkpoint
        crash_at(mp, 4)
        assert main(killed.command[killed.command.index("train"):]) == 130
    run = Path(killed.command[-1]).parent
    assert (run / "checkpoints" / "step_00000002").is_dir() and not (run / "results.json").exists()
    capfd.readouterr()
    killed()  # what a requeue does: the same command, as it was submitted
    assert f"resuming {run} from step 2" in capfd.readouterr().err
    other()
    assert main(argv(tiny_cqa_dir, cut, *steps)) == 0

    assert same_rows(cut) == same_rows(full) and len(same_rows(cut)) == 2
    for job in submitted(full):
        cell = Path(job.command[-1]).parent.relative_to(full)
        assert comparable(cut / cell) == comparable(full / cell)


def test_at_the_time_limit_a_cell_job_stops_its_training_and_requeues_the_same_command(tmp_path):
    import submitit
    from submitit.core.utils import DelayedSubmission
    log = tmp_path / "attempts"
    script = tmp_path / "train.py"  # stands in for `dss train`: the first attempt outlives the time limit
    script.write_text("import os, signal, sys, time\n"
                      "with open(sys.argv[1], 'a') as fh:\n"
                      "    fh.write(f'{os.getpid()} {signal.getsignal(signal.SIGUSR2) == signal.SIG_IGN}\\n')\n"
                      "if len(open(sys.argv[1]).read().splitlines()) == 1:\n"
                      "    time.sleep(300)\n")
    command = [sys.executable, str(script), str(log)]
    ex = submitit.LocalExecutor(folder=tmp_path / "slurm")
    ex.update_parameters(timeout_min=12 / 60, signal_delay_s=4)  # USR2 after 8 s, as Slurm's --signal does
    job = ex.submit(CellJob(command, str(tmp_path)))
    job.result()
    attempts = [line.split() for line in log.read_text().splitlines()]
    assert len(attempts) == 2  # stopped at the time limit, requeued, finished
    assert all(ignored == "True" for _, ignored in attempts)  # Slurm's USR2 to every process does not kill it
    assert not os.path.exists(f"/proc/{attempts[0][0]}")  # the first attempt was stopped, not left running
    assert "this job is timed-out" in job.stderr() and "Requeued job" in job.stdout()
    requeued = DelayedSubmission.load(job.paths.submitted_pickle).function
    assert isinstance(requeued, CellJob) and requeued.command == command
