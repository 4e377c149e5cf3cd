"""The replay teacher (`--teacher replay:<model> --replay-from task|FILE`): an extraction answered from the demo's
code-written answers, from an earlier `dss extract` output, and from the release's PaLM answers, with the
records, resume, summary, dry run and cost of a live one; answers the source lacks are error records."""
import itertools
import json
import math

import pytest

from dss.commands.cli import main
from dss.core.errors import ConfigError
from dss.tasks import get_task
from dss.teacher import prompts, store
from dss.teacher.extract import run
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.prices import PRICES
from dss.teacher.summary import format_summary

KEY = "sk-replay-SECRET-123456789"
FLASH = "gemini-3.5-flash"


def quiet(*a, **k):
    pass


def lines(path):
    return [json.loads(x) for x in open(path)]


def replay_cfg(out, source="task", **kw):
    return ExtractConfig(**{"task": "demo", "teacher": f"replay:{FLASH}", "replay_from": str(source),
                            "out": str(out), "progress": False, **kw})


def demo_ids(tmp_path, n, step=37):
    """An ids file of n demo train ids, spread over the split."""
    ids = [ex.id for ex in get_task("demo").load("train")[::step][:n]]
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return path, ids


def test_replay_of_the_demo_task_writes_its_answers_at_the_named_price_and_resumes(tmp_path):
    task = get_task("demo")
    ids_file, ids = demo_ids(tmp_path, 20)
    out = tmp_path / "r.jsonl"
    s = run(replay_cfg(out, ids_file=str(ids_file)), task, log=quiet)
    recs = {r["id"]: r for r in lines(out)}
    gold = {ex.id: ex for ex in task.load("train")}
    assert sorted(recs) == sorted(ids) and s["done"] == 20 and s["this_run"]["requests"] == 20
    for i, r in recs.items():  # the raw text is the code-written answer; parsed, its rationale ends before
        ex = gold[i]           # "So the answer is", as a live teacher's would
        assert (r["status"], r["label"], r["raw"]) == ("ok", ex.llm_label, ex.llm_rationale)
        assert r["rationale"] == ex.llm_rationale.split(" So the answer is")[0]
        assert (r["teacher"], r["model"], r["finish_reason"]) == (f"replay:{FLASH}", FLASH, "stop")
        assert r["usage"]["estimated"] and r["usage"]["thought_tokens"] == 0
    # cost, closed form: a prompt's characters / 4 in, the answer's / 4 out (rounded up), at the named price
    template = prompts.template_for("demo", None, task.exemplars)
    tokens_in = sum(math.ceil(sum(len(m["content"]) for m in template.messages(gold[i])) / 4) for i in ids)
    tokens_out = sum(math.ceil(len(gold[i].llm_rationale) / 4) for i in ids)
    p_in, p_out, _ = PRICES[FLASH]
    assert (s["tokens_in"], s["tokens_out"], s["answers_usage_estimated"]) == (tokens_in, tokens_out, 20)
    assert s["cost_usd"] == pytest.approx((tokens_in * p_in + tokens_out * p_out) / 1e6)
    shown = format_summary(s)
    assert "usage estimated from characters for 20 answers" in shown and "replayed from task" in shown
    # a rerun resumes: nothing asked, nothing written
    before = out.read_bytes()
    s2 = run(replay_cfg(out, ids_file=str(ids_file)), task, log=quiet)
    assert s2["this_run"]["requests"] == 0 and s2["done"] == 20 and out.read_bytes() == before


def test_replay_of_an_extract_output_gives_its_answers_usage_and_cost(srv, tiny_cqa_dir, tmp_path):
    task, draft = get_task("cqa"), itertools.count()
    srv.responder = lambda user, system: f"Draft {next(draft)}. So the answer is (b) thing.\n\nQ: next"
    live, replayed = tmp_path / "live.jsonl", tmp_path / "replayed.jsonl"
    common = dict(task="cqa", data_dir=str(tiny_cqa_dir), limit=8, samples=2, price_in=2.0, price_out=10.0,
                  progress=False)
    s1 = run(ExtractConfig(teacher="openai:fake", base_url=srv.openai_url, out=str(live), **common), task,
             log=quiet)
    sent = len(srv.generation_requests())
    s2 = run(ExtractConfig(teacher="replay:fake", replay_from=str(live), out=str(replayed), **common), task,
             log=quiet)
    assert len(srv.generation_requests()) == sent  # nothing went to the server
    key = lambda r: (r["id"], r["sample"])  # noqa: E731
    a, b = sorted(lines(live), key=key), sorted(lines(replayed), key=key)
    assert len(a) == len(b) == 16 and len({r["raw"] for r in a}) == 16  # every sample its own answer
    same = ("id", "sample", "status", "label", "rationale", "raw", "usage", "model", "finish_reason")
    assert [[r[f] for f in same] for r in a] == [[r[f] for f in same] for r in b]
    assert {r["teacher"] for r in b} == {"replay:fake"}
    assert (s2["tokens_in"], s2["tokens_out"], s2["answers_usage_estimated"]) == (s1["tokens_in"],
                                                                                  s1["tokens_out"], 0)
    assert s2["cost_usd"] == pytest.approx(s1["cost_usd"]) and s2["cost_usd"] > 0


