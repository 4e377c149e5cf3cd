"""What an output file has spent, and the caps on it: --max-requests and --max-cost.

The tally is a ledger beside the output, `<out>.spent.jsonl`, written under the run's lock on the output: JSON
lines of changes, each one flushed `write()` (a torn last line, a kill mid-write, is dropped), compacted to one
line a route when a run opens it. Its fields, per route (live, or a Batch API job at the batch price):

    n              requests: every attempt (a retry is a request; one asking for several choices is one)
    in, out, th    tokens the responses reported: input, output, thoughts
    hin, hout      tokens held for requests not settled, at the most each could cost

Every request is reserved in the ledger before it is sent: one request, held at its most (its prompt estimated as
the dry run does, 4 characters a token, and --max-tokens per choice asked for: Gemini and OpenAI count thoughts
within that limit). When it ends it is settled: an answer with usage replaces its hold by that usage; an attempt
the server refused with an HTTP status (429, 5xx, 4xx) frees it, unbilled; one that got no usable answer (a
timeout, a dropped connection, a malformed or oversized body, an answer without usage) keeps it, since the
provider may have billed it. So the ledger never counts less than the server saw: after `kill -9` at any moment
the requests in flight, at most --concurrency, stay counted at their most.

A file without a ledger (written before there was one, or the ledger deleted) starts from its records' attempts
and usage. Records dropped on resume (errors, answers redone with a larger --max-tokens, --overwrite) stay spent;
delete the ledger with the output to start afresh.

Caps: a request is sent only if the totals with its hold stay within the caps (cost at `price_for`'s price,
batch discount where it applies); one that does not fit waits while requests in flight may free room, and when
none is in flight the run ends (`reached`). The output is bounded by --max-tokens, the prompt only estimated: one
that tokenizes denser passes --max-cost by the difference, for the requests in flight.

Batch routes: --batch submits a job with as many pending requests as the caps allow, each held at its most and
settled when its results are collected (a job that fails keeps its holds); --write-batch writes as many as the
caps leave room for (holding none: dss does not send them); --read-batch counts every result it reads as a
request: those requests were made, so reading is never refused.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from dss.core.errors import ConfigError, DataError
from dss.core.io import atomic_write
from dss.tasks.rationales import scan
from dss.teacher.cost import answer_tokens, cost_of, price_for, prompt_tokens
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.items import Item, units
from dss.teacher.protocol import Stopped

FIELDS = ("n", "in", "out", "th", "hin", "hout")
ROUTES = ("live", "batch")


class BudgetReached(Stopped):
    """The caps leave no room for the next request: the run ends cleanly."""


@dataclass(frozen=True)
class Hold:
    """Tokens held for one request (or a batch of them) until it is settled."""
    tin: int
    tout: int
    batch: bool = False


def request_hold(unit: list[Item], cfg: ExtractConfig, batch: bool = False) -> Hold:
    """The most one request asking for the unit's samples can cost, in tokens."""
    return Hold(prompt_tokens(unit[0].messages), cfg.max_tokens * len(unit), batch)


def ledger_path(out) -> Path:
    return Path(out).with_name(Path(out).name + ".spent.jsonl")


def read_ledger(path: Path) -> tuple[dict, bool]:
    """(totals per route, whether a torn last line was dropped)."""
    totals = {route: dict.fromkeys(FIELDS, 0) for route in ROUTES}
    data = path.read_bytes() if path.exists() else b""
    for lineno, line in enumerate(data.splitlines(keepends=True), 1):
        if not line.endswith(b"\n"):
            return totals, True  # a kill in the middle of a write: that change never happened
        try:
            row = json.loads(line)
            for k in FIELDS:
                totals["batch" if row.get("b") else "live"][k] += int(row.get(k, 0))
        except (ValueError, TypeError, AttributeError):
            raise DataError(f"{path}:{lineno}: not a spending ledger line; delete the file to count the "
                            "output's spending from its records") from None
    return totals, False


def from_records(records: list[dict]) -> dict:
    """The spending a file's records show: their attempts and reported usage (the opening balance of a file
    without a ledger). The release's answers and skipped samples cost nothing."""
    row = dict.fromkeys(FIELDS, 0)
    for r in records:
        if r.get("sampling") is None or r["status"] == "skipped":
            continue
        row["n"] += r.get("attempts", 1)
        usage = r.get("usage")
        if usage and not usage.get("shared"):
            row["in"] += usage.get("input_tokens", 0)
            row["out"] += usage.get("output_tokens", 0)
            row["th"] += usage.get("thought_tokens", 0)
    return row


