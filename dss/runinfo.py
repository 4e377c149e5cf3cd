"""What a run folder records about how it was made: resolved config, git commit, versions, a rerun command."""
from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path

from dss.core.config import to_dict

REPO = Path(__file__).resolve().parent.parent


def git_commit() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10,
                                  check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version()}
    for name in ("dss", "torch", "transformers", "accelerate", "sentencepiece", "tokenizers", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def rerun_command(cfg, command: str = "dss train") -> str:
    """`dss train key=value ...` with every value that differs from the default."""
    base = to_dict(type(cfg)())
    # lr and warmup_steps default to values derived from model / max_steps / warmup_ratio
    auto = to_dict(type(cfg)(model=cfg.model, max_steps=cfg.max_steps, warmup_ratio=cfg.warmup_ratio))
    parts = []
    for k, v in to_dict(cfg).items():
        if k in ("resume", "overwrite") or v == (auto if k in ("lr", "warmup_steps") else base)[k]:
            continue
        parts.append(f"{k}={json.dumps(v) if isinstance(v, (dict, list)) else v}")
    return " ".join([command] + [shlex.quote(p) for p in parts])


def run_info(cfg, stats: dict, num_processes: int) -> dict:
    import torch

    from dss.run_folder import PROTOCOL
    return {"config": to_dict(cfg), "seed": cfg.seed, "protocol": PROTOCOL, "git": git_commit(),
            "torch_threads": torch.get_num_threads(), "versions": versions(),
            "num_processes": num_processes, "data": stats, "argv": sys.argv,
            "rerun": rerun_command(cfg) + " overwrite=true"}
