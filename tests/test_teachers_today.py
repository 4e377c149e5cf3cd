"""Teachers as they are in late 2026: thinking control and thought tokens, k samples in one request (and servers
that ignore `n`), the price table's honesty, and the real google-genai SDK's request body field by field."""
from __future__ import annotations

import json

import pytest

from dss.core.errors import ConfigError
from dss.tasks import get_task
from dss.teacher.extract import run
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.thinking import resolve
from dss.testing.fake_teacher import FakeTeacher

KEY = "sk-today-SECRET-5555"


def quiet(*a, **k):
    pass


def camel(obj: dict) -> dict:
    """Proto JSON field names in their lowerCamelCase form (the API's parser takes either that or snake_case;
    google-genai sends nested config objects' keys as snake_case)."""
    return {k.split("_")[0] + "".join(w.title() for w in k.split("_")[1:]): v for k, v in obj.items()}


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)


def cfg(srv, data_dir, out, teacher="openai:fake", **kw):
    base_url = srv.openai_url if teacher.startswith("openai") else srv.gemini_url
    return ExtractConfig(**{"task": "cqa", "split": "train", "teacher": teacher, "base_url": base_url,
                            "out": str(out), "data_dir": str(data_dir), "concurrency": 2, "progress": False,
                            "backoff_base": 0.01, "timeout": 5.0, **kw})


def lines(path):
    return [json.loads(x) for x in open(path)]


# ------------------------------------------------------------------------------------------------ thinking
@pytest.mark.parametrize("provider,model,given,want", [
    ("gemini", "gemini-3.5-flash", {}, {"thinking_level": "minimal"}),
    ("gemini", "gemini-3.1-pro-preview", {}, {"thinking_level": "low"}),
    ("gemini", "gemini-2.5-flash", {}, {"thinking_budget": 0}),
    ("gemini", "gemini-2.5-pro", {}, {"thinking_budget": 128}),
    ("gemini", "gemini-3.5-flash", {"level": "high"}, {"thinking_level": "high"}),
    ("gemini", "gemini-2.5-flash", {"budget": 512}, {"thinking_budget": 512}),
    ("openai", "gpt-5-mini", {"effort": "low"}, {"reasoning_effort": "low"}),
    ("openai", "llama3.1", {}, {}),
])
def test_thinking_defaults_and_settings(provider, model, given, want):
    assert resolve(provider, model, given.get("budget"), given.get("level"), given.get("effort")) == want


@pytest.mark.parametrize("teacher,kw,message", [
    ("gemini:gemini-3.5-flash", {"thinking_budget": 0, "thinking_level": "low"}, "pass one"),
    ("gemini:gemini-2.5-flash", {"thinking_level": "low"}, "takes --thinking-budget"),
    ("gemini:gemini-3.5-flash", {"thinking_budget": 100}, "takes --thinking-level"),
    ("gemini:gemini-3.5-flash", {"reasoning_effort": "low"}, "for OpenAI-compatible servers"),
    ("openai:gpt-5", {"thinking_level": "low"}, "are Gemini settings"),
])
def test_thinking_settings_a_model_does_not_take_are_config_errors(teacher, kw, message):
    with pytest.raises(ConfigError, match=message):
        ExtractConfig(teacher=teacher, **kw)


def test_gemini_thinks_minimally_by_default_and_thought_tokens_are_counted_apart(env, tiny_cqa_dir, tmp_path):
    pytest.importorskip("google.genai")
    with FakeTeacher() as srv:
        s = run(cfg(srv, tiny_cqa_dir, tmp_path / "a.jsonl", "gemini:gemini-3.5-flash", limit=2), get_task("cqa"),
                log=quiet)
        sent = srv.generation_requests()[-1]["body"]["generationConfig"]
        assert camel(sent["thinkingConfig"]) == {"thinkingLevel": "MINIMAL"} and s["tokens_thought"] == 0
        s = run(cfg(srv, tiny_cqa_dir, tmp_path / "b.jsonl", "gemini:gemini-3.5-flash", limit=2,
                    thinking_level="high", price_in=1.0, price_out=10.0), get_task("cqa"), log=quiet)
    recs = lines(tmp_path / "b.jsonl")
    assert all(r["usage"]["thought_tokens"] == 256 for r in recs) and s["tokens_thought"] == 512
    assert s["cost_usd"] == pytest.approx((s["tokens_in"] * 1.0 + (s["tokens_out"] + 512) * 10.0) / 1e6)
    assert s["thought_cost_usd"] == pytest.approx(512 * 10.0 / 1e6)
    assert recs[0]["sampling"]["thinking_level"] == "high"  # part of the cache key


