"""What a run costs: the price table, dollars from token counts, the dry-run estimate, and `Stats`, the
running tally of records, requests and reported tokens."""
from __future__ import annotations

from pathlib import Path

import yaml

from dss.core.errors import ConfigError
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.items import Item, units
from dss.teacher.prices import PRICES

CHARS_PER_TOKEN = 4.0  # dry-run estimate when no tokenizer is at hand

BATCH_DISCOUNT = 0.5  # the Gemini and OpenAI Batch APIs bill half the interactive price


def load_prices(path: str) -> dict[str, tuple[float, float]]:
    """A --prices YAML table {model: [in, out]} (or {model: {input, output}})."""
    try:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read price table: {e}") from None
    table = {}
    for name, pair in (loaded.items() if isinstance(loaded, dict) else []):
        if isinstance(pair, dict):
            pair = (pair.get("input"), pair.get("output"))
        try:
            table[str(name)] = (float(pair[0]), float(pair[1]))
        except (TypeError, ValueError, IndexError, KeyError):
            raise ConfigError(f"{path}: {name}: expected [usd_per_1M_in, usd_per_1M_out]") from None
    return table


def list_price(model: str, more: dict | None = None) -> tuple[float, float] | None:
    """(in, out) USD per 1M tokens from the table (and `more`, a --prices table, over it): the exact name, else
    the longest known prefix ('gemini-3.5-flash-001' -> 'gemini-3.5-flash'); None when unknown."""
    table = {name: (p_in, p_out) for name, (p_in, p_out, _) in PRICES.items()}
    table.update(more or {})
    return table.get(model) or next((table[k] for k in sorted(table, key=len, reverse=True)
                                     if model.startswith(k)), None)


def price_for(model: str, cfg: ExtractConfig) -> tuple[float, float] | None:
    """(USD per 1M input tokens, per 1M output) for the model: flags, then --prices, then the table (exact name,
    else the longest known prefix: 'gemini-3.5-flash-001' -> 'gemini-3.5-flash'); None when unknown. A price
    given for one side only, for a model the table does not know, leaves the cost unknown: never a silent 0."""
    hit = list_price(model, load_prices(cfg.prices) if cfg.prices else None)
    p_in = cfg.price_in if cfg.price_in is not None else (hit[0] if hit else None)
    p_out = cfg.price_out if cfg.price_out is not None else (hit[1] if hit else None)
    return None if p_in is None or p_out is None else (p_in, p_out)


def cost_of(tokens_in: int, tokens_out: int, price, batch: bool = False, thought: int = 0) -> float | None:
    """Dollars for the tokens (thoughts at the output price); None when the price is unknown."""
    if price is None:
        return None
    usd = (tokens_in * price[0] + (tokens_out + thought) * price[1]) / 1e6
    return usd * (BATCH_DISCOUNT if batch else 1.0)


def prompt_tokens(messages: list[dict]) -> int:
    """A prompt's input tokens, estimated at CHARS_PER_TOKEN characters a token."""
    return int(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN)


def answer_tokens(items: list[Item], cfg: ExtractConfig) -> float:
    """An answer's expected output tokens: about the length of the prompt's exemplar answers (1.2 times, at most
    --max-tokens); --max-tokens when the prompt has none."""
    answers = [m["content"] for m in items[0].messages if m["role"] == "assistant"] if items else []
    mean_out = (sum(map(len, answers)) / len(answers) / CHARS_PER_TOKEN) if answers else cfg.max_tokens
    return min(cfg.max_tokens, mean_out * 1.2)


def estimate(items: list[Item], cfg: ExtractConfig) -> dict:
    """Dry run: request count, tokens (about 4 characters a token) and cost, without calling anyone."""
    model = cfg.spec.model
    requests = units(items, cfg.choices_per_request)  # the prompt is paid once per request
    tok_in = sum(prompt_tokens(unit[0].messages) for unit in requests)
    tok_out = int(answer_tokens(items, cfg) * len(items))
    price = price_for(model, cfg)
    return {"requests": len(requests), "tokens_in": tok_in, "tokens_out": tok_out,
            "tokens_out_max": cfg.max_tokens * len(items),
            "cost_usd": cost_of(tok_in, tok_out, price, cfg.batch or bool(cfg.batch_job)),
            "cost_usd_max": cost_of(tok_in, cfg.max_tokens * len(items), price, cfg.batch),
            "price_per_1m": price}


def answers_spend(records: list[dict], ids=None) -> dict:
    """What the teacher's answers to `ids` (every record when None) cost: requests (each record's attempts; the
    further choices of one request carry 0), tokens (as reported, or estimated by a replay) and USD at the list
    price of the model each record's teacher names (None when any of them has no price in the table)."""
    requests = tokens = 0
    usd: float | None = 0.0
    for rec in records:
        if ids is not None and str(rec.get("id")) not in ids:
            continue
        requests += int(rec.get("attempts") or 0)
        usage = rec.get("usage") or {}
        if usage.get("shared"):
            continue
        t_in, t_out = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        thought = int(usage.get("thought_tokens") or 0)
        tokens += t_in + t_out + thought
        teacher = str(rec.get("teacher") or "")
        price = list_price(teacher.split(":", 1)[1]) if ":" in teacher else None
        cost = cost_of(t_in, t_out, price, thought=thought) if (t_in or t_out) else 0.0
        usd = None if usd is None or cost is None else usd + cost
    return {"requests": requests, "tokens": tokens, "cost_usd": None if usd is None else round(usd, 6)}


class Stats:
    """This run's tally: records by status, requests (attempts), retries, reported tokens (thoughts apart),
    and responses that held fewer choices than asked for (the server ignores `n`)."""

    def __init__(self):
        self.ok = self.unparsed = self.truncated = self.error = self.skipped = 0  # records by status
        self.requests = self.retries = self.short_responses = 0
        self.tokens_in = self.tokens_out = self.tokens_thought = self.no_usage = 0
        self.requests_with_usage = self.estimated = 0  # estimated: answers whose usage a replay estimated
        self.request_s = 0.0  # wall time of the requesting phase

    def add(self, rec: dict) -> None:
        setattr(self, rec["status"], getattr(self, rec["status"]) + 1)  # ok | unparsed | truncated | error | skipped
        self.requests += rec.get("attempts", 1)  # 0 for the further choices of one request
        usage = rec.get("usage")
        self.estimated += bool(usage and usage.get("estimated"))
        if usage and not usage.get("shared"):
            self.tokens_in += usage.get("input_tokens", 0)
            self.tokens_out += usage.get("output_tokens", 0)
            self.tokens_thought += usage.get("thought_tokens", 0)
            self.requests_with_usage += 1
        elif not usage and rec["status"] not in ("error", "skipped"):
            self.no_usage += 1

    def answers(self) -> int:
        """Records of answers the server gave (every status but error)."""
        return self.ok + self.unparsed + self.truncated
