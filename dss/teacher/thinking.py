"""Thinking (reasoning) control for teachers that think before they answer, and the extraction default.

    Gemini 2.5   thinking_budget N (tokens; 0 turns thinking off, -1 lets the model decide)
    Gemini 3.x   thinking_level minimal | low | medium | high  (setting both is an HTTP 400)
    OpenAI-compatible servers   reasoning_effort none | minimal | low | medium | high (where the server takes it)

Default for extraction: as little thinking as the model allows (2.5 Flash: budget 0; 2.5 Pro: 128, its minimum;
3.x: level minimal, low for Pro models). The prompt already asks for the chain of thought in the answer, and
thought tokens are billed at the output price and share max_output_tokens with it, so a thinking teacher under a
tight --max-tokens can return an empty answer. Nothing is sent to other providers unless asked.
"""
from __future__ import annotations

import re

from dss.core.errors import ConfigError

LEVELS = ("minimal", "low", "medium", "high")
EFFORTS = ("none", "minimal", "low", "medium", "high")
_GENERATION = re.compile(r"gemini-(\d+)(?:\.(\d+))?")


def gemini_generation(model: str) -> float | None:
    """2.5 for gemini-2.5-flash, 3.0 for gemini-3-flash-preview; None for a name that does not say."""
    m = _GENERATION.search(model)
    return float(f"{m.group(1)}.{m.group(2) or 0}") if m else None


def resolve(provider: str, model: str, budget: int | None, level: str | None, effort: str | None) -> dict:
    """The thinking settings requests carry: {"thinking_budget": N}, {"thinking_level": L},
    {"reasoning_effort": E} or {}; a clear error for a setting the provider or model family does not take."""
    if budget is not None and level is not None:
        raise ConfigError("--thinking-budget and --thinking-level: pass one (Gemini refuses both with HTTP 400)")
    if provider != "gemini":
        if budget is not None or level is not None:
            raise ConfigError("--thinking-budget/--thinking-level are Gemini settings; OpenAI-compatible servers "
                              "take --reasoning-effort")
        return {"reasoning_effort": effort} if effort else {}
    if effort:
        raise ConfigError("--reasoning-effort is for OpenAI-compatible servers; Gemini takes --thinking-budget "
                          "(2.5) or --thinking-level (3.x)")
    gen = gemini_generation(model)
    if level is not None and gen is not None and gen < 3:
        raise ConfigError(f"{model} takes --thinking-budget, not --thinking-level (a Gemini 3.x setting)")
    if budget is not None and gen is not None and gen >= 3:
        raise ConfigError(f"{model} takes --thinking-level, not --thinking-budget (a Gemini 2.5 setting)")
    if budget is not None:
        return {"thinking_budget": budget}
    if level is not None:
        return {"thinking_level": level}
    if gen is None or gen < 2.5:
        return {}  # a model that does not say its family, or one from before thinking: send nothing
    pro = "pro" in model
    if gen < 3:
        return {"thinking_budget": 128 if pro else 0}
    return {"thinking_level": "low" if pro else "minimal"}
