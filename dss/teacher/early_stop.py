"""Early-stopping self-consistency: `dss extract --samples k --early-stop M`.

The rule. An example's samples are asked in rounds, in sample order; the first round asks for samples 0..M-1.
After each round the example stops when
    its first M answers are all the same answer (compared as the task scores them, `Task.answer_key`), or
    its leading answer has more votes than the runner-up could reach if every sample left went to it;
otherwise the next round asks for just enough samples to decide it were they all to agree with the leader (with
--choices-per-request, in requests of that many choices). Unparsed and truncated answers, and labels the task
cannot read, agree with nothing: they take a sample and give no vote. An example whose round ends with a failed
request (an error record) waits for the rerun that redoes it.

Records. Each sample an example did not need gets a record of status "skipped" with "samples_taken" (how many
samples its example took) and "early_stop" (M); votes and training read only "ok" records. The decision is a pure
function of an example's answers (`replay`), so a rerun after `kill -9` at any moment decides again from the
file: it asks what an open round lacks, writes the skipped records a decided example is missing, and drops the
skipped records the rule no longer skips (another M) before asking for those samples.
"""
from __future__ import annotations

from collections import Counter

from dss.tasks.base import Task
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.items import Item, make_record
from dss.teacher.store import RecordFile


def answer_key(rec: dict, task: Task):
    """The answer a record votes for; None: no vote (unparsed, truncated, a label the task cannot read)."""
    return task.answer_key(rec["label"]) if rec["status"] == "ok" and rec.get("label") else None


def more_needed(keys: list, k: int, m: int) -> int:
    """How many more samples an example needs after the answers `keys` of its samples 0..t-1 (None: no vote);
    0 once the rule has decided it or no sample is left."""
    left = k - len(keys)
    if left <= 0 or (len(keys) >= m and keys[0] is not None and all(x == keys[0] for x in keys[:m])):
        return 0
    votes = sorted(Counter(x for x in keys if x is not None).values(), reverse=True) + [0, 0]
    lead, second = votes[0], votes[1]
    if lead > second + left:
        return 0
    # the fewest samples s that decide it if all agree with the leader: lead + s > second + (left - s)
    return min(left, (second + left - lead) // 2 + 1)


def replay(answers: dict[int, object], k: int, m: int) -> tuple[list[int], int | None]:
    """The rounds over an example's answers so far ({sample: answer key}): (the samples the open round lacks,
    None), or ([], t) when the rule decided the example after its first t samples."""
    t, size = 0, m
    while size:
        end = min(t + size, k)
        missing = [s for s in range(t, end) if s not in answers]
        if missing:
            return missing, None
        t = end
        size = more_needed([answers[s] for s in range(t)], k, m)
    return [], t


class Rounds:
    """Which samples each example needs next, from the file's answers and those that arrive. Not thread-safe:
    the live run calls `record` under its write lock."""

    def __init__(self, items: list[Item], records: list[dict], cfg: ExtractConfig, task: Task):
        self.cfg, self.task, self.k, self.m = cfg, task, cfg.samples, cfg.early_stop
        self.items: dict[str, dict[int, Item]] = {}
        for it in items:
            self.items.setdefault(it.example.id, {})[it.sample] = it
        self.answers: dict[str, dict[int, object]] = {ex: {} for ex in self.items}
        self.skipped: set[tuple[str, int]] = set()  # samples with a skipped record in the file
        for rec in records:
            ex, s = str(rec["id"]), int(rec["sample"])
            if s not in self.items.get(ex, {}) or rec["status"] == "error":
                continue
            if rec["status"] == "skipped":
                self.skipped.add((ex, s))
            else:
                self.answers[ex][s] = answer_key(rec, task)
        self.waiting: dict[str, set[int]] = {}  # per example in a round: its samples not yet recorded
        self.failed: set[str] = set()

    def start(self, rf: RecordFile) -> tuple[list[Item], list[dict]]:
        """(the items to ask first, the skipped records to write). Skipped records of samples the rule now asks
        for are dropped from the file first."""
        ask, skips = [], []
        for ex in self.items:
            more, recs = self.step(ex)
            ask += more
            skips += recs
        unskip = {it.key for it in ask} & self.skipped
        if unskip:
            rf.rewrite([r for r in rf.records if r["status"] != "skipped"
                        or (str(r["id"]), int(r["sample"])) not in unskip])
            self.skipped -= unskip
        return ask, skips

    def step(self, ex: str) -> tuple[list[Item], list[dict]]:
        """An example between rounds: the items of its next round, or, decided, its missing skipped records."""
        ask, taken = replay(self.answers[ex], self.k, self.m)
        if ask:
            self.waiting[ex] = set(ask)
            return [self.items[ex][s] for s in ask], []
        skips = [s for s in range(taken, self.k) if s not in self.answers[ex] and (ex, s) not in self.skipped]
        self.skipped.update((ex, s) for s in skips)
        n = len(self.answers[ex])
        return [], [make_record(self.items[ex][s], self.cfg, self.task, None, skipped=n) for s in skips]

    def record(self, rec: dict) -> tuple[list[Item], list[dict]]:
        """A record just written: when it ends its example's round, that example's `step`."""
        ex, s = str(rec["id"]), int(rec["sample"])
        waiting = self.waiting.get(ex)
        if waiting is None or s not in waiting:
            return [], []
        waiting.discard(s)
        if rec["status"] == "error":
            self.failed.add(ex)
        else:
            self.answers[ex][s] = answer_key(rec, self.task)
        if waiting:
            return [], []
        del self.waiting[ex]
        return ([], []) if ex in self.failed else self.step(ex)

    def open_samples(self) -> int:
        """Samples with neither an answer nor a skipped record: the most this run can write."""
        return sum(self.k - len(self.answers[ex]) - sum((ex, s) in self.skipped for s in range(self.k))
                   for ex in self.items)
