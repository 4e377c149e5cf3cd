"""The loss and the learning-rate schedule: pure functions, tested in closed form (alpha = 1 gives exactly the
label loss)."""
from __future__ import annotations

import torch.nn.functional as F


def multitask_loss(logits, labels, is_rationale, alpha, n_label=None, n_rationale=None):
    """Token-mean cross-entropy per task, mixed by alpha. Returns (loss, label_loss, rationale_loss).

    logits [rows, tgt_len, vocab]; labels [rows, tgt_len] (-100 = ignored); is_rationale [rows] bool.
    n_label / n_rationale: the token counts to divide by (default: this batch's). Training passes the
    counts of the whole optimizer step over all processes, so the loss does not depend on how the step
    is split into micro-batches and processes. A task with no tokens contributes 0.
    """
    ce = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100,
                         reduction="none").view(labels.shape)  # [rows, tgt_len]; 0 where ignored
    rationale_rows = is_rationale[:, None]  # [rows, 1]
    if n_label is None:
        n_label = ((labels != -100) & ~rationale_rows).sum().clamp(min=1)
        n_rationale = ((labels != -100) & rationale_rows).sum().clamp(min=1)
    label_loss = (ce * ~rationale_rows).sum() / n_label
    rationale_loss = (ce * rationale_rows).sum() / n_rationale
    loss = alpha * label_loss + (1 - alpha) * rationale_loss
    return loss, label_loss, rationale_loss


def lr_factor(step: int, warmup_steps: int, max_steps: int) -> float:
    """Linear warm-up to the peak, then linear decay to 0 at max_steps (a pure function of the step)."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    return max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))
