"""`ExtractConfig`: every option of `dss extract` (each field's help is its flag's help), and where its
output goes by default."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dss.core.config import check, field_
from dss.core.errors import ConfigError
from dss.tasks.base import SPLITS
from dss.teacher.prices import AS_OF, DEFAULT_TEACHER
from dss.teacher.protocol import FatalError, Sampling
from dss.teacher.spec import TeacherSpec
from dss.teacher.thinking import EFFORTS, LEVELS, resolve

RATIONALE_DIR = Path("data") / "rationales"


@dataclass
class ExtractConfig:
    task: str = field_("cqa", "task name (see `dss tasks`)")
    split: str = field_("train", "split to answer", choices=SPLITS)
    teacher: str = field_(DEFAULT_TEACHER, "provider:model, provider gemini or openai, or replay: answers from "
                          f"--replay-from at the model's price (default: {DEFAULT_TEACHER}, prices as of {AS_OF}: "
                          "see dss/teacher/prices.py)")
    base_url: str | None = field_(None, "endpoint override (OpenAI-compatible: http://host:port/v1)")
    out: str | None = field_(None, "output JSONL (default data/rationales/{task}_{split}_{provider}-{model}.jsonl)")
    concurrency: int = field_(8, "requests in flight at once", min=1, max=1024)
    rpm: float | None = field_(None, "requests per minute ceiling (none: unlimited)", min=0.001)
    tpm: float | None = field_(None, "tokens per minute ceiling, from reported usage (none: unlimited)", min=1)
    samples: int = field_(1, "answers per example; >1 takes a majority vote (self-consistency)", min=1, max=64)
    choices_per_request: int | None = field_(None, "answers asked for in one request (OpenAI n, Gemini "
                                             "candidate_count), so the prompt is paid once; default: all of an "
                                             "example's samples. A server that returns fewer gets the rest as "
                                             "further requests; 1 sends one request per sample", min=1, max=64)
    early_stop: int | None = field_(None, "with --samples k: ask an example's samples in rounds and stop once its "
                                    "first M answers agree, or once its leading answer has more votes than the "
                                    "runner-up could reach with every sample left; each further round asks for just "
                                    "enough samples to decide it. Unparsed and truncated answers agree with nothing; "
                                    "samples not needed get a record of status skipped (live requests only)",
                                    min=2, max=64)
    thinking_budget: int | None = field_(None, "Gemini 2.5: thinking tokens (0 off, -1 dynamic); default: the "
                                         "least the model allows", min=-1)
    thinking_level: str | None = field_(None, "Gemini 3.x: minimal | low | medium | high; default: minimal (low "
                                        "for Pro)", choices=LEVELS)
    reasoning_effort: str | None = field_(None, "OpenAI-compatible servers that take it: none | minimal | low | "
                                          "medium | high; default: not sent", choices=EFFORTS)
    temperature: float | None = field_(None, "sampling temperature (default 0, or 0.7 with samples > 1)",
                                       min=0.0, max=2.0)
    max_tokens: int = field_(512, "most tokens per answer (Gemini counts thinking tokens too). An answer cut off "
                             "there is stored as truncated, never as a label; a rerun with a larger value redoes "
                             "those and keeps the finished answers (a larger limit would not change them)", min=1)
    stop: list[str] = field_([], "stop sequence", repeat=True)
    timeout: float = field_(120.0, "seconds before a request counts as hung and is retried", min=0.01)
    max_attempts: int = field_(6, "tries per request, counting the first", min=1, max=100)
    backoff_base: float = field_(1.0, "first retry delay in seconds; doubles per attempt, full jitter", min=0.0)
    backoff_max: float = field_(60.0, "retry delay ceiling in seconds, a server's Retry-After included (a longer "
                                "one is said once, then waited this long)", min=0.0)
    limit: int | None = field_(None, "only the first N examples (after --ids)", min=0)
    ids_file: str | None = field_(None, "only the example ids listed in this file, one a line")
    filter: str = field_("none", "consistent: also write a file keeping only rationales whose teacher "
                         "label equals the gold label", choices=["none", "consistent"])
    exemplars: str | None = field_(None, "YAML/JSONL exemplars (input, rationale, label) for tasks without a "
                                   "built-in prompt")
    dry_run: bool = field_(False, "estimate requests, tokens and cost; call nobody, write nothing")
    import_released: bool = field_(False, "write the released PaLM completions of the task as records")
    replay_from: str | None = field_(None, "what a replay:<model> teacher answers from: 'task' (the task's own "
                                     "teacher answers: the release's PaLM completions, the demo's code-written "
                                     "ones) or an earlier `dss extract` output FILE; nothing is sent")
    batch: bool = field_(False, "submit through the provider's Batch API (Gemini: a Files API upload; OpenAI: "
                         "/v1/files + /v1/batches; half price, slow), poll and collect; a rerun collects the job")
    batch_job: str | None = field_(None, "collect this batch job (Gemini batches/..., OpenAI batch_...) instead "
                                   "of submitting")
    write_batch: str | None = field_(None, "write the pending requests as an OpenAI-format batch file (for `vllm "
                                     "run-batch -i FILE`, or OpenAI's Batch API) and send nothing")
    read_batch: str | None = field_(None, "read a batch results file (`vllm run-batch -o FILE`, or OpenAI's "
                                    "output) into records")
    poll_interval: float = field_(30.0, "seconds between Batch API status polls", min=0.001)
    max_requests: int | None = field_(None, "cap on the requests spent on the output file over all its runs "
                                      "(every attempt, retries included, counted before it is sent; see "
                                      "<out>.spent.jsonl). Reaching it ends the run cleanly; rerun with a larger cap "
                                      "to continue", min=0)
    max_cost: float | None = field_(None, "cap in USD on the output file's spending over all its runs, at the price: "
                                    "each request is reserved at its most (prompt estimated, --max-tokens per "
                                    "answer) before it is sent, then settled at its reported usage", min=0)
    prices: str | None = field_(None, "YAML price table {model: [usd_per_1M_in, usd_per_1M_out]}")
    price_in: float | None = field_(None, "USD per 1M input tokens for this model (overrides the table)", min=0)
    price_out: float | None = field_(None, "USD per 1M output tokens for this model (overrides the table)", min=0)
    overwrite: bool = field_(False, "drop this split's records made with another prompt or settings (with a "
                             "larger --max-tokens: all of them, not only the truncated ones)")
    allow_mixed_models: bool = field_(False, "keep answers in the output although the server reports another "
                                      "model than the file's first answer did (providers reroute retired models); "
                                      "without it such a run stops, naming both")
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
        if sum(map(bool, (self.batch or self.batch_job, self.write_batch, self.read_batch))) > 1:
            raise ConfigError("--batch, --write-batch and --read-batch are different routes: pass one")
        self._check_rounds_and_caps()
        # the teacher, parsed once (the released answers were PaLM 540B's)
        self.spec = TeacherSpec("palm", "540b") if self.import_released else TeacherSpec.parse(self.teacher)
        self._check_replay()
        if not self.import_released:
            try:
                self.sampling()  # a thinking setting the provider or model does not take fails now
            except FatalError as e:
                raise ConfigError(str(e)) from None

    def _check_replay(self) -> None:
        if (self.spec.provider == "replay") != bool(self.replay_from):
            raise ConfigError("--teacher replay:<model> and --replay-from task|FILE go together: the replay teacher "
                              "answers from that source, at <model>'s price")
        if not self.replay_from:
            return
        if self.base_url or self.batch or self.batch_job:
            raise ConfigError("a replay teacher calls nobody: --base-url, --batch and --batch-job have no use")
        if self.replay_from != "task" and not Path(self.replay_from).is_file():
            raise ConfigError(f"--replay-from {self.replay_from}: no such file (expected 'task' or an earlier "
                              "`dss extract` output)")
        if self.replay_from == "task" and self.samples > 1:
            raise ConfigError("--replay-from task has one answer per example, so --samples > 1 would vote over "
                              "copies of it: replay a FILE with that many samples per example instead")

    def _check_rounds_and_caps(self) -> None:
        if self.early_stop is not None and self.samples <= self.early_stop:
            raise ConfigError(f"--early-stop {self.early_stop} stops after the first {self.early_stop} answers "
                              f"agree: it needs --samples above {self.early_stop}")
        if self.early_stop is not None and (self.batch or self.batch_job or self.write_batch or self.read_batch):
            raise ConfigError("--early-stop asks in rounds that depend on the answers so far: it needs live "
                              "requests, not --batch, --batch-job, --write-batch or --read-batch")
        if self.import_released and (self.max_requests is not None or self.max_cost is not None or self.early_stop):
            raise ConfigError("--import-released sends no request: --max-requests, --max-cost and --early-stop have "
                              "nothing to do")

    def sampling(self) -> Sampling:
        """The settings of every request (their `to_dict` is part of the cache key)."""
        thinking = {}
        if not self.import_released:
            thinking = resolve(self.spec.provider, self.spec.model, self.thinking_budget, self.thinking_level,
                               self.reasoning_effort)
        return Sampling(temperature=float(self.temperature), max_tokens=self.max_tokens, stop=tuple(self.stop),
                        thinking=tuple(sorted(thinking.items())))


def default_out(task: str, split: str, teacher: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", teacher.replace(":", "-", 1))
    return RATIONALE_DIR / f"{task}_{split}_{safe}.jsonl"
