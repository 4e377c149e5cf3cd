"""The training protocols, as one table that every stage asks instead of comparing names (like the methods).

    p = PROTOCOLS[cfg.protocol]
    p.subsets                 "nested": dss's nested subsets, valid carved from the full train split first;
                              "reference": train_test_split(test_size=1 - fraction, seed=seed)["train"], then
                              (tasks without a valid split) valid carved from that subset, 10 %, seed 0
    p.warmup                  a linear warm-up (warmup_ratio); the reference has none
    p.random_batches          batches in random order, never grouped by length
    p.keep_last_batch         an epoch's last, smaller batch is trained on (dss drops it: equal-sized steps)
    p.precision_auto          what mixed_precision=auto means: "native" (bf16 where native) or "no" (fp32)
    p.generation_counts_start eval_max_new_tokens counts the decoder's start token (the reference's
                              generation_max_length=64 lets 63 new tokens out)
    p.loss_mean               "global": each task's token mean over the whole step on all processes;
                              "per_device": each micro-batch's own token means, averaged over processes and
                              micro-batches (what Seq2SeqTrainer computes)
    p.teacher_parsing         "dss" (the task's parser) or "reference" (the reference's, flaws included:
                              unparsed answers train on a ' ' target and keep their rationale row)
    p.accuracy                "normalized" (dss: whitespace, quotes, a final period; SVAMP exact) or "exact"
                              (the decoded text as is against the tokenizer's decoding of the label; SVAMP as
                              Python floats)
    p.test_every_eval         test accuracy at every evaluation (metrics.jsonl), and of the last model

docs/protocol.md lists every difference and why dss's default differs where it does.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    name: str
    help: str
    subsets: str = "nested"
    warmup: bool = True
    random_batches: bool = False
    keep_last_batch: bool = False
    precision_auto: str = "native"
    generation_counts_start: bool = False
    loss_mean: str = "global"
    teacher_parsing: str = "dss"
    accuracy: str = "normalized"
    test_every_eval: bool = False


PROTOCOLS = {p.name: p for p in (
    Protocol("dss", "dss's own: nested subsets, warm-up, length-grouped equal-sized batches, bf16 where native, "
             "global token means, dss's teacher parsing and normalized accuracy"),
    Protocol("reference", "the reference code's (google-research/distilling-step-by-step), to compare with the "
             "paper: its subsets, no warm-up, random batches with the last partial one, fp32 unless asked, "
             "per-device loss means, its generation length, parsing and exact-match accuracy, test at every "
             "evaluation", subsets="reference", warmup=False, random_batches=True, keep_last_batch=True,
             precision_auto="no", generation_counts_start=True, loss_mean="per_device",
             teacher_parsing="reference", accuracy="exact", test_every_eval=True),
)}
PROTOCOL_NAMES = tuple(PROTOCOLS)
