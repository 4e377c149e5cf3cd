"""The Gemini Batch API run: submit pending items as one job (half price, slow), poll until it ends, and
write its answers as records. The job name is saved beside the output before polling, so a rerun of the
same command after an interruption collects the same job instead of paying twice."""
from __future__ import annotations

import json
import time
from pathlib import Path

from dss.core.errors import DataError
from dss.tasks.base import Task
from dss.teacher.cost import Stats
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.items import Item, make_record
from dss.teacher.protocol import RetryPolicy, call_with_retries
from dss.teacher.store import RecordFile

BATCH_INLINE_LIMIT = 19_000_000  # bytes of inline requests per batch job (the API's limit is 20 MB)
DONE_STATES = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED",
               "JOB_STATE_PARTIALLY_SUCCEEDED"}
OK_STATES = ("JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED")


def batch_state_path(out: Path) -> Path:
    return out.with_name(out.name + ".batch.json")


def run_batch(items: list[Item], client, cfg: ExtractConfig, task: Task, rf: RecordFile, stats: Stats,
              log=print) -> None:
    """Submit pending items as one Gemini Batch API job (or pick up the saved/named one), poll until it
    ends, and write its answers as records."""
    state_path = batch_state_path(rf.path)
    by_key = {f"{it.example.id}\t{it.sample}": it for it in items}  # the job's request keys
    name = cfg.batch_job
    if name is None and state_path.is_file():
        name = json.loads(state_path.read_text())["job"]
        log(f"resuming Batch API job {name} (saved in {state_path})")
    if name is None:
        if not items:
            return
        name = _submit(by_key, client, cfg, task, state_path, log)
    _check_inline_size(by_key)
    job = _wait(name, client, cfg, log)
    state = _state(job)
    if state not in OK_STATES:
        state_path.unlink(missing_ok=True)
        raise DataError(f"batch job {name} ended {state}; rerun to submit a new one")
    written = _collect(job, by_key, cfg, task, rf, stats)
    state_path.unlink(missing_ok=True)
    log(f"batch job {name}: {written} records written" +
        (f"; {len(by_key)} items were not in it: rerun to submit them" if by_key else ""))


def _submit(by_key: dict[str, Item], client, cfg: ExtractConfig, task: Task, state_path: Path, log) -> str:
    """Create the job from inline requests; save its name before anything else can go wrong."""
    from google.genai import types

    from dss.teacher.gemini import gemini_contents
    requests = []
    for key, it in by_key.items():
        system, contents = gemini_contents(it.messages)
        requests.append(types.InlinedRequest(contents=contents, metadata={"key": key},
                                             config=client.config(system, cfg.sampling())))
    _check_inline_size(by_key)
    job = _retrying(lambda: client.call(lambda: client.client.batches.create(
        model=client.model, src=requests, config={"display_name": f"dss-{task.name}-{cfg.split}"})), cfg)
    name = job.name
    state_path.write_text(json.dumps({"job": name, "teacher": cfg.teacher, "n": len(requests),
                                      "created": time.time()}))
    log(f"submitted Batch API job {name} with {len(requests)} requests; saved in {state_path}")
    return name


def _check_inline_size(by_key: dict[str, Item]) -> None:
    size = sum(len(json.dumps(it.messages)) for it in by_key.values())
    if size > BATCH_INLINE_LIMIT:
        raise DataError(f"{len(by_key)} requests are about {size / 1e6:.0f} MB; the Batch API takes at most "
                        f"{BATCH_INLINE_LIMIT / 1e6:.0f} MB inline: submit parts with --limit or --ids")


def _wait(name: str, client, cfg: ExtractConfig, log):
    """Poll the job every cfg.poll_interval seconds until it reaches a final state; returns the job."""
    while True:
        job = _retrying(lambda: client.call(lambda: client.client.batches.get(name=name)), cfg)
        state = _state(job)
        if state in DONE_STATES:
            return job
        log(f"batch job {name}: {state}; next poll in {cfg.poll_interval:g} s")
        time.sleep(cfg.poll_interval)


def _state(job) -> str:
    return str(getattr(job.state, "value", job.state))


def _collect(job, by_key: dict[str, Item], cfg: ExtractConfig, task: Task, rf: RecordFile, stats: Stats) -> int:
    """Write a record for each of the job's answers that an item of `by_key` still waits on (popping it);
    returns how many were written."""
    from dss.teacher.gemini import gemini_completion
    responses = (job.dest.inlined_responses if job.dest else None) or []
    written = 0
    for resp in responses:
        it = by_key.pop((resp.metadata or {}).get("key", ""), None)
        if it is None:
            continue  # already recorded, or not part of this selection
        if resp.error is not None or resp.response is None:
            rec = make_record(it, cfg, task, None, error=f"batch item failed: {resp.error}")
        else:
            comp = gemini_completion(resp.response)[0]  # one candidate per batch request
            rec = make_record(it, cfg, task, comp.text, comp.usage, finish_reason=comp.finish_reason)
        rf.append(rec)
        stats.add(rec)
        written += 1
    return written


def _retrying(fn, cfg: ExtractConfig):
    return call_with_retries(fn, RetryPolicy(cfg.max_attempts, cfg.backoff_base, cfg.backoff_max))[0]
