"""The interactive run: `cfg.concurrency` worker threads send requests under a rate limit and the budget (each
attempt reserved before it is sent, settled when it ends: dss.teacher.budget), retry transient failures, and
write each answer's record themselves the moment it arrives. With early stopping (dss.teacher.early_stop) the
record that ends an example's round queues its next round, or writes its skipped samples."""
from __future__ import annotations

import dataclasses
import queue
import sys
import threading
import time
from collections import deque

from dss.tasks.base import Task
from dss.teacher.budget import Budget
from dss.teacher.cost import Stats
from dss.teacher.early_stop import Rounds
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.items import Item, make_record, model_change, units
from dss.teacher.protocol import BadAnswer, FatalError, RetryPolicy, Stopped, TransientError, call_with_retries
from dss.teacher.store import RecordFile


class RateLimiter:
    """Requests per minute as evenly spaced start slots; tokens per minute over a sliding 60 s window of
    reported usage (a request waits while the window is full)."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None):
        self.interval = 60.0 / rpm if rpm else 0.0
        self.tpm = tpm
        self._next = 0.0
        self._window: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> None:
        if self.interval:
            with self._lock:
                now = time.monotonic()
                slot = max(now, self._next)
                self._next = slot + self.interval
            if slot > now and stop.wait(slot - now):
                return
        while self.tpm and not stop.is_set():
            with self._lock:
                now = time.monotonic()
                while self._window and self._window[0][0] < now - 60.0:
                    self._window.popleft()
                used = sum(n for _, n in self._window)
                if used < self.tpm:
                    return
                wait = self._window[0][0] + 60.0 - now
            stop.wait(min(max(wait, 0.01), 1.0))

    def record(self, tokens: int) -> None:
        if self.tpm and tokens:
            with self._lock:
                self._window.append((time.monotonic(), tokens))


def run_live(items: list[Item], client, cfg: ExtractConfig, task: Task, rf: RecordFile, stats: Stats,
             log=print, *, budget: Budget, rounds: Rounds | None = None) -> FatalError | None:
    """Answer items with cfg.concurrency worker threads. Each worker writes its record itself, under one
    lock (one whole flushed line at a time), so an answer costs no hand-off to another thread. Returns the
    error that stopped the run, or None (also when the budget ended it: `budget.reached`)."""
    return LiveRun(items, client, cfg, task, rf, stats, log, budget, rounds).run()


class LiveRun:
    """One live run's shared state: the work queue (one unit = the samples one request asks for), the stop
    flag, and the lock every record is written (and every tally kept) under. `open` counts the units queued or
    being answered: a worker that finds the queue empty waits while one may still queue more (a short response's
    rest, an example's next round)."""

    def __init__(self, items: list[Item], client, cfg: ExtractConfig, task: Task, rf: RecordFile, stats: Stats,
                 log, budget: Budget, rounds: Rounds | None):
        self.items, self.client, self.cfg, self.task, self.rf, self.stats = items, client, cfg, task, rf, stats
        self.log, self.said_wait_capped, self.budget, self.rounds = log, False, budget, rounds
        self.sampling, self.stop = cfg.sampling(), threading.Event()
        self.policy = RetryPolicy(cfg.max_attempts, cfg.backoff_base, cfg.backoff_max)
        self.limiter = RateLimiter(cfg.rpm, cfg.tpm)
        self.todo: queue.SimpleQueue = queue.SimpleQueue()
        self.open = 0
        self.write_lock = threading.Lock()
        self.queue(items)
        self.n_units = self.open
        self.fatal: list[FatalError] = []
        self.bar = _progress(rounds.open_samples() if rounds else len(items), cfg, task)

    def queue(self, items: list[Item]) -> None:
        for unit in units(items, self.cfg.choices_per_request):
            self.todo.put(unit)
            self.open += 1

    def run(self) -> FatalError | None:
        # with rounds, later rounds bring work the first round's units do not show
        n = self.cfg.concurrency if self.rounds else min(self.cfg.concurrency, self.n_units)
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(n)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive() and not self.stop.is_set():
                    t.join(0.25)  # short joins keep Ctrl-C responsive
        except KeyboardInterrupt:
            self.stop.set()
            raise
        finally:
            self.finish()
        return self.fatal[0] if self.fatal else None

    def finish(self) -> None:
        self.stop.set()
        with self.write_lock:  # no record is written after this: workers still waiting on a request are
            self.rf.freeze()   # abandoned (daemon threads); their items have no record and are redone
            if self.bar is not None:
                self._postfix()
                self.bar.close()

    def worker(self) -> None:
        try:
            self.work()
        except BaseException as e:  # noqa: BLE001 — never let a worker die silently with items undone
            self.fail(FatalError(f"unexpected {type(e).__name__} in a worker: {e}"))

    def work(self) -> None:
        while (unit := self.next_unit()) is not None:
            try:
                self.do(unit)
            except Stopped:  # the run stops, or the budget has no room left: this unit stays undone
                return
            finally:
                with self.write_lock:
                    self.open -= 1

    def next_unit(self) -> list[Item] | None:
        while not self.stop.is_set():
            try:
                return self.todo.get(timeout=0.05)
            except queue.Empty:
                with self.write_lock:
                    if self.open == 0:
                        return None
        return None

    def do(self, unit: list[Item]) -> None:
        t0 = time.monotonic()
        try:
            comps, n = call_with_retries(lambda u=unit: self.attempt(u), self.policy, self.stop, self.on_retry)
        except FatalError as e:
            self.fail(e)
            raise Stopped() from None
        except (TransientError, BadAnswer) as e:  # attempts exhausted, or an answer that cannot be
            for k, it in enumerate(unit):          # used: error records, redone on a rerun
                self.emit(make_record(it, self.cfg, self.task, None, latency=time.monotonic() - t0,
                                      error=str(e), attempts=e.attempts if k == 0 else 0))
            return
        self.answer(unit, comps, n, time.monotonic() - t0)

    def answer(self, unit: list[Item], comps, attempts: int, latency: float) -> None:
        """A record per choice received; samples the server did not answer (it ignored `n`) become a new
        request of their own, so every sample still ends with exactly one record."""
        usage = comps[0].usage
        if usage and not usage.get("shared"):
            self.limiter.record(sum(usage.get(k, 0) for k in ("input_tokens", "output_tokens", "thought_tokens")))
        for k, (it, comp) in enumerate(zip(unit, comps)):
            self.emit(make_record(it, self.cfg, self.task, comp.text, comp.usage, latency,
                                  attempts=attempts if k == 0 else 0, finish_reason=comp.finish_reason,
                                  model=comp.model))
        if len(comps) < len(unit):
            with self.write_lock:
                self.stats.short_responses += 1
                self.todo.put(unit[len(comps):])
                self.open += 1

    def attempt(self, unit: list[Item]):
        """One request, reserved in the budget before it goes out and settled when it ends."""
        self.limiter.acquire(self.stop)
        if self.stop.is_set():
            raise Stopped()
        hold = self.budget.reserve(unit, self.stop)
        try:
            comps = self.client.complete(unit[0].messages, dataclasses.replace(self.sampling, n=len(unit)))
        except BaseException as e:
            if getattr(e, "status", None) is not None:  # the server refused it with an HTTP status: unbilled
                self.budget.settle(hold, None)
            else:  # no answer came (timeout, dropped connection, unusable body): it may have been billed
                self.budget.keep(hold)
            raise
        usage = comps[0].usage if comps else None
        if usage and not usage.get("shared"):
            self.budget.settle(hold, usage)
        else:  # no usage reported: what it cost is unknown, so it stays held at its most
            self.budget.keep(hold)
        return comps

    def emit(self, rec: dict) -> None:
        with self.write_lock:
            change = model_change(self.rf, rec["model"], self.cfg)
            if change is not None:  # not written: the run stops as on any FatalError
                self.fatal.append(change)
                self.stop.set()
                return
            self.write(rec)
            if self.rounds is not None:
                ask, skips = self.rounds.record(rec)
                for skip in skips:
                    self.write(skip)
                self.queue(ask)

    def write(self, rec: dict) -> None:
        self.rf.append(rec)
        self.stats.add(rec)
        if self.bar is not None:
            self.bar.update(1)
            if self.stats.ok % 25 == 0:
                self._postfix()

    def on_retry(self, err, wait) -> None:
        with self.write_lock:
            self.stats.retries += 1
            asked = getattr(err, "retry_after", None)
            if asked is not None and asked > self.policy.max_s and not self.said_wait_capped:
                self.said_wait_capped = True  # once a run: a rate limit answers every worker alike
                self.log(f"{err}: the server asks to wait {asked:g} s before retrying; waiting --backoff-max "
                         f"{self.policy.max_s:g} s instead (raise --backoff-max to wait longer)")

    def fail(self, e: FatalError) -> None:
        with self.write_lock:
            self.fatal.append(e)
        self.stop.set()

    def _postfix(self) -> None:
        s = self.stats
        self.bar.set_postfix(ok=s.ok, unparsed=s.unparsed, cut=s.truncated, err=s.error, refresh=False)


def _progress(total: int, cfg: ExtractConfig, task: Task):
    if not cfg.progress or total == 0:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=f"extract {task.name}/{cfg.split}", unit="req", file=sys.stderr,
                mininterval=0.5, dynamic_ncols=True)
