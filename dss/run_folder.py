"""The run folder's bookkeeping that must survive kills and never be shared: the writer's lock and
metrics.jsonl (append, repair on resume).

    with run_lock(run):            # a second `dss train` into the same folder refuses at once
        repair_metrics(run, step)  # drop lines a killed attempt wrote after its last checkpoint
        append_metrics(run, {...})
"""
from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from dss.core.errors import ConfigError
from dss.core.io import append_line, atomic_write, read_json

try:
    import fcntl  # POSIX advisory locks: the kernel drops them when the holder dies, so none is ever stale
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None

LOCK = ".lock"
METRICS = "metrics.jsonl"
# Bump when a fix changes what training computes for the same settings: runs (and sweep cells) trained
# before it no longer count as the same run. 2: every epoch has its own batch order (it had one for all).
PROTOCOL = 2
# config keys that cannot change what is trained or measured (data_dir: the data's content is fingerprinted)
VOLATILE = ("output_dir", "resume", "overwrite", "data_dir", "tensorboard", "log_steps")
REQUIRED_RESULTS = ("valid_accuracy", "test_accuracy")


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
    for key in sorted(set(old) | set(config)):
        if key not in VOLATILE and old.get(key) != config.get(key):
            out.append(f"{key}: {old.get(key)!r} -> {config.get(key)!r}")
    old_fp = (stored.get("data") or {}).get("fingerprint")
    if fingerprint is not None and old_fp != fingerprint:
        out.append(f"data: content changed (fingerprint {str(old_fp)[:12]} -> {fingerprint[:12]})")
    return out


@contextmanager
def run_lock(run: Path, enabled: bool = True):
    """Hold run/.lock for the duration; another process holding it is an error naming it. A lock file left
    by a crashed run does not block: the lock is the kernel's flock, released when its process ends."""
    if not enabled or fcntl is None:
        yield
        return
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    fh = open(run / LOCK, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise ConfigError(f"{run} is being written by another `dss train` ({holder}); wait for it to finish "
                          "or choose another output_dir") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    fh.flush()
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


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
