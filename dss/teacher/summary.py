"""The end of a run: the summary over the output file's records for this selection (counts, tokens, cost,
teacher accuracy, the consistent-label filter, the samples early stopping saved) and its printed forms, with the
file's spending and caps (dss.teacher.budget)."""
from __future__ import annotations

from pathlib import Path

from dss.tasks.base import Example, Task
from dss.tasks.rationales import STATUSES, by_example, vote
from dss.teacher import store
from dss.teacher.cost import CHARS_PER_TOKEN, Stats, cost_of, price_for
from dss.teacher.extract_config import ExtractConfig


def summarize(records, items, examples, task, cfg, stats: Stats, wall, out: Path, model) -> dict:
    keys = {it.key for it in items}
    mine = [r for r in records if (str(r["id"]), int(r["sample"])) in keys]
    status = {s: sum(r["status"] == s for r in mine) for s in STATUSES}
    groups = by_example(mine)
    voted = {ex.id: vote(groups.get(ex.id, []), task) for ex in examples}
    answered = [ex for ex in examples if any(r["status"] != "error" for r in groups.get(ex.id, []))]
    no_label = sum(1 for ex in answered if voted[ex.id][0] is None)
    inconsistent = sum(1 for ex in answered if voted[ex.id][0] is not None
                       and not task.is_correct(voted[ex.id][0], ex.label))
    price = None if cfg.import_released else price_for(model, cfg)
    batch = cfg.batch or bool(cfg.batch_job)
    summary = {
        "out": str(out), "examples": len(examples), "answers": len(items),
        "done": status["ok"], "unparsed": status["unparsed"], "truncated": status["truncated"],
        "failed": status["error"], "skipped": status["skipped"], "missing": len(items) - len(mine),
        "this_run": {"ok": stats.ok, "unparsed": stats.unparsed, "truncated": stats.truncated, "failed": stats.error,
                     "requests": stats.requests, "retries": stats.retries},
        "tokens_in": stats.tokens_in, "tokens_out": stats.tokens_out, "tokens_thought": stats.tokens_thought,
        "answers_without_usage": stats.no_usage, "answers_usage_estimated": stats.estimated,
        "short_responses": stats.short_responses,
        "cost_usd": cost_of(stats.tokens_in, stats.tokens_out, price, batch, stats.tokens_thought),
        "thought_cost_usd": cost_of(0, 0, price, batch, stats.tokens_thought),
        "saved_usd": _saving(stats, price, batch),
        "price_per_1m": price, "price_model": model, "replay_from": cfg.replay_from, "wall_s": round(wall, 3),
        "models": list(dict.fromkeys(r["model"] for r in mine if r.get("model"))),  # as the responses name them
        "requests_per_s": round(stats.requests / stats.request_s, 2) if stats.request_s > 0 else 0.0,
        # over examples with an answer; unparsed and truncated answers count as wrong
        "teacher_accuracy": round(1 - (inconsistent + no_label) / len(answered), 4) if answered else None,
        "filters": {"no_parsed_label": no_label},
    }
    if cfg.early_stop:
        summary["early_stop"] = _early_stop(mine, len(examples), cfg, price, batch)
    if cfg.filter == "consistent":
        summary["filters"]["inconsistent"] = inconsistent
        final = out.with_name(out.stem + ".consistent.jsonl")
        keep = consistent_records(examples, groups, voted, task)
        store.write_records(final, keep)
        summary["filtered_out"] = str(final)
        summary["kept"] = len(keep)
    return summary


def consistent_records(examples: list[Example], groups: dict[str, list[dict]], voted: dict, task: Task) -> list[dict]:
    """Per example whose voted label matches gold, the first ok sample that gave that label."""
    keep = []
    for ex in examples:
        label, _ = voted[ex.id]
        if label is not None and task.is_correct(label, ex.label):
            recs = sorted(groups[ex.id], key=lambda r: int(r["sample"]))
            keep.append(next(r for r in recs if r["status"] == "ok" and
                             task.answer_key(r["label"]) == task.answer_key(label)))
    return keep


