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

from contextlib import contextmanager

import torch

from dss.student import causal as C
from dss.student import shared as S
from dss.student.config import TrainConfig
from dss.student.methods import METHODS
from dss.student.protocols import PROTOCOLS
from dss.tasks import reference

# what a checkpoint's generation_config.json may say that is the format of its text, not a way of searching
TOKEN_SETTINGS = ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id", "forced_bos_token_id",
                  "forced_eos_token_id")


@contextmanager
def greedy_only(net):
    """The model's generation settings reduced to its special tokens for the block: a checkpoint's
    generation_config.json (no_repeat_ngram_size, min_length, beams, a repetition penalty) would otherwise
    change what evaluation decodes, since transformers fills every setting not given to generate() from it."""
    from transformers import GenerationConfig
    saved = net.generation_config
    net.generation_config = GenerationConfig(**{k: getattr(saved, k, None) for k in TOKEN_SETTINGS})
    try:
        yield
    finally:
        net.generation_config = saved


def lockstep(accelerator) -> bool:
    """Whether every process must run the same forwards: under FSDP each forward gathers the shards from all
    processes, so one that runs fewer batches, or stops decoding sooner, leaves the others waiting for ever."""
    return accelerator.num_processes > 1 and accelerator.distributed_type.value == "FSDP"


def my_batches(n: int, batch_size: int, accelerator, key=None):
    """This process's share of n examples (every num_processes-th, sorted by `key` so a batch holds similar
    lengths: less padding), as (indices, keep) batches. In lockstep every process runs as many batches as the
    busiest: the extra ones repeat example 0 and are thrown away (keep=False)."""
    mine = list(range(accelerator.process_index, n, accelerator.num_processes))
    if key is not None:
        mine.sort(key=key)
    batches = [(mine[k:k + batch_size], True) for k in range(0, len(mine), batch_size)]
    if lockstep(accelerator):
        most = int(accelerator.gather(torch.tensor([len(batches)], device=accelerator.device)).max())
        batches += [([0], False)] * (most - len(batches))
    return batches


@contextmanager
def evaluating(model, accelerator):
    """The model in eval mode for the block (and back to what it was). Under FSDP its top-level parameters
    (embeddings, final norms) are gathered for the block: generate() and scoring call the encoder directly,
    past the top-level forward whose hooks would gather them."""
    net = accelerator.unwrap_model(model)
    was_training, _ = net.training, net.eval()
    gathered = lockstep(accelerator) and hasattr(net, "unshard")
    if gathered:
        net.unshard()
    try:
        with greedy_only(net):
            yield net
    finally:
        if gathered:
            net.reshard()
        net.train(was_training)


@torch.no_grad()
def generate(model, tokenizer, sources: list[str], accelerator, batch_size: int, max_input_length: int,
             max_new_tokens: int, decoder_prompt: list[int] | None = None) -> list[str]:
    """Greedy generation; each process takes every num_processes-th input, then all texts are gathered.
    decoder_prompt: token ids the decoder starts with (dss-shared's task prefix), not part of the answer."""
    from accelerate.utils import gather_object

    out = []
    with evaluating(model, accelerator) as net:
        # synced: in lockstep a process whose batch ended keeps stepping until every process's has
        greedy = {"max_new_tokens": max_new_tokens, "do_sample": False, "num_beams": 1,
                  "synced_gpus": lockstep(accelerator)}
        for idx, keep in my_batches(len(sources), batch_size, accelerator, key=lambda i: len(sources[i])):
            if C.is_causal(net):  # prompts left-padded, the new tokens decoded
                with accelerator.autocast():
                    texts = C.generate_batch(net, tokenizer, [sources[i] for i in idx], accelerator.device,
                                             max_input_length, greedy)
            else:
                enc = tokenizer([sources[i] for i in idx], padding=True, truncation=True,
                                max_length=max_input_length, return_tensors="pt").to(accelerator.device)
                given = {}
                if decoder_prompt:
                    given["decoder_input_ids"] = S.decoder_start(net, decoder_prompt, len(idx), accelerator.device)
                with accelerator.autocast():
                    ids = net.generate(**enc, **given, **greedy)
                ids = ids[:, 1 + len(decoder_prompt):] if decoder_prompt else ids  # the answer only
                texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
            out += zip(idx, texts) if keep else []
    texts = dict(gather_object(out) if accelerator.num_processes > 1 else out)
    return [texts[i] for i in range(len(sources))]


