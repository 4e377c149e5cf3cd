"""Multitask training data: examples -> rows -> token ids (once, cached) -> length-grouped, padded batches.

One training *item* is one example. Under `dss` it holds two rows, `[label] x -> y` and `[rationale] x -> r`,
kept in the same batch so every batch has both tasks (as in the reference code, where a batch of B examples
gave B label rows and B rationale rows). The collator stacks all rows of a batch into one forward pass and
marks each row's task.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dss.core.errors import ConfigError
from dss.core.io import atomic_path
from dss.student.methods import METHODS, SINGLE_SEP

LABEL, RATIONALE = 0, 1  # a row's task


@dataclass
class Row:
    source: str
    target: str
    task: int  # LABEL or RATIONALE


def nested_subset(examples: list, fraction: float, seed: int) -> list:
    """The first ceil(fraction * n) examples of a seeded permutation, in their original order.

    Subsets are nested (12.5 % lies inside 25 %) and identical across methods for one seed.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = len(examples)
    keep = np.random.default_rng(seed).permutation(n)[:math.ceil(fraction * n)]
    return [examples[i] for i in sorted(keep)]


def fingerprint(splits: dict, rationale_file=None) -> str:
    """sha256 of every example's content in every split (and of a rationale file's bytes): two runs read the
    same data exactly when their fingerprints agree, wherever the files were."""
    h = hashlib.sha256()
    for name, examples in sorted(splits.items()):
        h.update(json.dumps([name, [[e.id, e.input, e.label, e.llm_label, e.llm_rationale] for e in examples]],
                            ensure_ascii=False).encode())
    if rationale_file:
        try:
            h.update(Path(rationale_file).read_bytes())
        except OSError as e:
            from dss.core.errors import DataError
            raise DataError(f"{rationale_file}: cannot read rationale file: {e.strerror or e}") from None
    return h.hexdigest()


def example_rows(ex, cfg) -> list[Row]:
    """The training rows of one example under cfg.method; [] when the example cannot be used."""
    method = METHODS[cfg.method]
    label = ex.label if method.label_source(cfg.labels) == "gold" else ex.llm_label
    if label is None:
        return []
    if method.rationale_in_target:
        return [Row(ex.input, ex.llm_rationale + SINGLE_SEP + label, LABEL)] if usable_rationale(ex) else []
    if not method.rationale_task:
        return [Row(ex.input, label, LABEL)]
    prefix = method.prefix_inputs  # dss: the prefix is on the input; dss-shared: it starts the decoder
    rows = [Row(cfg.label_prefix * prefix + ex.input, label, LABEL)]
    if usable_rationale(ex):
        for rationale in [ex.llm_rationale, *ex.more_rationales][:cfg.rationales_per_example]:
            rows.append(Row(cfg.rationale_prefix * prefix + ex.input, rationale, RATIONALE))
    return rows


def usable_rationale(ex) -> bool:
    """A rationale is trained on only when the teacher's answer it leads to was parsed: the text of an
    answer whose label could not be read may argue for anything."""
    return bool(ex.llm_rationale) and ex.llm_label is not None


def training_items(examples: list, cfg) -> tuple[list[list[Row]], dict]:
    """Rows grouped per example, and counts of what was dropped and why."""
    method = METHODS[cfg.method]
    items, stats = [], {"examples": len(examples), "dropped_no_label": 0, "dropped_no_rationale": 0,
                        "missing_rationale": 0, "teacher_unparsed": 0}
    for ex in examples:
        # the teacher answered but its answer could not be read: no rationale row (and no teacher label)
        stats["teacher_unparsed"] += ex.llm_label is None and ex.meta.get("teacher") == "unparsed"
        rows = example_rows(ex, cfg)
        if not rows:
            no_label = (ex.label if method.label_source(cfg.labels) == "gold" else ex.llm_label) is None
            stats["dropped_no_label" if no_label else "dropped_no_rationale"] += 1
            continue
        if method.rationale_task and len(rows) == 1:
            stats["missing_rationale"] += 1  # kept: trains the label task only
        if method.rationale_task and cfg.rationales_per_example > 1:
            stats["rationale_rows"] = stats.get("rationale_rows", 0) + len(rows) - 1
        items.append(rows)
    stats["train_examples"] = len(items)
    return items, stats


def tokenize_items(items: list[list[Row]], tokenizer, cfg, kind) -> list[dict]:
    """Token ids for every row, in one batched tokenizer call per side, as the student's kind builds them
    (dss.student.kinds); per item: input_ids, labels, task (and prompt: decoder prompt lengths) per row."""
    rows = [r for item in items for r in item]
    src, tgt, prompts = kind.tokenize(rows, tokenizer, cfg)
    out, k = [], 0
    for item in items:
        n = len(item)
        ids, labels = src[k:k + n], tgt[k:k + n]
        out.append({"input_ids": ids, "labels": labels, "task": [r.task for r in item],
                    "length": max(map(len, ids)) + max(map(len, labels))})
        if prompts is not None:
            out[-1]["prompt"] = prompts[k:k + n]
        k += n
    return out


