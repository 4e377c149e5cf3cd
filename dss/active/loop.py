"""`dss active`: spend a teacher budget where it teaches. Each (strategy, seed) is a chain of rounds over the task's
train split as an unlabelled pool:

    round 0   `seed_size` examples drawn at random are sent to the teacher (dss extract, capped)
    round k   a DSS student trains on every answer so far (teacher labels and rationales; a `dss train` run
              folder per round), its test accuracy is a point of the chain's curve against what the teacher
              cost so far; then it scores the unanswered pool and the strategy picks the next `round_size`
              examples (dss/active/choose.py), which go to the teacher ...
    until     the chain's budget (teacher requests, optionally USD) is spent, or the pool is.

A chain's folder (runs/<study>/<strategy>/s<seed>/):
    answers.jsonl          the extraction output: every teacher answer the chain bought (cache, resume, caps)
    choices.jsonl          per round: the ids chosen and why (scores), appended before they are sent
    round_NN.answers.jsonl the answers a round's student trained on (a copy: later rounds never change it)
    round_NN.spent.json    what the teacher had cost when that round's student started
    round_NN/              the round's `dss train` run folder
A killed study resumes exactly: recorded choices are replayed, extraction and training resume, and a choice not
yet recorded is recomputed from the same student and seed.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from dss.active.choose import least_sure, random_choice, student_first
from dss.active.config import ActiveConfig
from dss.core.io import append_line, atomic_write, atomic_write_json, read_json


def chain_dir(cfg: ActiveConfig, strategy: str, seed: int) -> Path:
    return cfg.out_dir() / strategy / f"s{seed}"


def read_choices(folder: Path) -> list[dict]:
    """The recorded rounds, in order. A last line a kill cut short is not a round: it is cut off (and that round
    is chosen again, the same way)."""
    path = folder / "choices.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.is_file() else []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            atomic_write(path, "".join(lines[:len(out)]))
            break
    return out


def run_chain(cfg: ActiveConfig, strategy: str, seed: int, pool: list, task, log=print) -> list[dict]:
    """All rounds of one chain (resuming what a killed run left); returns its points."""
    folder = chain_dir(cfg, strategy, seed)
    folder.mkdir(parents=True, exist_ok=True)
    recorded = read_choices(folder)
    points, answered, round_no = [], set(), 0
    while True:
        if round_no < len(recorded):
            ids = recorded[round_no]["ids"]
        else:
            left = [e for e in pool if e.id not in answered]
            if not left or (points and spent_all(cfg, points[-1])):
                break
            choice = choose(cfg, strategy, seed, round_no, left, task, folder, log)
            append_line(folder / "choices.jsonl", json.dumps(choice))
            ids = choice["ids"]
        answered.update(ids)
        spent = ask_teacher(cfg, folder, round_no, ids, task, log)
        points.append({**train_round(cfg, folder, round_no, seed, log), **spent,
                       "strategy": strategy, "seed": seed, "round": round_no})
        log(f"dss active: {strategy} s{seed} round {round_no}: {len(answered)} examples answered, {spent['requests']} "
            f"requests (${spent['cost_usd'] or 0:.4f}): test {100 * points[-1]['test_accuracy']:.1f} %")
        round_no += 1
    return points


def spent_all(cfg: ActiveConfig, point: dict) -> bool:
    """Whether a chain has spent its budget (or the extraction said it could send no more)."""
    usd = cfg.budget_usd is not None and point.get("cost_usd") is not None and point["cost_usd"] >= cfg.budget_usd
    return point["budget_reached"] or point["requests"] >= cfg.budget_requests or usd


def round_examples(cfg: ActiveConfig, round_no: int) -> int:
    """How many examples round `round_no` sends: the seed set, then round_size growing by round_growth."""
    return cfg.seed_size if round_no == 0 else round(cfg.round_size * cfg.round_growth ** (round_no - 1))


def choose(cfg: ActiveConfig, strategy: str, seed: int, round_no: int, left: list, task, folder: Path,
           log) -> dict:
    """The record of one round's choice: {"round", "strategy", "ids", "by", ("scores")}."""
    ids = [e.id for e in left]
    if round_no == 0 or strategy == "random":
        return {"round": round_no, "strategy": strategy, "by": "random",
                "ids": random_choice(ids, round_examples(cfg, round_no), seed, round_no)}
    from dss.active.score import pool_answers
    sureness, wrong, by = pool_answers(cfg, folder / f"round_{round_no - 1:02d}", left, task,
                                       gold=strategy == "student-first" and cfg.use_gold)
    k = round_examples(cfg, round_no)
    if strategy == "uncertainty" or wrong is None:
        chosen = least_sure(ids, sureness, k)
    else:
        chosen = student_first(ids, sureness, wrong, k, seed, round_no)
    index = {i: k for k, i in enumerate(ids)}
    scores = {i: round(sureness[index[i]], 6) for i in chosen}
    return {"round": round_no, "strategy": strategy, "by": by, "ids": chosen, "scores": scores}


