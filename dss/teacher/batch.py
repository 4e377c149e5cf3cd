"""Batch jobs (half price, slow turnaround): the pending requests go out as one JSONL file, the job is polled
until it ends, and its answers become ordinary records, the same as a live run's.

    Gemini     Files API upload of {"key", "request"} lines, batches.create(src="files/..."), results file
    OpenAI     /v1/files + /v1/batches with {"custom_id", "method", "url", "body"} lines (also what
               `vllm run-batch` reads: --write-batch writes the file, --read-batch reads its output)

The job's name is saved beside the output before polling, so a rerun of the same command after an interruption
collects the same job instead of paying twice. Every request's key holds the cache key (example id, sample,
request hash): a result for another prompt or setting is never taken for this one.

Results are (key, Completion or None, error, "file:line"). A line that names no request is an error naming the
line; any other bad line is an error record naming it. A request with several result lines gets its first
answer (an error line never shadows an answer, in whatever order), and two different answers are reported.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from dss.core.errors import DataError
from dss.core.io import atomic_write_json
from dss.tasks.base import Task
from dss.teacher.budget import Budget
from dss.teacher.cost import Stats
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.items import Item, make_record, model_change
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
              log=print, *, budget: Budget) -> None:
    """Submit pending items as one job (as many as the budget allows, each held at its most), or pick up the
    saved or named one; poll until it ends, and write its answers as records (each settling its hold)."""
    state_path = batch_state_path(rf.path)
    saved = json.loads(state_path.read_text()) if state_path.is_file() else {}
    name = cfg.batch_job
    if name is None and saved:
        name = saved["job"]
        log(f"resuming batch job {name} (saved in {state_path})")
    held = name is not None and name == saved.get("job") and saved.get("held", False)
    if name is None:
        if not items:
            return
        items, held = budget.reserve_batch(items), True
        name = retrying(lambda: backend.submit([(request_key(it), it) for it in items], cfg, task), cfg)
        atomic_write_json(state_path, {"job": name, "teacher": cfg.teacher, "n": len(items), "held": True,
                                       "created": time.time()})
        log(f"submitted batch job {name} with {len(items)} requests; saved in {state_path}" +
            (" (as many as the budget allows)" if budget.reached else ""))
    by_key = {request_key(it): it for it in items}
    state, info = wait(name, backend, cfg, log)
    if state != SUCCEEDED:
        state_path.unlink(missing_ok=True)
        raise DataError(f"batch job {name} ended {info.get('state', state)}: {info.get('error') or 'no answers'}; "
                        "rerun to submit a new one")
    written, _ = write_results(retrying(lambda: backend.results(name, info), cfg), by_key, cfg, task, rf, stats,
                               log, lambda it, comp: budget.settle_result(it, comp, held, batch=True))
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
                  stats: Stats, log, settle) -> tuple[int, int]:
    """A record for each result (`pick`ed, one per key) that an item of `by_key` still waits on (popping it),
    then `settle(item, Completion or None)` counts it in the budget; results under other keys (other prompts,
    settings, or work already done) are skipped. Returns (records written, results skipped)."""
    picked, passed_over = pick(results)
    if passed_over:
        log(f"{len(passed_over)} request(s) have different answers on several lines: each keeps its first "
            f"(e.g. {passed_over[0]})")
    written = 0
    for key, comp, error, _ in picked:
        it = by_key.pop(key, None)
        if it is None:
            continue
        if comp is None:
            rec = make_record(it, cfg, task, None, error=f"batch request failed: {error}")
        else:
            rec = make_record(it, cfg, task, comp.text, comp.usage, finish_reason=comp.finish_reason,
                              model=comp.model)
            change = model_change(rf, comp.model, cfg)
            if change is not None:  # a job's results stay where they are (a rerun with the flag collects them)
                raise change
        rf.append(rec)
        stats.add(rec)
        settle(it, comp)
        written += 1
    return written, len(picked) - written


def pick(results) -> tuple[list[tuple], list[str]]:
    """One result per key, in first-seen order: its first answer, else its first error. Returns (the results,
    "B passed over for A" for each further answer whose text differs from the kept one)."""
    chosen: dict[str, tuple] = {}
    passed_over = []
    for res in results:
        key, comp, _, at = res
        kept = chosen.get(key)
        if kept is None or (kept[1] is None and comp is not None):
            chosen[key] = res
        elif comp is not None and comp.text != kept[1].text:
            passed_over.append(f"{at} passed over for {kept[3]}")
    return list(chosen.values()), passed_over


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
    """(custom_id, Completion or None, error, "where:line") per line of an OpenAI or `vllm run-batch` output
    file: {"id", "custom_id", "response": {"status_code", "body": chat.completion}, "error"}."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            at = f"{where}:{lineno}"
            row = _result_row(line, "custom_id", at)
            yield (row["custom_id"], *_openai_result(row, at), at)


