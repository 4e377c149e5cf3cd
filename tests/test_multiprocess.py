"""`torchrun --nproc_per_node 2` on CPU (gloo): it completes, only the main process writes, and its losses
match a 1-process run with the same global batch (the loss is normalised by the step's global token counts).
dss-shared runs past DDP's forward and sums its gradients itself: the same check covers it. Several processes
must share the run folder (several nodes: one filesystem), which every `dss train` checks first."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import read_jsonl, tiny_args

from dss.commands.cli import main
from dss.core.errors import ConfigError
from dss.student import run_folder as RF

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", ["dss", "dss-shared"])
def test_two_cpu_processes_match_one(tiny_cqa_dir, tmp_path, method):
    # dropout off: the two processes draw different dropout masks than one process would; fp32: in bf16 a row's
    # rounding depends on the batch it is padded with, which differs between the two layouts
    args = ["--method", method, "--max-steps", "4", "--eval-steps", "4", "--dropout", "0", "--eval-max-new-tokens", "8",
            "--mixed-precision", "no"]
    two, one = tmp_path / "two", tmp_path / "one"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "dss",
                           *tiny_args(tiny_cqa_dir, two, *args)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run folder:") == 1  # the summary is printed by the main process only
    assert main(tiny_args(tiny_cqa_dir, one, *args)) == 0

    assert json.loads((two / "config.json").read_text())["num_processes"] == 2
    assert json.loads((two / "results.json").read_text())["num_processes"] == 2
    m1, m2 = read_jsonl(one / "metrics.jsonl"), read_jsonl(two / "metrics.jsonl")
    assert [r["step"] for r in m2] == [r["step"] for r in m1]  # one line per event: nobody else wrote
    for a, b in zip(m1, m2):
        for k in ("loss", "label_loss", "rationale_loss"):
            if k in a:
                assert b[k] == pytest.approx(a[k], rel=1e-4), (a["step"], k)
    assert len(read_jsonl(two / "predictions.jsonl")) == 10
    # both processes saved their RNG state into the one checkpoint; nothing else was written twice
    assert sorted(p.name for p in (two / "checkpoints" / "step_00000004").glob("random_states_*")) == \
        ["random_states_0.pkl", "random_states_1.pkl"]


def _check_in(rank: int, folders: list, port: int, answers) -> None:
    """One of two gloo processes: RF.check_shared on its own view of the run folder."""
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        RF.check_shared(folders[rank], settle_s=0.5)
        answers.put((rank, None))
    except ConfigError as e:
        answers.put((rank, str(e)))
    finally:
        dist.destroy_process_group()


def check_in_two(folders) -> dict:
    import multiprocessing
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("fork")
    answers = ctx.Queue()
    procs = [ctx.Process(target=_check_in, args=(rank, folders, port, answers)) for rank in range(2)]
    for p in procs:
        p.start()
    out = dict(answers.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    return out


def test_every_process_must_see_the_run_folder_of_the_main_one(tmp_path):
    shared = tmp_path / "run"
    shared.mkdir()
    assert check_in_two([shared, shared]) == {0: None, 1: None}
    assert list(shared.iterdir()) == []  # the token is gone again
    # rank 1 on a node where output_dir is another (node-local) folder
    (tmp_path / "node2").mkdir()
    answers = check_in_two([shared, tmp_path / "node2"])
    assert answers[0] == answers[1] and answers[0].startswith(f"{shared}: rank 1 on ")
    assert "needs output_dir on one filesystem shared by all of them" in answers[0]
