"""`dss extract`: ask a teacher for a chain-of-thought answer to every example of a split; write one record
per (example, sample) to an append-only JSONL file that a rerun resumes.

The parts: options in `extract_config`, the work units and resume plan in `items`, the locked append-only
file in `store.RecordFile`, the file's spending and its caps in `budget`, the rounds of early stopping in
`early_stop`, the interactive threads in `live`, the Gemini Batch API in `batch`, prices and tallies in `cost`,
the final report in `summary`. After `kill -9` at any moment and a rerun, each (example, sample) has exactly one
record.

`run(cfg, task)` returns the summary it prints; for programs that call it again and again (with growing caps,
an `ids_file`), these keys describe the whole output file, every run of it, not just this call:

    summary["spent"]           {"requests", "tokens_in", "tokens_out", "tokens_thought", "tokens_held",
                                "cost_usd" (None without a price), "ledger" (its path)}: requests counts every
                                attempt; tokens_held are requests' most, held where no usage settled them
    summary["caps"]            {"max_requests", "max_cost_usd"} as given (None: no cap), "refused_usd": the
                                most the request that did not fit could have cost
    summary["budget_reached"]  True when a cap stopped the run with work left (the exit status is still 0);
                                summary["missing"] answers of the selection are then undone
    summary["early_stop"]      with --early-stop: {"rule", "examples_stopped", "samples_taken", "samples_max",
                                "samples_skipped", "saved_usd_estimate"} over the selection
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from dss.core.errors import ConfigError, DataError
from dss.core.io import atomic_write
from dss.tasks.base import Example, Task
from dss.teacher import prompts
from dss.teacher.batch import (
    backend_for,
    batch_state_path,
    openai_batch_lines,
    read_batch_file,
    request_key,
    run_batch,
)
from dss.teacher.budget import Budget, BudgetReached, forecast
from dss.teacher.client import make_client
from dss.teacher.cost import Stats, estimate
from dss.teacher.early_stop import Rounds
from dss.teacher.extract_config import ExtractConfig, default_out
from dss.teacher.items import Item, build_items, make_record, plan, select
from dss.teacher.live import run_live
from dss.teacher.protocol import FatalError
from dss.teacher.replay import Replay
from dss.teacher.store import RecordFile
from dss.teacher.summary import format_dry_run, format_summary, summarize


class FatalStop(DataError):
    """A 400/401/403-class error stopped the run; what was done is saved."""


def run(cfg: ExtractConfig, task: Task, log=print) -> dict:
    """The whole `dss extract`; returns the summary it prints."""
    t_start = time.monotonic()
    examples = select(task.load(cfg.split, cfg.data_dir), cfg.ids_file, cfg.limit)
    provider, model = cfg.spec.provider, cfg.spec.model
    if cfg.import_released:
        cfg.teacher = str(cfg.spec)
    out = Path(cfg.out) if cfg.out else default_out(task.name, cfg.split, cfg.teacher)
    if cfg.import_released:
        items = [Item(ex, 0, [], "released") for ex in examples]
    else:
        items = build_items(task, cfg, examples)
    if cfg.dry_run and cfg.import_released:  # nothing to estimate: the answers are on disk
        log(f"dry run: {len(items)} released PaLM answers of {task.name}/{cfg.split} would be written to {out}")
        return {"dry_run": True, "examples": len(examples), "out": str(out), "requests": 0}
    if cfg.dry_run:
        summary = {"dry_run": True, "examples": len(examples), "out": str(out), **estimate(items, cfg)}
        if cfg.max_requests is not None or cfg.max_cost is not None:
            summary["budget"] = forecast(items, out, cfg)
        log(format_dry_run(summary, cfg))
        return summary
    if (cfg.write_batch or cfg.read_batch) and provider != "openai":
        raise ConfigError("--write-batch/--read-batch use the OpenAI batch format (vllm run-batch, OpenAI's Batch "
                          "API): they need an openai:<model> teacher")
    if cfg.write_batch:
        return write_batch(items, out, cfg, task, log)

    records, stats, fatal, spend = _answer(items, out, task, cfg, log)
    wall = time.monotonic() - t_start
    summary = {**summarize(records, items, examples, task, cfg, stats, wall, out, model), **spend}
    if fatal is not None:
        log(f"stopped: {stats.answers()} answers written this run, "
            f"{summary['done'] + summary['unparsed'] + summary['truncated']} of {len(items)} done in {out}; "
            "fix the problem below and rerun the same command to resume")
        raise FatalStop(str(fatal))
    log(format_summary(summary))
    return summary


def _answer(items: list[Item], out: Path, task: Task, cfg: ExtractConfig,
            log) -> tuple[list[dict], Stats, FatalError | None, dict]:
    """Open (lock, repair) the output, answer what it still lacks within the budget; returns (all its records,
    this run's stats, the error that stopped the run or None, the file's spending)."""
    rf = RecordFile(out)
    stats, budget = Stats(), None
    try:
        budget = Budget(out, rf.records, cfg)  # before `plan`: the records it drops stay spent
        pending, counts = plan(items, rf, cfg)
        _say_plan(counts, len(items), len(pending), out, cfg, log)
        rounds = None
        if cfg.early_stop:
            rounds = Rounds(items, rf.records, cfg, task)
            pending, skips = rounds.start(rf)
            for rec in skips:  # examples a rerun finds decided (a kill came before their skipped records)
                rf.append(rec)
                stats.add(rec)
        fatal = _send(pending, rf, stats, budget, rounds, task, cfg, log)
        records = list(rf.records)
        spend = {"spent": budget.spent(), "caps": budget.caps(), "budget_reached": budget.reached}
    finally:
        if budget is not None:
            budget.close()
        rf.close()
    return records, stats, fatal, spend


def _say_plan(counts: dict, n_items: int, n_pending: int, out: Path, cfg: ExtractConfig, log) -> None:
    if counts["torn"] or counts["error"] or counts["stale"] or counts["truncated"]:
        log(f"{out}: repaired — {counts['torn']} torn line(s) cut, {counts['error']} error record(s), "
            f"{counts['stale']} stale record(s) and {counts['truncated']} answer(s) cut off by a smaller "
            "--max-tokens dropped to redo")
    if counts["resumed"]:
        log(f"{out}: {counts['resumed']} of {n_items} answers already done; {n_pending} to go")
    if counts["truncated_kept"]:
        log(f"{out}: {counts['truncated_kept']} answer(s) cut off at --max-tokens {cfg.max_tokens} (status "
            "truncated) are kept as they are; rerun with a larger --max-tokens to redo them")


def _send(pending: list[Item], rf: RecordFile, stats: Stats, budget: Budget, rounds: Rounds | None, task: Task,
          cfg: ExtractConfig, log) -> FatalError | None:
    """The route that answers the pending items; the FatalError that stopped it, if any."""
    if cfg.import_released:
        for rec in import_released(task, cfg, [it.example for it in pending]):
            rf.append(rec)
            stats.add(rec)
        return None
    if cfg.read_batch:
        return _stopping(read_batch_file, cfg.read_batch, pending, cfg, task, rf, stats, log, budget=budget)
    if not (pending or cfg.batch_job or (cfg.batch and batch_state_path(rf.path).is_file())):
        return None
    t_requests = time.monotonic()
    client = make_client(cfg.spec, cfg.base_url, cfg.timeout, Replay(cfg, task, pending))
    if cfg.batch or cfg.batch_job:
        fatal = _stopping(run_batch, pending, backend_for(client), cfg, task, rf, stats, log, budget=budget)
    else:
        fatal = run_live(pending, client, cfg, task, rf, stats, log, budget=budget, rounds=rounds)
    stats.request_s = time.monotonic() - t_requests
    return fatal


def _stopping(route, *args, **kw) -> FatalError | None:
    """Run a batch route; the FatalError that stopped it, if any (the records it wrote stay). The budget
    running out ends it cleanly."""
    try:
        route(*args, **kw)
    except FatalError as e:
        return e
    except BudgetReached:
        pass
    return None


def write_batch(items: list[Item], out: Path, cfg: ExtractConfig, task: Task, log) -> dict:
    """--write-batch: the requests the output still lacks, as an OpenAI-format batch file (for `vllm run-batch`
    or an OpenAI batch run by hand); nothing is sent. --read-batch then turns the results into records."""
    from dss.teacher.client import OpenAIClient
    rf = RecordFile(out)
    budget = None
    try:
        budget = Budget(out, rf.records, cfg)  # before `plan`: the records it drops stay spent
        pending, _ = plan(items, rf, cfg)
        fit = budget.room(pending, batch=False)  # dss sends none of them: the caps only bound the file's size
    finally:
        if budget is not None:
            budget.close()
        rf.close()
    client = OpenAIClient(cfg.spec.model, cfg.base_url or "http://localhost:8000/v1",
                          cfg.timeout, require_key=False)
    path = Path(cfg.write_batch)
    atomic_write(path, openai_batch_lines([(request_key(it), it) for it in fit], client, cfg))
    log(f"wrote {len(fit)} requests to {path} (of {len(items)}; " +
        (f"{len(pending) - len(fit)} more wait for a larger --max-requests/--max-cost; " if budget.reached else "") +
        f"the rest are done in {out}). Run them, e.g. `vllm run-batch -i {path} -o results.jsonl --model "
        f"{client.model}`, then rerun this command with --read-batch results.jsonl instead of --write-batch")
    return {"write_batch": str(path), "requests": len(fit), "examples": len({it.example.id for it in items}),
            "spent": budget.spent(), "caps": budget.caps(), "budget_reached": budget.reached}


def import_released(task: Task, cfg: ExtractConfig, examples: list[Example]) -> list[dict]:
    """Records from the release's PaLM completions (teacher 'palm:540b')."""
    if not hasattr(task, "released_completions"):
        raise DataError(f"task {task.name!r} has no released teacher completions")
    raw = task.released_completions(cfg.split, cfg.data_dir)
    return [make_record(Item(ex, 0, [], "released"), cfg, task, raw[ex.id]) for ex in examples]


def show_prompt(cfg: ExtractConfig, task: Task) -> str:
    examples = select(task.load(cfg.split, cfg.data_dir), cfg.ids_file, cfg.limit)
    if not examples:
        raise DataError("no example selected")
    item = build_items(task, cfg, examples[:1])[0]
    return (f"# task {task.name}/{cfg.split}, example {item.example.id}, teacher {cfg.teacher}, "
            f"sampling {json.dumps(cfg.sampling().to_dict())}, prompt_sha {item.sha}\n"
            f"{prompts.render_text(item.messages)}")
