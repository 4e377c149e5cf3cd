"""Files and batch jobs for the fake teacher, in both protocols, answered by the teacher's responder.

    Gemini  POST /upload/v1beta/files (resumable start) -> x-goog-upload-url; POST there with
            "upload, finalize" -> {"file"}; POST /v1beta/models/M:batchGenerateContent {batch.inputConfig.fileName};
            GET /v1beta/batches/ID: BATCH_STATE_PENDING -> RUNNING -> SUCCEEDED (or FAILED), output.responsesFile;
            GET /v1beta/files/ID:download?alt=media -> the {"key", "response"} lines
    OpenAI  POST /v1/files (multipart, purpose=batch); POST /v1/batches {input_file_id}; GET /v1/batches/ID:
            validating -> in_progress -> completed (or failed); GET /v1/files/ID/content -> result lines

`teacher.batch_polls` is how many polls a job answers "running"; `teacher.fail_batches` makes jobs fail.
"""
from __future__ import annotations

import email.parser
import email.policy
import json
import re

from dss.testing.bodies import gemini_body, openai_body, texts_of


class FakeBatches:
    def __init__(self, teacher):
        self.t = teacher
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}

    def route(self, req: dict):
        """A reply for a files/batches request, or None when the request is not one."""
        path, method = req["path"], req["method"]
        handlers = [
            ("POST", r"^/upload/v1[a-z0-9]*/files", self._upload_start),
            ("POST", r"^/upload-session/(\w+)", self._upload_chunk),
            ("POST", r"^/v1[a-z0-9]*/models/([^:/]+):batchGenerateContent", self._gemini_create),
            ("GET", r"^/v1[a-z0-9]*/(batches/[^/?]+)$", self._gemini_get),
            ("GET", r"files/([^/:?]+):download", self._download),
            ("POST", r"^/v1/files$", self._openai_upload),
            ("POST", r"^/v1/batches$", self._openai_create),
            ("GET", r"^/v1/batches/([^/?]+)$", self._openai_get),
            ("GET", r"^/v1/files/([^/]+)/content$", self._download),
        ]
        for want, pattern, handler in handlers:  # a handler may decline (None): the next one is asked
            m = re.search(pattern, path.split("?")[0] if want == "POST" else path)
            reply = handler(req, *m.groups()) if method == want and m else None
            if reply is not None:
                return reply
        return None

    # -- shared
    def _answers(self, requests: list[tuple[str, dict]], openai: bool, model: str | None = None) -> list[dict]:
        """Result lines; `model` is what a Gemini job was created for (OpenAI lines name theirs)."""
        out = []
        for key, body in requests:
            system, user = texts_of(body, openai)
            text = self.t.responder(user, system)
            n_in, n_out = len(user) // 4 + 1, len(text) // 4 + 1
            reported = self.t.model or (body.get("model") if openai else model)
            if openai:
                out.append({"id": f"resp-{len(out)}", "custom_id": key, "error": None,
                            "response": {"status_code": 200, "request_id": f"req-{len(out)}",
                                         "body": openai_body([text], n_in, n_out, model=reported)}})
            else:
                out.append({"key": key, "response": gemini_body([text], n_in, n_out, model=reported)})
        return out

    def _state(self, job: dict) -> str:
        """queued at first, then running for batch_polls polls, then done (or failed)."""
        job["polls"] += 1
        if job["polls"] == 1 and self.t.batch_polls > 0:
            return "queued"
        if job["polls"] <= self.t.batch_polls:
            return "running"
        return "failed" if self.t.fail_batches else "done"

    def _new(self, prefix: str, data: bytes) -> str:
        name = f"{prefix}{len(self.files) + 1}"
        self.files[name] = data
        return name

    def _download(self, req, name):
        if name not in self.files:
            return 404, {"error": {"code": 404, "message": f"no file {name}"}}, None
        return 200, self.files[name], None

    # -- Gemini
    def _upload_start(self, req):
        sid = str(len(self.sessions) + 1)
        self.sessions[sid] = {"data": b""}
        url = f"http://127.0.0.1:{self.t.port}/upload-session/{sid}"
        return 200, {}, {"x-goog-upload-url": url, "x-goog-upload-status": "active"}

    def _upload_chunk(self, req, sid):
        session = self.sessions[sid]
        session["data"] += req["raw"]
        if "finalize" not in req["headers"].get("x-goog-upload-command", ""):
            return 200, {}, {"x-goog-upload-status": "active"}
        name = self._new("up", session["data"])
        return 200, {"file": {"name": f"files/{name}", "mimeType": "jsonl", "sizeBytes": str(len(session["data"])),
                              "state": "ACTIVE"}}, {"x-goog-upload-status": "final"}

    def _gemini_create(self, req, model):
        src = (((req["body"] or {}).get("batch") or {}).get("inputConfig") or {}).get("fileName", "")
        data = self.files.get(src.removeprefix("files/"))
        if data is None:
            error = {"code": 400, "message": f"no input file {src!r}", "status": "INVALID_ARGUMENT"}
            return 400, {"error": error}, None
        lines = [json.loads(x) for x in data.decode().splitlines() if x.strip()]
        name = f"batches/fake{len(self.jobs) + 1}"
        self.jobs[name] = {"model": model, "polls": 0,
                           "results": self._answers([(x["key"], x["request"]) for x in lines], False, model)}
        return 200, {"name": name, "metadata": {"model": f"models/{model}", "state": "BATCH_STATE_PENDING"}}, None

    def _gemini_get(self, req, name):
        job = self.jobs.get(name)
        if job is None:  # not a Gemini job: perhaps an OpenAI one (both live under /v1/batches/)
            return None
        state = {"queued": "BATCH_STATE_PENDING", "running": "BATCH_STATE_RUNNING", "done": "BATCH_STATE_SUCCEEDED",
                 "failed": "BATCH_STATE_FAILED"}[self._state(job)]
        meta = {"model": job["model"], "state": state}
        if state == "BATCH_STATE_SUCCEEDED":
            out = job.setdefault("out", self._new("out", "".join(json.dumps(r) + "\n" for r in job["results"])
                                                  .encode()))
            meta["output"] = {"responsesFile": f"files/{out}"}
        body = {"name": name, "metadata": meta}
        if state == "BATCH_STATE_FAILED":
            body["error"] = {"code": 500, "message": "the fake failed this job"}
        return 200, body, None

    # -- OpenAI
    def _openai_upload(self, req):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + req["headers"].get("content-type", "").encode() + b"\r\n\r\n" + req["raw"])
        parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                 for p in msg.iter_parts()}
        if parts.get("purpose") != b"batch" or "file" not in parts:
            return 400, {"error": {"message": "expected purpose=batch and a file"}}, None
        name = self._new("file-", parts["file"])
        return 200, {"id": name, "object": "file", "purpose": "batch", "bytes": len(parts["file"])}, None

    def _openai_create(self, req):
        body = req["body"] or {}
        data = self.files.get(body.get("input_file_id", ""))
        if data is None or body.get("endpoint") != "/v1/chat/completions":
            return 400, {"error": {"message": "bad input_file_id or endpoint"}}, None
        lines = [json.loads(x) for x in data.decode().splitlines() if x.strip()]
        name = f"batch_{len(self.jobs) + 1}"
        self.jobs[name] = {"polls": 0, "results": self._answers([(x["custom_id"], x["body"]) for x in lines], True)}
        job = {"id": name, "object": "batch", "status": "validating", "input_file_id": body["input_file_id"]}
        return 200, job, None

    def _openai_get(self, req, name):
        job = self.jobs.get(name)
        if job is None:
            return 404, {"error": {"message": "not found"}}, None
        status = {"queued": "validating", "running": "in_progress", "done": "completed", "failed": "failed"}[
            self._state(job)]
        body = {"id": name, "object": "batch", "status": status, "output_file_id": None, "error_file_id": None}
        if status == "completed":
            body["output_file_id"] = job.setdefault("out", self._new(
                "file-out", "".join(json.dumps(r) + "\n" for r in job["results"]).encode()))
        if status == "failed":
            body["errors"] = {"data": [{"code": "failed", "message": "the fake failed this job"}]}
        return 200, body, None
