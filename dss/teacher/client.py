"""The one network seam: teacher clients for Gemini (google-genai) and OpenAI-compatible chat servers.

A client makes ONE attempt per `complete()` call and classifies failures:
    FatalError       400/401/403/404 and other 4xx, missing key: the whole run stops at once
    TransientError   429, 408, 5xx, timeouts, dropped connections, malformed bodies: retried by
                     `call_with_retries` with exponential backoff and full jitter, honouring Retry-After
    BadAnswer        the server answered, but the answer cannot be used (a body over the size cap): an error
                     record at once, redone on a rerun; the same request would only get the same answer
`timeout_s` bounds a whole request, connect to last byte (a server that trickles a byte at a time cannot
stall a run), and a response body may be at most `body_limit(max_tokens)` bytes.
API keys come from the environment only; every message that leaves this module passes through `redact`.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
MAX_RETRY_AFTER_S = 600.0  # a server asking for longer than this is treated as asking for this


class TeacherError(Exception):
    attempts: int = 1  # set by call_with_retries on the error it gives up with


class FatalError(TeacherError):
    """Retrying cannot help (bad request, bad key, no permission, unknown model): stop the run."""


class Stopped(TeacherError):
    """The run is stopping (another request hit a FatalError, or the user interrupted): give up quietly."""


class BadAnswer(TeacherError):
    """An answer that arrived but cannot be used; retrying the same request would not help."""


class TransientError(TeacherError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Completion:
    text: str
    usage: dict | None = None  # {"input_tokens": int, "output_tokens": int} when the provider reports it
    finish_reason: str | None = None


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "stop": list(self.stop)}


@dataclass
class RetryPolicy:
    max_attempts: int = 6        # including the first try
    base_s: float = 1.0          # first backoff; doubles each attempt
    max_s: float = 60.0          # backoff ceiling (a Retry-After may ask for longer, up to MAX_RETRY_AFTER_S)
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        backoff = self.rng.uniform(0, min(self.max_s, self.base_s * 2 ** attempt))  # full jitter
        if retry_after is not None:
            return min(MAX_RETRY_AFTER_S, max(retry_after, 0.0)) + backoff * 0.1
        return backoff


def body_limit(max_tokens: int, choices: int = 1) -> int:
    """The most bytes a response body may have: 1 MiB of envelope, plus 100 bytes per asked-for token (a token
    is ~4 characters; JSON escapes make a character at most 6 bytes) for each choice. 512 tokens: ~1.1 MB."""
    return (1 << 20) + 100 * max_tokens * choices


def too_long(size: int, limit: int) -> BadAnswer:
    return BadAnswer(f"response body of {size:,}+ bytes exceeds the {limit:,}-byte cap for this max_tokens; "
                     "not stored (raise --max-tokens if answers really are this long)")


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def call_with_retries(fn, policy: RetryPolicy, stop_event: threading.Event | None = None,
                      on_retry=None):
    """fn() until it returns, a FatalError, or attempts run out (the last TransientError is raised).
    Returns (result, attempts)."""
    for attempt in range(policy.max_attempts):
        try:
            return fn(), attempt + 1
        except BadAnswer as e:
            e.attempts = attempt + 1
            raise
        except TransientError as e:
            if attempt + 1 >= policy.max_attempts:
                e.attempts = attempt + 1
                raise
            wait = policy.delay(attempt, e.retry_after)
            if on_retry:
                on_retry(e, wait)
            if stop_event is not None:
                if stop_event.wait(wait):
                    raise Stopped() from None
            else:
                time.sleep(wait)
    raise AssertionError("unreachable")


def redact(text: str, secrets) -> str:
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def parse_teacher(teacher: str) -> tuple[str, str]:
    provider, sep, model = teacher.partition(":")
    if not sep or not model or provider not in ("gemini", "openai"):
        raise FatalError(f"--teacher {teacher!r}: expected gemini:<model> or openai:<model> "
                         "(e.g. gemini:gemini-2.5-flash, openai:gpt-4o-mini, openai:llama3.1 with --base-url)")
    return provider, model


def make_client(teacher: str, base_url: str | None = None, timeout_s: float = 120.0):
    provider, model = parse_teacher(teacher)
    if provider == "openai":
        return OpenAIClient(model, base_url or OPENAI_DEFAULT_URL, timeout_s)
    return GeminiClient(model, base_url, timeout_s)


# ---------------------------------------------------------------------------------------------- OpenAI
class OpenAIClient:
    """Any OpenAI-compatible /chat/completions server (OpenAI, vLLM, Ollama, llama.cpp, Gemini's OpenAI
    endpoint), over the standard library's http.client with one keep-alive connection per thread."""

    provider = "openai"

    def __init__(self, model: str, base_url: str, timeout_s: float = 120.0):
        self.model, self.timeout_s = model, timeout_s
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FatalError(f"--base-url {base_url!r}: expected http(s)://host[:port]/path")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.path = (parts.path or "") + "/chat/completions"
        self.base_url = base_url
        self._key = os.environ.get("OPENAI_API_KEY") or None
        if self._key is None and parts.hostname == "api.openai.com":
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
                limit: sampling.max_tokens}
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        return body

    def _post(self, payload: bytes, headers: dict, limit: int, held: dict) -> tuple[int, bytes, float | None]:
        """One request on this thread's connection (put in `held` for the caller's watchdog)."""
        conn = held["conn"] = self._conn()
        self._local.reused = getattr(self._local, "requests_on_socket", 0) > 0
        self._local.requests_on_socket = getattr(self._local, "requests_on_socket", 0) + 1
        conn.request("POST", self.path, body=payload, headers=headers)
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

    def _send(self, payload: bytes, headers: dict, limit: int) -> tuple[int, bytes, float | None]:
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
                return self._post(payload, headers, limit, held)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if fired.is_set() or not self._local.reused:
                    raise
                # the server closed an idle keep-alive connection before reading the request: resend now
                # on a fresh one, as HTTP clients do, rather than back off as if the server were failing
                self._drop_conn()
                return self._post(payload, headers, limit, held)
        except BadAnswer:
            self._drop_conn()  # the rest of the body is never read: the connection cannot be reused
            raise
        except (http.client.HTTPException, OSError) as e:  # refused, reset, timed out, cut by the watchdog
            self._drop_conn()
            if fired.is_set() or isinstance(e, (socket.timeout, TimeoutError)):
                raise TransientError(f"no complete answer within --timeout {self.timeout_s:g} s") from None
            raise TransientError(f"connection failed: {type(e).__name__}: {e}") from None
        finally:
            watchdog.cancel()

    def complete(self, messages: list[dict], sampling: Sampling) -> Completion:
        payload = json.dumps(self.request_body(messages, sampling)).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        status, raw, retry_after = self._send(payload, headers, body_limit(sampling.max_tokens))
        if status != 200:
            raise _http_error(status, raw, retry_after, f"{self.base_url} (openai:{self.model})",
                              "OPENAI_API_KEY", self._key)
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            raise TransientError(f"malformed response body ({type(e).__name__}): "
                                 f"{redact(raw[:200].decode('utf-8', 'replace'), [self._key])!r}") from None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        if usage is not None:
            usage = {"input_tokens": int(usage.get("prompt_tokens") or 0),
                     "output_tokens": int(usage.get("completion_tokens") or 0)}
        return Completion(text=text, usage=usage, finish_reason=choice.get("finish_reason"))


