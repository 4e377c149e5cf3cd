"""Batch jobs (half price, slow turnaround): the pending requests go out as one JSONL file, the job is polled
until it ends, and its answers become ordinary records, the same as a live run's.

    Gemini     Files API upload of {"key", "request"} lines, batches.create(src="files/..."), results file
    OpenAI     /v1/files + /v1/batches with {"custom_id", "method", "url", "body"} lines (also what
               `vllm run-batch` reads: --write-batch writes the file, --read-batch reads its output)

The job's name is saved beside the output before polling, so a rerun of the same command after an interruption
collects the same job instead of paying twice. Every request's key holds the cache key (example id, sample,
request hash): a result for another prompt or setting is never taken for this one.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from dss.core.errors import DataError
from dss.core.io import atomic_write_json
from dss.tasks.base import Task
from dss.teacher.cost import Stats
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.items import Item, make_record
from dss.teacher.protocol import RetryPolicy, call_with_retries
from dss.teacher.store import RecordFile

# where each provider's job states land
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


def batch_state_path(out: Path) -> Path:
    return out.with_name(out.name + ".batch.json")


def request_key(it: Item) -> str:
    """The key of one request in a batch file: the cache key (id, sample, request hash), unambiguous JSON."""
    return json.dumps([it.example.id, it.sample, it.sha])


def run_batch(items: list[Item], backend, cfg: ExtractConfig, task: Task, rf: RecordFile, stats: Stats,
              log=print) -> None:
    """Submit pending items as one job (or pick up the saved or named one), poll until it ends, and write its
    answers as records."""
    state_path = batch_state_path(rf.path)
    by_key = {request_key(it): it for it in items}
    name = cfg.batch_job
    if name is None and state_path.is_file():
        name = json.loads(state_path.read_text())["job"]
        log(f"resuming batch job {name} (saved in {state_path})")
    if name is None:
        if not items:
            return
        name = retrying(lambda: backend.submit([(k, it) for k, it in by_key.items()], cfg, task), cfg)
        atomic_write_json(state_path, {"job": name, "teacher": cfg.teacher, "n": len(by_key), "created": time.time()})
        log(f"submitted batch job {name} with {len(by_key)} requests; saved in {state_path}")
    state, info = wait(name, backend, cfg, log)
    if state != SUCCEEDED:
        state_path.unlink(missing_ok=True)
        raise DataError(f"batch job {name} ended {info.get('state', state)}: {info.get('error') or 'no answers'}; "
                        "rerun to submit a new one")
    written = write_results(retrying(lambda: backend.results(name, info), cfg), by_key, cfg, task, rf, stats)
    state_path.unlink(missing_ok=True)
    log(f"batch job {name}: {written} records written" +
        (f"; {len(by_key)} requests were not in it: rerun to submit them" if by_key else ""))


def wait(name: str, backend, cfg: ExtractConfig, log) -> tuple[str, dict]:
    """Poll every cfg.poll_interval seconds until the job ends; (RUNNING | SUCCEEDED | FAILED, details)."""
    while True:
        state, info = retrying(lambda: backend.poll(name), cfg)
        if state != RUNNING:
            return state, info
        log(f"batch job {name}: {info.get('state', state)}; next poll in {cfg.poll_interval:g} s")
        time.sleep(cfg.poll_interval)


def write_results(results, by_key: dict[str, Item], cfg: ExtractConfig, task: Task, rf: RecordFile,
                  stats: Stats) -> int:
    """A record for each (key, completion or None, error) that an item of `by_key` still waits on (popping
    it); results under other keys (other prompts, settings, or work already done) are skipped."""
    written = 0
    for key, comp, error in results:
        it = by_key.pop(key, None)
        if it is None:
            continue
        if comp is None:
            rec = make_record(it, cfg, task, None, error=f"batch request failed: {error}")
        else:
            rec = make_record(it, cfg, task, comp.text, comp.usage, finish_reason=comp.finish_reason)
        rf.append(rec)
        stats.add(rec)
        written += 1
    return written


def retrying(fn, cfg: ExtractConfig):
    return call_with_retries(fn, RetryPolicy(cfg.max_attempts, cfg.backoff_base, cfg.backoff_max))[0]


# ------------------------------------------------------------------------------------------- OpenAI format
def openai_batch_lines(pairs: list[tuple[str, Item]], client, cfg: ExtractConfig) -> str:
    """The JSONL of an OpenAI (or `vllm run-batch`) batch: one chat-completions request per line."""
    sampling = cfg.sampling()
    return "".join(json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions",
                               "body": client.request_body(it.messages, sampling)}, ensure_ascii=False) + "\n"
                   for key, it in pairs)


def read_openai_results(text: str, where: str = "batch results"):
    """(custom_id, Completion or None, error) per line of an OpenAI or `vllm run-batch` output file:
    {"id", "custom_id", "response": {"status_code", "body": chat.completion}, "error"}."""
    from dss.teacher.client import openai_completions
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = row["custom_id"]
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{where}:{lineno}: not a batch result line (needs custom_id)") from None
        response, error = row.get("response") or {}, row.get("error")
        status = response.get("status_code", 200)
        if error or status != 200 or not isinstance(response.get("body"), dict):
            yield key, None, str(error or f"HTTP {status}: {str(response.get('body'))[:200]}")
            continue
        try:
            yield key, openai_completions(response["body"])[0], None
        except (ValueError, KeyError, IndexError, TypeError) as e:
            yield key, None, f"malformed response body ({type(e).__name__})"


def read_batch_file(path, items: list[Item], cfg: ExtractConfig, task: Task, rf: RecordFile, stats: Stats,
                    log=print) -> None:
    """--read-batch: results of a batch run elsewhere (`vllm run-batch -o`, or OpenAI's output file)."""
    by_key = {request_key(it): it for it in items}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot read batch results: {e.strerror or e}") from None
    results = list(read_openai_results(text, str(path)))
    written = write_results(results, by_key, cfg, task, rf, stats)
    other = len(results) - written
    log(f"{path}: {written} records written" + (f"; {other} results for other prompts, settings or finished "
                                                 "work skipped" if other else "") +
        (f"; {len(by_key)} requests had no result: rerun --read-batch with them, or run live" if by_key else ""))


class OpenAIBatch:
    """/v1/files + /v1/batches on an OpenAI-compatible server, through the client's HTTP connection."""

    STATES = {"validating": RUNNING, "in_progress": RUNNING, "finalizing": RUNNING, "cancelling": RUNNING,
              "completed": SUCCEEDED, "failed": FAILED, "expired": FAILED, "cancelled": FAILED}

    def __init__(self, client):
        self.client = client

    def submit(self, pairs, cfg: ExtractConfig, task: Task) -> str:
        data = openai_batch_lines(pairs, self.client, cfg).encode("utf-8")
        upload = self.client.api("POST", "/files", files={"file": ("requests.jsonl", data)},
                                 fields={"purpose": "batch"})
        job = self.client.api("POST", "/batches", {"input_file_id": upload["id"], "endpoint": "/v1/chat/completions",
                                                  "completion_window": "24h",
                                                  "metadata": {"dss": f"{task.name}/{cfg.split}"}})
        return job["id"]

    def poll(self, name: str) -> tuple[str, dict]:
        job = self.client.api("GET", f"/batches/{name}")
        errors = (job.get("errors") or {}).get("data") or []
        return self.STATES.get(job.get("status"), RUNNING), {
            "state": job.get("status"), "output": job.get("output_file_id"), "errors_file": job.get("error_file_id"),
            "error": "; ".join(str(e.get("message")) for e in errors) or None}

    def results(self, name: str, info: dict):
        out = []
        for file_id in (info.get("output"), info.get("errors_file")):
            if file_id:
                text = self.client.api("GET", f"/files/{file_id}/content", raw=True).decode("utf-8")
                out += read_openai_results(text, f"batch {name} file {file_id}")
        return out


# ------------------------------------------------------------------------------------------- Gemini format
class GeminiBatch:
    """The Gemini Batch API from a JSONL file uploaded through the Files API: jobs of any size."""

    STATES = {"JOB_STATE_SUCCEEDED": SUCCEEDED, "JOB_STATE_PARTIALLY_SUCCEEDED": SUCCEEDED,
              "JOB_STATE_FAILED": FAILED, "JOB_STATE_CANCELLED": FAILED, "JOB_STATE_EXPIRED": FAILED}

    def __init__(self, client):
        self.client = client

    def submit(self, pairs, cfg: ExtractConfig, task: Task) -> str:
        import tempfile
        sampling = cfg.sampling()
        lines = "".join(json.dumps({"key": key, "request": self.client.rest_request(it.messages, sampling)},
                                   ensure_ascii=False) + "\n" for key, it in pairs)
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8", delete=False) as fh:
            fh.write(lines)
        try:
            uploaded = self.client.call(lambda: self.client.client.files.upload(
                file=fh.name, config={"mime_type": "jsonl", "display_name": f"dss-{task.name}-{cfg.split}"}))
        finally:
            Path(fh.name).unlink(missing_ok=True)
        job = self.client.call(lambda: self.client.client.batches.create(
            model=self.client.model, src=uploaded.name, config={"display_name": f"dss-{task.name}-{cfg.split}"}))
        return job.name

    def poll(self, name: str) -> tuple[str, dict]:
        job = self.client.call(lambda: self.client.client.batches.get(name=name))
        state = str(getattr(job.state, "value", job.state))
        return self.STATES.get(state, RUNNING), {"state": state, "job": job,
                                                 "error": str(job.error) if getattr(job, "error", None) else None}

    def results(self, name: str, info: dict):
        from google.genai import types

        from dss.teacher.gemini import gemini_completion
        dest = info["job"].dest
        if dest is None or not dest.file_name:
            raise DataError(f"batch job {name} succeeded but names no results file")
        data = self.client.call(lambda: self.client.client.files.download(file=dest.file_name))
        out = []
        for line in data.decode("utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("error") or not row.get("response"):
                out.append((row.get("key"), None, str(row.get("error") or "no response")))
                continue
            resp = types.GenerateContentResponse.model_validate(row["response"])
            out.append((row.get("key"), gemini_completion(resp)[0], None))
        return out


def backend_for(client):
    return GeminiBatch(client) if client.provider == "gemini" else OpenAIBatch(client)

