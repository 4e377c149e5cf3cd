"""The extractor end to end against a loopback teacher: records, resume, repair of torn lines and error
records, unparsed answers, 401 stopping the run, self-consistency, the consistent filter, dry runs, cost,
rate limits, released-completion import, the Gemini Batch API, and the trainer's `apply_rationales`."""
import json
import re
import time

import pytest

from dss.commands.cli import main
from dss.core.errors import DataError
from dss.tasks import get_task, rationales
from dss.teacher import prompts, store
from dss.teacher.extract import run
from dss.teacher.extract_config import ExtractConfig, default_out
from dss.teacher.live import RateLimiter

KEY = "sk-extract-SECRET-987654321"


def cfg_for(srv, data_dir, out, **kw):
    base = dict(task="cqa", split="train", teacher="openai:fake", base_url=srv.openai_url, out=str(out),
                data_dir=str(data_dir), concurrency=4, progress=False, backoff_base=0.01, backoff_max=0.05,
                timeout=2.0)
    base.update(kw)
    return ExtractConfig(**base)


def lines(path):
    return [json.loads(x) for x in open(path)]


def quiet(*a, **k):
    pass


def test_writes_one_ok_record_per_example_and_resumes(srv, tiny_cqa_dir, tmp_path):
    out = tmp_path / "r.jsonl"
    task = get_task("cqa")
    s = run(cfg_for(srv, tiny_cqa_dir, out), task, log=quiet)
    recs = lines(out)
    n = len(task.load("train", tiny_cqa_dir))
    assert len(recs) == n == s["done"] == s["examples"] and s["this_run"]["requests"] == n
    assert len({r["id"] for r in recs}) == n
    r = recs[0]
    assert set(r) >= {"id", "task", "split", "teacher", "prompt_sha", "sample", "status", "label", "rationale",
                      "raw", "usage", "latency_s"}
    assert (r["task"], r["split"], r["teacher"], r["sample"], r["status"]) == ("cqa", "train", "openai:fake", 0, "ok")
    assert r["raw"].endswith(f"So the answer is (a) {r['label']}.") and r["rationale"]
    assert r["usage"]["input_tokens"] > 0 and r["latency_s"] > 0
    assert s["tokens_in"] == sum(x["usage"]["input_tokens"] for x in recs)
    # rerun: nothing to do, nothing asked
    before = len(srv.requests)
    s2 = run(cfg_for(srv, tiny_cqa_dir, out), task, log=quiet)
    assert len(srv.requests) == before and s2["this_run"]["requests"] == 0 and len(lines(out)) == n


def test_torn_last_line_and_error_records_are_redone(srv, tiny_cqa_dir, tmp_path):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    run(cfg_for(srv, tiny_cqa_dir, out, limit=10), task, log=quiet)
    recs = lines(out)
    # a record that failed for good, and a kill in the middle of writing the last line
    recs[3] = {**recs[3], "status": "error", "label": None, "raw": None, "error": "HTTP 500"}
    text = "".join(json.dumps(r) + "\n" for r in recs[:-1]) + json.dumps(recs[-1])[:40]
    out.write_text(text)
    msgs = []
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=10), task, log=msgs.append)
    assert any("1 torn line(s) cut, 1 error record(s)" in m for m in msgs)
    assert s["this_run"]["requests"] == 2
    final = lines(out)
    assert len(final) == 10 and len({r["id"] for r in final}) == 10 and all(r["status"] == "ok" for r in final)


def test_persistent_failures_become_error_records_then_succeed_on_rerun(srv, tiny_cqa_dir, tmp_path):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    srv.script = [("status", 500)] * 3 + [("malformed",)] * 3
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=6, concurrency=1, max_attempts=3), task, log=quiet)
    assert s["failed"] == 2 and s["done"] == 4
    errs = [r for r in lines(out) if r["status"] == "error"]
    assert len(errs) == 2 and "500" in errs[0]["error"] and "malformed" in errs[1]["error"]
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=6), task, log=quiet)
    assert s["failed"] == 0 and s["done"] == 6 and len(lines(out)) == 6


def test_retries_on_429_and_hangs_within_a_run(srv, tiny_cqa_dir, tmp_path):
    out = tmp_path / "r.jsonl"
    srv.script = [("status", 429, {"Retry-After": "0.2"}), ("hang", 5), ("drop",), ("status", 503)]
    # one worker, so each scripted failure meets the request it is meant for (the drop a fresh connection)
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=8, timeout=0.5, concurrency=1), get_task("cqa"), log=quiet)
    assert s["done"] == 8 and s["this_run"]["retries"] == 4 and len(lines(out)) == 8