def ask_teacher(cfg: ActiveConfig, folder: Path, round_no: int, ids: list[str], task, log) -> dict:
    """Extract the round's ids into the chain's answers file, capped by the chain's budget; snapshot the file
    for the round's student (once: a rerun keeps the first copy). Returns what the teacher cost so far."""
    from dss.core.config import load_config
    from dss.teacher.extract import run as extract
    from dss.teacher.extract_config import ExtractConfig

    ids_file = folder / f"round_{round_no:02d}.ids.txt"
    if not ids_file.is_file():
        ids_file.write_text("".join(i + "\n" for i in ids))
    values = {**cfg.extract, "task": cfg.task, "split": "train", "data_dir": cfg.data_dir,
              "ids_file": str(ids_file), "out": str(folder / "answers.jsonl"),
              "max_requests": cfg.budget_requests, "max_cost": cfg.budget_usd}
    summary = extract(load_config(ExtractConfig, None, values), task, log=lambda *a: None)
    snapshot = folder / f"round_{round_no:02d}.answers.jsonl"
    spent_path = folder / f"round_{round_no:02d}.spent.json"
    if not snapshot.is_file():
        shutil.copyfile(folder / "answers.jsonl", snapshot.with_name(snapshot.name + ".tmp"))
        snapshot.with_name(snapshot.name + ".tmp").replace(snapshot)
        spent = summary["spent"]
        from dss.tasks.rationales import by_example, read_rationale_file
        answers = by_example(read_rationale_file(snapshot))  # the examples the teacher answered (any status but error)
        atomic_write_json(spent_path, {
            "answered": sum(any(r["status"] != "error" for r in recs) for recs in answers.values()),
            "requests": spent["requests"], "cost_usd": spent["cost_usd"],
            "tokens": spent["tokens_in"] + spent["tokens_out"] + spent.get("tokens_thought", 0),
            "budget_reached": bool(summary.get("budget_reached"))})
    return read_json(spent_path)


def train_round(cfg: ActiveConfig, folder: Path, round_no: int, seed: int, log) -> dict:
    """The round's DSS student on every answer so far (teacher labels: the pool has no others)."""
    from dss.core.config import load_config
    from dss.student.config import TrainConfig
    from dss.student.loop import train

    by_round = {int(k): v for k, v in cfg.train_by_round.items()}.get(round_no, {})
    values = {"method": "dss", **cfg.train, **by_round, "task": cfg.task, "task_options": cfg.task_options,
              "data_dir": cfg.data_dir, "labels": "teacher", "seed": seed, "resume": True,
              "rationales": str(folder / f"round_{round_no:02d}.answers.jsonl"),
              "output_dir": str(folder / f"round_{round_no:02d}")}
    res = train(load_config(TrainConfig, None, values))
    return {"test_accuracy": res["test_accuracy"], "valid_accuracy": res["valid_accuracy"],
            "train_examples": res.get("train_examples"), "run_dir": values["output_dir"]}
