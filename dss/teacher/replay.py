"""The replay teacher, `--teacher replay:<model> --replay-from task|FILE`: a client that answers from earlier
answers instead of the network, so an extraction (records, cache, resume, limits, summary) runs offline as it
would live, charged at <model>'s price.

Sources: `task`, the task's own teacher (`Task.teacher_completions`: the release's PaLM completions, the demo's
code-written answers), one answer per example; or FILE, an earlier `dss extract` output, whose answer for each
(id, sample) is replayed with the usage and finish reason it recorded (a truncated answer stays truncated).

A request carries only its messages, so the client is built with the items it will be asked about and gives a
request the next pending items of its prompt, in order. Identical prompts (duplicate inputs) are as alike to it
as to a live teacher: their answers go to them in the order their requests arrive.

Usage: a request's recorded usage when its first answer carries it (a FILE written by a live teacher); else an
estimate at CHARS_PER_TOKEN characters a token, the prompt once per request and each answer's own text, marked
"estimated" (the release's and the demo's answers, a FILE's answers without usage).
"""
from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import deque
from dataclasses import dataclass

from dss.core.errors import DataError
from dss.tasks.base import Task
from dss.tasks.rationales import read_rationale_file
from dss.teacher.cost import CHARS_PER_TOKEN
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.items import Item
from dss.teacher.protocol import BadAnswer, Completion, FatalError, Sampling


@dataclass(frozen=True)
class Answer:
    text: str
    usage: dict | None = None  # as recorded; None: estimated from the text
    finish_reason: str = "stop"


@dataclass
class Replay:
    """What a replay teacher is built with: the run's settings (its source), the task, and the items (the
    run's pending requests) it will be asked about."""
    cfg: ExtractConfig
    task: Task
    items: list[Item]

    def answers(self) -> dict[tuple[str, int], Answer]:
        """(id, sample) -> the answer the source holds for it."""
        cfg = self.cfg
        if cfg.replay_from == "task":
            completions = self.task.teacher_completions(cfg.split, cfg.data_dir)
            return {(str(i), 0): Answer(text) for i, text in completions.items()}
        return file_answers(cfg.replay_from, self.task.name, cfg.split)


def file_answers(path, task: str, split: str) -> dict[tuple[str, int], Answer]:
    """The answers of an earlier `dss extract` output for this task and split; error records hold none."""
    out = {}
    for rec in read_rationale_file(path):
        for field, want in (("task", task), ("split", split)):
            if rec.get(field) not in (None, want):
                raise DataError(f"{path}: its records are for {field} {rec[field]!r}, this run's is {want!r}")
        if rec["status"] != "error" and isinstance(rec.get("raw"), str):
            out[(str(rec["id"]), int(rec["sample"]))] = Answer(rec["raw"], rec.get("usage"),
                                                               rec.get("finish_reason") or "stop")
    return out


class ReplayClient:
    """`complete(messages, sampling)` as the HTTP clients have it, answered from a `Replay`'s source."""

    provider = "replay"

    def __init__(self, model: str, replay: Replay | None):
        if replay is None:
            raise FatalError(f"replay:{model} has no endpoint: it answers an extraction's requests from "
                             "--replay-from")
        self.model = model
        self.answers = replay.answers()
        self._pending: dict[bytes, deque[Item]] = {}
        for it in replay.items:
            self._pending.setdefault(_prompt_key(it.messages), deque()).append(it)
        self._lock = threading.Lock()  # the live run's workers ask at once

    def complete(self, messages: list[dict], sampling: Sampling) -> list[Completion]:
        with self._lock:
            queue = self._pending.get(_prompt_key(messages))
            if not queue:
                raise FatalError("replay: asked about a prompt that no pending item of the run still has")
            unit = [queue.popleft() for _ in range(min(sampling.n, len(queue)))]
        found = [self.answers.get(it.key) for it in unit]
        for it, answer in zip(unit, found):
            if answer is None:  # BadAnswer: an error record for each item, never retried
                raise BadAnswer(f"the replay source has no answer for {it.example.id}"
                                + (f" (sample {it.sample})" if it.sample else ""))
        return [Completion(a.text, usage, a.finish_reason, self.model)
                for a, usage in zip(found, request_usage(messages, found))]


def request_usage(messages: list[dict], answers: list[Answer]) -> list[dict]:
    """The usage of each answer of one request: as recorded when the first answer carries the request's (the
    others then carry their own, or {"shared": True}); else estimated, the whole request on the first answer as
    live responses report it."""
    recorded = [a.usage for a in answers]
    if all(recorded) and not recorded[0].get("shared"):
        return recorded
    first = {"input_tokens": _tokens(sum(len(m["content"]) for m in messages)),
             "output_tokens": sum(_tokens(len(a.text)) for a in answers), "thought_tokens": 0, "estimated": True}
    return [first] + [{"shared": True, "estimated": True}] * (len(answers) - 1)


def _tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)  # any text is at least one token


def _prompt_key(messages: list[dict]) -> bytes:
    # a digest: the few-shot prompts of a whole split, kept as text, would hold tens of MB
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode("utf-8")).digest()
