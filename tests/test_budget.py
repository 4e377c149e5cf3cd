"""The teacher budget (--max-requests, --max-cost over the output file's ledger) and early-stopping
self-consistency (--early-stop), end to end against a loopback teacher: caps held across runs, retries and
`kill -9`; cost caps stopping before the cap; reruns with a larger cap; the rounds' rule, their records and
their resume; dry-run forecasts; the batch routes."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_teacher_extract import cfg_for, lines, quiet

from dss.commands.cli import main
from dss.core.errors import ConfigError
from dss.tasks import get_task, rationales
from dss.teacher.budget import Budget, ledger_path, request_hold
from dss.teacher.early_stop import more_needed, replay
from dss.teacher.extract import run
from dss.teacher.items import build_items, select
from dss.testing.fake_teacher import FakeTeacher
from dss.testing.release import write_cqa

KEY = "sk-budget-SECRET-24680"
ROOT = Path(__file__).resolve().parent.parent
ITEM = re.compile(r"item (\d+)\?")


def extract_cmd(url, data_dir, out, *extra):
    return [sys.executable, "-m", "dss", "extract", "--task", "cqa", "--split", "train", "--teacher", "openai:any",
            "--base-url", url, "--data-dir", str(data_dir), "--out", str(out), "--no-progress", "--json",
            "--backoff-base", "0.01", "--backoff-max", "0.05", *extra]


@pytest.fixture
def env():
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.pop("OPENAI_API_KEY", None)
    return e


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def kill_when(proc, out: Path, n_lines: int) -> None:
    """SIGKILL `proc` once `out` has n_lines lines (requests are in flight then)."""
    deadline = time.monotonic() + 30
    while (out.read_bytes().count(b"\n") if out.exists() else 0) < n_lines and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()


# ------------------------------------------------------------------------------------------------ caps
def test_max_requests_holds_across_runs_retries_and_a_kill(tmp_path, env):
    data = write_cqa(tmp_path / "data", {"train": 334}, with_teacher=False)
    out = tmp_path / "r.jsonl"
    with FakeTeacher(latency=0.05) as srv:
        # run 1: three requests fail twice (error records, dropped to redo on resume: still spent), cap 30
        srv.script = [("status", 500)] * 6
        first = subprocess.run(extract_cmd(srv.openai_url, data, out, "--limit", "100", "--max-requests", "30",
                                           "--max-attempts", "2", "--concurrency", "1"),
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        s1 = last_json(first.stdout)
        assert s1["budget_reached"] and s1["spent"]["requests"] == 30 == len(srv.generation_requests())
        assert s1["failed"] == 3 and "budget reached: 30 of 30 requests spent" in first.stdout
        # run 2, cap 70, 8 in flight at once, killed
        proc = subprocess.Popen(extract_cmd(srv.openai_url, data, out, "--limit", "100", "--max-requests", "70",
                                            "--concurrency", "8"),
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        kill_when(proc, out, 40)
        assert len(srv.generation_requests()) < 70
        # run 3 finishes the cap; run 4, with the same cap, sends nothing
        done = subprocess.run(extract_cmd(srv.openai_url, data, out, "--limit", "100", "--max-requests", "70",
                                          "--concurrency", "8"),
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        s3 = last_json(done.stdout)
        seen = len(srv.generation_requests())
        again = subprocess.run(extract_cmd(srv.openai_url, data, out, "--limit", "100", "--max-requests", "70"),
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert len(srv.generation_requests()) == seen <= 70
    assert s3["budget_reached"] and s3["spent"]["requests"] == 70 and s3["missing"] > 0
    s4 = last_json(again.stdout)
    assert s4["budget_reached"] and s4["this_run"]["requests"] == 0 and "budget reached: 70 of 70" in again.stdout
    # the ledger never counts less than the server saw; the records alone (errors dropped, kills) count less
    recs = lines(out)
    assert sum(r["attempts"] for r in recs) < seen <= s4["spent"]["requests"]
    assert len({(r["id"], r["sample"]) for r in recs}) == len(recs)


def test_requests_in_flight_are_counted_before_they_are_sent(srv, tiny_cqa_dir, tmp_path):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    srv.latency = 0.05
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=20, concurrency=8, max_requests=5), task, log=quiet)
    assert len(srv.generation_requests()) == 5 == s["spent"]["requests"] == s["done"]
    assert s["budget_reached"] and s["missing"] == 15 and s["spent"]["tokens_held"] == 0


def test_a_rerun_with_a_larger_cap_continues_and_completes(srv, tiny_cqa_dir, tmp_path):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=12, max_requests=5), task, log=quiet)
    assert s["budget_reached"] and s["done"] == 5
    msgs = []
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=12, max_requests=5), task, log=msgs.append)
    assert s["budget_reached"] and s["this_run"]["requests"] == 0 and len(srv.generation_requests()) == 5
    assert "budget reached: 5 of 5 requests spent; 7 answers of this selection left undone; rerun with a larger " \
           "--max-requests to continue" in msgs[-1]
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=12, max_requests=20), task, log=quiet)
    assert not s["budget_reached"] and s["done"] == 12 and s["missing"] == 0
    assert s["spent"]["requests"] == 12 == len(srv.generation_requests())
    assert s["spent"]["tokens_in"] == sum(r["usage"]["input_tokens"] for r in lines(out))


def test_max_cost_stops_before_the_cap(srv, tiny_cqa_dir, tmp_path):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    cap, prices = 0.01, dict(price_in=2.0, price_out=10.0)
    cfg = cfg_for(srv, tiny_cqa_dir, out, limit=30, max_cost=cap, **prices)
    s = run(cfg, task, log=quiet)
    recs = lines(out)
    recorded = sum(r["usage"]["input_tokens"] * 2.0 + r["usage"]["output_tokens"] * 10.0 for r in recs) / 1e6
    assert s["budget_reached"] and recorded == pytest.approx(s["spent"]["cost_usd"]) and recorded <= cap
    # the next request, held at its most, would have passed the cap
    items = build_items(task, cfg, select(task.load("train", tiny_cqa_dir), limit=30))
    nxt = next(it for it in items if it.key not in {(r["id"], r["sample"]) for r in recs})
    assert not Budget(out, recs, cfg, readonly=True).fits(request_hold([nxt], cfg))
    hold = request_hold([nxt], cfg)
    most = (hold.tin * 2.0 + hold.tout * 10.0) / 1e6
    assert recorded + most > cap and recorded + s["caps"]["refused_usd"] > cap
    # settled at their usage, requests cost far less than their hold: many more went out than cap / most
    assert len(recs) > 2 * int(cap / most)
    with pytest.raises(ConfigError, match="--max-cost needs a price"):
        run(cfg_for(srv, tiny_cqa_dir, out, limit=30, max_cost=cap), task, log=quiet)


def test_the_ledger_keeps_dropped_error_records_and_cuts_a_torn_line(srv, tiny_cqa_dir, tmp_path):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    srv.script = [("status", 500)] * 4 + [("malformed",)] * 2
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=6, concurrency=1, max_attempts=2), task, log=quiet)
    assert s["failed"] == 3 and s["spent"]["requests"] == 9 == len(srv.generation_requests())
    # the third example's two malformed bodies may have been billed: held at their most; the 500s were not
    cfg = cfg_for(srv, tiny_cqa_dir, out)
    hold = request_hold([build_items(task, cfg, task.load("train", tiny_cqa_dir)[2:3])[0]], cfg)
    assert s["spent"]["tokens_held"] == 2 * (hold.tin + hold.tout) and s["spent"]["tokens_in"] == s["tokens_in"]
    with open(ledger_path(out), "ab") as fh:
        fh.write(b'{"n": 1000')  # a kill in the middle of a write
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=6), task, log=quiet)
    assert s["failed"] == 0 and s["done"] == 6
    assert s["spent"]["requests"] == 12 == len(srv.generation_requests())  # the dropped errors' 6 still count
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=6), task, log=quiet)
    assert s["spent"]["requests"] == 12 and s["this_run"]["requests"] == 0  # and on every later run
    ledger_path(out).unlink()  # without a ledger, the records are all there is
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=6), task, log=quiet)
    assert s["spent"]["requests"] == 6 and s["spent"]["tokens_held"] == 0


# ------------------------------------------------------------------------------------------------ dry run
def test_dry_run_says_where_the_cap_is_reached(srv, tiny_cqa_dir, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    base = ["extract", "--task", "cqa", "--data-dir", str(tiny_cqa_dir), "--teacher", "openai:fake", "--out",
            str(out), "--dry-run", "--json", "--price-in", "2", "--price-out", "10"]
    main(base + ["--max-requests", "10"])
    text = capsys.readouterr().out
    b = last_json(text)["budget"]
    assert b["cap_reached_after"] == 10 and b["todo_requests"] == 36 and b["examples_within_cap"] == 10
    assert "the cap of 10 requests is reached after about 10 of 36 requests still to make" in text
    s = last_json(text)
    per_request = s["cost_usd"] / s["requests"]  # every prompt here is about as long
    main(base + ["--max-cost", "0.05"])
    text = capsys.readouterr().out
    b = last_json(text)["budget"]
    assert abs(b["cap_reached_after"] - 0.05 / per_request) <= 1.5
    assert f"the cap of $0.05 is reached after about {b['cap_reached_after']} of 36 requests" in text
    main(base + ["--max-cost", "5"])
    assert "the cap of $5.00 is not reached by the 36 requests still to make" in capsys.readouterr().out
    # after a run spent part of it, the forecast starts from the file's spending and its remaining work
    run(cfg_for(srv, tiny_cqa_dir, out, max_requests=4), get_task("cqa"), log=quiet)
    main(base + ["--max-requests", "10"])
    b = last_json(capsys.readouterr().out)["budget"]
    assert (b["spent"]["requests"], b["todo_requests"], b["cap_reached_after"]) == (4, 32, 6)


# ------------------------------------------------------------------------------------------------ batch routes
def test_batch_job_holds_only_what_the_cap_allows(srv, tiny_cqa_dir, tmp_path):
    out, task = tmp_path / "b.jsonl", get_task("cqa")
    kw = dict(limit=5, batch=True, poll_interval=0.01)
    msgs = []
    s = run(cfg_for(srv, tiny_cqa_dir, out, max_requests=3, **kw), task, log=msgs.append)
    assert any("with 3 requests" in m and "as many as the budget allows" in m for m in msgs)
    assert s["done"] == 3 and s["budget_reached"] and s["spent"]["requests"] == 3
    assert s["spent"]["tokens_held"] == 0 and s["spent"]["tokens_in"] == s["tokens_in"]  # settled at usage
    s = run(cfg_for(srv, tiny_cqa_dir, out, max_requests=10, **kw), task, log=quiet)
    assert s["done"] == 5 and not s["budget_reached"] and s["spent"]["requests"] == 5
    # --write-batch writes only as many requests as the cap leaves room for
    req = tmp_path / "req.jsonl"
    w = run(cfg_for(srv, tiny_cqa_dir, tmp_path / "w.jsonl", limit=8, write_batch=str(req), max_requests=6),
            task, log=quiet)
    assert w["requests"] == 6 == len(req.read_text().splitlines()) and w["budget_reached"]


# ------------------------------------------------------------------------------------------------ early stopping
def test_the_rule_in_closed_form():
    a, b, c = "a", "b", "c"
    assert more_needed([a, a], 5, 2) == 0                    # the first two agree
    assert more_needed([a, None], 5, 2) == 2                 # unparsed agrees with nothing
    assert more_needed([None, None], 5, 2) == 2
    assert more_needed([a, b], 5, 2) == 2                    # 1-1, three left: two more could decide it
    assert more_needed([a, b, a, a], 5, 2) == 0              # 3 votes to 1, one left: cannot be overtaken
    assert more_needed([a, b, c, a], 5, 2) == 1              # 2 to 1, one left: a tie is still possible
    assert more_needed([a, b, a, b, c], 5, 2) == 0           # none left
    assert more_needed([a, a, b], 7, 3) == 2                 # the first three disagree: 2-1, four left
    assert replay({}, 5, 2) == ([0, 1], None)
    assert replay({0: a, 1: a}, 5, 2) == ([], 2)
    assert replay({0: a, 1: b, 3: a}, 5, 2) == ([2], None)   # a hole in the open round
    assert replay({0: a, 1: b, 2: a, 3: a}, 5, 2) == ([], 4)
    assert replay({0: a, 1: b, 2: c, 3: a}, 5, 2) == ([4], None)


def per_example(answers: dict[int, str]):
    """A responder giving example i's answers in turn (its choice letter per call), from `answers[i % 4]`
    (example i has id "train{i}")."""
    calls: dict[int, int] = {}

    def respond(user, system):
        i = int(ITEM.search(user).group(1))
        k = calls[i] = calls.get(i, -1) + 1
        choices = [ln[4:] for ln in user.splitlines() if ln.startswith("(")]
        letter = answers[i % 4][k % 5]
        return f"Because. So the answer is ({letter}) {choices['abcde'.index(letter)]}."
    return respond


def test_early_stop_takes_m_samples_on_agreeing_answers_and_k_on_disagreeing_ones(srv, tiny_cqa_dir, tmp_path):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    # example i % 4: 0 agrees; 1 never agrees; 2 is decided after 4 (3 votes to 1); 3 agrees
    srv.responder = per_example({0: "aaaaa", 1: "abcde", 2: "abaae", 3: "ccccc"})
    examples = task.load("train", tiny_cqa_dir)[:8]
    want = {ex.id: {0: 2, 1: 5, 2: 4, 3: 2}[int(ex.id[len("train"):]) % 4] for ex in examples}
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=8, samples=5, early_stop=2, concurrency=3,
                    price_in=2.0, price_out=10.0), task, log=quiet)
    recs = lines(out)
    by = {ex: sorted((r["sample"], r["status"]) for r in recs if r["id"] == ex) for ex in {r["id"] for r in recs}}
    taken = {ex: sum(st != "skipped" for _, st in v) for ex, v in by.items()}
    assert len(recs) == 40 and all(len(v) == 5 and [k for k, _ in v] == list(range(5)) for v in by.values())
    assert taken == want and all(r["samples_taken"] == taken[r["id"]] and r["early_stop"] == 2
                                 for r in recs if r["status"] == "skipped")
    # rounds ask for as many choices as they need: 2; never agreeing 2, 2, 1; decided after four 2, 2
    n_taken, n_all_5 = sum(want.values()), sum(v == 5 for v in want.values())
    asked = sorted(r["body"].get("n", 1) for r in srv.generation_requests())
    assert asked == [1] * n_all_5 + [2] * ((n_taken - n_all_5) // 2)
    e = s["early_stop"]
    assert (e["samples_taken"], e["samples_max"], e["samples_skipped"], e["examples_stopped"]) == \
        (n_taken, 40, 40 - n_taken, 8 - n_all_5)
    assert e["saved_usd_estimate"] == pytest.approx(s["cost_usd"] / n_taken * (40 - n_taken))
    assert s["skipped"] == 40 - n_taken and s["this_run"]["requests"] == len(asked)
    # votes and training ignore the skipped samples
    assert all(rationales.vote([r for r in recs if r["id"] == ex], task)[0] for ex in by)
    assert rationales.apply_rationales(examples, out, task)["matched"] == 8
    # without --early-stop every sample is wanted again: the skipped ones are asked for
    s = run(cfg_for(srv, tiny_cqa_dir, out, limit=8, samples=5), task, log=quiet)
    assert s["skipped"] == 0 and s["done"] == 40


def test_early_stop_resumes_a_round_cut_short(srv, tiny_cqa_dir, tmp_path):
    out, task = tmp_path / "r.jsonl", get_task("cqa")
    first, second = (ex.id for ex in task.load("train", tiny_cqa_dir)[:2])
    n_first, n_second = (int(i[len("train"):]) % 2 for i in (first, second))
    srv.responder = per_example({k: "abcde" if k % 2 == n_first else "aaaaa" for k in range(4)})
    assert n_first != n_second  # the first example never agrees, the second at once
    kw = dict(limit=2, samples=5, early_stop=2, concurrency=1, choices_per_request=1)
    # both first rounds, then the first example's second round (samples 2 and 3) is cut after sample 2
    s = run(cfg_for(srv, tiny_cqa_dir, out, max_requests=5, **kw), task, log=quiet)
    cut = {(r["id"], r["sample"]): r["status"] for r in lines(out)}
    second_done = {(second, 0): "ok", (second, 1): "ok", **{(second, k): "skipped" for k in (2, 3, 4)}}
    assert s["budget_reached"] and cut == {**{(first, k): "ok" for k in range(3)}, **second_done}
    s = run(cfg_for(srv, tiny_cqa_dir, out, **kw), task, log=quiet)
    final = {(r["id"], r["sample"]): r["status"] for r in lines(out)}
    assert final == {**{(first, k): "ok" for k in range(5)}, **second_done}
    assert len(lines(out)) == 10 and s["spent"]["requests"] == 7 == len(srv.generation_requests())


def test_early_stop_after_kill_9_gives_exactly_the_rule_s_records(tmp_path, env):
    data = write_cqa(tmp_path / "data", {"train": 334}, with_teacher=False)
    out = tmp_path / "r.jsonl"
    agree = lambda i: i % 2 == 0  # noqa: E731 — even examples always agree, odd ones never parse

    def respond(user, system):
        i = int(ITEM.search(user).group(1))
        return f"So the answer is (a) thing{i}a." if agree(i) else "I am not sure."
    cmd = extract_cmd("", data, out, "--limit", "40", "--samples", "5", "--early-stop", "2",
                      "--choices-per-request", "1", "--concurrency", "8")
    with FakeTeacher(latency=0.03, responder=respond) as srv:
        cmd[cmd.index("--base-url") + 1] = srv.openai_url
        for target in (30, 90):
            proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            kill_when(proc, out, target)
        # as if a kill came after an example's round but before its skipped records
        recs = lines(out)
        out.write_text("".join(json.dumps(r) + "\n" for r in recs if r["status"] != "skipped"))
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    recs = lines(out)
    assert len(recs) == 200 and len({(r["id"], r["sample"]) for r in recs}) == 200
    for r in recs:
        i = int(r["id"][len("train"):])
        want = ("ok" if r["sample"] < 2 else "skipped") if agree(i) else "unparsed"
        assert r["status"] == want, r
    n_agree = sum(agree(int(i[len("train"):])) for i in {r["id"] for r in recs})
    e = last_json(done.stdout)["early_stop"]
    assert (e["samples_taken"], e["samples_skipped"], e["examples_stopped"]) == \
        (200 - 3 * n_agree, 3 * n_agree, n_agree) and 0 < n_agree < 40