def _early_stop(mine: list[dict], n_examples: int, cfg: ExtractConfig, price, batch: bool) -> dict:
    """Samples taken against k per example, and what the skipped ones would have cost: an estimate, the mean
    cost of a sample taken (reported usage) times the samples skipped."""
    answers = [r for r in mine if r["status"] not in ("error", "skipped")]
    skipped = [r for r in mine if r["status"] == "skipped"]
    usage = [r["usage"] for r in answers if r.get("usage") and not r["usage"].get("shared")]
    cost = cost_of(*(sum(u.get(k, 0) for u in usage) for k in ("input_tokens", "output_tokens")), price, batch,
                   sum(u.get("thought_tokens", 0) for u in usage))
    return {"rule": cfg.early_stop, "examples_stopped": len({r["id"] for r in skipped}),
            "samples_taken": len(answers), "samples_max": cfg.samples * n_examples, "samples_skipped": len(skipped),
            "saved_usd_estimate": None if cost is None or not answers else cost / len(answers) * len(skipped)}


def _saving(stats: Stats, price, batch: bool) -> float | None:
    """What the prompts of the further choices would have cost as requests of their own (the prompt is paid
    once per request): answers beyond one per request, at the run's mean prompt size."""
    answers = stats.answers()
    if price is None or not stats.requests_with_usage or answers <= stats.requests_with_usage:
        return None if price is None else 0.0
    mean_in = stats.tokens_in / stats.requests_with_usage
    return cost_of(int(mean_in * (answers - stats.requests_with_usage)), 0, price, batch)


def format_summary(s: dict) -> str:
    cost = (f"unknown (no price for {s.get('price_model')}: pass --price-in and --price-out, or --prices)"
            if s["cost_usd"] is None else f"${s['cost_usd']:.4f}")
    if s["cost_usd"] is not None and s.get("tokens_thought"):
        cost += f" (of it ${s['thought_cost_usd']:.4f} for {s['tokens_thought']} thought tokens)"
    if s.get("saved_usd"):
        cost += f"; asking for several choices per request saved ${s['saved_usd']:.4f} of prompt tokens"
    tr = s["this_run"]
    lines = [f"wrote {s['out']}",
             f"  answers  {s['answers']} for {s['examples']} examples: {s['done']} ok, {s['unparsed']} unparsed, "
             f"{s['truncated']} truncated, {s['failed']} failed, {s['missing']} missing",
             f"  this run {tr['ok']} ok, {tr['unparsed']} unparsed, {tr['truncated']} truncated, {tr['failed']} "
             f"failed; {tr['requests']} requests ({tr['retries']} retries), {s['requests_per_s']} req/s, "
             f"wall {s['wall_s']:.1f} s",
             f"  tokens   {s['tokens_in']} in, {s['tokens_out']} out, {s.get('tokens_thought', 0)} thought"
             + (f" ({s['answers_without_usage']} answers without usage)" if s['answers_without_usage'] else "")
             + (f" (usage estimated from characters for {s['answers_usage_estimated']} answers)"
                if s["answers_usage_estimated"] else "")
             + f"; cost {cost}"]
    lines += _spending_lines(s)
    if s["models"]:  # what answered; a name that does not extend the asked one (a dated version) is a reroute
        asked = s["price_model"]
        rerouted = any(not m.startswith(asked) for m in s["models"])
        lines.append(f"  models   {', '.join(s['models'])}" + (f" (asked for {asked})" if rerouted else ""))
    if s["replay_from"]:
        lines.append(f"  replayed from {s['replay_from']}: nothing was sent; the cost is what {s['price_model']} "
                     "would have charged for these tokens")
    if s["teacher_accuracy"] is not None:
        lines.append(f"  teacher accuracy vs gold {s['teacher_accuracy']:.1%} (voted label; unparsed and truncated "
                     "count as wrong)")
    f = s["filters"]
    lines.append(f"  filters  no parsed label: {f['no_parsed_label']} removed"
                 + (f"; consistent: {f['inconsistent']} removed -> {s['kept']} kept in {s['filtered_out']}"
                    if "inconsistent" in f else ""))
    return "\n".join(lines)


