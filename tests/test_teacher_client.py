"""Teacher clients against a real HTTP server on 127.0.0.1 (dss.testing.fake_teacher): OpenAI
chat-completions and Gemini generateContent, with scripted 429 + Retry-After, 500s, malformed bodies,
hangs and dropped connections. Nothing here leaves the machine."""
import random
import time

import pytest

from dss.core.errors import ConfigError
from dss.teacher.client import OpenAIClient, make_client
from dss.teacher.gemini import GeminiClient
from dss.teacher.protocol import (
    FatalError,
    RetryPolicy,
    Sampling,
    TransientError,
    call_with_retries,
    parse_retry_after,
)
from dss.testing.fake_teacher import FakeTeacher

KEY = "sk-test-SECRET-0123456789"
MSGS = [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: Where?\nAnswer Choices:\n(a) home\n(b) work"}]
FAST = RetryPolicy(max_attempts=4, base_s=0.01, max_s=0.5, rng=random.Random(0))  # max_s caps Retry-After too


@pytest.fixture
def srv():
    with FakeTeacher() as s:
        yield s


@pytest.fixture(params=["openai", "gemini"])
def client(request, srv, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    if request.param == "openai":
        return OpenAIClient("m1", srv.openai_url, timeout_s=0.5)
    pytest.importorskip("google.genai")
    return GeminiClient("m1", srv.gemini_url, timeout_s=0.5)


def retrying(client):
    return call_with_retries(lambda: client.complete(MSGS, Sampling(0.0, 64, ("\n\nQ:",)))[0], FAST)


def test_answer_usage_and_request_shape(client, srv):
    [comp] = client.complete(MSGS, Sampling(0.3, 64, ("\n\nQ:",)))
    assert comp.text.endswith("So the answer is (a) home.")
    assert comp.usage["input_tokens"] > 0 and comp.usage["output_tokens"] > 0
    req = srv.requests[-1]
    if client.provider == "openai":
        assert req["path"] == "/v1/chat/completions"
        assert req["headers"]["authorization"] == f"Bearer {KEY}"
        body = req["body"]
        assert (body["model"], body["temperature"], body["max_tokens"], body["stop"]) == ("m1", 0.3, 64, ["\n\nQ:"])
        assert body["messages"] == MSGS
    else:
        assert req["path"].endswith("/models/m1:generateContent")
        assert req["headers"]["x-goog-api-key"] == KEY
        body = req["body"]
        assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."
        assert body["contents"][-1]["role"] == "user"
        gc = body["generationConfig"]
        assert (gc["temperature"], gc["maxOutputTokens"], gc["stopSequences"]) == (0.3, 64, ["\n\nQ:"])


def test_429_retry_after_is_honoured(client, srv):
    srv.script = [("status", 429, {"Retry-After": "0.3"})]
    t0 = time.monotonic()
    comp, attempts = retrying(client)
    assert attempts == 2 and comp.text
    assert time.monotonic() - t0 >= 0.3


@pytest.mark.parametrize("action", [("status", 500), ("status", 503), ("malformed",), ("hang", 3), ("drop",)])
def test_transient_failures_are_retried(client, srv, action):
    srv.script = [action, action]
    comp, attempts = retrying(client)
    assert attempts == 3 and comp.text.startswith("The answer")


def test_timeout_bounds_the_whole_request_not_each_read(client, srv):
    """A server that answers 200 and then sends its body a byte every 0.1 s never trips a per-read timeout
    of 0.5 s; the request as a whole must still end at about the timeout."""
    srv.script = [("trickle", 0.1)]
    start = time.monotonic()
    with pytest.raises(TransientError, match="no complete answer within --timeout 0.5 s"):
        client.complete(MSGS, Sampling(0.0, 64))
    assert time.monotonic() - start < 2.0
    assert client.complete(MSGS, Sampling(0.0, 64))[0].text.startswith("The answer")  # the next one is fine


def test_a_huge_answer_is_refused_not_stored(client, srv):
    from dss.teacher.protocol import BadAnswer, body_limit
    srv.script = [("huge", 3_000_000)]
    with pytest.raises(BadAnswer, match="exceeds the 1,054,976-byte cap"):
        call_with_retries(lambda: client.complete(MSGS, Sampling(0.0, 64)), FAST)
    assert len(srv.generation_requests()) == 1 and body_limit(64) == 1_054_976  # not retried
    assert client.complete(MSGS, Sampling(0.0, 64))[0].text.startswith("The answer")


def test_attempts_run_out_with_the_last_error(client, srv):
    srv.script = [("status", 502)] * 4
    with pytest.raises(TransientError, match="502"):
        retrying(client)
    assert len(srv.generation_requests()) == 4


@pytest.mark.parametrize("code", [400, 401, 403])
def test_client_errors_stop_at_once_without_the_key(client, srv, code):
    # the server echoes the key in its message, as some providers do: it must not reach the user
    srv.rule = lambda req: ("status", code)
    srv.responder = None
    with pytest.raises(FatalError) as e:
        retrying(client)
    assert len(srv.generation_requests()) == 1
    msg = str(e.value)
    assert str(code) in msg and KEY not in msg
    if code == 401:
        assert ("OPENAI_API_KEY" if client.provider == "openai" else "GEMINI_API_KEY") in msg


def test_key_echoed_by_server_is_redacted(srv, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    srv.rule = lambda req: ("status", 401, {}, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
    with pytest.raises(FatalError) as e:
        OpenAIClient("m", srv.openai_url).complete(MSGS, Sampling())
    assert KEY not in str(e.value) and "Incorrect API key provided: ***" in str(e.value)


def test_no_key_is_fine_for_local_servers_but_not_for_openai(srv, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    c = OpenAIClient("llama", srv.openai_url)
    assert c.complete(MSGS, Sampling())[0].text
    assert "authorization" not in srv.requests[-1]["headers"]
    with pytest.raises(FatalError, match="OPENAI_API_KEY"):
        make_client("openai:gpt-4o-mini")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(FatalError, match="GEMINI_API_KEY"):
        make_client("gemini:gemini-2.5-flash")
    with pytest.raises(ConfigError, match="provider:model|gemini:<model>"):
        make_client("claude:x")


def test_connection_refused_is_transient(monkeypatch):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(TransientError, match="connection failed"):
        OpenAIClient("m", f"http://127.0.0.1:{port}/v1").complete(MSGS, Sampling())


def test_retry_after_forms_and_backoff_bounds():
    assert parse_retry_after("2") == 2.0 and parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    from email.utils import formatdate
    assert 8 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10
    p = RetryPolicy(max_attempts=10, base_s=1.0, max_s=8.0, rng=random.Random(1))
    delays = [p.delay(a, None) for a in range(10)]
    assert all(0 <= d <= 8.0 for d in delays) and len(set(delays)) == 10  # jittered, capped
    assert 5.0 <= p.delay(0, 5.0) <= 5.1  # Retry-After is a floor


def test_openai_itself_gets_max_completion_tokens(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    body = make_client("openai:gpt-4o-mini").request_body(MSGS, Sampling(0.0, 77))
    assert body["max_completion_tokens"] == 77 and "max_tokens" not in body
    body = make_client("openai:llama3", "http://localhost:11434/v1").request_body(MSGS, Sampling(0.0, 77))
    assert body["max_tokens"] == 77


def test_idle_keepalive_closed_by_the_server_is_resent_at_once(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    srv = FakeTeacher().start()
    port = srv.port
    client = OpenAIClient("m", srv.openai_url)
    assert client.complete(MSGS, Sampling())[0].text  # opens a keep-alive connection
    srv.stop()                                       # the server goes away, closing it
    srv = FakeTeacher().start(port)                  # and comes back on the same port
    try:
        t0 = time.monotonic()
        comp, attempts = call_with_retries(lambda: client.complete(MSGS, Sampling())[0], RetryPolicy(base_s=5.0))
        assert comp.text and attempts == 1 and time.monotonic() - t0 < 2  # no backoff
    finally:
        srv.stop()
