"""Padding of seq2seq rows into one forward pass's tensors (shared by the paper's DSS rows and dss-shared's)."""
from __future__ import annotations

import torch


def pad_rows(ids: list[list[int]], tgt: list[list[int]], task: list[int], pad_id: int) -> dict:
    """One forward pass's tensors, padded to these rows' longest source and target (dynamic padding).

    input_ids/attention_mask [rows, src_len]; labels [rows, tgt_len] with -100 on padding; is_rationale [rows].
    """
    src_len, tgt_len = max(map(len, ids)), max(map(len, tgt))
    input_ids = torch.full((len(ids), src_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), src_len), dtype=torch.long)
    labels = torch.full((len(tgt), tgt_len), -100, dtype=torch.long)
    for i, (s, t) in enumerate(zip(ids, tgt)):
        input_ids[i, :len(s)], attention_mask[i, :len(s)] = torch.tensor(s), 1
        labels[i, :len(t)] = torch.tensor(t)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
            "is_rationale": torch.tensor(task, dtype=torch.bool)}
