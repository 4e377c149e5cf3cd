"""What a misbehaving teacher server, or a hand-made batch results file, must not do to a run (issue #24): leak
the API key, store a cut-off answer as a label, stop on a lone surrogate, sleep for a day on Retry-After, crash
on a malformed results line, accept impossible usage counts, or change the teacher model silently."""
from __future__ import annotations

import json
import random
import time

import pytest

from dss.commands.cli import main
from dss.core.errors import DataError
from dss.tasks import get_task, rationales
from dss.teacher import store
from dss.teacher.client import OpenAIClient
from dss.teacher.extract import run
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.protocol import RetryPolicy, Sampling, TransientError, parse_retry_after
from dss.teacher.summary import format_summary
from dss.testing.bodies import openai_body
from dss.testing.fake_teacher import default_responder

KEY = "sk-Zq8vXw3RkT9pLm2NbY7cHd4Fg6Jh1KsQ"  # 35 characters, no piece of which occurs in a record by chance
MSGS = [{"role": "user", "content": "Q: Where?\nAnswer Choices:\n(a) home\n(b) work"}]


def pieces(secret: str, n: int = 4) -> set[str]:
    """Every n-character piece of a secret: none may show."""
    return {secret[i:i + n] for i in range(len(secret) - n + 1)}


def leaks(text: str, secret: str = KEY) -> list[str]:
    return sorted(p for p in pieces(secret) if p in text)


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


# ------------------------------------------------------------------------------- 2: answers cut at max_tokens
@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_an_answer_cut_at_max_tokens_is_truncated_and_a_larger_limit_redoes_only_it(srv, tiny_cqa_dir, tmp_path,
                                                                                   provider):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    srv.script = [("cut", "The tool must fit. So the answer is (b) wor")]  # parses, but was cut mid-word
    s = run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=3, concurrency=1, max_tokens=64), task, log=quiet)
    cut = [r for r in lines(out) if r["status"] == "truncated"]
    assert len(cut) == 1 and (cut[0]["label"], cut[0]["rationale"]) == (None, None)
    assert cut[0]["raw"].endswith("(b) wor") and cut[0]["finish_reason"] in ("length", "MAX_TOKENS")
    assert (s["done"], s["truncated"], s["this_run"]["truncated"], s["filters"]["no_parsed_label"]) == (2, 1, 1, 1)
    assert "2 ok, 0 unparsed, 1 truncated" in format_summary(s)
    # the same limit would only cut it again: the rerun asks nothing and says how to redo it
    msgs = []
    assert run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=3, max_tokens=64), task,
               log=msgs.append)["this_run"]["requests"] == 0
    assert any("1 answer(s) cut off at --max-tokens 64" in m and "larger --max-tokens" in m for m in msgs)
    # a larger limit redoes the cut answer, without --overwrite; the finished answers stand (it would not change them)
    before = len(srv.generation_requests())
    s = run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=3, max_tokens=128), task, log=quiet)
    assert len(srv.generation_requests()) == before + 1 and (s["done"], s["truncated"]) == (3, 0)
    assert sorted(r["sampling"]["max_tokens"] for r in lines(out)) == [64, 64, 128]
    s = run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=3, max_tokens=256, overwrite=True), task, log=quiet)
    assert s["this_run"]["requests"] == 3  # --overwrite redoes every answer of another setting
    with pytest.raises(DataError, match="different prompt"):  # a smaller limit is another setting, as before
        run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=3, max_tokens=128), task, log=quiet)


def test_unreadable_labels_never_vote_together():
    """Two SVAMP answers whose equations cannot be read are not one answer given twice: the readable one wins."""
    task = get_task("svamp")
    recs = [{"id": "a", "sample": k, "status": "ok", "label": label, "rationale": f"r{k}"}
            for k, label in enumerate(["(12 +", "(7 *", "(3 + 4)"])]
    assert rationales.vote(recs, task) == ("(3 + 4)", "r2")
    assert rationales.vote(recs[:2], task) == ("(12 +", "r0")  # none readable: the first stands alone
    assert rationales.vote_all(recs[:2], task) == ("(12 +", ["r0"])


