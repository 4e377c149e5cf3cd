"""`dss bench --launcher slurm` through submitit: local jobs (real subprocesses) that train the cells in the
shared sweep folder, resubmission of only unfinished and not-live cells, and the sbatch script a Slurm cluster
would get (a fake `sbatch`/`srun`/`sacct` on PATH that record what they are given)."""
from __future__ import annotations

import fcntl
import json
import os
import stat

import pytest

from dss.bench import report
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