def test_trickling_and_huge_answers_end_as_error_records_within_the_deadline(srv, tiny_cqa_dir, tmp_path):
    out = tmp_path / "r.jsonl"
    first = get_task("cqa").load("train", tiny_cqa_dir)[:4]
    slow, huge = (f"item {ex.id[len('train'):]}?" for ex in first[:2])
    srv.rule = lambda req: ("trickle", 0.05) if slow in json.dumps(req["body"]) else \
        ("huge", 20_000_000) if huge in json.dumps(req["body"]) else None
    start = time.monotonic()
    run(cfg_for(srv, tiny_cqa_dir, out, timeout=1.0, max_attempts=2, limit=4), get_task("cqa"), log=quiet)
    assert time.monotonic() - start < 8
    recs = {r["id"]: r for r in lines(out)}
    a, b = first[0].id, first[1].id
    assert recs[a]["status"] == "error" and "within --timeout 1 s" in recs[a]["error"]
    assert recs[b]["status"] == "error" and "cap" in recs[b]["error"]
    assert recs[b]["attempts"] == 1 and out.stat().st_size < 50_000  # nothing of it stored
    srv.rule = None
    run(cfg_for(srv, tiny_cqa_dir, out, limit=4), get_task("cqa"), log=quiet)  # a rerun redoes both
    assert {r["id"]: r["status"] for r in lines(out)} == {ex.id: "ok" for ex in first}


def test_unparseable_answers_are_unparsed_records_with_raw_text(srv, tiny_cqa_dir, tmp_path):
    out = tmp_path / "r.jsonl"
    srv.script = [("text", "I am not sure about this one.")] * 2
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=5, concurrency=1), get_task("cqa"), log=quiet)
    un = [r for r in lines(out) if r["status"] == "unparsed"]
    assert s["unparsed"] == 2 and len(un) == 2
    assert un[0]["raw"] == "I am not sure about this one." and un[0]["label"] is None
    assert s["filters"]["no_parsed_label"] == 2
    # unparsed answers are answers: a rerun does not pay for them again
    assert run(cfg_for(srv, tiny_cqa_dir, out, limit=5), get_task("cqa"), log=quiet)["this_run"]["requests"] == 0


def test_401_stops_the_run_at_once_with_a_clear_message(srv, tiny_cqa_dir, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    srv.rule = lambda req: ("status", 401)
    t0 = time.monotonic()
    rc = main(["extract", "--task", "cqa", "--split", "train", "--teacher", "openai:fake", "--base-url",
               srv.openai_url, "--data-dir", str(tiny_cqa_dir), "--out", str(out), "--no-progress",
               "--concurrency", "4"])
    err = capsys.readouterr().err
    assert rc == 2 and time.monotonic() - t0 < 5
    assert "HTTP 401" in err and "OPENAI_API_KEY" in err and KEY not in err
    assert len(srv.generation_requests()) <= 4  # no retries, no further examples
    assert not out.exists() or all(r["status"] != "error" for r in lines(out))
    # nothing anywhere on disk holds the key
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert KEY not in f.read_text(errors="replace")


def test_samples_majority_vote_and_consistent_filter(srv, tiny_cqa_dir, tmp_path):
    task = get_task("cqa")
    examples = task.load("train", tiny_cqa_dir)[:6]
    gold = {ex.id: ex for ex in examples}

    def responder(user, system):  # answer choice (b) twice out of three per question
        choices = [ln[4:] for ln in user.splitlines() if ln.startswith("(")]
        responder.n += 1
        k = 0 if responder.n % 3 == 0 else 1
        return f"Because. So the answer is ({'ab'[k]}) {choices[k]}."
    responder.n = 0
    srv.responder = responder
    out = tmp_path / "r.jsonl"
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=6, samples=3, concurrency=1, filter="consistent"), task,
            log=quiet)
    recs = lines(out)
    assert len(recs) == 18 and sorted({r["sample"] for r in recs}) == [0, 1, 2]
    assert recs[0]["sampling"]["temperature"] == 0.7
    # the voted label is choice (b) everywhere; it is gold only where the gold answer is choice (b)
    voted = {ex.id: rationales.vote([r for r in recs if r["id"] == ex.id]) for ex in examples}
    assert all(lab == ex.meta["choices"][1] for ex in examples for lab in [voted[ex.id][0]])
    n_consistent = sum(ex.label == ex.meta["choices"][1] for ex in examples)
    assert s["filters"]["inconsistent"] == 6 - n_consistent and s["kept"] == n_consistent
    kept = lines(s["filtered_out"])
    assert len(kept) == n_consistent and all(gold[r["id"]].label == r["label"] for r in kept)


