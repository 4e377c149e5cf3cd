"""Label-only evaluation: greedy generation over all processes, and accuracy with the task's metric."""
from __future__ import annotations

import torch

from dss.student.config import TrainConfig
from dss.student.methods import METHODS


@torch.no_grad()
def generate(model, tokenizer, sources: list[str], accelerator, batch_size: int, max_input_length: int,
             max_new_tokens: int) -> list[str]:
    """Greedy generation; each process takes every num_processes-th input, then all texts are gathered."""
    from accelerate.utils import gather_object

    net = accelerator.unwrap_model(model)
    was_training, _ = net.training, net.eval()
    mine = list(range(accelerator.process_index, len(sources), accelerator.num_processes))
    mine.sort(key=lambda i: len(sources[i]))  # similar lengths per batch: less padding
    out = []
    for k in range(0, len(mine), batch_size):
        idx = mine[k:k + batch_size]
        enc = tokenizer([sources[i] for i in idx], padding=True, truncation=True, max_length=max_input_length,
                        return_tensors="pt").to(accelerator.device)
        with accelerator.autocast():
            ids = net.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        out += zip(idx, tokenizer.batch_decode(ids, skip_special_tokens=True))
    net.train(was_training)
    texts = dict(gather_object(out) if accelerator.num_processes > 1 else out)
    return [texts[i] for i in range(len(sources))]


def evaluate(model, tokenizer, task, examples, cfg: TrainConfig, accelerator) -> tuple[float, list[str]]:
    """Label-only greedy generation; accuracy with the task's metric."""
    method = METHODS[cfg.method]
    max_new = cfg.max_target_length if method.rationale_in_target else cfg.eval_max_new_tokens
    texts = generate(model, tokenizer, [method.eval_source(e.input, cfg.label_prefix) for e in examples],
                     accelerator, cfg.eval_batch_size, cfg.max_input_length, max_new)
    preds = [method.parse_prediction(t) for t in texts]
    return task.accuracy(preds, [e.label for e in examples]), preds
