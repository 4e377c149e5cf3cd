"""An httpx transport for google-genai that bounds each request the way dss's own HTTP client does: a whole-
request deadline checked as the body arrives (a server trickling a byte at a time is cut off at --timeout) and
a cap on the body's size (an answer of many MB is refused, never stored). The SDK's own timeout is per socket
operation; it still bounds the connect and each wait for the first byte of headers.

    transport = limited_transport(timeout_s, limits)   # limits.max_bytes: set per request, None = no cap
    genai.Client(..., http_options=HttpOptions(client_args={"transport": transport}))
"""
from __future__ import annotations

import threading
import time


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
