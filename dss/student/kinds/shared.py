"""Shared-encoder DSS (`--method dss-shared`, opt-in: it changes the method). The paper puts the task prefix on
the encoder's input, so x is encoded twice, once per task. Here x is encoded once and the task prefix starts
the decoder instead: the label task decodes `[label] y`, the rationale task `[rationale] r`, both attending to
the same encoder states. The prefix tokens are given, never predicted (their positions carry no loss); the
loss is the same alpha mix of the two tasks' token means.

A row's target ids are prompt + target (prompt = the prefix's tokens); `prompt` holds its length.
One encoder pass per micro-batch means calls to the model's parts rather than to its top-level forward, so with
several processes DDP's gradient hooks never arm (they arm in DDP's forward): `sync_gradients` all-reduces the
step's gradients itself, once per optimizer step, as one flat buffer (DDP's bucketing, in one bucket).
"""
from __future__ import annotations

import torch

import dss.student.kinds.seq2seq as seq2seq
from dss.student.batching import LABEL, RATIONALE
from dss.student.loss import multitask_loss
from dss.student.padding import pad_rows

CALLS_PAST_FORWARD = True  # the encoder and decoder are called directly, past the wrapped forward


def prompt(tokenizer, prefix: str) -> list[int]:
    """The decoder prompt of a task: its prefix's tokens (one added token for tiny students)."""
    return tokenizer(prefix.strip(), add_special_tokens=False)["input_ids"]


def tokenize(rows, tokenizer, cfg):
    """Rows as seq2seq's, each target after its task's decoder prompt; the prompts' lengths apart."""
    src, tgt, _ = seq2seq.tokenize(rows, tokenizer, cfg)
    by_task = {LABEL: prompt(tokenizer, cfg.label_prefix), RATIONALE: prompt(tokenizer, cfg.rationale_prefix)}
    return src, [by_task[r.task] + t for r, t in zip(rows, tgt)], [len(by_task[r.task]) for r in rows]


def cache_key(tokenizer, cfg) -> list:
    return ["shared", cfg.label_prefix, cfg.rationale_prefix]


def generate(net, tokenizer, sources: list[str], device, max_input_length: int, settings: dict,
             prompt: list[int] | None = None) -> list[str]:
    """seq2seq's, the decoder started with its start token and the task's prompt."""
    start = torch.tensor([[net.config.decoder_start_token_id, *prompt]] * len(sources), device=device)
    return seq2seq.generate(net, tokenizer, sources, device, max_input_length, settings, decoder_start=start)


score = seq2seq.score  # the prompt is given before each candidate, not scored


def collate(features: list[dict], pad_id: int, split_tasks: bool = True, both_tasks: bool = False) -> dict:
    """A micro-batch: `label` (every example's source and label target) and `rationale` (its rationale rows,
    `row_of` naming each one's example row), target-token counts without the given prompt tokens."""
    lab, rat, row_of = [], [], []
    for i, f in enumerate(features):
        for src, tgt, task, n in zip(f["input_ids"], f["labels"], f["task"], f["prompt"]):
            if task == 0:
                lab.append((src, tgt, n))
            else:
                rat.append((src, tgt, n))
                row_of.append(i)
    parts = {"label": _part([r[0] for r in lab], [r[1] for r in lab], [r[2] for r in lab], 0, pad_id)}
    if rat:
        parts["rationale"] = _part([lab[0][0]] * len(rat), [r[1] for r in rat], [r[2] for r in rat], 1, pad_id)
        parts["rationale"]["row_of"] = torch.tensor(row_of)
        del parts["rationale"]["input_ids"], parts["rationale"]["attention_mask"]  # the label part's are used
    return {"parts": [parts], "n_label_tokens": torch.tensor(sum(len(t) - n for _, t, n in lab)),
            "n_rationale_tokens": torch.tensor(sum(len(t) - n for _, t, n in rat))}


def _part(src, tgt, prompt, task: int, pad_id: int) -> dict:
    part = pad_rows(src, tgt, [task] * len(tgt), pad_id)
    part["decoder_labels"] = part["labels"].clone()  # [rows, tgt_len]: what the decoder reads (shifted)
    for i, n in enumerate(prompt):
        part["labels"][i, :n] = -100  # given, not predicted
    return part


def to_device(batch: dict, device) -> dict:
    return {"parts": [{k: {n: v.to(device) for n, v in p.items()} for k, p in part.items()}
                      for part in batch["parts"]],
            "n_label_tokens": batch["n_label_tokens"].to(device),
            "n_rationale_tokens": batch["n_rationale_tokens"].to(device)}


def losses(model, net, parts: dict, alpha: float, counts) -> list:
    """[loss, label_loss, rationale_loss] of one micro-batch, x encoded once. net: the unwrapped model (its
    parts are called, not the wrapped forward)."""
    lab = parts["label"]
    shift = net.prepare_decoder_input_ids_from_labels
    hidden = net.get_encoder()(input_ids=lab["input_ids"], attention_mask=lab["attention_mask"]).last_hidden_state
    logits = net(encoder_outputs=(hidden,), attention_mask=lab["attention_mask"],
                 decoder_input_ids=shift(labels=lab["decoder_labels"])).logits  # [B, tgt_len, vocab]
    out = list(multitask_loss(logits, lab["labels"], lab["is_rationale"], alpha, counts[0], counts[1]))
    rat = parts.get("rationale")
    if rat is not None:
        rows = rat["row_of"]  # [R] -> example rows: the encoder states are reused, not recomputed
        logits = net(encoder_outputs=(hidden[rows],), attention_mask=lab["attention_mask"][rows],
                     decoder_input_ids=shift(labels=rat["decoder_labels"])).logits
        more = multitask_loss(logits, rat["labels"], rat["is_rationale"], alpha, counts[0], counts[1])
        out = [a + b for a, b in zip(out, more)]
    return out


def check_parallelism(distributed_type: str) -> None:
    """ConfigError unless accelerate's distributed type keeps whole parameters on every process (NO, or DDP:
    MULTI_CPU, MULTI_GPU, ...): the encoder and decoder are called directly, which FSDP's sharded parameters do
    not allow."""
    if distributed_type != "NO" and not distributed_type.startswith("MULTI_"):
        from dss.core.errors import ConfigError
        raise ConfigError(f"method dss-shared runs in one process or under DDP, not {distributed_type} (it calls "
                          "the model's encoder and decoder itself, which sharded parameters do not allow); use "
                          "method dss")


def sync_gradients(net) -> None:
    """Sum every parameter's gradient over the processes, in place (each process's loss already divides by the
    step's global token counts, so the sum is the global batch's gradient). A parameter without a gradient on
    this process counts as zeros, so every process sends the same layout."""
    import torch.distributed as dist

    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])  # [n_params]
    dist.all_reduce(flat)  # SUM
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad.copy_(g.view_as(p.grad))
