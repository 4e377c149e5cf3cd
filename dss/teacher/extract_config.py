"""`ExtractConfig`: every option of `dss extract` (each field's help is its flag's help), and where its
output goes by default."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dss.core.config import check, field_
from dss.core.errors import ConfigError
from dss.tasks.base import SPLITS
from dss.teacher.protocol import Sampling

RATIONALE_DIR = Path("data") / "rationales"


@dataclass
class ExtractConfig:
    task: str = field_("cqa", "task name (see `dss tasks`)")
    split: str = field_("train", "split to answer", choices=SPLITS)
    teacher: str = field_("gemini:gemini-2.5-flash", "provider:model, provider gemini or openai")
    base_url: str | None = field_(None, "endpoint override (OpenAI-compatible: http://host:port/v1)")
    out: str | None = field_(None, "output JSONL (default data/rationales/{task}_{split}_{provider}-{model}.jsonl)")
    concurrency: int = field_(8, "requests in flight at once", min=1, max=1024)
    rpm: float | None = field_(None, "requests per minute ceiling (none: unlimited)", min=0.001)
    tpm: float | None = field_(None, "tokens per minute ceiling, from reported usage (none: unlimited)", min=1)
    samples: int = field_(1, "answers per example; >1 takes a majority vote (self-consistency)", min=1, max=64)
    temperature: float | None = field_(None, "sampling temperature (default 0, or 0.7 with samples > 1)",
                                       min=0.0, max=2.0)
    max_tokens: int = field_(512, "most tokens per answer (Gemini counts thinking tokens too)", min=1)
    stop: list[str] = field_([], "stop sequence", repeat=True)
    timeout: float = field_(120.0, "seconds before a request counts as hung and is retried", min=0.01)
    max_attempts: int = field_(6, "tries per request, counting the first", min=1, max=100)
    backoff_base: float = field_(1.0, "first retry delay in seconds; doubles per attempt, full jitter", min=0.0)
    backoff_max: float = field_(60.0, "retry delay ceiling in seconds (Retry-After may ask for more)", min=0.0)
    limit: int | None = field_(None, "only the first N examples (after --ids)", min=0)
    ids_file: str | None = field_(None, "only the example ids listed in this file, one a line")
    filter: str = field_("none", "consistent: also write a file keeping only rationales whose teacher "
                         "label equals the gold label", choices=["none", "consistent"])
    exemplars: str | None = field_(None, "YAML/JSONL exemplars (input, rationale, label) for tasks without a "
                                   "built-in prompt")
    dry_run: bool = field_(False, "estimate requests, tokens and cost; call nobody, write nothing")
    import_released: bool = field_(False, "write the released PaLM completions of the task as records")
    batch: bool = field_(False, "submit through the Gemini Batch API (half price, slow), poll and collect")
    batch_job: str | None = field_(None, "collect this saved Batch API job (batches/...) instead of submitting")
    poll_interval: float = field_(30.0, "seconds between Batch API status polls", min=0.001)
    prices: str | None = field_(None, "YAML price table {model: [usd_per_1M_in, usd_per_1M_out]}")
    price_in: float | None = field_(None, "USD per 1M input tokens for this model (overrides the table)", min=0)
    price_out: float | None = field_(None, "USD per 1M output tokens for this model (overrides the table)", min=0)
    overwrite: bool = field_(False, "drop this split's records made with another prompt or settings")
    progress: bool = field_(True, "show a progress bar")
    data_dir: str | None = field_(None, "release-layout data folder")

    def __post_init__(self):
        check(self)
        if self.temperature is None:
            self.temperature = 0.0 if self.samples == 1 else 0.7
        if self.samples > 1 and self.temperature == 0.0:
            raise ConfigError("samples > 1 needs temperature > 0 (identical answers would make the vote moot)")
        if self.batch and self.batch_job:
            raise ConfigError("pass --batch to submit, or --batch-job NAME to collect one, not both")

    def sampling(self) -> Sampling:
        return Sampling(temperature=float(self.temperature), max_tokens=self.max_tokens, stop=tuple(self.stop))


def default_out(task: str, split: str, teacher: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", teacher.replace(":", "-", 1))
    return RATIONALE_DIR / f"{task}_{split}_{safe}.jsonl"
