"""The Gemini teacher, through google-genai (pip install 'dss[gemini]'): requests, answers, usage, and the
httpx transport that bounds each request as dss's own HTTP client does — a whole-request deadline checked as
the body arrives (a server trickling a byte at a time is cut off at --timeout) and a cap on the body's size.
The SDK's own timeout is per socket operation; it still bounds the connect and each wait for a first byte.
Failures are classified as dss.teacher.client's are (FatalError / TransientError / BadAnswer).
"""
from __future__ import annotations

import http.client
import json
import os
import threading
import time

from dss.teacher.protocol import (
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
        self._hidden = url_credentials(base_url)[1] if base_url else []
        self._key = gemini_key()
        if self._key is None:
            if not base_url:
                raise FatalError("gemini teacher: set GEMINI_API_KEY (or GOOGLE_API_KEY)")
            self._key = "unset"  # a self-hosted --base-url endpoint may not check keys; the SDK wants one
        self._types = types
        self.limits = Limits()
        opts = types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000), retry_options=None,
                                 client_args={"transport": limited_transport(timeout_s, self.limits)})
        self.client = genai.Client(api_key=self._key, http_options=opts)

    def config(self, system: str | None, sampling: Sampling):
        thinking = dict(sampling.thinking)
        if "thinking_level" in thinking:
            thinking["thinking_level"] = thinking["thinking_level"].upper()  # the API's enum: MINIMAL, LOW, ...
        return self._types.GenerateContentConfig(
            system_instruction=system, temperature=sampling.temperature,
            max_output_tokens=sampling.max_tokens, stop_sequences=list(sampling.stop) or None,
            candidate_count=sampling.n, thinking_config=self._types.ThinkingConfig(**thinking) if thinking else None)

    def rest_request(self, messages: list[dict], sampling: Sampling) -> dict:
        """A GenerateContentRequest as the REST API documents it (ai.google.dev/api/generate-content): what a
        batch file's lines carry, one candidate each."""
        system, contents = gemini_contents(messages)
        gc = {"temperature": sampling.temperature, "maxOutputTokens": sampling.max_tokens, "candidateCount": 1}
        if sampling.stop:
            gc["stopSequences"] = list(sampling.stop)
        thinking = dict(sampling.thinking)
        if "thinking_budget" in thinking:
            gc["thinkingConfig"] = {"thinkingBudget": thinking["thinking_budget"]}
        elif "thinking_level" in thinking:
            gc["thinkingConfig"] = {"thinkingLevel": thinking["thinking_level"].upper()}
        request = {"contents": contents, "generationConfig": gc}
        if system:
            request["systemInstruction"] = {"parts": [{"text": system}]}
        return request

    def complete(self, messages: list[dict], sampling: Sampling) -> list[Completion]:
        """The request's candidates (sampling.n asked for as candidate_count)."""
        system, contents = gemini_contents(messages)
        self.limits.max_bytes = body_limit(sampling.max_tokens, sampling.n)
        try:
            resp = self.call(lambda: self.client.models.generate_content(
                model=self.model, contents=contents, config=self.config(system, sampling)))
        finally:
            self.limits.max_bytes = None
        return gemini_completion(resp)

    def list_models(self) -> list[dict]:
        """The models the key can use (the SDK pages through GET /v1beta/models)."""
        models = self.call(lambda: list(self.client.models.list(config={"page_size": 100})))
        return [{"id": (m.name or "").removeprefix("models/"), "display_name": m.display_name,
                 "actions": list(m.supported_actions or [])} for m in models]

    def call(self, fn):
        """fn() (any google-genai call) with its failures classified as FatalError / TransientError."""
        from google.genai import errors

        try:
            return fn()
        except DeadlineExceeded:
            raise TransientError(f"no complete answer within --timeout {self.timeout_s:g} s") from None
        except BodyTooLarge as e:
            raise too_long(e.size, e.limit) from None
        except errors.APIError as e:
            headers = getattr(getattr(e, "response", None), "headers", None) or {}
            raw = json.dumps({"error": {"message": e.message or str(e.details)}}).encode()  # http_error cuts it
            raise http_error(int(e.code or 0), raw, parse_retry_after(headers.get("retry-after")),
                              f"gemini:{self.model}", "GEMINI_API_KEY", self._key, self._hidden) from None
        except (ValueError, TypeError, KeyError) as e:  # pydantic validation of a malformed body
            raise TransientError(f"malformed response body: {type(e).__name__}: {self.shown(str(e), 200)}") from None
        except Exception as e:  # httpx2 transport errors: timeouts, refused, reset
            if _is_transport_error(e):
                raise TransientError(f"connection failed: {type(e).__name__}: {self.shown(str(e), 200)}") from None
            raise

    def shown(self, text: str, limit: int) -> str:
        """Server text with the key and --base-url credentials masked, then cut."""
        return shown(text, [self._key, *self._hidden], limit)


