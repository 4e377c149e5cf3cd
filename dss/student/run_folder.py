"""The run folder: the one owner of its files, their names and fields. Only the main process writes.

    config.json        how the run was made: resolved config, seed, data fingerprint, protocol, git commit,
                       versions, threads, a rerun command (`run_info`); what resume and sweeps compare
    metrics.jsonl      one line per log/eval step (`append_metrics`; `repair_metrics` on resume)
    results.json       the outcome (`write_results` / `read_results`)
    predictions.jsonl  test predictions (`write_predictions`)
    splits.json        the ids of the examples used: train (the subset), valid, test (`write_splits`)
    model/             the best student, with dss.json: how to build its inputs (`save_student` / `student_info`)
    adapter/           a LoRA student's adapter alone (model/ holds it merged)
    export-ct2/        the student converted by `dss export` (export-ct2-int8/: int8 weights); dss.student.export
    checkpoints/       the latest full training states, each file verifiable (dss.student.checkpoints)
    .lock              held while a process writes (`run_lock`; .lock.held where flock does not work)
    tokenizer/ cache/ tb/
"""
from __future__ import annotations

import json
import os
import platform
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from dss.core import locks
from dss.core.config import to_dict
from dss.core.errors import ConfigError, DataError
from dss.core.io import append_line, atomic_dir, atomic_write, atomic_write_json, read_json

LOCK = ".lock"
METRICS = "metrics.jsonl"
# Bump when a fix changes what training computes for the same settings: runs (and sweep cells) trained
# before it no longer count as the same run. 2: every epoch has its own batch order (it had one for all).
# 3: fast_kernels (on by default) draws dropout's masks another way. 4: on CPUs fast_kernels runs T5's eager
# attention (other rounding, and attention dropout drawn by another kernel).
PROTOCOL = 4
# config keys that cannot change what is trained or measured (data_dir: the data's content is fingerprinted)
VOLATILE = ("output_dir", "resume", "overwrite", "data_dir", "tensorboard", "report_to", "log_steps",
            "keep_checkpoints", "force_fp16")
REQUIRED_RESULTS = ("valid_accuracy", "test_accuracy")
# what a started run leaves in its folder (the token cache is not listed: it is keyed by content), and the
# exports `dss export` puts beside model/, which a fresh start makes stale
RUN_FILES = ("checkpoints", "model", "adapter", "tokenizer", "tb", "metrics.jsonl", "results.json", "config.json",
             "predictions.jsonl", "splits.json", "export-ct2", "export-ct2-int8")


def refuse_links(run: Path) -> None:
    """Before a fresh start or overwrite clears RUN_FILES: none of them may be a symbolic link (say checkpoints/
    put on another disk). Clearing would delete the link, not what it points to, so the run's files would
    quietly leave that disk; shutil.rmtree refuses links anyway."""
    for name in RUN_FILES:
        path = Path(run) / name
        if path.is_symlink():
            raise ConfigError(f"{path} is a symbolic link (to {os.readlink(path)}); dss train clears a run's files "
                              "on a fresh start or overwrite and does not remove links: remove it, or train into "
                              "a folder of real files (output_dir=...)")


def clear_run(run: Path) -> None:
    """Remove a run's files for a fresh start (the token cache stays: it is keyed by content)."""
    refuse_links(run)
    for name in RUN_FILES:
        path = Path(run) / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def read_results(run: Path) -> dict | None:
    """results.json of a finished run, or None (absent, half-written by a killed run, or incomplete)."""
    res = read_json(Path(run) / "results.json")
    if not isinstance(res, dict) or any(res.get(k) is None for k in REQUIRED_RESULTS):
        return None
    return res


def read_config(run: Path) -> dict | None:
    """config.json: the resolved config, the data fingerprint and the protocol the run was made with."""
    info = read_json(Path(run) / "config.json")
    return info if isinstance(info, dict) else None


def trained_config(run: Path):
    """The TrainConfig a finished run was trained with (its config.json, without the run-control flags resume
    and overwrite), to load its student as it was trained; None when the folder has no config.json."""
    from dss.core.config import load_config
    from dss.student.config import TrainConfig
    stored = read_config(run)
    if stored is None:
        return None
    values = {k: v for k, v in stored["config"].items() if k not in ("resume", "overwrite")}
    return load_config(TrainConfig, None, values)