def test_changed_settings_are_not_mixed_into_a_file(srv, tiny_cqa_dir, tmp_path):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    run(cfg_for(srv, tiny_cqa_dir, out, limit=3), task, log=quiet)
    with pytest.raises(DataError, match="different prompt"):
        run(cfg_for(srv, tiny_cqa_dir, out, limit=3, max_tokens=99), task, log=quiet)
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=3, max_tokens=99, overwrite=True), task, log=quiet)
    assert s["this_run"]["requests"] == 3
    assert [r["sampling"]["max_tokens"] for r in lines(out)] == [99, 99, 99]


def test_limit_and_ids(srv, tiny_cqa_dir, tmp_path):
    task = get_task("cqa")
    all_ids = [ex.id for ex in task.load("train", tiny_cqa_dir)]
    ids = tmp_path / "ids.txt"
    ids.write_text(f"# wanted\n{all_ids[7]}\n{all_ids[2]}\n\n{all_ids[9]}\n")
    out = tmp_path / "r.jsonl"
    run(cfg_for(srv, tiny_cqa_dir, out, ids_file=str(ids), limit=2), task, log=quiet)
    assert sorted(r["id"] for r in lines(out)) == sorted([all_ids[7], all_ids[2]])
    ids.write_text("nope\n")
    with pytest.raises(DataError, match="not in this split"):
        run(cfg_for(srv, tiny_cqa_dir, out, ids_file=str(ids)), task, log=quiet)


