"""The one network seam: `make_client(teacher)` gives a client for an OpenAI-compatible chat server (here, over
the standard library's http.client) or for Gemini (dss.teacher.gemini, through google-genai); both classify
failures as dss.teacher.protocol says.

`timeout_s` bounds a whole request, connect to last byte (a server that trickles a byte at a time cannot
stall a run), and a response body may be at most `body_limit(max_tokens)` bytes.
API keys come from the environment only; server text in every message that leaves this module passes through
`shown` (secrets masked, then cut), and --base-url credentials are masked wherever the URL is named.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
from urllib.parse import urlsplit

from dss.teacher.protocol import (
    BadAnswer,
    Completion,
    FatalError,
    Sampling,
    TransientError,
    body_limit,
    http_error,
    parse_retry_after,
    shown,
    token_count,
    too_long,
    url_credentials,
    usage_of,
)
from dss.teacher.spec import TeacherSpec

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


def make_client(teacher: TeacherSpec | str, base_url: str | None = None, timeout_s: float = 120.0, replay=None):
    """The teacher's client; `replay` (a dss.teacher.replay.Replay) is what a replay:<model> teacher answers from,
    and the other providers ignore it."""
    spec = teacher if isinstance(teacher, TeacherSpec) else TeacherSpec.parse(teacher)
    if spec.provider == "replay":
        from dss.teacher.replay import ReplayClient
        return ReplayClient(spec.model, replay)
    if spec.provider == "openai":
        return OpenAIClient(spec.model, base_url or OPENAI_DEFAULT_URL, timeout_s)
    from dss.teacher.gemini import GeminiClient
    return GeminiClient(spec.model, base_url, timeout_s)


# ---------------------------------------------------------------------------------------------- OpenAI
class OpenAIClient:
    """Any OpenAI-compatible /chat/completions server (OpenAI, vLLM, Ollama, llama.cpp, Gemini's OpenAI
    endpoint), over the standard library's http.client with one keep-alive connection per thread."""

    provider = "openai"

    def __init__(self, model: str, base_url: str, timeout_s: float = 120.0, require_key: bool = True):
        self.model, self.timeout_s = model, timeout_s
        self.base_url, self._hidden = url_credentials(base_url)  # base_url as messages name it
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FatalError(f"--base-url {self.base_url!r}: expected http(s)://host[:port]/path")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.path = (parts.path or "") + "/chat/completions"
        self._key = os.environ.get("OPENAI_API_KEY") or None
        if self._key is None and parts.hostname == "api.openai.com" and require_key:
            raise FatalError("openai teacher: set OPENAI_API_KEY (api.openai.com needs a key)")
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.scheme == "https":
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s,
                                                   context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            self._local.conn = conn
        if conn.sock is None:  # new, or closed after a "Connection: close" response
            conn.connect()
            self._local.requests_on_socket = 0
            # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
            # server's delayed ACK can stall each request by ~40 ms
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request_body(self, messages: list[dict], sampling: Sampling) -> dict:
        # api.openai.com has renamed max_tokens (its reasoning models refuse the old name); servers that
        # copy the protocol (vLLM, Ollama, llama.cpp, Gemini's endpoint) know max_tokens
        limit = "max_completion_tokens" if self.host == "api.openai.com" else "max_tokens"
        body = {"model": self.model, "messages": messages, "temperature": sampling.temperature,
                limit: sampling.max_tokens, **dict(sampling.thinking)}  # reasoning_effort, when asked for
        if sampling.n > 1:
            body["n"] = sampling.n
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        return body

    def _post(self, payload: bytes | None, headers: dict, limit: int, held: dict, method: str = "POST",
              path: str | None = None) -> tuple[int, bytes, float | None]:
        """One request on this thread's connection (put in `held` for the caller's watchdog)."""
        conn = held["conn"] = self._conn()
        self._local.reused = getattr(self._local, "requests_on_socket", 0) > 0
        self._local.requests_on_socket = getattr(self._local, "requests_on_socket", 0) + 1
        conn.request(method, path or self.path, body=payload, headers=headers)
        resp = conn.getresponse()
        length = resp.getheader("Content-Length")
        if length and length.isdigit() and int(length) > limit:
            raise too_long(int(length), limit)
        raw = resp.read(limit + 1)
        if len(raw) > limit:
            raise too_long(len(raw), limit)
        if length and length.isdigit() and len(raw) < int(length):  # the socket was cut mid-body
            raise http.client.IncompleteRead(raw, int(length) - len(raw))
        if resp.getheader("Connection", "").lower() == "close":
            self._drop_conn()
        return resp.status, raw, parse_retry_after(resp.getheader("Retry-After"))

    def _send(self, payload: bytes | None, headers: dict, limit: int, method: str = "POST",
              path: str | None = None) -> tuple[int, bytes, float | None]:
        """_post under a watchdog: at the deadline it shuts the socket down, which ends any blocked connect,
        write or read. (A socket timeout bounds each operation only: a server sending a byte every 0.5 s never
        trips it.)"""
        held: dict = {}
        fired = threading.Event()

        def abort():
            fired.set()
            sock = getattr(held.get("conn"), "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        watchdog = threading.Timer(self.timeout_s, abort)
        watchdog.daemon = True
        watchdog.start()
        try:
            try:
                return self._post(payload, headers, limit, held, method, path)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if fired.is_set() or not self._local.reused:
                    raise
                # the server closed an idle keep-alive connection before reading the request: resend now
                # on a fresh one, as HTTP clients do, rather than back off as if the server were failing
                self._drop_conn()
                return self._post(payload, headers, limit, held, method, path)
        except BadAnswer:
            self._drop_conn()  # the rest of the body is never read: the connection cannot be reused
            raise
        except (http.client.HTTPException, OSError) as e:  # refused, reset, timed out, cut by the watchdog
            self._drop_conn()
            if fired.is_set() or isinstance(e, (socket.timeout, TimeoutError)):
                raise TransientError(f"no complete answer within --timeout {self.timeout_s:g} s") from None
            raise TransientError(f"connection failed: {type(e).__name__}: {self.shown(str(e), 300)}") from None
        finally:
            watchdog.cancel()

    def api(self, method: str, subpath: str, body: dict | None = None, files: dict | None = None,
            fields: dict | None = None, raw: bool = False, limit: int = 1 << 31):
        """One call to another endpoint of the server (files, batches): JSON in, JSON (or raw bytes) out."""
        headers = {"Accept": "application/json"}
        payload = None
        if files:
            payload, headers["Content-Type"] = _multipart(fields or {}, files)
        elif body is not None:
            payload, headers["Content-Type"] = json.dumps(body).encode("utf-8"), "application/json"
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        base = self.path[: -len("/chat/completions")]
        status, data, retry_after = self._send(payload, headers, limit, method, base + subpath)
        if status != 200:
            raise http_error(status, data, retry_after, f"{self.base_url}{subpath}", "OPENAI_API_KEY", self._key,
                             self._hidden)
        if raw:
            return data
        try:
            return json.loads(data)
        except ValueError:
            raise TransientError(f"malformed response body from {subpath}: "
                                 f"{self.shown(data.decode('utf-8', 'replace'), 200)!r}") from None

    def list_models(self) -> list[dict]:
        """GET /models: [{"id", "owned_by"}] as the server lists them."""
        data = self.api("GET", "/models", limit=16 << 20)
        return [{"id": str(m.get("id")), "owned_by": m.get("owned_by")} for m in (data.get("data") or [])]

    def complete(self, messages: list[dict], sampling: Sampling) -> list[Completion]:
        """The request's choices (sampling.n asked for; a server that ignores `n` returns one)."""
        payload = json.dumps(self.request_body(messages, sampling)).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        status, raw, retry_after = self._send(payload, headers, body_limit(sampling.max_tokens, sampling.n))
        if status != 200:
            raise http_error(status, raw, retry_after, f"{self.base_url} (openai:{self.model})",
                             "OPENAI_API_KEY", self._key, self._hidden)
        try:
            return openai_completions(json.loads(raw))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            raise TransientError(f"malformed response body ({type(e).__name__}): "
                                 f"{self.shown(raw.decode('utf-8', 'replace'), 200)!r}") from None

    def shown(self, text: str, limit: int) -> str:
        """Server text with the key and --base-url credentials masked, then cut."""
        return shown(text, [self._key, *self._hidden], limit)


def _multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    """A multipart/form-data body (what /v1/files takes) and its content type."""
    boundary = f"dss-{os.urandom(8).hex()}"
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                   f"Content-Type: application/jsonl\r\n\r\n".encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def openai_completions(data: dict) -> list[Completion]:
    """The choices of a chat.completion body, in index order (also what batch result lines hold)."""
    choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
    if not choices:
        raise IndexError("no choices")
    texts = []
    for choice in choices:
        text = choice["message"].get("content") or ""
        if not isinstance(text, str):
            raise TypeError("content is not a string")
        texts.append(text)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
    if usage is not None:  # completion_tokens include the reasoning tokens
        details = usage.get("completion_tokens_details")
        thought = token_count(details.get("reasoning_tokens") if isinstance(details, dict) else None)
        completion = token_count(usage.get("completion_tokens"))
        usage = usage_of(token_count(usage.get("prompt_tokens")),
                         None if completion is None or thought is None else completion - thought, thought)
    model = data.get("model") if isinstance(data.get("model"), str) else None
    return [Completion(text=t, usage=usage if k == 0 else {"shared": True}, finish_reason=c.get("finish_reason"),
                       model=model) for k, (t, c) in enumerate(zip(texts, choices))]