def test_truncated_records_never_become_training_rows(tmp_path):
    from dss.tasks.base import Example
    path = tmp_path / "r.jsonl"
    rec = lambda i, k, status, label: {"id": i, "sample": k, "status": status, "label": label,  # noqa: E731
                                       "rationale": f"why {label}" if label else None, "raw": "..."}
    store.write_records(path, [rec("a", 0, "truncated", None), rec("b", 0, "truncated", "y"), rec("b", 1, "ok", "x"),
                               rec("c", 0, "truncated", "y"), rec("c", 1, "unparsed", None)])
    exs = [Example(i, "in", "x") for i in "abc"]
    counts = rationales.apply_rationales(exs, path)
    assert counts == {"matched": 1, "missing": 0, "unparsed": 0, "truncated": 2, "more_rationales": 0}
    assert [(e.llm_label, e.llm_rationale) for e in exs] == [(None, None), ("x", "why x"), (None, None)]


def batch_route(tiny_cqa_dir, tmp_path, limit=3, teacher="openai:fake") -> tuple[list[str], list[dict]]:
    """(the `dss extract` argv of a --write-batch/--read-batch route, the request lines it wrote)."""
    argv = ["extract", "--task", "cqa", "--split", "train", "--data-dir", str(tiny_cqa_dir), "--limit", str(limit),
            "--teacher", teacher, "--out", str(tmp_path / "v.jsonl"), "--no-progress"]
    assert main([*argv, "--write-batch", str(tmp_path / "requests.jsonl")]) == 0
    return argv, lines(tmp_path / "requests.jsonl")


def result_line(req: dict, k: int, text: str | None = None, cut: bool = False, model: str = "fake") -> dict:
    """A `vllm run-batch -o` line answering request line `req`."""
    from dss.testing.bodies import texts_of
    system, user = texts_of(req["body"], openai=True)
    body = openai_body([text or default_responder(user, system)], 100, 20, model=model, cut=cut)
    return {"id": f"r{k}", "custom_id": req["custom_id"], "response": {"status_code": 200, "body": body},
            "error": None}


def write_results(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    return str(path)


def test_read_batch_takes_a_cut_answer_as_truncated(tiny_cqa_dir, tmp_path):
    argv, sent = batch_route(tiny_cqa_dir, tmp_path)
    results = write_results(tmp_path / "results.jsonl", [result_line(sent[0], 0, "So the answer is (b) wor", cut=True)]
                            + [result_line(r, k) for k, r in enumerate(sent[1:], 1)])
    assert main([*argv, "--read-batch", results]) == 0
    assert sorted(r["status"] for r in lines(tmp_path / "v.jsonl")) == ["ok", "ok", "truncated"]


# ---------------------------------------------------------------------------------- 5: a lone surrogate
LONE = "The tool \ud800 must fit. So the answer is (b) work."  # JSON may carry "\ud800": not a character


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_a_lone_surrogate_in_an_answer_neither_stops_the_run_nor_reaches_a_label(srv, tiny_cqa_dir, tmp_path,
                                                                                   provider):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    srv.script = [("text", LONE)]
    s = run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=3, concurrency=1), task, log=quiet)
    assert s["done"] == 3 and s["failed"] == 0
    rec = next(r for r in rationales.read_rationale_file(out) if "must fit" in (r["raw"] or ""))
    assert rec["raw"] == LONE and rec["status"] == "ok"                     # stored as sent, escaped
    assert "\ud800" not in rec["rationale"] and "\ufffd" in rec["rationale"]  # what a student trains on is text
    rec["rationale"].encode("utf-8")
    assert run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=3), task, log=quiet)["this_run"]["requests"] == 0


def test_read_batch_takes_a_lone_surrogate(tiny_cqa_dir, tmp_path):
    argv, sent = batch_route(tiny_cqa_dir, tmp_path)
    results = write_results(tmp_path / "results.jsonl", [result_line(r, k, LONE) for k, r in enumerate(sent)])
    assert main([*argv, "--read-batch", results]) == 0
    assert [r["raw"] for r in rationales.read_rationale_file(tmp_path / "v.jsonl")] == [LONE] * 3


# ------------------------------------------------------------------------------------ 11: Retry-After
def test_retry_after_is_capped_by_backoff_max_and_parsed_safely():
    assert parse_retry_after("nan") is None and parse_retry_after("inf") == float("inf")
    assert parse_retry_after("-3") == 0.0
    p = RetryPolicy(max_s=2.0, rng=random.Random(0))
    assert 2.0 <= p.delay(0, 100000.0) <= 2.1 and 2.0 <= p.delay(0, float("inf")) <= 2.1
    assert 0.5 <= p.delay(0, 0.5) <= 0.6  # a shorter Retry-After is still honoured


