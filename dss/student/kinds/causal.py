"""Decoder-only students: the same two tasks as prompt -> completion, `[label] x` -> `y` and `[rationale] x` -> `r`.

A row is one sequence, prompt then completion then EOS; the loss is on the completion's tokens (and its EOS)
only, and mixed by alpha exactly as for a seq2seq student (dss.student.loss). At evaluation the prompt alone
is given, left-padded, and greedy decoding (or closed-set scoring of the completions) answers.

The prompt is the row's source text as it is, or, when the tokenizer has a chat template (instruct models),
that template applied to one user turn holding the source, with the generation prompt appended
(`apply_chat_template([{"role": "user", "content": x}], add_generation_prompt=True)`), so the student sees
the format it was tuned on. The completion is the target's tokens without special tokens, then EOS.
"""
from __future__ import annotations

import torch

import dss.student.kinds.seq2seq as seq2seq
from dss.student.loss import multitask_loss

CALLS_PAST_FORWARD = False
to_device = seq2seq.to_device
sync_gradients = seq2seq.sync_gradients
check_parallelism = seq2seq.check_parallelism


def tokenize(rows, tokenizer, cfg):
    return (prompt_ids(tokenizer, [r.source for r in rows], cfg.max_input_length),
            completion_ids(tokenizer, [r.target for r in rows], cfg.max_target_length), None)


def cache_key(tokenizer, cfg) -> list:
    return ["causal", getattr(tokenizer, "chat_template", None)]  # the template shapes every prompt


def collate(features: list[dict], pad_id: int, split_tasks: bool = True, both_tasks: bool = False) -> dict:
    return seq2seq.collate(features, pad_id, split_tasks, both_tasks, pad=pad_causal)


def losses(model, net, part: dict, alpha: float, divide):
    logits, labels = forward(model, part)  # [rows, len - 1, vocab] aligned with the next tokens
    return multitask_loss(logits, labels, part["is_rationale"], alpha, divide[0], divide[1])


def prompt(tokenizer, prefix: str):
    return None  # the task prefix is in the prompt itself


def prompt_ids(tokenizer, sources: list[str], max_length: int) -> list[list[int]]:
    """Token ids of each prompt (BOS where the tokenizer adds one; never a trailing EOS), cut from the left
    so the end of the prompt (where the answer is asked for) survives truncation."""
    if getattr(tokenizer, "chat_template", None):
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": s}], add_generation_prompt=True,
                                               tokenize=False) for s in sources]
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(sources)["input_ids"]
    eos = tokenizer.eos_token_id
    ids = [x[:-1] if x and x[-1] == eos else x for x in ids]  # T5-style tokenizers append EOS
    return [x[-max_length:] for x in ids]


def completion_ids(tokenizer, targets: list[str], max_length: int) -> list[list[int]]:
    """Token ids of each completion: its text's tokens, then EOS (the student learns to stop)."""
    ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
    return [x[:max_length - 1] + [tokenizer.eos_token_id] for x in ids]


def pad_causal(ids: list[list[int]], tgt: list[list[int]], task: list[int], pad_id: int) -> dict:
    """One forward pass of prompt+completion rows, right-padded.

    input_ids/attention_mask [rows, len]; labels [rows, len] = the completion's ids where they sit, -100 on
    the prompt and padding; is_rationale [rows]. The model's logits at t predict token t + 1 (see `forward`).
    """
    seqs = [s + t for s, t in zip(ids, tgt)]
    width = max(map(len, seqs))
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, (s, t) in enumerate(zip(ids, tgt)):
        input_ids[i, :len(s) + len(t)] = torch.tensor(s + t)
        attention_mask[i, :len(s) + len(t)] = 1
        labels[i, len(s):len(s) + len(t)] = torch.tensor(t)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
            "is_rationale": torch.tensor(task, dtype=torch.bool)}


def forward(model, part: dict):
    """(logits [rows, len - 1, vocab], labels [rows, len - 1]) aligned: position t's logits score token t + 1."""
    logits = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits
    return logits[:, :-1], part["labels"][:, 1:]


def left_padded(prompts: list[list[int]], pad_id: int, device) -> dict:
    width = max(map(len, prompts))
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        input_ids[i, width - len(p):], attention_mask[i, width - len(p):] = torch.tensor(p), 1
    return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}


def generate(net, tokenizer, sources: list[str], device, max_input_length: int, settings: dict,
             prompt: list[int] | None = None) -> list[str]:
    """Completions of left-padded prompts as `settings` say (greedy: dss.student.evaluate); the texts of the new
    tokens only."""
    enc = left_padded(prompt_ids(tokenizer, sources, max_input_length), tokenizer.pad_token_id, device)
    out = net.generate(**enc, **settings, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def score(net, tokenizer, sources: list[str], candidates: list[list[str]], device, max_input_length: int,
          max_target_length: int, prompt: list[int] | None = None) -> list[list[float]]:
    """Summed log-likelihood of each candidate completion (EOS included) after its prompt."""
    prompts = prompt_ids(tokenizer, sources, max_input_length)
    rows_src = [p for p, cands in zip(prompts, candidates) for _ in cands]
    rows_tgt = completion_ids(tokenizer, [c for cands in candidates for c in cands], max_target_length)
    part = {k: v.to(device) for k, v in pad_causal(rows_src, rows_tgt, [0] * len(rows_src),
                                                   tokenizer.pad_token_id).items()}
    logits, labels = forward(net, part)  # [cands, len - 1, vocab], [cands, len - 1]
    logp = torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    totals = (logp * (labels != -100)).sum(-1).tolist()
    out, pos = [], 0
    for cands in candidates:
        out.append(totals[pos:pos + len(cands)])
        pos += len(cands)
    return out
