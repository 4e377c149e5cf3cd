"""What a run costs: the price table, dollars from token counts, the dry-run estimate, and `Stats`, the
running tally of records, requests and reported tokens."""
from __future__ import annotations

from pathlib import Path

import yaml

from dss.core.errors import ConfigError
from dss.teacher.client import parse_teacher
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.items import Item

CHARS_PER_TOKEN = 4.0  # dry-run estimate when no tokenizer is at hand

# USD per 1M tokens (input, output), standard tier list prices as of mid-2025. Prices change: check the
# provider's page and override with --prices FILE.yaml ({model: [in, out]}) or --price-in/--price-out.
PRICES = {
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.0-flash-lite": (0.075, 0.30),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
}
BATCH_DISCOUNT = 0.5  # the Gemini Batch API bills half the interactive price


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


def price_for(model: str, cfg: ExtractConfig) -> tuple[float, float] | None:
    """(USD per 1M input tokens, per 1M output) for the model: flags, then --prices, then the table
    (exact name, else the longest known prefix: 'gemini-2.5-flash-preview' -> 'gemini-2.5-flash')."""
    table = dict(PRICES)
    if cfg.prices:
        table.update(load_prices(cfg.prices))
    hit = table.get(model) or next((table[k] for k in sorted(table, key=len, reverse=True)
                                    if model.startswith(k)), None)
    if cfg.price_in is not None or cfg.price_out is not None:
        base = hit or (0.0, 0.0)
        return (cfg.price_in if cfg.price_in is not None else base[0],
                cfg.price_out if cfg.price_out is not None else base[1])
    return hit


def cost_of(tokens_in: int, tokens_out: int, price, batch: bool = False) -> float | None:
    if price is None:
        return None
    usd = (tokens_in * price[0] + tokens_out * price[1]) / 1e6
    return usd * (BATCH_DISCOUNT if batch else 1.0)


def estimate(items: list[Item], cfg: ExtractConfig) -> dict:
    """Dry run: request count, tokens (about 4 characters a token) and cost, without calling anyone."""
    _, model = parse_teacher(cfg.teacher)
    chars_in = sum(sum(len(m["content"]) for m in it.messages) for it in items)
    answers = [m["content"] for m in items[0].messages if m["role"] == "assistant"] if items else []
    mean_out = (sum(map(len, answers)) / len(answers) / CHARS_PER_TOKEN) if answers else cfg.max_tokens
    tok_in = int(chars_in / CHARS_PER_TOKEN)
    tok_out = int(min(cfg.max_tokens, mean_out * 1.2) * len(items))  # answers run about exemplar length
    price = price_for(model, cfg)
    return {"requests": len(items), "tokens_in": tok_in, "tokens_out": tok_out,
            "tokens_out_max": cfg.max_tokens * len(items),
            "cost_usd": cost_of(tok_in, tok_out, price, cfg.batch or bool(cfg.batch_job)),
            "cost_usd_max": cost_of(tok_in, cfg.max_tokens * len(items), price, cfg.batch),
            "price_per_1m": price}


class Stats:
    """This run's tally: records by status, requests (attempts), retries and reported tokens."""

    def __init__(self):
        self.ok = self.unparsed = self.error = self.requests = self.retries = 0
        self.tokens_in = self.tokens_out = self.no_usage = 0
        self.request_s = 0.0  # wall time of the requesting phase

    def add(self, rec: dict) -> None:
        setattr(self, rec["status"], getattr(self, rec["status"]) + 1)  # ok | unparsed | error
        self.requests += rec.get("attempts", 1)
        usage = rec.get("usage")
        if usage:
            self.tokens_in += usage.get("input_tokens", 0)
            self.tokens_out += usage.get("output_tokens", 0)
        elif rec["status"] != "error":
            self.no_usage += 1