def test_a_day_long_retry_after_waits_backoff_max_and_says_so(srv, tiny_cqa_dir, tmp_path):
    srv.script = [("status", 429, {"Retry-After": "100000"}), ("status", 503, {"Retry-After": "inf"}),
                  ("status", 503, {"Retry-After": "nan"})]
    msgs = []
    t0 = time.monotonic()
    s = run(cfg_for(srv, tiny_cqa_dir, tmp_path / "r.jsonl", limit=2, concurrency=1, backoff_max=0.2), get_task("cqa"),
            log=msgs.append)
    assert time.monotonic() - t0 < 10 and s["done"] == 2 and s["this_run"]["retries"] == 3
    said = [m for m in msgs if "asks to wait" in m]
    assert len(said) == 1 and "HTTP 429" in said[0] and "100000 s" in said[0] and "--backoff-max 0.2 s" in said[0]


# ------------------------------------------------------------------------ 12: hand-made batch results files
def test_read_batch_bad_lines_are_error_records_naming_the_line_and_an_answer_beats_an_error(tiny_cqa_dir, tmp_path,
                                                                                              capsys):
    argv, sent = batch_route(tiny_cqa_dir, tmp_path, limit=4)
    ids = [json.loads(r["custom_id"])[0] for r in sent]
    good = [result_line(r, k) for k, r in enumerate(sent)]
    results = write_results(tmp_path / "results.jsonl", [
        {**good[0], "response": "str"},                            # 1: no response object: an error record
        {**good[1], "response": None, "error": {"message": "oom"}},  # 2: an error line for request 1 ...
        good[1],                                                   # 3: ... that its answer, later, beats
        good[2],                                                   # 4: an answer ...
        {**good[2], "response": {"status_code": 500, "body": {}}},  # 5: ... that a later error does not undo
        {**good[3], "response": {"status_code": 200, "body": {"choices": ["x"]}}},  # 6: a malformed body ...
        result_line(sent[3], 6, "So the answer is (a) first."),    # 7: ... then two different answers:
        result_line(sent[3], 7, "So the answer is (b) second."),   # 8: the first is kept, and said
    ])
    capsys.readouterr()
    assert main([*argv, "--read-batch", results]) == 0
    said = capsys.readouterr().out
    recs = {r["id"]: r for r in lines(tmp_path / "v.jsonl")}
    assert len(recs) == 4 and recs[ids[0]]["status"] == "error" and f"{results}:1: response" in recs[ids[0]]["error"]
    assert recs[ids[1]]["status"] == recs[ids[2]]["status"] == "ok"
    assert recs[ids[3]]["raw"] == "So the answer is (a) first."
    assert f"{results}:8" in said and f"{results}:7" in said and "first" in said, said


@pytest.mark.parametrize("bad", [{"custom_id": ["x", 0, "sha"]}, {"custom_id": {"x": 0}}, ["not", "a", "row"],
                                 "{not json"])
def test_read_batch_a_line_naming_no_request_is_a_one_line_error(tiny_cqa_dir, tmp_path, capsys, bad):
    argv, sent = batch_route(tiny_cqa_dir, tmp_path)
    results = write_results(tmp_path / "results.jsonl", [result_line(sent[0], 0), bad])
    capsys.readouterr()
    assert main([*argv, "--read-batch", results]) == 2
    err = capsys.readouterr().err
    assert f"{results}:2" in err and "custom_id" in err and "Traceback" not in err


# --------------------------------------------------------------- 14: usage counts, and the model that answered
ANSWER = "The tool must fit. So the answer is (b) work."


