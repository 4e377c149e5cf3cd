"""`dss extract --list-models`: what the teacher's endpoint (and key) can use, with the price dss would bill
each at (dss/teacher/prices.py, or "unknown")."""
from __future__ import annotations

from dss.teacher.client import make_client
from dss.teacher.cost import price_for
from dss.teacher.prices import AS_OF


def list_models(cfg) -> list[dict]:
    """[{"id", "price", ...}] for the endpoint of cfg.teacher (its provider and --base-url), sorted by id."""
    client = make_client(cfg.spec, cfg.base_url, cfg.timeout)
    out = []
    for m in client.list_models():
        price = price_for(m["id"], cfg)
        out.append({**m, "price": list(price) if price else None})
    return sorted(out, key=lambda m: m["id"])


def format_models(models: list[dict], teacher) -> str:
    provider = teacher.provider
    lines = [f"{len(models)} models at the {provider} endpoint (USD per 1M tokens in/out, list prices as of "
             f"{AS_OF}; 'unknown' = not in dss's table: give --price-in/--price-out)"]
    width = max([len(m["id"]) for m in models] + [8])
    for m in models:
        price = f"{m['price'][0]:g} / {m['price'][1]:g}" if m["price"] else "unknown"
        extra = ", ".join(a for a in m.get("actions") or [] if "generate" in a.lower()) or m.get("owned_by") or ""
        lines.append(f"  {m['id']:<{width}}  {price:<14} {extra}".rstrip())
    lines.append(f"use one as --teacher {provider}:<id>")
    return "\n".join(lines)
