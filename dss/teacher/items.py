"""The extractor's units of work: which examples, one `Item` per (example, sample) with its prompt and
request hash, which items a rerun still owes (`plan`), and the record an answer becomes (`make_record`).

Resume: error records are dropped to be redone, and work whose record exists (same id, sample and request
hash) is skipped. So after `kill -9` at any moment and a rerun, each (example, sample) has exactly one record.
A "skipped" record (a sample early stopping did not need) stays only under --early-stop, and only for a sample
without an answer; the rounds (dss.teacher.early_stop) then decide afresh which samples are needed.
A rerun with a larger --max-tokens redoes the answers the old limit cut off ("truncated") and keeps the finished
ones: a larger limit would not have changed them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dss.core.errors import DataError
from dss.tasks.base import Example, Task
from dss.teacher import prompts
from dss.teacher.extract_config import ExtractConfig
from dss.teacher.protocol import CUT_OFF, FatalError, as_text
from dss.teacher.store import RecordFile


# ---------------------------------------------------------------------------------------------- selection
def read_ids(path) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read ids: {e.strerror}") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def select(examples: list[Example], ids_file=None, limit=None) -> list[Example]:
    if ids_file:
        wanted = read_ids(ids_file)
        index = {ex.id: ex for ex in examples}
        unknown = [i for i in wanted if i not in index]
        if unknown:
            raise DataError(f"{ids_file}: {len(unknown)} id(s) not in this split, e.g. {', '.join(unknown[:3])}")
        examples = [index[i] for i in dict.fromkeys(wanted)]
    return examples[:limit] if limit is not None else examples


# ---------------------------------------------------------------------------------------------- items
@dataclass
class Item:
    example: Example
    sample: int
    messages: list
    sha: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.example.id, self.sample)


def build_items(task: Task, cfg: ExtractConfig, examples: list[Example]) -> list[Item]:
    template = prompts.template_for(task.name, cfg.exemplars, getattr(task, "exemplars", None))
    sampling = cfg.sampling().to_dict()
    items = []
    for ex in examples:
        msgs = template.messages(ex)
        sha = prompts.request_sha(cfg.teacher, msgs, sampling)
        items += [Item(ex, k, msgs, sha) for k in range(cfg.samples)]
    return items


def make_record(item: Item, cfg: ExtractConfig, task: Task, text: str | None, usage=None, latency=None,
                error: str | None = None, attempts: int = 1, finish_reason=None, model: str | None = None,
                skipped: int | None = None) -> dict:
    """The record of one answer (or error); `model` is the model the response reports (None: not reported).
    skipped=t: a sample early stopping did not need, its example decided after t samples (no request)."""
    if skipped is not None:
        status, label, rationale = "skipped", None, None
    elif error is not None:
        status, label, rationale = "error", None, None
    elif finish_reason in CUT_OFF:
        status, label, rationale = "truncated", None, None
    else:
        parsed = task.parse_completion(as_text(text), item.example)  # `raw` keeps what the server sent
        label, rationale = parsed.label, parsed.rationale
        status = "ok" if label else "unparsed"
    rec = {"id": item.example.id, "task": task.name, "split": cfg.split, "teacher": cfg.teacher,
           "prompt_sha": item.sha, "sample": item.sample, "status": status, "label": label,
           "rationale": rationale, "raw": text, "usage": usage, "model": model,
           "latency_s": None if latency is None else round(latency, 4),
           "sampling": None if item.sha == "released" else cfg.sampling().to_dict(), "attempts": attempts}
    if finish_reason:
        rec["finish_reason"] = finish_reason
    if error is not None:
        rec["error"] = error
    if skipped is not None:
        rec.update(attempts=0, samples_taken=skipped, early_stop=cfg.early_stop)
    return rec


def model_change(rf: RecordFile, model: str | None, cfg: ExtractConfig) -> FatalError | None:
    """The error that stops a run before an answer from `model` goes into a file whose first answer came from
    another model (providers reroute retired models: a study must not change teacher silently); None when the
    answer may go in. The first model seen is the reference: asking "gpt-4o-mini" and getting its dated
    version "gpt-4o-mini-2024-07-18" throughout is no change."""
    if model is None or rf.first_model in (None, model) or cfg.allow_mixed_models:
        return None
    return FatalError(f"{rf.path} holds answers from model {rf.first_model!r}, and the server now answers "
                      f"{cfg.teacher} with model {model!r}; its answers were not written. Pass "
                      "--allow-mixed-models to keep both models' answers in this file, or --out to start another")


# ---------------------------------------------------------------------------------------------- resume
def plan(items: list[Item], rf: RecordFile, cfg: ExtractConfig) -> tuple[list[Item], dict]:
    """Which items still need a request; repairs the file (drops errors to redo, answers cut off by a smaller
    --max-tokens, and stale records with --overwrite, which takes a smaller --max-tokens for another setting
    too). Returns (pending, counts); counts["truncated_kept"] are cut-off answers of this very request, which
    only a larger --max-tokens would change."""
    current = {it.key: it for it in items}
    sampling = None if cfg.import_released else cfg.sampling().to_dict()
    keep, drop, done = [], {"error": 0, "stale": 0, "duplicate": 0, "truncated": 0, "unskipped": 0}, set()
    skipped = []
    for rec in rf.records:
        key = (str(rec["id"]), int(rec["sample"]))
        it = current.get(key)
        if it is None:
            keep.append(rec)  # another selection's work: leave it alone
            continue
        same = rec.get("prompt_sha") == it.sha
        grown = not same and not cfg.overwrite and _under_smaller_limit(rec, it, cfg.teacher, sampling)
        if not same and not grown:
            if not cfg.overwrite:
                raise DataError(
                    f"{rf.path} already holds records for these examples made with a different prompt, "
                    f"teacher or sampling settings (e.g. id {key[0]!r}: {rec.get('prompt_sha')} vs "
                    f"{it.sha}). Pass --out to write elsewhere, or --overwrite to replace them.")
            drop["stale"] += 1
        elif rec["status"] == "error":
            drop["error"] += 1
        elif rec["status"] == "skipped":
            skipped.append(rec)  # decided below: an answer to the same sample wins over it
        elif rec["status"] == "truncated" and grown:
            drop["truncated"] += 1
        elif key in done:
            drop["duplicate"] += 1
        else:
            done.add(key)
            keep.append(rec)
    keep += _still_skipped(skipped, done, cfg, drop)
    if len(keep) != len(rf.records):
        rf.rewrite(keep)
    cut = sum(r["status"] == "truncated" for r in keep if (str(r["id"]), int(r["sample"])) in current)
    skips = {(str(r["id"]), int(r["sample"])) for r in keep if r["status"] == "skipped"}
    return [it for it in items if it.key not in done | skips], {"resumed": len(done), "skipped": len(skips), **drop,
                                                                 "torn": rf.torn, "truncated_kept": cut}


def _still_skipped(skipped: list[dict], done: set, cfg: ExtractConfig, drop: dict) -> list[dict]:
    """The skipped-sample records to keep: under --early-stop, one per sample that has no answer (the rounds then
    decide again whether it is needed: `early_stop.Rounds`); without it every sample is wanted, so none."""
    keep, seen = [], set()
    for rec in skipped:
        key = (str(rec["id"]), int(rec["sample"]))
        if cfg.early_stop is None or key in done or key in seen:
            drop["unskipped"] += 1
        else:
            seen.add(key)
            keep.append(rec)
    return keep


def _under_smaller_limit(rec: dict, it: Item, teacher: str, sampling: dict | None) -> bool:
    """Whether `rec` answers this very request (teacher, prompt, settings) asked with a smaller max_tokens."""
    old = (rec.get("sampling") or {}).get("max_tokens")
    if sampling is None or not isinstance(old, int) or old >= sampling["max_tokens"]:
        return False
    return prompts.request_sha(teacher, it.messages, {**sampling, "max_tokens": old}) == rec.get("prompt_sha")


def units(items: list[Item], per_request: int | None) -> list[list[Item]]:
    """The requests to make: an example's pending samples, per_request at a time (default: all of them)."""
    by_example: dict[str, list[Item]] = {}
    for it in items:
        by_example.setdefault(it.example.id, []).append(it)
    out = []
    for group in by_example.values():
        k = per_request or len(group)
        out += [group[i:i + k] for i in range(0, len(group), k)]
    return out