def test_openai_reasoning_tokens_are_thought_tokens(env, tiny_cqa_dir, tmp_path):
    with FakeTeacher() as srv:
        s = run(cfg(srv, tiny_cqa_dir, tmp_path / "r.jsonl", "openai:gpt-5-mini", limit=2, reasoning_effort="medium",
                    price_in=1.0, price_out=2.0), get_task("cqa"), log=quiet)
        assert srv.generation_requests()[-1]["body"]["reasoning_effort"] == "medium"
    assert s["tokens_thought"] == 128 and all(r["usage"]["thought_tokens"] == 64 for r in lines(tmp_path / "r.jsonl"))


# ----------------------------------------------------------------------------------- k samples, one request
@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_five_samples_are_one_request_where_the_server_honours_n(env, tiny_cqa_dir, tmp_path, provider):
    if provider == "gemini":
        pytest.importorskip("google.genai")
    teacher = "openai:fake" if provider == "openai" else "gemini:gemini-3.5-flash"
    with FakeTeacher() as srv:
        s = run(cfg(srv, tiny_cqa_dir, tmp_path / "r.jsonl", teacher, limit=4, samples=5, price_in=1.0,
                    price_out=1.0), get_task("cqa"), log=quiet)
        reqs = srv.generation_requests()
    assert len(reqs) == 4  # one request per example
    asked = [r["body"].get("n") if provider == "openai" else r["body"]["generationConfig"]["candidateCount"]
             for r in reqs]
    assert asked == [5] * 4
    recs = lines(tmp_path / "r.jsonl")
    per_id = {}
    for r in recs:
        per_id.setdefault(r["id"], []).append(r["sample"])
    assert len(per_id) == 4 and all(sorted(v) == [0, 1, 2, 3, 4] for v in per_id.values())
    assert sum(r["attempts"] for r in recs) == 4 and s["this_run"]["requests"] == 4
    assert s["saved_usd"] > 0 and s["short_responses"] == 0


def test_a_server_that_ignores_n_still_ends_with_every_sample(env, tiny_cqa_dir, tmp_path):
    with FakeTeacher(honour_n=False) as srv:
        s = run(cfg(srv, tiny_cqa_dir, tmp_path / "r.jsonl", limit=3, samples=5), get_task("cqa"), log=quiet)
        reqs = srv.generation_requests()
    recs = lines(tmp_path / "r.jsonl")
    assert len(recs) == 15 and len({(r["id"], r["sample"]) for r in recs}) == 15
    assert len(reqs) == 15 and s["short_responses"] == 12  # asked 5, 4, 3, 2 then 1 per example
    assert sorted(r["body"].get("n", 1) for r in reqs) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]


def test_choices_per_request_one_sends_a_request_per_sample(env, tiny_cqa_dir, tmp_path):
    with FakeTeacher() as srv:
        run(cfg(srv, tiny_cqa_dir, tmp_path / "r.jsonl", limit=2, samples=3, choices_per_request=1),
            get_task("cqa"), log=quiet)
        assert len(srv.generation_requests()) == 6 and all("n" not in r["body"] for r in srv.generation_requests())


# -------------------------------------------------------------------------------------------------- prices
def test_an_unknown_model_costs_unknown_never_zero(env, tiny_cqa_dir, tmp_path, capsys):
    from dss.teacher.cost import price_for
    from dss.teacher.prices import AS_OF, DEFAULT_TEACHER, PRICES, SOURCES
    assert price_for("gemini-3.5-flash-002", ExtractConfig()) == (1.50, 9.00)  # the longest known prefix
    assert price_for("my-local-llm", ExtractConfig(price_in=1.0)) is None  # one side given: still unknown
    assert all(src in SOURCES for _, _, src in PRICES.values()) and AS_OF.startswith("2026")
    assert DEFAULT_TEACHER.split(":")[1] in PRICES and ExtractConfig().teacher == DEFAULT_TEACHER
    with FakeTeacher() as srv:
        s = run(cfg(srv, tiny_cqa_dir, tmp_path / "r.jsonl", "openai:my-local-llm", limit=2), get_task("cqa"))
    assert s["cost_usd"] is None
    assert "cost unknown (no price for my-local-llm" in capsys.readouterr().out


