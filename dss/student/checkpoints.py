"""A run folder's checkpoints/: the full training state a resume continues from, each file verifiable.

    checkpoints/step_00000200/   model, optimizer, scheduler, random_states_<rank>.pkl (accelerate's save_state)
                 trainer_state.json   the loop's state, and "files": {name: {bytes, sha256}} of every file above

trainer_state.json is written last, atomically: a checkpoint without it is one a kill interrupted, never used.
On resume each file is checked against what was written (a checkpoint from an older dss, without "files", is
checked by loading each file); a damaged checkpoint is named with its damaged file, moved aside, and the previous
complete one is used when there is one. `keep_checkpoints` says how many are kept (newest first).
"""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from dss.core.errors import ConfigError
from dss.core.io import atomic_write_json, read_json

STATE = "trainer_state.json"
_NAME = re.compile(r"step_(\d+)$")


def checkpoint_dir(run: Path, step: int) -> Path:
    return Path(run) / "checkpoints" / f"step_{step:08d}"


def complete_checkpoints(run: Path) -> list[Path]:
    """The checkpoints whose save finished (they have trainer_state.json), newest first."""
    found = [c for c in (Path(run) / "checkpoints").glob("step_*") if _NAME.match(c.name) and (c / STATE).is_file()]
    return sorted(found, key=lambda c: int(_NAME.match(c.name).group(1)), reverse=True)


def latest_checkpoint(run: Path) -> Path | None:
    done = complete_checkpoints(run)
    return done[0] if done else None


def _facts(path: Path) -> dict:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return {"bytes": path.stat().st_size, "sha256": h.hexdigest()}


def save_checkpoint(accelerator, run: Path, step: int, state: dict, keep: int = 1) -> None:
    """Full training state for resume; the newest `keep` complete checkpoints are kept."""
    ckpt = checkpoint_dir(run, step)
    accelerator.save_state(str(ckpt))
    accelerator.wait_for_everyone()  # every process's random_states_<rank>.pkl is on disk before the manifest
    if accelerator.is_main_process:
        files = {str(p.relative_to(ckpt)): _facts(p) for p in sorted(ckpt.rglob("*"))
                 if p.is_file() and p.name != STATE}
        atomic_write_json(ckpt / STATE, {**state, "step": step, "files": files})
        kept = complete_checkpoints(run)[:keep]
        for old in (Path(run) / "checkpoints").glob("step_*"):  # older ones, and saves a kill interrupted
            if old not in kept:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


# ------------------------------------------------------------------------------------------ verification
_STATE_FIELDS = {"best_valid_accuracy": (int, float), "train_seconds": (int, float), "eval_history": (list,)}


def _state_problem(state, step: int) -> str | None:
    if not isinstance(state, dict):
        return f"{STATE} cannot be read as a JSON object"
    if type(state.get("step")) is not int or state["step"] != step:
        return f"{STATE}: step is {state.get('step')!r}, expected {step}"
    for key, types in _STATE_FIELDS.items():
        if key not in state or isinstance(state[key], bool) or not isinstance(state[key], types):
            return f"{STATE}: {key} is {state.get(key, 'missing')!r}"
    if state.get("best_step") is not None and type(state["best_step"]) is not int:
        return f"{STATE}: best_step is {state['best_step']!r}"
    return None


def _load_problem(path: Path) -> str | None:
    """Load one checkpoint file (an older dss's checkpoint has no sizes and hashes to compare)."""
    import torch
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            load_file(str(path))
        elif path.suffix in (".bin", ".pkl", ".pt", ".pth"):
            torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 — any failure to load means the same: this file is damaged
        return f"{path.name} cannot be loaded ({type(e).__name__}: {str(e)[:120]})"
    return None


def checkpoint_problem(ckpt: Path) -> str | None:
    """What is wrong with a complete checkpoint, naming the file; None when it is whole."""
    state = read_json(ckpt / STATE)
    problem = _state_problem(state, int(_NAME.match(ckpt.name).group(1)))
    if problem:
        return problem
    files = state.get("files")
    if files is None:
        present = sorted(p for p in ckpt.rglob("*") if p.is_file() and p.name != STATE)
        return next((p for p in map(_load_problem, present) if p), None)
    if not isinstance(files, dict):
        return f"{STATE}: files is {files!r}"
    for name, facts in files.items():
        path = ckpt / name
        if not path.is_file():
            return f"{name} is missing"
        if not isinstance(facts, dict) or path.stat().st_size != facts.get("bytes"):
            return f"{name} has {path.stat().st_size:,} bytes, {facts.get('bytes')!r} were written"
        if _facts(path)["sha256"] != facts.get("sha256"):
            return f"{name} differs from what was written (sha256)"
    return None


def usable_checkpoint(run: Path, accelerator, log) -> Path | None:
    """The newest complete checkpoint that is whole. Damaged ones are named and moved aside (to
    checkpoints/damaged-step_*), so a resumed run saves its own in their place; when none is whole, the error
    says so and how to start over."""
    damaged, usable = [], None
    for ckpt in complete_checkpoints(run):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            usable = ckpt
            break
        damaged.append((ckpt, problem))
    accelerator.wait_for_everyone()  # every process has read them before any is moved
    if not damaged:
        return usable
    what = "; ".join(f"{c.name} is damaged: {p}" for c, p in damaged)
    if usable is None:
        raise ConfigError(f"{run}: cannot resume: checkpoint {what}, and there is no earlier complete checkpoint; "
                          "pass overwrite=true to start over (keep_checkpoints=2 keeps one to fall back to)")
    if accelerator.is_main_process:
        for ckpt, _ in damaged:
            aside = ckpt.with_name(f"damaged-{ckpt.name}")
            shutil.rmtree(aside, ignore_errors=True)
            ckpt.rename(aside)
    accelerator.wait_for_everyone()
    log(f"checkpoint {what} (moved to checkpoints/damaged-*); continuing from {usable.name}")
    return usable