def _is_transport_error(e: Exception) -> bool:
    for modname in ("httpx2", "httpx"):
        try:
            mod = __import__(modname)
        except ImportError:
            continue
        if isinstance(e, (mod.TransportError, mod.TimeoutException)):
            return True
    return isinstance(e, (OSError, http.client.HTTPException))


def gemini_completion(resp) -> list[Completion]:
    """Text and usage of each candidate of a GenerateContentResponse (also used for Batch API results). Thought
    parts are not the answer; thoughts_token_count is counted apart (billed at the output price). A negative
    count makes the usage unknown (`usage_of`); google-genai refuses a non-numeric one itself (a malformed body)."""
    cands = sorted(resp.candidates or [], key=lambda c: c.index or 0)
    usage = None
    um = resp.usage_metadata
    if um is not None and (um.prompt_token_count is not None or um.candidates_token_count is not None):
        usage = usage_of(token_count(um.prompt_token_count), token_count(um.candidates_token_count),
                         token_count(um.thoughts_token_count))
    out = []
    for k, cand in enumerate(cands or [None]):
        parts = cand.content.parts if cand is not None and cand.content and cand.content.parts else []
        text = "".join(p.text for p in parts if p.text and not getattr(p, "thought", False))
        finish = None if cand is None or cand.finish_reason is None else \
            str(getattr(cand.finish_reason, "value", cand.finish_reason))
        out.append(Completion(text=text, usage=usage if k == 0 else {"shared": True}, finish_reason=finish,
                              model=resp.model_version))
    return out


# ------------------------------------------------------------------------------- limits on the transport
class DeadlineExceeded(Exception):
    """The body did not arrive whole within the request's deadline."""


class BodyTooLarge(Exception):
    def __init__(self, size: int, limit: int):
        super().__init__(f"{size} > {limit}")
        self.size, self.limit = size, limit


def _httpx():
    try:
        import httpx2 as mod  # what google-genai >= 3 prefers
    except ImportError:
        import httpx as mod
    return mod


class Limits(threading.local):
    """Per-thread: the body cap of the request this thread is making (None for batch and file calls)."""
    max_bytes: int | None = None


def limited_transport(timeout_s: float, limits: Limits):
    mod = _httpx()

    class LimitedStream(mod.SyncByteStream):
        def __init__(self, inner, deadline: float, limit: int | None):
            self.inner, self.deadline, self.limit = inner, deadline, limit

        def __iter__(self):
            size = 0
            for chunk in self.inner:
                size += len(chunk)
                if self.limit is not None and size > self.limit:
                    raise BodyTooLarge(size, self.limit)
                if time.monotonic() > self.deadline:
                    raise DeadlineExceeded()
                yield chunk

        def close(self):
            self.inner.close()

    class LimitedTransport(mod.BaseTransport):
        def __init__(self):
            self.inner = mod.HTTPTransport()

        def handle_request(self, request):
            deadline = time.monotonic() + timeout_s
            resp = self.inner.handle_request(request)
            length = resp.headers.get("content-length", "")
            if limits.max_bytes is not None and length.isdigit() and int(length) > limits.max_bytes:
                resp.close()
                raise BodyTooLarge(int(length), limits.max_bytes)
            return mod.Response(resp.status_code, headers=resp.headers, extensions=resp.extensions,
                                stream=LimitedStream(resp.stream, deadline, limits.max_bytes))

        def close(self):
            self.inner.close()

    return LimitedTransport()