@torch.no_grad()
def score(model, tokenizer, sources: list[str], candidates: list[list[str]], accelerator, batch_size: int,
          max_input_length: int, max_target_length: int, decoder_prompt: list[int] | None = None) -> list[list[float]]:
    """Summed log-likelihood of each candidate target (EOS included) given its source, per example; each
    process scores every num_processes-th example, then all are gathered. decoder_prompt: given before each
    candidate (dss-shared), not scored."""
    from accelerate.utils import gather_object

    out = []
    with evaluating(model, accelerator) as net:
        for idx, keep in my_batches(len(sources), batch_size, accelerator, key=lambda i: len(sources[i])):
            with accelerator.autocast():
                if C.is_causal(net):  # the prompt runs once per candidate: no encoder to share
                    totals = C.score_batch(net, tokenizer, [sources[i] for i in idx], [candidates[i] for i in idx],
                                           accelerator.device, max_input_length, max_target_length)
                else:
                    totals = _score_seq2seq(net, tokenizer, [sources[i] for i in idx],
                                            [candidates[i] for i in idx], accelerator.device, max_input_length,
                                            max_target_length, decoder_prompt)
            out += zip(idx, totals) if keep else []
    scores = dict(gather_object(out) if accelerator.num_processes > 1 else out)
    return [scores[i] for i in range(len(sources))]


def _score_seq2seq(net, tokenizer, sources: list[str], candidates: list[list[str]], device, max_input_length: int,
                   max_target_length: int, decoder_prompt: list[int] | None) -> list[list[float]]:
    """The summed log-likelihoods of each source's candidates; the encoder runs once per source."""
    enc = tokenizer(sources, padding=True, truncation=True, max_length=max_input_length,
                    return_tensors="pt").to(device)
    row_of = [j for j, cands in enumerate(candidates) for _ in cands]  # candidate row -> example row
    flat = [c for cands in candidates for c in cands]
    tgt = tokenizer(text_target=flat, padding=True, truncation=True, max_length=max_target_length,
                    return_tensors="pt")["input_ids"].to(device)
    full = tgt.masked_fill(tgt == tokenizer.pad_token_id, -100)  # [cands, tgt_len]
    if decoder_prompt:
        given = torch.tensor(decoder_prompt, device=device).expand(len(flat), -1)
        full = torch.cat([given, full], 1)
    labels = full.clone()
    labels[:, :len(decoder_prompt or [])] = -100  # the prompt is given, not scored
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


def candidate_sets(task, examples) -> list[list[str]]:
    """The closed answer set of every example (ConfigError when the task has none, e.g. SVAMP's equations)."""
    from dss.core.errors import ConfigError
    sets = [task.candidates(e) for e in examples]
    if any(not c for c in sets):
        raise ConfigError(f"eval_mode=score needs a closed answer set, and task {task.name!r} has none "
                          "(its answers are open text): use eval_mode=generate")
    return sets


def evaluate(model, tokenizer, task, examples, cfg: TrainConfig, accelerator) -> tuple[float, list[dict]]:
    """Label-only answers to examples in cfg.eval_mode; (accuracy, one record per example: prediction,
    correct, and with scoring the candidates' scores). Accuracy as cfg.protocol measures it: dss's normalized
    match (SVAMP by exact value), or the reference's exact match of the decoded text against the tokenizer's
    decoding of the label (SVAMP as Python floats)."""
    method, protocol = METHODS[cfg.method], PROTOCOLS[cfg.protocol]
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
        # the reference's generation_max_length counts the decoder's start token: 64 lets 63 new tokens out
        max_new = max(1, max_new - protocol.generation_counts_start)
        texts = generate(model, tokenizer, sources, accelerator, cfg.eval_batch_size, cfg.max_input_length,
                         max_new, prompt)
        exact = protocol.accuracy == "exact" and not method.rationale_in_target  # the decoded text as it is
        records = [{"prediction": t if exact else method.parse_prediction(t)} for t in texts]
    if protocol.accuracy == "exact":
        ids = tokenizer(text_target=[e.label for e in examples], max_length=cfg.max_target_length,
                        truncation=True)["input_ids"]
        labels = tokenizer.batch_decode(ids, skip_special_tokens=True)
        correct = [reference.match(r["prediction"], y, task.metric) for r, y in zip(records, labels)]
    else:
        correct = [task.is_correct(r["prediction"], e.label) for r, e in zip(records, examples)]
    for r, c in zip(records, correct):
        r["correct"] = c
    return (sum(correct) / len(correct) if correct else 0.0), records
