"""List prices of teacher models, USD per 1M tokens (input, output), standard tier, with where each was read.

Prices change and providers retire models: check the provider's page, and override with `--prices FILE.yaml`
({model: [in, out]}) or `--price-in/--price-out`. A model that is not here costs "unknown", never 0.
Thought (reasoning) tokens are billed at the output price by both providers.
"""
from __future__ import annotations

AS_OF = "2026-07-21"  # the newest source below; read on 2026-12-02 (no provider page reachable from here)

SOURCES = {
    "sim-2026-07": "github.com/simstudioai/sim pull 5812, providers/models.ts (updatedAt 2026-07-21)",
    "sim-2026-05": "github.com/simstudioai/sim pull 4660, providers/models.ts (updatedAt 2026-05-19)",
    "wish-2026-04": "github.com/schlebek/ai-wish-generator release v3.2.0 (2026-04-19), Gemini price list",
    "google-2025": "ai.google.dev/gemini-api/docs/pricing as of mid-2025 (the 2.5 family; 2.0 retired 2026-06-01)",
    "openai-2025": "openai.com/api/pricing as of mid-2025",
}

PRICES: dict[str, tuple[float, float, str]] = {
    # Gemini 3.x: what the 2.5 family's deprecation points to
    "gemini-3.6-flash": (1.50, 7.50, "sim-2026-07"),
    "gemini-3.5-flash-lite": (0.30, 2.50, "sim-2026-07"),
    "gemini-3.5-flash": (1.50, 9.00, "sim-2026-05"),
    "gemini-3.1-pro-preview": (2.00, 12.00, "wish-2026-04"),
    "gemini-3.1-flash-lite-preview": (0.25, 1.50, "wish-2026-04"),
    "gemini-3-flash-preview": (0.50, 3.00, "wish-2026-04"),
    # Gemini 2.5 (being retired in favour of 3.x during 2026)
    "gemini-2.5-pro": (1.25, 10.00, "google-2025"),
    "gemini-2.5-flash": (0.30, 2.50, "google-2025"),
    "gemini-2.5-flash-lite": (0.10, 0.40, "google-2025"),
    "gpt-4o": (2.50, 10.00, "openai-2025"),
    "gpt-4o-mini": (0.15, 0.60, "openai-2025"),
    "gpt-4.1": (2.00, 8.00, "openai-2025"),
    "gpt-4.1-mini": (0.40, 1.60, "openai-2025"),
    "gpt-4.1-nano": (0.10, 0.40, "openai-2025"),
}

# The default teacher: Gemini 3.5 Flash, a stable 3.x model (released 2026-05-19 per sim pull 4660; described as
# "stable, suitable for large-scale production use" with thinking levels minimal/low/medium/high by
# doc.starrise.tech/en/guides/model-api/google/gemini-3.5-flash), run with thinking at its minimum (see
# dss.teacher.thinking): chain-of-thought is what the prompt asks the model to write, so hidden thoughts would be
# paid for twice.
DEFAULT_TEACHER = "gemini:gemini-3.5-flash"