@pytest.mark.parametrize("provider,usage", [
    ("openai", {"prompt_tokens": "abc", "completion_tokens": 5}),
    ("openai", {"prompt_tokens": 10, "completion_tokens": -5}),
    ("openai", {"prompt_tokens": 10, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 9}}),
    ("gemini", {"promptTokenCount": -10, "candidatesTokenCount": 5}),
])
def test_impossible_usage_counts_are_usage_unknown(srv, tiny_cqa_dir, tmp_path, provider, usage):
    """A count that is not a whole number >= 0 is no basis for a bill: that answer's usage is unknown (null, and
    counted among answers without usage); the answer itself stands. (google-genai refuses a non-numeric count
    itself: a malformed body, retried.)"""
    from dss.testing.bodies import gemini_body
    body = openai_body([ANSWER], 1, 1, model="fake") if provider == "openai" else \
        gemini_body([ANSWER], 1, 1, model="gemini-3.5-flash")
    body["usage" if provider == "openai" else "usageMetadata"] = usage
    srv.script = [("body", body)]
    out = tmp_path / "r.jsonl"
    s = run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=2, concurrency=1), get_task("cqa"), log=quiet)
    assert (s["done"], s["failed"], s["this_run"]["retries"], s["answers_without_usage"]) == (2, 0, 0, 1)
    assert sorted(r["usage"] is None for r in lines(out)) == [False, True]
    assert "(1 answers without usage)" in format_summary(s)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_records_name_the_model_that_answered_and_a_changed_model_stops_the_run(srv, tiny_cqa_dir, tmp_path,
                                                                                provider):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    asked = teacher_kw(srv, provider)["teacher"].split(":")[1]
    s = run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=2), task, log=quiet)
    assert [r["model"] for r in lines(out)] == [asked, asked] and s["models"] == [asked]
    assert f"  models   {asked}\n" in format_summary(s) + "\n"
    srv.model = "gemini-3.7-flash"  # the provider reroutes the model it retired
    msgs = []
    with pytest.raises(DataError) as e:
        run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=4), task, log=msgs.append)
    assert asked in str(e.value) and "gemini-3.7-flash" in str(e.value) and "--allow-mixed-models" in str(e.value)
    assert any(m.startswith("stopped:") for m in msgs)
    assert [r["model"] for r in lines(out)] == [asked, asked]  # nothing of the other model went in
    s = run(cfg_for(srv, tiny_cqa_dir, out, provider, limit=4, allow_mixed_models=True), task, log=quiet)
    assert s["done"] == 4 and s["models"] == [asked, "gemini-3.7-flash"]


def test_a_model_change_within_one_run_stops_it(srv, tiny_cqa_dir, tmp_path):
    out = tmp_path / "r.jsonl"
    srv.script = [("ok",), ("body", openai_body([ANSWER], 1, 1, model="fake-2"))]
    with pytest.raises(DataError, match="'fake'.*'fake-2'"):
        run(cfg_for(srv, tiny_cqa_dir, out, limit=3, concurrency=1), get_task("cqa"), log=quiet)
    assert [r["model"] for r in lines(out)] == ["fake"]


def test_a_dated_version_of_the_asked_model_is_no_change(srv, tiny_cqa_dir, tmp_path):
    srv.model = "gpt-4o-mini-2024-07-18"  # what OpenAI answers for gpt-4o-mini
    s = run(cfg_for(srv, tiny_cqa_dir, tmp_path / "r.jsonl", limit=3, teacher="openai:gpt-4o-mini"), get_task("cqa"),
            log=quiet)
    assert s["done"] == 3 and s["models"] == ["gpt-4o-mini-2024-07-18"]
    assert "  models   gpt-4o-mini-2024-07-18" in format_summary(s) and "asked for" not in format_summary(s)
    srv.model = "gemini-3.5-flash"  # a rerouted model from the first answer on: no mix, but the summary says it
    s = run(cfg_for(srv, tiny_cqa_dir, tmp_path / "g.jsonl", "gemini", limit=2, teacher="gemini:gemini-2.5-flash"),
            get_task("cqa"), log=quiet)
    assert "models   gemini-3.5-flash (asked for gemini-2.5-flash)" in format_summary(s)


def test_read_batch_refuses_answers_of_another_model_unless_asked(tiny_cqa_dir, tmp_path, capsys):
    argv, sent = batch_route(tiny_cqa_dir, tmp_path)
    results = write_results(tmp_path / "results.jsonl", [result_line(sent[0], 0), result_line(sent[1], 1),
                                                         result_line(sent[2], 2, model="fake-2")])
    capsys.readouterr()
    assert main([*argv, "--read-batch", results]) == 2
    assert "'fake-2'" in capsys.readouterr().err and [r["model"] for r in lines(tmp_path / "v.jsonl")] == ["fake"] * 2
    assert main([*argv, "--read-batch", results, "--allow-mixed-models"]) == 0
    assert sorted(r["model"] for r in lines(tmp_path / "v.jsonl")) == ["fake", "fake", "fake-2"]
