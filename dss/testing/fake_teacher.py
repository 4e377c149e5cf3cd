"""A scriptable fake teacher on 127.0.0.1 for tests, the speed benchmark, and trying `dss extract` offline.

Speaks the OpenAI chat-completions protocol (POST /v1/chat/completions, honouring `n` unless honour_n=False,
reporting reasoning tokens) and the Gemini protocol that google-genai uses (POST /v1beta/models/{m}:generateContent
with candidateCount and thinkingConfig, usage with thoughtsTokenCount), plus both providers' files and batch
jobs (dss.testing.fake_batches).

    srv = FakeTeacher(latency=0.05).start()      # srv.openai_url, srv.gemini_url
    srv.script = [("status", 429, {"Retry-After": "0.1"}), ("status", 500), ("malformed",), ("hang", 5)]
    srv.rule = lambda req: ("status", 401) if ... else None     # consulted for every request
    ...
    srv.stop()

Actions (the script is consumed one per generation request, then answers are normal):
    ("ok",)                      answer with responder(last user text, system text)
    ("text", "...")              answer with this text
    ("status", code[, headers[, body]])  an error response (default body: a JSON error naming the code)
    ("malformed",)               status 200 with a body that is not the protocol's JSON
    ("hang", seconds)            say nothing for that long, then close the connection
    ("drop",)                    close the connection without a response
    ("trickle", seconds)         a normal answer, its body sent one byte every `seconds`
    ("huge", n)                  a normal answer whose text is n bytes long
    ("cut", "...")               this text, stopped at the token limit (finish_reason "length" / MAX_TOKENS)
    ("body", dict)               status 200 with exactly this JSON body

`srv.model` is the model name answers report (OpenAI "model", Gemini "modelVersion"); None echoes the asked one.

Command line (prints "READY <base url>" once listening):  python -m dss.testing.fake_teacher --latency 0.05
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import threading

from dss.testing.bodies import gemini_body, openai_body, texts_of
from dss.testing.fake_batches import FakeBatches

_CHOICE = re.compile(r"^\(([a-e])\)\s*(.+)$", re.M)


def default_responder(user: str, system: str = "") -> str:
    """A well-formed chain-of-thought answer in the format the system message asks for."""
    if "Answer Choices:" in user:
        letter, text = (_CHOICE.findall(user) or [("a", "yes")])[0]
        return f"The answer must fit the question. Of the above choices, {text} fits best. " \
               f"So the answer is ({letter}) {text}."
    if "Answer: <" in system:           # e-SNLI format
        return "The hypothesis restates part of the premise.\nAnswer: entailment"
    if "The answer is (<expression>)" in system:
        nums = re.findall(r"\d+(?:\.\d+)?", user)[:2] or ["1", "1"]
        return f"We add the numbers. The answer is ({' + '.join(nums)})."
    if "Premise:" in user:
        return "The premise supports the hypothesis. So the answer is entailment."
    return "Thinking it through step by step. So the answer is yes."


class FakeTeacher:
    """The server runs an asyncio loop on a daemon thread: waiting (latency, hangs) costs no thread, so the
    fake itself stays cheap when it shares a small machine with the client under test."""

    def __init__(self, latency: float = 0.0, responder=default_responder, batch_polls: int = 1,
                 honour_n: bool = True):
        self.latency = latency
        self.responder = responder
        self.script: list[tuple] = []
        self.rule = None                  # callable(request dict) -> action tuple or None
        self.batch_polls = batch_polls    # GETs of a batch that answer "running" before it succeeds
        self.honour_n = honour_n          # False: one choice whatever n / candidateCount asks (Ollama, llama.cpp)
        self.requests: list[dict] = []    # every request: method, path, headers (lower-case), body
        self.fail_batches = False         # batch jobs end FAILED
        self.model: str | None = None     # the model answers say they come from; None: the one asked for
        self.models = ["gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-embedding-001", "fake-model-x"]
        self.batch_api = FakeBatches(self)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle
    def start(self, port: int = 0) -> "FakeTeacher":
        ready = threading.Event()

        def serve():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            server = self._loop.run_until_complete(
                asyncio.start_server(self._client, "127.0.0.1", port, backlog=512))
            self._port = server.sockets[0].getsockname()[1]
            self._closing = asyncio.Event()
            ready.set()
            self._loop.run_until_complete(self._closing.wait())
            server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._closing.set)
            self._thread.join(5)

    @property
    def port(self) -> int:
        return self._port

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def gemini_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def generation_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith(("completions", ":generateContent"))]

    # -- behaviour
    def next_action(self, req: dict) -> tuple:
        with self._lock:
            if self.rule is not None:
                action = self.rule(req)
                if action is not None:
                    return action
            return self.script.pop(0) if self.script else ("ok",)

    # -- HTTP/1.1 over asyncio streams: keep-alive, Content-Length bodies
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # responses are one write, but be safe with clients that wait on ACKs
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length") or 0)
                raw = await reader.readexactly(n) if n else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                req = {"method": method, "path": path, "headers": headers, "body": body, "raw": raw}
                with self._lock:
                    self.requests.append(req)
                reply = await self._handle(req)
                if reply is None:  # hang or drop: the connection closes without an answer
                    return
                code, payload, extra = reply
                trickle = (extra or {}).pop("x-trickle", None)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                kind = "application/json" if not isinstance(payload, bytes) else "application/octet-stream"
                head_out = [f"HTTP/1.1 {code} {_REASONS.get(code, 'Status')}", f"Content-Type: {kind}",
                            f"Content-Length: {len(data)}"] + [f"{k}: {v}" for k, v in (extra or {}).items()]
                writer.write(("\r\n".join(head_out) + "\r\n\r\n").encode("latin-1") + (b"" if trickle else data))
                await writer.drain()
                for k in range(len(data) if trickle else 0):  # one byte at a time: every read returns quickly
                    await asyncio.sleep(trickle)
                    writer.write(data[k:k + 1])
                    await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _handle(self, req: dict):
        path = req["path"]
        reply = self.batch_api.route(req)
        if reply is not None:
            return reply
        if req["method"] == "GET" and re.search(r"/v1(beta)?/models(\?|$)", path):
            return self.model_list(path, gemini="x-goog-api-key" in req["headers"])
        openai = path.endswith("/chat/completions")
        if not openai and not path.endswith(":generateContent"):
            return 404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}}, None
        action = self.next_action(req)
        if self.latency:
            await asyncio.sleep(self.latency)
        kind = action[0]
        if kind == "hang":
            await asyncio.sleep(action[1])
            return None
        if kind == "drop":
            return None
        if kind == "malformed":
            return 200, b"<html>upstream proxy error</html>", None
        if kind == "body":
            return 200, action[1], None
        if kind == "status":
            code, headers = action[1], (action[2] if len(action) > 2 else {})
            body = action[3] if len(action) > 3 else \
                {"error": {"code": code, "message": f"scripted error {code}", "status": "SCRIPTED"}}
            return code, body, headers
        system, user = texts_of(req["body"], openai)
        texts = [action[1] if kind in ("text", "cut") else self.responder(user, system)
                 for _ in range(self.choices(req))]
        if kind == "huge":
            texts = [(t + " ") * (action[1] // (len(t) + 1) + 1) for t in texts]
        n_in, n_out = (len(system) + len(user)) // 4 + 1, sum(len(t) // 4 + 1 for t in texts)
        extra = {"x-trickle": action[1]} if kind == "trickle" else None
        thought = self.thought_tokens(req["body"] or {}, openai)
        model, cut = self.reported_model(req, openai), kind == "cut"
        body = openai_body(texts, n_in, n_out, thought, model, cut) if openai else \
            gemini_body(texts, n_in, n_out, thought, model, cut)
        return 200, body, extra

    def reported_model(self, req: dict, openai: bool) -> str:
        """The model an answer names: srv.model, else the one the request asked for."""
        if self.model:
            return self.model
        if openai:
            return str((req["body"] or {}).get("model"))
        return re.search(r"models/([^:/]+):", req["path"]).group(1)

    def model_list(self, path: str, gemini: bool):
        """GET /v1/models: OpenAI's list, or Gemini's (the SDK's key header; paged by pageSize/pageToken)."""
        if not gemini:
            return 200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"}
                                                    for m in self.models]}, None
        query = dict(q.split("=", 1) for q in path.partition("?")[2].split("&") if "=" in q)
        size, start = int(query.get("pageSize") or 50), int(query.get("pageToken") or 0)
        page = [{"name": f"models/{m}", "displayName": m.title(), "supportedGenerationMethods":
                 ["embedContent"] if "embedding" in m else ["generateContent", "batchGenerateContent"]}
                for m in self.models[start:start + size]]
        body = {"models": page}
        if start + size < len(self.models):
            body["nextPageToken"] = str(start + size)
        return 200, body, None

    def choices(self, req: dict) -> int:
        """How many choices to answer: n (OpenAI) or generationConfig.candidateCount (Gemini), if honoured."""
        body = req["body"] or {}
        asked = body.get("n") if "messages" in body else (body.get("generationConfig") or {}).get("candidateCount")
        return max(1, int(asked or 1)) if self.honour_n else 1

    @staticmethod
    def thought_tokens(body: dict, openai: bool) -> int:
        """Tokens a thinking model would have spent: none when told to think minimally or not at all."""
        if openai:
            return {None: 0, "none": 0, "minimal": 0, "low": 16, "medium": 64, "high": 256}.get(
                body.get("reasoning_effort"), 0)
        cfg = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        # proto JSON: a field may come lowerCamelCase or as the proto's snake_case name (the SDK sends the latter)
        budget, level = cfg.get("thinkingBudget", cfg.get("thinking_budget")), cfg.get("thinkingLevel",
                                                                                    cfg.get("thinking_level"))
        if budget is not None:
            return max(0, int(budget))
        return {"MINIMAL": 0, "LOW": 16, "MEDIUM": 64, "HIGH": 256}.get(level, 300)

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            408: "Request Timeout", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="a fake OpenAI/Gemini teacher on 127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = p.parse_args(argv)
    srv = FakeTeacher(latency=args.latency).start(args.port)
    print(f"READY http://127.0.0.1:{srv.port}", flush=True)
    try:
        srv._thread.join()
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
