"""Encoder-decoder students (T5, BART, mT5, ...): each row is source -> target; the paper's DSS rows are
`[label] x -> y` and `[rationale] x -> r`, one forward pass per task part (dss.student.kinds)."""
from __future__ import annotations

import torch

from dss.student.batching import LABEL, RATIONALE
from dss.student.loss import multitask_loss
from dss.student.padding import pad_rows

CALLS_PAST_FORWARD = False


def tokenize(rows, tokenizer, cfg):
    src = tokenizer([r.source for r in rows], truncation=True, max_length=cfg.max_input_length)["input_ids"]
    tgt = tokenizer(text_target=[r.target for r in rows], truncation=True,
                    max_length=cfg.max_target_length)["input_ids"]
    return src, tgt, None


def cache_key(tokenizer, cfg) -> list:
    return []


def collate(features: list[dict], pad_id: int, split_tasks: bool = True, both_tasks: bool = False,
            pad=pad_rows) -> dict:
    """A micro-batch: `parts`, the forward passes to run, and the micro-batch's target-token counts per task.

    split_tasks: one part per task, each padded to its own longest row. Labels are a few tokens and
    rationales dozens, so a joint part would pad every label row to rationale length (~2x decoder work).
    both_tasks (FSDP: every process must run the same forwards): a task without rows here still gets a part,
    one dummy row whose labels are all -100 (no loss, no token counted).
    """
    rows = [(s, t, k) for f in features for s, t, k in zip(f["input_ids"], f["labels"], f["task"])]
    groups = [[r for r in rows if r[2] == k] for k in (LABEL, RATIONALE)] if split_tasks else [rows]
    parts = []
    for task, group in enumerate(groups):
        if group:
            parts.append(pad(*map(list, zip(*group)), pad_id))
        elif both_tasks and split_tasks:
            part = pad([rows[0][0]], [[pad_id]], [task], pad_id)
            part["labels"].fill_(-100)
            parts.append(part)
    n_label = sum(len(t) for _, t, k in rows if k == LABEL)
    return {"parts": parts, "n_label_tokens": torch.tensor(n_label),
            "n_rationale_tokens": torch.tensor(sum(len(t) for _, t, _ in rows) - n_label)}


def to_device(batch: dict, device) -> dict:
    return {"parts": [{k: v.to(device) for k, v in p.items()} for p in batch["parts"]],
            "n_label_tokens": batch["n_label_tokens"].to(device),
            "n_rationale_tokens": batch["n_rationale_tokens"].to(device)}


def losses(model, net, part: dict, alpha: float, divide):
    """[rows, src_len] -> logits [rows, tgt_len, vocab], through the model's (wrapped) forward."""
    shift = net.prepare_decoder_input_ids_from_labels
    logits = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"],
                   decoder_input_ids=shift(labels=part["labels"])).logits
    return multitask_loss(logits, part["labels"], part["is_rationale"], alpha, divide[0], divide[1])


def prompt(tokenizer, prefix: str):
    return None  # the task prefix is on the encoder's input


def generate(net, tokenizer, sources: list[str], device, max_input_length: int, settings: dict,
             prompt: list[int] | None = None, decoder_start=None) -> list[str]:
    """Decoded texts of the answers (`decoder_start`: the decoder's given first ids, not part of the answer)."""
    enc = tokenizer(sources, padding=True, truncation=True, max_length=max_input_length,
                    return_tensors="pt").to(device)
    given = {} if decoder_start is None else {"decoder_input_ids": decoder_start}
    ids = net.generate(**enc, **given, **settings)
    ids = ids[:, decoder_start.shape[1]:] if decoder_start is not None else ids  # the answer only
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


def score(net, tokenizer, sources: list[str], candidates: list[list[str]], device, max_input_length: int,
          max_target_length: int, prompt: list[int] | None = None) -> list[list[float]]:
    """The summed log-likelihoods of each source's candidates (EOS included); the encoder runs once per source.
    prompt: given to the decoder before each candidate, not scored."""
    enc = tokenizer(sources, padding=True, truncation=True, max_length=max_input_length,
                    return_tensors="pt").to(device)
    row_of = [j for j, cands in enumerate(candidates) for _ in cands]  # candidate row -> example row
    flat = [c for cands in candidates for c in cands]
    tgt = tokenizer(text_target=flat, padding=True, truncation=True, max_length=max_target_length,
                    return_tensors="pt")["input_ids"].to(device)
    full = tgt.masked_fill(tgt == tokenizer.pad_token_id, -100)  # [cands, tgt_len]
    if prompt:
        full = torch.cat([torch.tensor(prompt, device=device).expand(len(flat), -1), full], 1)
    labels = full.clone()
    labels[:, :len(prompt or [])] = -100  # the prompt is given, not scored
    hidden = net.get_encoder()(**enc).last_hidden_state  # [examples, src_len, d_model]: once each
    rows = torch.tensor(row_of, device=device)
    logits = net(encoder_outputs=(hidden[rows],), attention_mask=enc["attention_mask"][rows],
                 decoder_input_ids=net.prepare_decoder_input_ids_from_labels(labels=full)).logits  # [cands, tgt, V]
    logp = torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    totals = (logp * (labels != -100)).sum(-1).tolist()  # [cands]
    out, pos = [], 0
    for cands in candidates:
        out.append(totals[pos:pos + len(cands)])
        pos += len(cands)
    return out


def sync_gradients(net) -> None:
    """Nothing to do: the wrapped forward (DDP's hooks) synchronizes gradients."""


def check_parallelism(distributed_type: str) -> None:
    """Every parallelism dss runs (one process, DDP, FSDP v2)."""
