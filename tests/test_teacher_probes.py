"""What a misbehaving teacher server, or a hand-made batch results file, must not do to a run (issue #24): leak
the API key, store a cut-off answer as a label, stop on a lone surrogate, sleep for a day on Retry-After, crash
on a malformed results line, accept impossible usage counts, or change the teacher model silently."""
from __future__ import annotations

import json

import pytest

from dss.commands.cli import main
from dss.teacher.client import OpenAIClient
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.protocol import Sampling, TransientError
from dss.testing.fake_teacher import FakeTeacher

KEY = "sk-Zq8vXw3RkT9pLm2NbY7cHd4Fg6Jh1KsQ"  # 35 characters, no piece of which occurs in a record by chance
MSGS = [{"role": "user", "content": "Q: Where?\nAnswer Choices:\n(a) home\n(b) work"}]


def pieces(secret: str, n: int = 4) -> set[str]:
    """Every n-character piece of a secret: none may show."""
    return {secret[i:i + n] for i in range(len(secret) - n + 1)}


def leaks(text: str, secret: str = KEY) -> list[str]:
    return sorted(p for p in pieces(secret) if p in text)


@pytest.fixture
def srv(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with FakeTeacher() as s:
        yield s


def teacher_kw(srv, provider: str) -> dict:
    if provider == "gemini":
        pytest.importorskip("google.genai")
        return {"teacher": "gemini:gemini-3.5-flash", "base_url": srv.gemini_url}
    return {"teacher": "openai:fake", "base_url": srv.openai_url}


def cfg_for(srv, data_dir, out, provider="openai", **kw):
    base = dict(task="cqa", split="train", out=str(out), data_dir=str(data_dir), concurrency=2, progress=False,
                backoff_base=0.01, backoff_max=0.05, timeout=5.0, **teacher_kw(srv, provider))
    return ExtractConfig(**{**base, **kw})


def lines(path):
    return [json.loads(x) for x in open(path, encoding="utf-8")]


def quiet(*a, **k):
    pass


# ------------------------------------------------------------------------------------ 1: the key, masked whole
@pytest.mark.parametrize("provider", ["openai", "gemini"])
@pytest.mark.parametrize("code,body", [
    (503, {"error": {"message": "x" * 270 + KEY}}),          # a JSON message cut at 300 characters
    (503, ("x" * 270 + KEY).encode()),                       # an unreadable error body, cut at 300
    (200, ("<html>" + "x" * 164 + KEY).encode()),            # a malformed 200 body, shown cut at 200
])
def test_a_key_echoed_across_the_cut_is_masked_whole(srv, provider, code, body):
    from dss.teacher.client import make_client
    kw = teacher_kw(srv, provider)
    client = make_client(kw["teacher"], kw["base_url"], timeout_s=5.0)
    srv.script = [("status", code, {}, body)]
    with pytest.raises(TransientError) as e:
        client.complete(MSGS, Sampling())
    assert leaks(str(e.value)) == []


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_extract_records_and_messages_hold_no_piece_of_the_key_or_url_password(srv, tiny_cqa_dir, tmp_path, capsys,
                                                                               provider):
    """A 5xx echoing the key near the cut becomes an error record; a --base-url with user:password is shown
    with the password masked."""
    kw = teacher_kw(srv, provider)
    url = kw["base_url"].replace("http://", "http://dss:Pw-hunter2-Pw@")
    srv.rule = lambda req: ("status", 500, {}, {"error": {"message": "upstream said " + "x" * 256 + KEY}})
    out = tmp_path / "r.jsonl"
    rc = main(["extract", "--task", "cqa", "--split", "train", "--teacher", kw["teacher"], "--base-url", url,
               "--data-dir", str(tiny_cqa_dir), "--out", str(out), "--limit", "3", "--max-attempts", "2",
               "--backoff-base", "0.01", "--no-progress"])
    said = capsys.readouterr()
    recs = lines(out)
    assert rc == 0 and len(recs) == 3 and all(r["status"] == "error" and "HTTP 500" in r["error"] for r in recs)
    assert recs[0]["error"].endswith("x") or "***" in recs[0]["error"]
    for text in (out.read_text(encoding="utf-8"), said.out, said.err):
        assert leaks(text) == [] and "hunter2" not in text
    if provider == "openai":  # the OpenAI client names its endpoint in errors: without the password
        assert "http://***@127.0.0.1" in recs[0]["error"]


def test_a_password_in_the_base_url_is_masked_in_every_message(srv):
    with pytest.raises(Exception) as e:
        OpenAIClient("m", "ftp://u:Pw-hunter2-Pw@host/v1")
    assert "hunter2" not in str(e.value) and "ftp://***@host/v1" in str(e.value)
    srv.rule = lambda req: ("status", 401, {}, {"error": {"message": "who is Pw-hunter2-Pw?"}})
    client = OpenAIClient("m", srv.openai_url.replace("http://", "http://u:Pw-hunter2-Pw@"))
    with pytest.raises(Exception) as e:
        client.complete(MSGS, Sampling())
    assert "HTTP 401" in str(e.value) and "hunter2" not in str(e.value)
