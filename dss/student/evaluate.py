"""Label-only evaluation over all processes, two ways (`eval_mode`):

    generate  greedy decoding of the label task, as the paper evaluates; any text can come out
    score     closed-set scoring, as lm-evaluation-harness and T0 score multiple choice: each candidate answer
              (the task's label set, or CQA's five choices of the row) is scored by the label task's summed
              log-likelihood, end-of-sequence included, given the input; the encoder runs once per example,
              the best candidate wins (ties: the first). Summed, not length-normalised: the summed score is the
              student's probability of writing exactly that answer, so its argmax is the candidate the student
              most likely writes whole, the decision exact-match accuracy rewards; length normalisation corrects
              models that were not trained on the answer format, and this one was.
"""
from __future__ import annotations

import torch

from dss.student import causal as C
from dss.student import shared as S
from dss.student.config import TrainConfig
from dss.student.methods import METHODS


@torch.no_grad()
def generate(model, tokenizer, sources: list[str], accelerator, batch_size: int, max_input_length: int,
             max_new_tokens: int, decoder_prompt: list[int] | None = None) -> list[str]:
    """Greedy generation; each process takes every num_processes-th input, then all texts are gathered.
    decoder_prompt: token ids the decoder starts with (dss-shared's task prefix), not part of the answer."""
    from accelerate.utils import gather_object

    net = accelerator.unwrap_model(model)
    was_training, _ = net.training, net.eval()
    mine = list(range(accelerator.process_index, len(sources), accelerator.num_processes))
    mine.sort(key=lambda i: len(sources[i]))  # similar lengths per batch: less padding
    out = []
    for k in range(0, len(mine), batch_size):
        idx = mine[k:k + batch_size]
        if C.is_causal(net):  # prompts left-padded, the new tokens decoded
            with accelerator.autocast():
                texts = C.generate_batch(net, tokenizer, [sources[i] for i in idx], accelerator.device,
                                         max_input_length, max_new_tokens)
            out += zip(idx, texts)
            continue
        enc = tokenizer([sources[i] for i in idx], padding=True, truncation=True, max_length=max_input_length,
                        return_tensors="pt").to(accelerator.device)
        given = {}
        if decoder_prompt:
            given["decoder_input_ids"] = S.decoder_start(net, decoder_prompt, len(idx), accelerator.device)
        with accelerator.autocast():
            ids = net.generate(**enc, **given, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        ids = ids[:, 1 + len(decoder_prompt):] if decoder_prompt else ids  # the answer only
        out += zip(idx, tokenizer.batch_decode(ids, skip_special_tokens=True))
    net.train(was_training)
    texts = dict(gather_object(out) if accelerator.num_processes > 1 else out)
    return [texts[i] for i in range(len(sources))]


@torch.no_grad()
def score(model, tokenizer, sources: list[str], candidates: list[list[str]], accelerator, batch_size: int,
          max_input_length: int, max_target_length: int, decoder_prompt: list[int] | None = None) -> list[list[float]]:
    """Summed log-likelihood of each candidate target (EOS included) given its source, per example; each
    process scores every num_processes-th example, then all are gathered. decoder_prompt: given before each
    candidate (dss-shared), not scored."""
    from accelerate.utils import gather_object

    net = accelerator.unwrap_model(model)
    was_training, _ = net.training, net.eval()
    mine = list(range(accelerator.process_index, len(sources), accelerator.num_processes))
    mine.sort(key=lambda i: len(sources[i]))
    out = []
    for k in range(0, len(mine), batch_size):
        idx = mine[k:k + batch_size]
        if C.is_causal(net):  # the prompt runs once per candidate: no encoder to share
            with accelerator.autocast():
                totals = C.score_batch(net, tokenizer, [sources[i] for i in idx], [candidates[i] for i in idx],
                                       accelerator.device, max_input_length, max_target_length)
            out += zip(idx, totals)
            continue
        enc = tokenizer([sources[i] for i in idx], padding=True, truncation=True, max_length=max_input_length,
                        return_tensors="pt").to(accelerator.device)
        row_of = [j for j, i in enumerate(idx) for _ in candidates[i]]  # candidate row -> example row
        flat = [c for i in idx for c in candidates[i]]
        tgt = tokenizer(text_target=flat, padding=True, truncation=True, max_length=max_target_length,
                        return_tensors="pt")["input_ids"].to(accelerator.device)
        full = tgt.masked_fill(tgt == tokenizer.pad_token_id, -100)  # [cands, tgt_len]
        if decoder_prompt:
            given = torch.tensor(decoder_prompt, device=tgt.device).expand(len(flat), -1)
            full = torch.cat([given, full], 1)
        labels = full.clone()
        labels[:, :len(decoder_prompt or [])] = -100  # the prompt is given, not scored
        with accelerator.autocast():
            hidden = net.get_encoder()(**enc).last_hidden_state  # [examples, src_len, d_model]: once each
            rows = torch.tensor(row_of, device=accelerator.device)
            logits = net(encoder_outputs=(hidden[rows],), attention_mask=enc["attention_mask"][rows],
                         decoder_input_ids=net.prepare_decoder_input_ids_from_labels(labels=full)
                         ).logits  # [cands, tgt_len, vocab]
        logp = torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
        totals = (logp * (labels != -100)).sum(-1).tolist()  # [cands]
        pos = 0
        for i in idx:
            n = len(candidates[i])
            out.append((i, totals[pos:pos + n]))
            pos += n
    net.train(was_training)
    scores = dict(gather_object(out) if accelerator.num_processes > 1 else out)
    return [scores[i] for i in range(len(sources))]


def candidate_sets(task, examples) -> list[list[str]]:
    """The closed answer set of every example (ConfigError when the task has none, e.g. SVAMP's equations)."""
    from dss.core.errors import ConfigError
    sets = [task.candidates(e) for e in examples]
    if any(not c for c in sets):
        raise ConfigError(f"eval_mode=score needs a closed answer set, and task {task.name!r} has none "
                          "(its answers are open text): use eval_mode=generate")
    return sets


def evaluate(model, tokenizer, task, examples, cfg: TrainConfig, accelerator) -> tuple[float, list[dict]]:
    """Label-only answers to examples in cfg.eval_mode; (accuracy with the task's metric, one record per
    example: prediction, and with scoring the candidates' scores)."""
    method = METHODS[cfg.method]
    sources = [method.eval_source(e.input, cfg.label_prefix) for e in examples]
    prompt = S.prompt_ids(tokenizer, cfg.label_prefix) if method.shared_encoder else None
    if cfg.eval_mode == "score":
        sets = candidate_sets(task, examples)
        scores = score(model, tokenizer, sources, sets, accelerator, cfg.eval_batch_size, cfg.max_input_length,
                       cfg.max_target_length, prompt)
        records = [{"prediction": c[max(range(len(c)), key=s.__getitem__)],
                    "scores": {k: round(v, 4) for k, v in zip(c, s)}} for c, s in zip(sets, scores)]
    else:
        max_new = cfg.max_target_length if method.rationale_in_target else cfg.eval_max_new_tokens
        texts = generate(model, tokenizer, sources, accelerator, cfg.eval_batch_size, cfg.max_input_length,
                         max_new, prompt)
        records = [{"prediction": method.parse_prediction(t)} for t in texts]
    preds = [r["prediction"] for r in records]
    return task.accuracy(preds, [e.label for e in examples]), records