def _spending_lines(s: dict) -> list[str]:
    """Early stopping's samples, the file's spending over all runs, and the cap that ended the run."""
    lines = []
    e = s.get("early_stop")
    if e:
        saved = "" if e["saved_usd_estimate"] is None else \
            f"; about ${e['saved_usd_estimate']:.4f} saved (an estimate: mean cost of a sample x samples skipped)"
        lines.append(f"  early    {e['samples_taken']} of {e['samples_max']} samples taken (--early-stop "
                     f"{e['rule']}); {e['samples_skipped']} skipped in {e['examples_stopped']} examples{saved}")
    spent, caps = s["spent"], s["caps"]
    lines.append(f"  file     all runs: {spent['requests']} requests, "
                 + ("cost unknown" if spent["cost_usd"] is None else f"${spent['cost_usd']:.4f}")
                 + f" (ledger {spent['ledger']})")
    if s["budget_reached"]:
        used = [f"{spent['requests']} of {caps['max_requests']} requests"] if caps["max_requests"] is not None else []
        used += [f"${spent['cost_usd']:.4f} of ${caps['max_cost_usd']:.2f}"] if caps["max_cost_usd"] is not None else []
        nxt = "" if caps["max_cost_usd"] is None or caps["refused_usd"] is None else \
            f" (the next request could cost up to ${caps['refused_usd']:.4f})"
        flags = "/".join(f for f, k in (("--max-requests", "max_requests"), ("--max-cost", "max_cost_usd"))
                         if caps[k] is not None)
        lines.append(f"  budget reached: {' and '.join(used)} spent{nxt}; {s['missing']} answers of this selection "
                     f"left undone; rerun with a larger {flags} to continue")
    return lines


def format_dry_run(s: dict, cfg: ExtractConfig) -> str:
    cost = "unknown (no price for this model: pass --price-in and --price-out, or --prices)" \
        if s["cost_usd"] is None else \
        f"about ${s['cost_usd']:.4f} (at most ${s['cost_usd_max']:.4f} if every answer hits --max-tokens)"
    return (f"dry run: {s['requests']} requests for {s['examples']} examples of {cfg.task}/{cfg.split} "
            f"to {cfg.teacher} -> {s['out']}\n"
            f"  tokens about {s['tokens_in']} in, {s['tokens_out']} out (at {CHARS_PER_TOKEN:g} characters a "
            f"token; at most {s['tokens_out_max']} out)\n  cost {cost}; nothing was sent"
            + (f"\n  early stopping asks for {cfg.early_stop} to {cfg.samples} samples an example: these figures "
               f"are for all {cfg.samples}" if cfg.early_stop else "")
            + ("\n" + _forecast_line(s["budget"]) if "budget" in s else ""))


def _forecast_line(b: dict) -> str:
    """Where a dry run's caps are reached, over the requests the file still lacks."""
    caps = [f"{b['caps']['max_requests']:,} requests"] if b["caps"]["max_requests"] is not None else []
    caps += [f"${b['caps']['max_cost_usd']:.2f}"] if b["caps"]["max_cost_usd"] is not None else []
    cost = b["spent"]["cost_usd"]
    spent = f"the file has spent {b['spent']['requests']:,} requests" + ("" if cost is None else f", ${cost:.4f}")
    if b["cap_reached_after"] is None:
        return (f"  budget the cap of {' and '.join(caps)} is not reached by the {b['todo_requests']:,} requests "
                f"still to make ({spent})")
    return (f"  budget the cap of {' and '.join(caps)} is reached after about {b['cap_reached_after']:,} of "
            f"{b['todo_requests']:,} requests still to make, {b['examples_within_cap']:,} of "
            f"{b['todo_examples']:,} examples complete ({spent})")
