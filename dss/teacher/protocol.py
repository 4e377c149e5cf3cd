"""What every teacher client shares: the failure classes, a request's sampling settings and its completion,
the retry policy (exponential backoff, full jitter, Retry-After), redaction of keys, and the body-size cap.

A client makes ONE attempt per `complete()` call and classifies failures:
    FatalError       400/401/403/404 and other 4xx, missing key: the whole run stops at once
    TransientError   429, 408, 5xx, timeouts, dropped connections, malformed bodies: retried by
                     `call_with_retries` with exponential backoff and full jitter, honouring Retry-After up
                     to the backoff ceiling (a server asking a day would otherwise stall the run unseen)
    BadAnswer        the server answered, but the answer cannot be used (a body over the size cap): an error
                     record at once, redone on a rerun; the same request would only get the same answer
"""
from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit


class TeacherError(Exception):
    attempts: int = 1  # set by call_with_retries on the error it gives up with
    status: int | None = None  # the HTTP status the server answered with (http_error); None: no answer came


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


# finish reasons of an answer the token limit cut off (OpenAI and servers copying it; Gemini): whatever its text
# parses to, the answer did not end, so it is stored as "truncated", never as a label
CUT_OFF = frozenset({"length", "MAX_TOKENS"})


@dataclass
class Completion:
    text: str
    # {"input_tokens", "output_tokens", "thought_tokens"} when the provider reports them; output_tokens excludes
    # thoughts (both bill them at the output price). With several choices in one request the request's usage
    # is on the first choice and the others carry {"shared": True}: a tally never counts a prompt twice.
    usage: dict | None = None
    finish_reason: str | None = None
    model: str | None = None  # the model the response says answered (OpenAI "model", Gemini "modelVersion")


def token_count(value) -> int | None:
    """A reported token count: a whole number >= 0 (absent: 0); None for anything else."""
    if value is None:
        return 0
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return int(value) if number and value >= 0 and value == int(value) else None


def usage_of(input_tokens: int | None, output_tokens: int | None, thought_tokens: int | None) -> dict | None:
    """A response's usage from its `token_count`s; None, "usage unknown" (as if the provider had reported none:
    counted among answers without usage), when one is not a count: a bill cannot rest on it. The answer stands."""
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "thought_tokens": thought_tokens}
    return None if any(v is None or v < 0 for v in usage.values()) else usage


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    n: int = 1                        # choices asked for in one request (OpenAI `n`, Gemini candidate_count)
    thinking: tuple = ()              # (key, value) pairs from dss.teacher.thinking.resolve

    def to_dict(self) -> dict:
        """What decides an answer (part of the cache key): n is not, it only batches samples."""
        out = {"temperature": self.temperature, "max_tokens": self.max_tokens, "stop": list(self.stop)}
        return {**out, **dict(self.thinking)}


@dataclass
class RetryPolicy:
    max_attempts: int = 6        # including the first try
    base_s: float = 1.0          # first backoff; doubles each attempt
    max_s: float = 60.0          # backoff ceiling, a server's Retry-After included
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        backoff = self.rng.uniform(0, min(self.max_s, self.base_s * 2 ** attempt))  # full jitter
        if retry_after is not None:
            return min(retry_after, self.max_s) + backoff * 0.1
        return backoff


def body_limit(max_tokens: int, choices: int = 1) -> int:
    """The most bytes a response body may have: 1 MiB of envelope, plus 100 bytes per asked-for token (a token
    is ~4 characters; JSON escapes make a character at most 6 bytes) for each choice. 512 tokens: ~1.1 MB."""
    return (1 << 20) + 100 * max_tokens * choices


def too_long(size: int, limit: int) -> BadAnswer:
    return BadAnswer(f"response body of {size:,}+ bytes exceeds the {limit:,}-byte cap for this max_tokens; "
                     "not stored (raise --max-tokens if answers really are this long)")


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number (fractions accepted; "inf" is as long as the policy allows) or an HTTP
    date; None when it says nothing usable ("nan", "soon")."""
    if not value:
        return None
    try:
        seconds = float(value)
        return None if math.isnan(seconds) else max(0.0, seconds)
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


def as_text(s: str) -> str:
    """`s` with each lone surrogate as U+FFFD: JSON may carry "\\ud800", half a character, which no terminal,
    UTF-8 file or tokenizer takes."""
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def shown(text: str, secrets, limit: int) -> str:
    """Server text safe to show or store: every secret masked, then cut to `limit` characters. (Cut first, a
    key straddling the cut would no longer match, and the part before the cut would show.)"""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return as_text(text[:limit])


def url_credentials(url: str) -> tuple[str, list[str]]:
    """(the URL as it may be shown, with any user:password@ masked; the credentials, to mask in server text)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, []
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}")), [x for x in (parts.username, parts.password) if x]


def http_error(status: int, raw: bytes, retry_after, where: str, key_var: str, key, hidden=()) -> TeacherError:
    """The error for a non-200 answer, with the server's message (`key` and the `hidden` secrets masked)."""
    detail = raw.decode("utf-8", "replace")
    try:
        err = json.loads(raw)
        err = err[0] if isinstance(err, list) and err else err
        msg = err.get("error", {}).get("message") if isinstance(err.get("error"), dict) else err.get("error")
        detail = str(msg or err.get("message") or detail)
    except (ValueError, AttributeError):
        pass
    detail = shown(detail, [key, *hidden], 300)
    if status in (408, 429) or status >= 500:
        err: TeacherError = TransientError(f"HTTP {status} from {where}: {detail}", retry_after)
        err.status = status
        return err
    hint = {401: f"the API key was rejected: check {key_var}" + ("" if key else f" ({key_var} is not set)"),
            403: f"permission denied: check that the key in {key_var} may use this model",
            404: "not found: check --base-url and the model name",
            400: "bad request: the server refused the prompt or the sampling settings"}.get(status, "")
    err = FatalError(f"HTTP {status} from {where}: {hint}{'; ' if hint else ''}server said: {detail}")
    err.status = status
    return err
