"""configs/accelerate/: each file loads as Accelerate reads it, turns into the launch environment `accelerate
launch` would give the processes, and names in its first comment a launch command whose dss part parses."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))


def test_there_are_ddp_multinode_and_fsdp_configs():
    assert {f.stem for f in FILES} >= {"ddp", "ddp-2nodes", "fsdp-t5"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_config_loads_and_launches_as_accelerate_would(path, monkeypatch):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    from dss.commands.cli import build_parser
    first = path.read_text().splitlines()[0]
    assert first.startswith(f"# accelerate launch --config_file configs/accelerate/{path.name} ")
    words = shlex.split(first[2:].replace("$NODE_RANK", "0").replace("$MASTER_ADDR", "127.0.0.1"))
    cfg = load_config_from_file(str(path))  # unknown top-level keys are an error here
    monkeypatch.chdir(ROOT)
    args = launch_command_parser().parse_args(words[2:])
    args, _, _ = _validate_launch_command(args)
    env = prepare_multi_gpu_env(args)
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    assert args.num_processes == cfg.num_processes and int(args.nproc_per_node) * cfg.num_machines == cfg.num_processes
    dss_args = build_parser().parse_args(words[words.index("dss") + 1:])
    assert dss_args.command == "train"
    if cfg.distributed_type.value == "FSDP":
        from accelerate.utils import FullyShardedDataParallelPlugin
        from transformers.models.t5 import modeling_t5
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == 2 and plugin.transformer_cls_names_to_wrap == ["T5Block"]
        assert hasattr(modeling_t5, "T5Block")  # the wrapped layer class exists under that name