def test_dry_run_calls_nobody_and_writes_nothing(tiny_cqa_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    out = tmp_path / "r.jsonl"
    rc = main(["extract", "--task", "cqa", "--data-dir", str(tiny_cqa_dir), "--teacher", "gemini:gemini-2.5-flash",
               "--out", str(out), "--dry-run", "--json"])
    text = capsys.readouterr().out
    s = json.loads(text.strip().splitlines()[-1])
    assert rc == 0 and not out.exists() and "nothing was sent" in text
    assert s["requests"] == 36 and s["tokens_in"] > 36 * 500
    assert s["cost_usd"] == pytest.approx((s["tokens_in"] * 0.30 + s["tokens_out"] * 2.50) / 1e6)
    # an overridden price table
    prices = tmp_path / "p.yaml"
    prices.write_text("gemini-2.5-flash: [1.0, 2.0]\n")
    main(["extract", "--task", "cqa", "--data-dir", str(tiny_cqa_dir), "--teacher", "gemini:gemini-2.5-flash",
          "--out", str(out), "--dry-run", "--json", "--prices", str(prices)])
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["price_per_1m"] == [1.0, 2.0]


def test_cost_from_reported_usage(srv, tiny_cqa_dir, tmp_path):
    s = run(cfg_for(srv, tiny_cqa_dir, tmp_path / "r.jsonl", limit=4, price_in=2.0, price_out=10.0),
            get_task("cqa"), log=quiet)
    assert s["cost_usd"] == pytest.approx((s["tokens_in"] * 2.0 + s["tokens_out"] * 10.0) / 1e6)
    assert s["cost_usd"] > 0


def test_show_prompt_prints_the_exact_prompt(tiny_cqa_dir, capsys):
    rc = main(["extract", "--task", "cqa", "--data-dir", str(tiny_cqa_dir), "--teacher", "openai:x", "--show-prompt"])
    text = capsys.readouterr().out
    assert rc == 0 and "### system" in text and "So the answer is (c) microscope." in text
    assert "prompt_sha" in text and re.search(r"\(e\) tool\d+$", text.rstrip())  # the example comes last


def test_rpm_limit_spaces_requests(srv, tiny_cqa_dir, tmp_path):
    t0 = time.monotonic()
    run(cfg_for(srv, tiny_cqa_dir, tmp_path / "r.jsonl", limit=6, rpm=600, concurrency=6), get_task("cqa"),
        log=quiet)
    assert time.monotonic() - t0 >= 0.5  # 6 requests at 10/s: starts 0.1 s apart
    lim = RateLimiter(tpm=100)
    import threading
    stop = threading.Event()
    lim.record(150)
    t0 = time.monotonic()
    threading.Timer(0.2, stop.set).start()
    lim.acquire(stop)  # the window is full: waits (here until stopped)
    assert time.monotonic() - t0 >= 0.15


def test_import_released_records(tiny_cqa_dir, tmp_path):
    out = tmp_path / "palm.jsonl"
    task = get_task("cqa")
    cfg = ExtractConfig(task="cqa", split="train", data_dir=str(tiny_cqa_dir), out=str(out), import_released=True,
                        progress=False)
    s = run(cfg, task, log=quiet)
    recs = lines(out)
    examples = task.load("train", tiny_cqa_dir)
    assert len(recs) == len(examples) == s["done"]
    by_id = {r["id"]: r for r in recs}
    for ex in examples:  # the same label and rationale the task's loader attaches
        assert (by_id[ex.id]["label"], by_id[ex.id]["rationale"]) == (ex.llm_label, ex.llm_rationale)
        assert by_id[ex.id]["teacher"] == "palm:540b" and "\n\nQ:" in by_id[ex.id]["raw"]
    # and the trainer's reader gives them back unchanged
    fresh = task.load("train", tiny_cqa_dir)
    for ex in fresh:
        ex.llm_label = ex.llm_rationale = None
    counts = rationales.apply_rationales(fresh, out)
    assert counts == {"matched": len(fresh), "missing": 0, "unparsed": 0, "truncated": 0, "more_rationales": 0}
    assert [(e.llm_label, e.llm_rationale) for e in fresh] == [(e.llm_label, e.llm_rationale) for e in examples]


def test_import_released_on_real_data_matches_the_loader(shared_data, tmp_path):
    task = get_task("svamp")
    out = tmp_path / "svamp.jsonl"
    run(ExtractConfig(task="svamp", split="test", data_dir=str(shared_data), out=str(out), import_released=True,
                      progress=False), task, log=quiet)
    examples = task.load("test", shared_data)
    by_id = {r["id"]: r for r in lines(out)}
    assert len(by_id) == len(examples) == 200
    assert all(by_id[e.id]["label"] == e.llm_label for e in examples)


def test_gemini_live_and_batch_write_the_same_records(srv, tiny_cqa_dir, tmp_path):
    pytest.importorskip("google.genai")
    task = get_task("cqa")
    live, batch = tmp_path / "live.jsonl", tmp_path / "batch.jsonl"
    kw = dict(teacher="gemini:gemini-2.5-flash", base_url=srv.gemini_url, limit=5)
    run(cfg_for(srv, tiny_cqa_dir, live, **kw), task, log=quiet)
    srv.batch_polls = 2
    msgs = []
    s = run(cfg_for(srv, tiny_cqa_dir, batch, batch=True, poll_interval=0.01, **kw), task, log=msgs.append)
    assert any("submitted batch job batches/fake1" in m for m in msgs)
    assert s["done"] == 5 and not (tmp_path / "batch.jsonl.batch.json").exists()
    key = lambda r: (r["id"], r["prompt_sha"], r["label"], r["raw"])  # noqa: E731
    assert sorted(map(key, lines(live))) == sorted(map(key, lines(batch)))
    assert s["cost_usd"] == pytest.approx((s["tokens_in"] * 0.30 + s["tokens_out"] * 2.50) / 2e6)  # half price


def test_batch_resumes_the_saved_job(srv, tiny_cqa_dir, tmp_path):
    pytest.importorskip("google.genai")
    task = get_task("cqa")
    out = tmp_path / "b.jsonl"
    kw = dict(teacher="gemini:gemini-2.5-flash", base_url=srv.gemini_url, limit=4, batch=True, poll_interval=0.01)
    srv.batch_polls = 10 ** 6  # never finishes while we watch

    def interrupt(msg):
        if "next poll" in msg:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run(cfg_for(srv, tiny_cqa_dir, out, **kw), task, log=interrupt)
    saved = json.loads((tmp_path / "b.jsonl.batch.json").read_text())
    assert saved["job"] == "batches/fake1"
    srv.batch_polls = 0
    msgs = []
    s = run(cfg_for(srv, tiny_cqa_dir, out, **kw), task, log=msgs.append)
    assert any("resuming batch job batches/fake1" in m for m in msgs)
    assert s["done"] == 4 and len(srv.batch_api.jobs) == 1  # collected, not paid twice


def test_apply_rationales_contract(tmp_path):
    from dss.tasks.base import Example
    path = tmp_path / "r.jsonl"
    rec = lambda i, k, status, label: {"id": i, "sample": k, "status": status, "label": label,  # noqa: E731
                                       "rationale": f"why {label}" if label else None, "raw": "..."}
    store.write_records(path, [rec("a", 0, "ok", "x"), rec("a", 1, "ok", "y"), rec("a", 2, "ok", "y"),
                               rec("b", 0, "unparsed", None), rec("c", 0, "error", None), rec("d", 0, "ok", "z")])
    exs = [Example(i, "in", gold, llm_label="old", llm_rationale="old") for i, gold in
           [("a", "y"), ("b", "q"), ("c", "q"), ("d", "q"), ("e", "q")]]
    counts = rationales.apply_rationales(exs, path)
    assert counts == {"matched": 2, "missing": 1, "unparsed": 2, "truncated": 0, "more_rationales": 0}
    assert [(e.llm_label, e.llm_rationale) for e in exs] == [("y", "why y"), (None, None), (None, None),
                                                           ("z", "why z"), (None, None)]
    counts = rationales.apply_rationales(exs, path, filter="consistent")
    assert counts["inconsistent"] == 1 and exs[3].llm_label is None and exs[0].llm_label == "y"


def test_default_out_path():
    assert str(default_out("cqa", "train", "openai:meta-llama/Llama-3-8B")) == \
        "data/rationales/cqa_train_openai-meta-llama_Llama-3-8B.jsonl"


def test_second_writer_is_refused(srv, tiny_cqa_dir, tmp_path):
    rf = store.RecordFile(tmp_path / "r.jsonl")
    try:
        with pytest.raises(DataError, match="another `dss extract`"):
            run(cfg_for(srv, tiny_cqa_dir, tmp_path / "r.jsonl", limit=2), get_task("cqa"), log=quiet)
    finally:
        rf.close()


@pytest.mark.parametrize("name,split", [("anli1", "test"), ("esnli", "valid"), ("svamp", "test")])
def test_every_benchmark_prompt_round_trips(srv, shared_data, tmp_path, name, split):
    """The fake teacher answers in the format each system message asks for; the task's parser reads it."""
    out = tmp_path / "r.jsonl"
    s = run(cfg_for(srv, shared_data, out, task=name, split=split, limit=5), get_task(name), log=quiet)
    assert s["done"] == 5, lines(out)
    req = srv.generation_requests()[-1]["body"]["messages"]
    assert len(req) == 2 + 2 * len(prompts.BUILTIN[name].exemplars)


def test_custom_task_with_exemplars_through_the_cli(srv, tmp_path, capsys):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"id": f"r{i}", "input": f"Is {i} even?", "label": "yes" if i % 2 == 0
                                         else "no"}) + "\n" for i in range(30)))
    ex = tmp_path / "ex.yaml"
    ex.write_text("- {input: 'Is 4 even?', rationale: '4 = 2 * 2.', label: 'yes'}\n"
                  "- {input: 'Is 7 even?', rationale: '7 = 2 * 3 + 1.', label: 'no'}\n")
    out = tmp_path / "c.jsonl"
    rc = main(["extract", "--task", "custom", "--train-file", str(train), "--split", "train", "--teacher",
               "openai:fake", "--base-url", srv.openai_url, "--exemplars", str(ex), "--out", str(out),
               "--no-progress", "--filter", "consistent"])
    assert rc == 0
    recs = lines(out)
    assert len(recs) == len(get_task("custom", train_file=str(train)).load("train")) and \
        all(r["status"] == "ok" and r["label"] == "yes" for r in recs)
    kept = lines(tmp_path / "c.consistent.jsonl")
    assert kept and all(r["label"] == "yes" for r in kept)
    assert "consistent:" in capsys.readouterr().out


def test_svamp_votes_compare_equations_by_value(tmp_path):
    from dss.tasks.base import Example
    path = tmp_path / "s.jsonl"
    store.write_records(path, [
        {"id": "a", "task": "svamp", "sample": 0, "status": "ok", "label": "(3 + 4)", "rationale": "r0"},
        {"id": "a", "task": "svamp", "sample": 1, "status": "ok", "label": "10 - 3", "rationale": "r1"},
        {"id": "a", "task": "svamp", "sample": 2, "status": "ok", "label": "(2 * 4)", "rationale": "r2"}])
    ex = Example("a", "q", "( 7.0 )")
    assert rationales.apply_rationales([ex], path) == {"matched": 1, "missing": 0, "unparsed": 0, "truncated": 0,
                                                        "more_rationales": 1}
    assert (ex.llm_label, ex.llm_rationale) == ("(3 + 4)", "r0")  # 7 twice beats 8 once
    assert ex.more_rationales == ["r1"]  # 10 - 3 reaches 7 too