def identity_changes(stored: dict | None, config: dict, fingerprint: str | None) -> list[str]:
    """How the run recorded in `stored` (config.json) differs from one with `config` on data `fingerprint`:
    ["lr: 0.001 -> 0.01", "data: content changed", ...]; [] when it is the same run. A fingerprint of None
    skips the data check."""
    if not stored or not isinstance(stored.get("config"), dict):
        return ["no config.json: settings unknown"]
    out = []
    if stored.get("protocol", 1) != PROTOCOL:
        out.append(f"trained by an older dss (protocol {stored.get('protocol', 1)}, now {PROTOCOL})")
    old = stored["config"]
    added = setting_defaults()
    for key in sorted(set(old) | set(config)):
        if key not in old and key in added and config.get(key) == added[key]:
            continue  # a setting added after this run was made, at its default: the behaviour it had then
        if key not in VOLATILE and old.get(key) != config.get(key):
            out.append(f"{key}: {old.get(key)!r} -> {config.get(key)!r}")
    old_fp = (stored.get("data") or {}).get("fingerprint")
    if fingerprint is not None and old_fp != fingerprint:
        out.append(f"data: content changed (fingerprint {str(old_fp)[:12]} -> {fingerprint[:12]})")
    return out


def setting_defaults() -> dict:
    """TrainConfig's defaults. A setting added to dss later defaults to what dss did before it existed (a
    change of default behaviour bumps PROTOCOL instead), so a run folder that lacks it used its default."""
    import dataclasses

    from dss.student.config import TrainConfig
    out = {}
    for f in dataclasses.fields(TrainConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # lists and mappings
            out[f.name] = f.default_factory()
    return out


@contextmanager
def run_lock(run: Path, enabled: bool = True):
    """Hold run/.lock for the duration; another process holding it is an error naming it. A crashed run's
    lock does not block (dss.core.locks: flock, or where it does not work a lock file with a heartbeat)."""
    if not enabled:
        yield
        return
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    try:
        lock = locks.acquire(run / LOCK)
    except locks.Busy as e:
        raise ConfigError(f"{run} is being written by another `dss train` ({e.holder}); wait for it to finish "
                          "or choose another output_dir") from None
    try:
        yield
    finally:
        lock.release()


def locked(run: Path) -> bool:
    """Whether a `dss train` is writing this run folder now."""
    return locks.held(Path(run) / LOCK)


SHARED_CHECK = ".shared-check"


def check_shared(run: Path, settle_s: float = 5.0) -> None:
    """With several processes (torch.distributed): every one must see what the main one writes in `run` (the
    model, checkpoints and token cache are written by rank 0 and read by all; a process that cannot see rank 0's
    tokenizer trains its own into the folder). Rank 0 writes a random token, every rank reads it back; when any
    cannot, every rank stops with the same error naming the folder."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    path, rank = Path(run) / SHARED_CHECK, dist.get_rank()
    shared = [secrets.token_hex(16), str(run)] if rank == 0 else [None, None]  # the token, the folder's name
    if rank == 0:
        atomic_write(path, shared[0])
    dist.broadcast_object_list(shared, src=0)  # every rank reads after the write
    deadline = time.monotonic() + settle_s  # a shared folder may show a new file late; a private one never
    while not (seen := _holds(path, shared[0])) and time.monotonic() < deadline:
        time.sleep(0.25)
    views = [None] * dist.get_world_size()
    dist.all_gather_object(views, (socket.gethostname(), seen))
    if rank == 0:
        path.unlink(missing_ok=True)
    blind = [f"rank {r} on {host}" for r, (host, ok) in enumerate(views) if not ok]
    if blind:
        raise ConfigError(f"{shared[1]}: {', '.join(blind)} cannot see the files that rank 0 (on {views[0][0]}) writes "
                          "there; dss train on several nodes needs output_dir on one filesystem shared by all of "
                          "them (rank 0 writes the model, checkpoints and token cache, every rank reads them): "
                          "put it on the cluster's shared filesystem, not a node-local disk such as /tmp, and on "
                          "NFS mount it so that new files show at once (lookupcache=positive)")


def _holds(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == text
    except OSError:  # absent here: another filesystem
        return False


def read_metrics(run: Path) -> list[dict]:
    """The complete records of metrics.jsonl; a line cut off by a kill (or otherwise unreadable) is skipped."""
    path = Path(run) / METRICS
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int):
            out.append(rec)
    return out


def repair_metrics(run: Path, step: int) -> int:
    """Keep only the metric lines of steps <= `step` (the checkpoint a run continues from; 0 for a run that
    starts over), dropping torn lines too. Returns how many lines were dropped."""
    path = Path(run) / METRICS
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    keep = [r for r in read_metrics(run) if r["step"] <= step]
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in keep))
    return len(lines) - len(keep)


def append_metrics(run: Path, record: dict) -> None:
    append_line(Path(run) / METRICS, json.dumps(record))


# ------------------------------------------------------------------------------------ results, predictions
def write_config(run: Path, info: dict) -> None:
    atomic_write_json(Path(run) / "config.json", info)


def write_results(run: Path, results: dict) -> None:
    atomic_write_json(Path(run) / "results.json", results)


def write_splits(run: Path, ids: dict) -> None:
    """The ids of every example the run used, per split, in the order the run took them: {"train": the
    subset, "valid", "test" (as evaluated), "train_unused": subset ids no training row came from}. Lets anyone
    check a subset against another tool's."""
    atomic_write_json(Path(run) / "splits.json", ids)


def write_predictions(run: Path, rows: list[dict]) -> None:
    """One line per test example: id, input, prediction, label, correct (and what the evaluation adds)."""
    atomic_write(Path(run) / "predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_parameters(run: Path, results: dict) -> int | None:
    """The student's parameter count as the trainer recorded it."""
    value = results.get("parameters", (results.get("data") or {}).get("parameters"))
    return value if isinstance(value, int) else None


# ----------------------------------------------------------------------------------------- the student
STUDENT_INFO = "dss.json"


def save_student(model, tokenizer, cfg, accelerator, path: Path, step: int) -> None:
    """model/ (the model and tokenizer, plain Hugging Face; LoRA merged) and its dss.json; adapter/ beside
    it for a LoRA student."""
    from dss.student import fsdp
    weights = fsdp.full_state_dict(model, accelerator)  # every process takes part in gathering sharded weights
    if accelerator.is_main_process:
        net = accelerator.unwrap_model(model)
        with atomic_dir(path) as tmp:  # a kill or a full disk mid-save leaves the previous best whole
            if cfg.lora_r > 0:
                from dss.student import lora
                with atomic_dir(Path(path).parent / "adapter") as adapter_tmp:
                    lora.save(net, tokenizer, tmp, adapter_tmp)
            else:
                net.save_pretrained(str(tmp), state_dict=weights, safe_serialization=True)
                tokenizer.save_pretrained(str(tmp))
            atomic_write_json(tmp / STUDENT_INFO, {"task": cfg.task, "step": step,
                                                   **{k: getattr(cfg, k) for k in STUDENT_KEYS}})


# what `dss predict` needs to build inputs the way training did
STUDENT_KEYS = ("method", "label_prefix", "rationale_prefix", "max_input_length", "eval_max_new_tokens",
                "max_target_length")


def student_info(model_dir) -> dict:
    """dss.json of a model folder; a plain Hugging Face checkpoint without it is a `standard` student with
    dss train's defaults. A dss.json that cannot be read, or holds a value of the wrong type or out of range
    (an unknown method), is an error naming it: falling back to the defaults would build the wrong inputs."""
    from dss.student.config import TrainConfig
    defaults = TrainConfig(method="standard")
    info = {"task": None, **{k: getattr(defaults, k) for k in STUDENT_KEYS}}
    path = Path(model_dir) / STUDENT_INFO
    if not path.exists():
        return info
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: invalid JSON or UTF-8
        raise DataError(f"{path}: cannot read the student's settings: {e}") from None
    if not isinstance(stored, dict):
        raise DataError(f"{path}: expected a JSON object of the student's settings, got {type(stored).__name__}")
    # every key may be missing (a dss.json older than the key: its default); only task may be null
    kinds = {"task": (str, type(None)), "step": int, **{k: type(info[k]) for k in STUDENT_KEYS}}
    for key, kind in kinds.items():
        value = stored.get(key)
        if key in stored and (not isinstance(value, kind) or isinstance(value, bool)):
            what = {str: "text", int: "an integer"}.get(kind, "text or null")
            raise DataError(f"{path}: field {key!r}: expected {what}, got {value!r}")
    info.update(stored)
    try:  # the ranges and choices dss train checks (a method it knows, lengths >= its minimum, ...)
        TrainConfig(**{k: info[k] for k in STUDENT_KEYS})
    except ConfigError as e:
        raise DataError(f"{path}: {e}") from None
    return info


# ----------------------------------------------------------------------------------------- provenance
REPO = Path(__file__).resolve().parents[2]


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


def run_info(cfg, stats: dict, num_processes: int, precision: str = "no") -> dict:
    """config.json. precision: what mixed_precision resolved to on this machine (auto: bf16 or no)."""
    import torch
    return {"config": to_dict(cfg), "seed": cfg.seed, "protocol": PROTOCOL, "git": git_commit(),
            "precision": precision,
            "torch_threads": torch.get_num_threads(), "versions": versions(),
            "num_processes": num_processes, "data": stats, "argv": sys.argv,
            "rerun": rerun_command(cfg) + " overwrite=true"}