def _line(row: dict, batch: bool) -> bytes:
    return (json.dumps({**{k: v for k, v in row.items() if v}, **({"b": 1} if batch else {})}) + "\n").encode()


class Ledger:
    """`<out>.spent.jsonl`: totals in memory, every change appended as one flushed line."""

    def __init__(self, out, records: list[dict], readonly: bool = False):
        self.path = ledger_path(out)
        existed = self.path.exists()
        self.totals, _ = read_ledger(self.path)
        self._fh, self.closed = None, False
        if not existed:
            self.totals["live"] = {k: self.totals["live"][k] + v for k, v in from_records(records).items()}
        if not readonly and (existed or any(self.totals["live"].values())):
            # compact (and cut a torn line): old or new file, both hold the same totals after a kill
            atomic_write(self.path, b"".join(_line(self.totals[r], r == "batch") for r in ROUTES
                                             if any(self.totals[r].values())))

    def add(self, row: dict, batch: bool = False) -> None:
        if self.closed:  # a thread abandoned at the end of a run: its hold stays, counted at its most
            return
        if self._fh is None:
            self._fh = open(self.path, "ab")
        self._fh.write(_line(row, batch))  # one write of a whole line, flushed before the request goes out
        self._fh.flush()
        route = self.totals["batch" if batch else "live"]
        for k, v in row.items():
            route[k] += v

    def close(self) -> None:
        self.closed = True
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Budget:
    """The caps over the ledger; `reserve`/`settle`/`keep` around every live request (thread-safe)."""

    def __init__(self, out, records: list[dict], cfg: ExtractConfig, readonly: bool = False):
        self.cfg = cfg
        self.price = None if cfg.import_released else price_for(cfg.spec.model, cfg)
        if cfg.max_cost is not None and self.price is None:
            raise ConfigError(f"--max-cost needs a price for {cfg.spec.model}: pass --price-in and --price-out, "
                              "or --prices")
        self.ledger = Ledger(out, records, readonly)
        self.cond = threading.Condition()
        self.in_flight = 0
        self.reached = False  # a request did not fit: the run ended there
        self.refused: Hold | None = None  # the first request that did not fit

    @property
    def capped(self) -> bool:
        return self.cfg.max_requests is not None or self.cfg.max_cost is not None

    def requests(self) -> int:
        return sum(t["n"] for t in self.ledger.totals.values())

    def cost(self, extra: Hold | None = None) -> float | None:
        """The file's cost at the price, holds at their most, plus `extra`; None without a price."""
        if self.price is None:
            return None
        total = 0.0
        for route, t in self.ledger.totals.items():
            more = extra if extra is not None and extra.batch == (route == "batch") else Hold(0, 0)
            total += cost_of(t["in"] + t["hin"] + more.tin, t["out"] + t["hout"] + more.tout, self.price,
                             route == "batch", t["th"])
        return total

    def fits(self, hold: Hold, n: int = 1) -> bool:
        """Whether n more requests holding `hold` stay within the caps."""
        if self.cfg.max_requests is not None and self.requests() + n > self.cfg.max_requests:
            return False
        return self.cfg.max_cost is None or self.cost(hold) <= self.cfg.max_cost

    def reserve(self, unit: list[Item], stop: threading.Event) -> Hold:
        """Hold one request asking for the unit's samples, written to the ledger before it is sent. A request that
        does not fit waits for requests in flight to settle; with none in flight it raises BudgetReached, and so
        does every later one: the run ends."""
        hold = request_hold(unit, self.cfg)
        with self.cond:
            while True:
                if stop.is_set() or self.ledger.closed:  # the run is over: nothing more goes out
                    raise Stopped()
                if self.reached:
                    raise BudgetReached()
                if self.fits(hold):
                    break
                if self.in_flight == 0:
                    self.reached, self.refused = True, hold
                    raise BudgetReached()
                self.cond.wait(0.05)
            self.ledger.add({"n": 1, "hin": hold.tin, "hout": hold.tout})
            self.in_flight += 1
        return hold

    def settle(self, hold: Hold, usage: dict | None) -> None:
        """The request ended with this usage (None: billed nothing, an HTTP error status): its hold is freed."""
        row = {"hin": -hold.tin, "hout": -hold.tout}
        if usage:
            row.update({"in": usage.get("input_tokens", 0), "out": usage.get("output_tokens", 0),
                        "th": usage.get("thought_tokens", 0)})
        with self.cond:
            self.ledger.add(row, hold.batch)
            self.in_flight -= 1
            self.cond.notify_all()

    def keep(self, hold: Hold) -> None:
        """The request ended without telling what it cost: its hold stays spent."""
        with self.cond:
            self.in_flight -= 1
            self.cond.notify_all()

    # ------------------------------------------------------------------------------------------ batch routes
    def room(self, items: list[Item], batch: bool) -> list[Item]:
        """The longest prefix of `items` (one request each) whose holds fit the caps together."""
        tin = tout = 0
        for n, it in enumerate(items):
            hold = request_hold([it], self.cfg, batch)
            tin, tout = tin + hold.tin, tout + hold.tout
            if not self.fits(Hold(tin, tout, batch), n + 1):
                self.reached, self.refused = True, hold
                return items[:n]
        return items

    def reserve_batch(self, items: list[Item]) -> list[Item]:
        """Hold the requests of a batch job that fit (one ledger line, written before the job is submitted);
        BudgetReached when none does."""
        fit = self.room(items, batch=True)
        if items and not fit:
            raise BudgetReached()
        holds = [request_hold([it], self.cfg, True) for it in fit]
        self.ledger.add({"n": len(fit), "hin": sum(h.tin for h in holds), "hout": sum(h.tout for h in holds)},
                        batch=True)
        return fit

    def settle_result(self, it: Item, comp, held: bool, batch: bool) -> None:
        """One batch result: in place of its hold when its job was reserved here, else a request of its own. A
        failed request costs no tokens; an answer without usage keeps its hold."""
        usage = comp.usage if comp is not None else None
        if held and comp is not None and not usage:
            return
        hold = request_hold([it], self.cfg, batch) if held else Hold(0, 0, batch)
        row = {"n": 0 if held else 1, "hin": -hold.tin, "hout": -hold.tout}
        if usage:
            row.update({"in": usage.get("input_tokens", 0), "out": usage.get("output_tokens", 0),
                        "th": usage.get("thought_tokens", 0)})
        self.ledger.add(row, batch)

    # ------------------------------------------------------------------------------------------ reports
    def spent(self) -> dict:
        """The file's totals over all its runs (summary["spent"])."""
        t = {k: sum(route[k] for route in self.ledger.totals.values()) for k in FIELDS}
        return {"requests": t["n"], "tokens_in": t["in"], "tokens_out": t["out"], "tokens_thought": t["th"],
                "tokens_held": t["hin"] + t["hout"], "cost_usd": self.cost(), "ledger": str(self.ledger.path)}

    def caps(self) -> dict:
        """The caps as given, and the most the request that did not fit could have cost (None: none refused)."""
        refused = self.refused
        return {"max_requests": self.cfg.max_requests, "max_cost_usd": self.cfg.max_cost,
                "refused_usd": None if refused is None else cost_of(refused.tin, refused.tout, self.price,
                                                                     refused.batch)}

    def close(self) -> None:
        with self.cond:
            self.ledger.close()