# ---------------------------------------------------------------------------- the SDK's body, field by field
def test_the_sdk_request_matches_the_documented_rest_body(env, tiny_cqa_dir, tmp_path):
    """POST /v1beta/models/{model}:generateContent with {contents, systemInstruction, generationConfig}
    (ai.google.dev/api/generate-content): every field dss sets, under its documented camelCase name."""
    pytest.importorskip("google.genai")
    from dss.teacher.gemini import GeminiClient
    from dss.teacher.protocol import Sampling
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]
    with FakeTeacher() as srv:
        GeminiClient("gemini-3.5-flash", srv.gemini_url).complete(msgs, Sampling(
            0.7, 300, ("\n\nQ:",), n=3, thinking=(("thinking_level", "minimal"),)))
        req = srv.generation_requests()[-1]
    # the documented path is /v1beta/models/{model}:generateContent; this SDK uses the API's v1 alias of it
    assert req["method"] == "POST" and req["path"] in ("/v1beta/models/gemini-3.5-flash:generateContent",
                                                        "/v1/models/gemini-3.5-flash:generateContent")
    assert req["headers"]["x-goog-api-key"] == KEY
    body = req["body"]
    assert set(body) == {"contents", "systemInstruction", "generationConfig"}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Q1"}]},
                                {"role": "model", "parts": [{"text": "A1"}]},
                                {"role": "user", "parts": [{"text": "Q2"}]}]
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    gc = body["generationConfig"]
    assert camel({k: v for k, v in gc.items() if k != "thinkingConfig"}) == {
        "temperature": 0.7, "maxOutputTokens": 300, "stopSequences": ["\n\nQ:"], "candidateCount": 3}
    assert camel(gc["thinkingConfig"]) == {"thinkingLevel": "MINIMAL"}


# ------------------------------------------------------------------------------------------------ batches
def big_cqa(tmp_path):
    from dss.testing.release import write_cqa
    return write_cqa(tmp_path / "data", {"train": 340}, with_teacher=False)  # 306 train rows after carving


def record_shape(recs):
    return sorted((r["id"], r["sample"], r["status"], r["label"], r["prompt_sha"]) for r in recs)


def test_openai_batch_300_requests_through_files_and_batches(env, tmp_path):
    from dss.commands.cli import main
    data = big_cqa(tmp_path)
    with FakeTeacher(batch_polls=2) as srv:
        argv = ["extract", "--task", "cqa", "--split", "train", "--data-dir", str(data), "--limit", "300",
                "--teacher", "openai:fake-model", "--base-url", srv.openai_url, "--batch", "--poll-interval", "0.01",
                "--out", str(tmp_path / "b.jsonl"), "--no-progress"]
        assert main(argv) == 0
        paths = [(r["method"], r["path"]) for r in srv.requests]
        live_like = len(srv.generation_requests())
    assert ("POST", "/v1/files") in paths and ("POST", "/v1/batches") in paths and live_like == 0
    assert sum(p == ("GET", "/v1/batches/batch_1") for p in paths) == 3  # validating, in_progress, completed
    recs = lines(tmp_path / "b.jsonl")
    assert len(recs) == 300 and all(r["status"] == "ok" for r in recs)
    assert not (tmp_path / "b.jsonl.batch.json").exists()