def test_replay_of_the_released_esnli_answers_matches_the_loader(shared_data, tmp_path):
    task = get_task("esnli")
    examples = task.load("train", shared_data)[:10]
    assert len({ex.input for ex in examples}) == 10  # distinct prompts: each answer goes to its own example
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(ex.id + "\n" for ex in examples))
    out = tmp_path / "esnli.jsonl"
    s = run(ExtractConfig(task="esnli", teacher=f"replay:{FLASH}", replay_from="task", data_dir=str(shared_data),
                          ids_file=str(ids), out=str(out), progress=False), task, log=quiet)
    recs = {r["id"]: r for r in lines(out)}
    assert s["answers_usage_estimated"] == 10 and s["cost_usd"] > 0
    assert [recs[ex.id]["label"] for ex in examples] == [ex.llm_label for ex in examples]
    assert [recs[ex.id]["rationale"] for ex in examples] == [ex.llm_rationale for ex in examples]


def test_an_answer_the_source_lacks_is_an_error_record_and_a_cut_answer_stays_cut(tmp_path):
    task = get_task("demo")
    ids_file, ids = demo_ids(tmp_path, 6)
    first = tmp_path / "first.jsonl"
    run(replay_cfg(first, ids_file=str(ids_file)), task, log=quiet)
    recs = {r["id"]: r for r in lines(first)}
    recs[ids[1]].update(status="truncated", label=None, rationale=None, finish_reason="length")
    del recs[ids[2]]  # no answer for it there
    store.write_records(first, list(recs.values()))
    out = tmp_path / "again.jsonl"
    for _ in range(2):  # a rerun redoes the error record, and the source still has no answer
        s = run(replay_cfg(out, first, ids_file=str(ids_file)), task, log=quiet)
        by_id = {r["id"]: r for r in lines(out)}
        assert (s["done"], s["truncated"], s["failed"]) == (4, 1, 1) and len(by_id) == 6
        assert by_id[ids[2]]["status"] == "error"
        assert by_id[ids[2]]["error"] == f"the replay source has no answer for {ids[2]}"
        assert (by_id[ids[1]]["status"], by_id[ids[1]]["finish_reason"]) == ("truncated", "length")


def test_dry_run_sends_nothing_and_prices_the_named_model(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    rc = main(["extract", "--task", "demo", "--teacher", f"replay:{FLASH}", "--replay-from", "task", "--limit",
               "20", "--out", str(out), "--dry-run", "--json"])
    text = capsys.readouterr().out
    s = json.loads(text.strip().splitlines()[-1])
    p_in, p_out, _ = PRICES[FLASH]
    assert rc == 0 and not out.exists() and "nothing was sent" in text and s["requests"] == 20
    assert s["cost_usd"] == pytest.approx((s["tokens_in"] * p_in + s["tokens_out"] * p_out) / 1e6)


@pytest.mark.parametrize("kw,words", [
    (dict(teacher=f"replay:{FLASH}"), "go together"),
    (dict(replay_from="task"), "go together"),
    (dict(teacher=f"replay:{FLASH}", replay_from="task", samples=3), "one answer per example"),
    (dict(teacher=f"replay:{FLASH}", replay_from="task", base_url="http://localhost:1/v1"), "calls nobody"),
    (dict(teacher=f"replay:{FLASH}", replay_from="nowhere.jsonl"), "no such file"),
])
def test_settings_a_replay_cannot_take_are_refused(kw, words):
    with pytest.raises(ConfigError, match=words):
        ExtractConfig(task="demo", **kw)