def tokenizer_identity(tokenizer) -> str:
    """What decides a tokenizer's ids: its serialized model, normalizer and added tokens, without the
    truncation/padding settings that every call with truncation=True rewrites (they made the key change)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return json.dumps([type(tokenizer).__name__, tokenizer.name_or_path, len(tokenizer)])
    spec = json.loads(backend.to_str())
    spec.pop("truncation", None)
    spec.pop("padding", None)
    return json.dumps(spec, sort_keys=True)


def cached_tokenize(items: list[list[Row]], tokenizer, cfg, cache_dir: Path, kind) -> list[dict]:
    """tokenize_items, stored under a hash of the rows, tokenizer, kind and lengths so reruns and resumes skip it."""
    h = hashlib.sha256(tokenizer_identity(tokenizer).encode())
    extra = kind.cache_key(tokenizer, cfg)
    if extra:  # (seq2seq adds nothing: the keys of runs made before the kinds stay valid)
        h.update(json.dumps(extra).encode())
    h.update(json.dumps([cfg.max_input_length, cfg.max_target_length,
                         [[(r.source, r.target, r.task) for r in it] for it in items]]).encode())
    path = Path(cache_dir) / f"tokens-{h.hexdigest()[:16]}.pt"
    if path.is_file():
        try:
            return torch.load(path)
        except Exception as e:  # noqa: BLE001 — a cache that cannot be read (truncated, damaged) is rebuilt
            print(f"dss train: token cache {path} cannot be read ({type(e).__name__}); rebuilding it",
                  file=sys.stderr, flush=True)
    features = tokenize_items(items, tokenizer, cfg, kind)
    with atomic_path(path) as tmp:  # another process never reads half a file
        torch.save(features, tmp)
    return features


class LengthGroupedBatchSampler:
    """Deterministic batches of item indices: `epoch_batches(epoch)` is a pure function of (seed, epoch).

    Nothing here has state that iteration advances, so an interrupted run resumed at any step asks for the
    same epoch's batches and skips to the same place. (An earlier version relied on `set_epoch` before
    iterating, which Accelerate's prepared loader overrode with its own counter: every epoch had one order.)
    Each epoch: a seeded permutation cut to a whole number of optimizer steps; with grouping, chunks of
    `mega` batches are sorted by length and cut into batches whose order is then shuffled, so a batch holds
    examples of similar length (little padding) while the batch order stays random.
    keep_last (the reference's protocol): the epoch's remaining examples make one more, smaller step, split
    into as many micro-batches (when there are at least `min_last` of them: every process must get a row of
    every micro-batch).
    `batch_size` is the micro-batch over all processes; each process takes a contiguous slice of it.
    """

    def __init__(self, lengths: list[int], batch_size: int, batches_per_step: int, seed: int,
                 group_by_length: bool = True, mega: int = 50, keep_last: bool = False, min_last: int = 1):
        self.lengths, self.batch_size, self.batches_per_step = np.asarray(lengths), batch_size, batches_per_step
        self.seed, self.group_by_length, self.mega = seed, group_by_length, mega
        step = batch_size * batches_per_step
        self.full_steps = len(lengths) // step
        self.remainder = len(lengths) - self.full_steps * step
        self.keeps_last = keep_last and self.remainder >= max(1, min_last)
        if len(self) == 0:
            raise ConfigError(f"{len(lengths)} training examples are fewer than one batch of "
                              f"{batch_size * batches_per_step}; lower batch_size")

    def __len__(self) -> int:
        """Micro-batches per epoch."""
        return self.steps_per_epoch * self.batches_per_step

    @property
    def steps_per_epoch(self) -> int:
        return self.full_steps + self.keeps_last

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The epoch's micro-batches, in order: [len(self)] lists of item indices (batch_size each, but in a
        kept last step)."""
        rng = np.random.default_rng([self.seed, epoch])
        whole = rng.permutation(len(self.lengths))
        perm = whole[:self.full_steps * self.batches_per_step * self.batch_size]
        if self.group_by_length:
            chunk = self.batch_size * self.mega
            perm = np.concatenate([c[np.argsort(-self.lengths[c], kind="stable")]
                                   for c in np.split(perm, range(chunk, len(perm), chunk))])
        batches = perm.reshape(-1, self.batch_size)
        if self.group_by_length:
            batches = batches[rng.permutation(len(batches))]
        out = [[int(i) for i in b] for b in batches]
        if self.keeps_last:
            out += [[int(i) for i in part] for part in np.array_split(whole[len(perm):], self.batches_per_step)]
        return out