def _http_error(status: int, raw: bytes, retry_after, where: str, key_var: str, key) -> TeacherError:
    detail = raw[:300].decode("utf-8", "replace")
    try:
        err = json.loads(raw)
        err = err[0] if isinstance(err, list) and err else err
        msg = err.get("error", {}).get("message") if isinstance(err.get("error"), dict) else err.get("error")
        detail = str(msg or err.get("message") or detail)[:300]
    except (ValueError, AttributeError):
        pass
    detail = redact(detail, [key])
    if status in (408, 429) or status >= 500:
        return TransientError(f"HTTP {status} from {where}: {detail}", retry_after)
    hint = {401: f"the API key was rejected: check {key_var}" + ("" if key else f" ({key_var} is not set)"),
            403: f"permission denied: check that the key in {key_var} may use this model",
            404: "not found: check --base-url and the model name",
            400: "bad request: the server refused the prompt or the sampling settings"}.get(status, "")
    return FatalError(f"HTTP {status} from {where}: {hint}{'; ' if hint else ''}server said: {detail}")


# ---------------------------------------------------------------------------------------------- Gemini
def gemini_key() -> str | None:
    return os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or None


def gemini_contents(messages: list[dict]) -> tuple[str | None, list[dict]]:
    """Chat messages as Gemini (system_instruction, contents): assistant turns have role 'model'."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system") or None
    contents = [{"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
                for m in messages if m["role"] != "system"]
    return system, contents


class GeminiClient:
    """Gemini through google-genai (pip install 'dss[gemini]'); the SDK's own retries are off so that
    `call_with_retries` is the one retry policy."""

    provider = "gemini"

    def __init__(self, model: str, base_url: str | None = None, timeout_s: float = 120.0):
        try:
            from google import genai
            from google.genai import types
        except ImportError:
            raise FatalError("gemini teacher needs google-genai: pip install 'dss[gemini]'") from None
        self.model, self.base_url, self.timeout_s = model, base_url, timeout_s
        self._key = gemini_key()
        if self._key is None:
            if not base_url:
                raise FatalError("gemini teacher: set GEMINI_API_KEY (or GOOGLE_API_KEY)")
            self._key = "unset"  # a self-hosted --base-url endpoint may not check keys; the SDK wants one
        self._types = types
        from dss.teacher.gemini_transport import Limits, limited_transport
        self.limits = Limits()
        opts = types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000), retry_options=None,
                                 client_args={"transport": limited_transport(timeout_s, self.limits)})
        self.client = genai.Client(api_key=self._key, http_options=opts)

    def config(self, system: str | None, sampling: Sampling):
        return self._types.GenerateContentConfig(
            system_instruction=system, temperature=sampling.temperature,
            max_output_tokens=sampling.max_tokens, stop_sequences=list(sampling.stop) or None,
            candidate_count=1)

    def complete(self, messages: list[dict], sampling: Sampling) -> Completion:
        system, contents = gemini_contents(messages)
        self.limits.max_bytes = body_limit(sampling.max_tokens)
        try:
            resp = self.call(lambda: self.client.models.generate_content(
                model=self.model, contents=contents, config=self.config(system, sampling)))
        finally:
            self.limits.max_bytes = None
        return gemini_completion(resp)

    def call(self, fn):
        """fn() (any google-genai call) with its failures classified as FatalError / TransientError."""
        from google.genai import errors

        from dss.teacher.gemini_transport import BodyTooLarge, DeadlineExceeded
        try:
            return fn()
        except DeadlineExceeded:
            raise TransientError(f"no complete answer within --timeout {self.timeout_s:g} s") from None
        except BodyTooLarge as e:
            raise too_long(e.size, e.limit) from None
        except errors.APIError as e:
            headers = getattr(getattr(e, "response", None), "headers", None) or {}
            raw = json.dumps({"error": {"message": e.message or str(e.details)[:300]}}).encode()
            raise _http_error(int(e.code or 0), raw, parse_retry_after(headers.get("retry-after")),
                              f"gemini:{self.model}", "GEMINI_API_KEY", self._key) from None
        except (ValueError, TypeError, KeyError) as e:  # pydantic validation of a malformed body
            raise TransientError(f"malformed response body: {type(e).__name__}: "
                                 f"{redact(str(e)[:200], [self._key])}") from None
        except Exception as e:  # httpx2 transport errors: timeouts, refused, reset
            if _is_transport_error(e):
                raise TransientError(f"connection failed: {type(e).__name__}: "
                                     f"{redact(str(e)[:200], [self._key])}") from None
            raise


def _is_transport_error(e: Exception) -> bool:
    for modname in ("httpx2", "httpx"):
        try:
            mod = __import__(modname)
        except ImportError:
            continue
        if isinstance(e, (mod.TransportError, mod.TimeoutException)):
            return True
    return isinstance(e, (OSError, http.client.HTTPException))


def gemini_completion(resp) -> Completion:
    """Text and usage of a GenerateContentResponse (also used for Batch API results)."""
    parts = []
    for cand in (resp.candidates or [])[:1]:
        for part in (cand.content.parts if cand.content and cand.content.parts else []):
            if part.text and not getattr(part, "thought", False):
                parts.append(part.text)
    finish = None
    if resp.candidates and resp.candidates[0].finish_reason is not None:
        finish = str(getattr(resp.candidates[0].finish_reason, "value", resp.candidates[0].finish_reason))
    usage = None
    um = resp.usage_metadata
    if um is not None and (um.prompt_token_count is not None or um.candidates_token_count is not None):
        # thinking tokens are billed as output
        usage = {"input_tokens": int(um.prompt_token_count or 0),
                 "output_tokens": int(um.candidates_token_count or 0) + int(um.thoughts_token_count or 0)}
    return Completion(text="".join(parts), usage=usage, finish_reason=finish)