def forecast(items: list[Item], out: Path, cfg: ExtractConfig) -> dict:
    """--dry-run with a cap: the file's spending so far, and after about how many of the requests still to make
    (their answers at the dry run's estimated length, not their most) the caps are reached; None: never."""
    records = scan(out)[0]  # read only: a dry run writes nothing
    budget = Budget(out, records, cfg, readonly=True)
    sha = {it.key: it.sha for it in items}
    done = {(str(r["id"]), int(r["sample"])) for r in records if r["status"] != "error"
            and sha.get((str(r["id"]), int(r["sample"]))) == r.get("prompt_sha")}
    todo = units([it for it in items if it.key not in done], cfg.choices_per_request)
    per_answer, tin, tout, within = answer_tokens(items, cfg), 0, 0.0, len(todo)
    for n, unit in enumerate(todo):
        tin, tout = tin + prompt_tokens(unit[0].messages), tout + per_answer * len(unit)
        if not budget.fits(Hold(tin, int(tout), cfg.batch or bool(cfg.batch_job)), n + 1):
            within = n
            break
    examples = list(dict.fromkeys(it.example.id for unit in todo for it in unit))
    covered = {it.example.id for unit in todo[within:] for it in unit}
    return {"spent": budget.spent(), "caps": budget.caps(), "todo_requests": len(todo),
            "todo_examples": len(examples), "cap_reached_after": within if within < len(todo) else None,
            "examples_within_cap": sum(ex not in covered for ex in examples)}