def _result_row(line: str, key_field: str, at: str) -> dict:
    """A results line as a dict whose `key_field` is a string; a line that names no request is an error."""
    try:
        row = json.loads(line)
    except ValueError:
        row = None
    if not isinstance(row, dict) or not isinstance(row.get(key_field), str):
        raise DataError(f"{at}: not a batch result line (needs a JSON object with a string {key_field})")
    return row


def _openai_result(row: dict, at: str):
    """(Completion, None) for an answer, (None, error naming the line) for anything else."""
    from dss.teacher.client import openai_completions
    response, error = row.get("response"), row.get("error")
    if error:
        return None, f"{at}: {error}"
    if not isinstance(response, dict):
        return None, f"{at}: response is not an object: {str(response)[:200]}"
    status, body = response.get("status_code", 200), response.get("body")
    if status != 200 or not isinstance(body, dict):
        return None, f"{at}: HTTP {status}: {str(body)[:200]}"
    try:
        return openai_completions(body)[0], None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        return None, f"{at}: malformed response body ({type(e).__name__})"


def read_batch_file(path, items: list[Item], cfg: ExtractConfig, task: Task, rf: RecordFile, stats: Stats,
                    log=print, *, budget: Budget) -> None:
    """--read-batch: results of a batch run elsewhere (`vllm run-batch -o`, or OpenAI's output file); each
    counts in the budget as a request made."""
    by_key = {request_key(it): it for it in items}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot read batch results: {e.strerror or e}") from None
    written, other = write_results(list(read_openai_results(text, str(path))), by_key, cfg, task, rf, stats, log,
                                   lambda it, comp: budget.settle_result(it, comp, held=False, batch=False))
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
            "error": self.client.shown("; ".join(str(e.get("message")) for e in errors), 300) or None}

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
        error = self.client.shown(str(job.error), 300) if getattr(job, "error", None) else None
        return self.STATES.get(state, RUNNING), {"state": state, "job": job, "error": error}

    def results(self, name: str, info: dict):
        from google.genai import types

        from dss.teacher.gemini import gemini_completion
        dest = info["job"].dest
        if dest is None or not dest.file_name:
            raise DataError(f"batch job {name} succeeded but names no results file")
        data = self.client.call(lambda: self.client.client.files.download(file=dest.file_name))
        out = []
        for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            at = f"batch {name} results line {lineno}"
            row = _result_row(line, "key", at)
            if row.get("error") or not row.get("response"):
                out.append((row["key"], None, f"{at}: {row.get('error') or 'no response'}", at))
                continue
            try:
                out.append((row["key"], gemini_completion(
                    types.GenerateContentResponse.model_validate(row["response"]))[0], None, at))
            except (ValueError, TypeError) as e:  # pydantic's validation of a response that is not one
                out.append((row["key"], None, f"{at}: malformed response ({type(e).__name__})", at))
        return out


def backend_for(client):
    return GeminiBatch(client) if client.provider == "gemini" else OpenAIBatch(client)