def test_write_batch_then_read_batch_gives_the_same_records(env, tmp_path):
    """The vllm route: --write-batch writes OpenAI-format lines; `vllm run-batch` (written here by hand, in its
    documented output format) answers them; --read-batch turns the answers into the live run's records."""
    from dss.commands.cli import main
    data = big_cqa(tmp_path)
    base = ["extract", "--task", "cqa", "--split", "train", "--data-dir", str(data), "--limit", "300",
            "--teacher", "openai:Qwen/Qwen2.5-7B-Instruct", "--no-progress"]
    requests = tmp_path / "requests.jsonl"
    assert main([*base, "--out", str(tmp_path / "v.jsonl"), "--write-batch", str(requests)]) == 0
    sent = lines(requests)
    assert len(sent) == 300 and set(sent[0]) == {"custom_id", "method", "url", "body"}
    assert sent[0]["url"] == "/v1/chat/completions" and sent[0]["body"]["model"] == "Qwen/Qwen2.5-7B-Instruct"
    example_id, sample, sha = json.loads(sent[0]["custom_id"])  # the cache key travels with the request
    assert sample == 0 and len(sha) > 8
    assert not (tmp_path / "v.jsonl").is_file() or lines(tmp_path / "v.jsonl") == []  # nothing was answered
    from dss.testing.bodies import openai_body, texts_of
    from dss.testing.fake_teacher import default_responder
    with open(tmp_path / "results.jsonl", "w") as fh:  # `vllm run-batch -o`: {"id", "custom_id", "response"}
        for k, line in enumerate(sent):
            system, user = texts_of(line["body"], openai=True)
            body = openai_body([default_responder(user, system)], 100, 20)
            if k == 7:  # one request failed on the server
                fh.write(json.dumps({"id": f"r{k}", "custom_id": line["custom_id"], "response": None,
                                     "error": {"message": "out of memory"}}) + "\n")
                continue
            fh.write(json.dumps({"id": f"r{k}", "custom_id": line["custom_id"],
                                 "response": {"status_code": 200, "request_id": f"q{k}", "body": body},
                                 "error": None}) + "\n")
    assert main([*base, "--out", str(tmp_path / "v.jsonl"), "--read-batch", str(tmp_path / "results.jsonl")]) == 0
    recs = lines(tmp_path / "v.jsonl")
    assert len(recs) == 300 and sum(r["status"] == "error" for r in recs) == 1
    with FakeTeacher() as srv:  # the same examples answered live: the same records, field for field
        run(cfg(srv, data, tmp_path / "live.jsonl", "openai:Qwen/Qwen2.5-7B-Instruct", limit=300, concurrency=8),
            get_task("cqa"), log=quiet)
    live = [r for r in lines(tmp_path / "live.jsonl")]
    ok = [r for r in recs if r["status"] == "ok"]
    assert set(ok[0]) == set(live[0])
    assert record_shape(ok) == [s for s in record_shape(live) if s[0] in {r["id"] for r in ok}]
    # the failed request is redone by the next route (here a second --write-batch names only it)
    assert main([*base, "--out", str(tmp_path / "v.jsonl"), "--write-batch", str(tmp_path / "again.jsonl")]) == 0
    assert len(lines(tmp_path / "again.jsonl")) == 1


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_a_failed_batch_job_says_so_and_a_rerun_submits_anew(env, tiny_cqa_dir, tmp_path, provider):
    if provider == "gemini":
        pytest.importorskip("google.genai")
    from dss.core.errors import DataError
    teacher = "openai:fake" if provider == "openai" else "gemini:gemini-3.5-flash"
    out = tmp_path / "f.jsonl"
    with FakeTeacher(batch_polls=1) as srv:
        srv.fail_batches = True
        msgs = []
        with pytest.raises(DataError, match="ended (failed|JOB_STATE_FAILED).*rerun to submit a new one"):
            run(cfg(srv, tiny_cqa_dir, out, teacher, limit=3, batch=True, poll_interval=0.01), get_task("cqa"),
                log=msgs.append)
        assert any("(validating|BATCH_STATE_PENDING|JOB_STATE_PENDING)" and "next poll" in m for m in msgs)
        srv.fail_batches = False
        s = run(cfg(srv, tiny_cqa_dir, out, teacher, limit=3, batch=True, poll_interval=0.01), get_task("cqa"),
                log=quiet)
        assert s["done"] == 3 and len(srv.batch_api.jobs) == 2


# ------------------------------------------------------------------------------------------------ --list-models
@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_list_models_asks_the_endpoint_and_prices_each(provider, env, capsys):
    from dss.commands.cli import main
    with FakeTeacher() as srv:
        srv.models = [f"model-{k:03d}" for k in range(130)] + ["gemini-3.5-flash", "gemini-embedding-001"]
        url = srv.openai_url if provider == "openai" else srv.gemini_url
        assert main(["extract", "--list-models", "--teacher", f"{provider}:x", "--base-url", url, "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        paths = [r["path"] for r in srv.requests]
        assert main(["extract", "--list-models", "--teacher", f"{provider}:x", "--base-url", url]) == 0
        text = capsys.readouterr().out
    assert len(listed) == 132  # every page: Gemini lists 100 a page, so the SDK had to follow nextPageToken
    assert paths == (["/v1/models"] if provider == "openai" else
                     ["/v1/models?pageSize=100", "/v1/models?pageSize=100&pageToken=100"])
    flash = next(m for m in listed if m["id"] == "gemini-3.5-flash")
    assert flash["price"] == [1.5, 9.0] and next(m for m in listed if m["id"] == "model-007")["price"] is None
    assert "132 models" in text and "unknown" in text and KEY not in text
    if provider == "gemini":
        assert "generateContent" in flash["actions"]


def test_list_models_needs_no_task_and_extract_still_does(env, capsys):
    from dss.commands.cli import main
    assert main(["extract", "--teacher", "openai:x", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "--task is required" in capsys.readouterr().err
