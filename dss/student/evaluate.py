"""Label-only answers over all processes, for training's evaluation and `dss predict` alike (`answers`), two
ways (`eval_mode`):

    generate  greedy decoding of the label task, as the paper evaluates; any text can come out
    score     closed-set scoring, as lm-evaluation-harness and T0 score multiple choice: each candidate answer
              (the task's label set, or CQA's five choices of the row) is scored by the label task's summed
              log-likelihood, end-of-sequence included, given the input; the encoder runs once per example,
              the best candidate wins (ties: the first). Summed, not length-normalised: the summed score is the
              student's probability of writing exactly that answer, so its argmax is the candidate the student
              most likely writes whole, the decision exact-match accuracy rewards; length normalisation corrects
              models that were not trained on the answer format, and this one was.

How a batch is answered is the student kind's (dss.student.kinds); what is asked, the method's.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from dss.student.config import TrainConfig
from dss.student.kinds import kind_of
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
             max_new_tokens: int, kind, prompt: list[int] | None = None) -> list[str]:
    """Greedy generation; each process takes every num_processes-th input, then all texts are gathered.
    prompt: token ids the decoder starts with (dss-shared's task prefix), not part of the answer."""
    from accelerate.utils import gather_object

    out = []
    with evaluating(model, accelerator) as net:
        # synced: in lockstep a process whose batch ended keeps stepping until every process's has
        greedy = {"max_new_tokens": max_new_tokens, "do_sample": False, "num_beams": 1,
                  "synced_gpus": lockstep(accelerator)}
        for idx, keep in my_batches(len(sources), batch_size, accelerator, key=lambda i: len(sources[i])):
            with accelerator.autocast():
                texts = kind.generate(net, tokenizer, [sources[i] for i in idx], accelerator.device,
                                      max_input_length, greedy, prompt)
            out += zip(idx, texts) if keep else []
    texts = dict(gather_object(out) if accelerator.num_processes > 1 else out)
    return [texts[i] for i in range(len(sources))]


@torch.no_grad()
def score(model, tokenizer, sources: list[str], candidates: list[list[str]], accelerator, batch_size: int,
          max_input_length: int, max_target_length: int, kind, prompt: list[int] | None = None) -> list[list[float]]:
    """Summed log-likelihood of each candidate target (EOS included) given its source, per example; each
    process scores every num_processes-th example, then all are gathered."""
    from accelerate.utils import gather_object

    out = []
    with evaluating(model, accelerator) as net:
        for idx, keep in my_batches(len(sources), batch_size, accelerator, key=lambda i: len(sources[i])):
            with accelerator.autocast():
                totals = kind.score(net, tokenizer, [sources[i] for i in idx], [candidates[i] for i in idx],
                                    accelerator.device, max_input_length, max_target_length, prompt)
            out += zip(idx, totals) if keep else []
    scores = dict(gather_object(out) if accelerator.num_processes > 1 else out)
    return [scores[i] for i in range(len(sources))]


def answers(model, tokenizer, inputs: list[str], cfg: TrainConfig, accelerator, candidates=None,
            task: str = "label") -> list[dict]:
    """The student's answers to inputs: [{"prediction", "text"}] by greedy decoding (text: what was decoded), or
    with `candidates` (one list per input) [{"prediction", "scores"}], the best-scoring candidate. task:
    "label" (what evaluation asks) or "rationale" (`dss predict --rationale`). cfg supplies the method, the
    prefixes, the lengths, the batch size and the protocol. (dss.student.runtimes answers the same way from an
    exported student.)"""
    kind = kind_of(accelerator.unwrap_model(model), cfg.method)
    sources, prefix = asked(inputs, cfg, task)
    prompt = kind.prompt(tokenizer, prefix)
    if candidates is not None:
        return chosen(candidates, score(model, tokenizer, sources, candidates, accelerator, cfg.eval_batch_size,
                                        cfg.max_input_length, cfg.max_target_length, kind, prompt))
    texts = generate(model, tokenizer, sources, accelerator, cfg.eval_batch_size, cfg.max_input_length,
                     new_tokens(cfg, task), kind, prompt)
    return decoded(texts, cfg)


def asked(inputs: list[str], cfg: TrainConfig, task: str = "label") -> tuple[list[str], str]:
    """(the sources the student reads for `task`, the task's prefix), as the method builds them."""
    prefix = cfg.label_prefix if task == "label" else cfg.rationale_prefix
    return [METHODS[cfg.method].eval_source(x, prefix) for x in inputs], prefix


def new_tokens(cfg: TrainConfig, task: str = "label") -> int:
    """How many tokens greedy decoding may write for `task`."""
    if task == "rationale" or METHODS[cfg.method].rationale_in_target:
        return cfg.max_target_length
    # the reference's generation_max_length counts the decoder's start token: 64 lets 63 new tokens out
    return max(1, cfg.eval_max_new_tokens - PROTOCOLS[cfg.protocol].generation_counts_start)


def chosen(candidates: list[list[str]], scores: list[list[float]]) -> list[dict]:
    """[{"prediction": the best-scoring candidate (ties: the first), "scores"}] per input."""
    return [{"prediction": c[max(range(len(c)), key=s.__getitem__)],
             "scores": {k: round(v, 4) for k, v in zip(c, s)}} for c, s in zip(candidates, scores)]


def decoded(texts: list[str], cfg: TrainConfig) -> list[dict]:
    """[{"prediction", "text"}] of decoded texts: the label parsed out, or the text as it is where the
    protocol's accuracy is exact match."""
    method = METHODS[cfg.method]
    exact = PROTOCOLS[cfg.protocol].accuracy == "exact" and not method.rationale_in_target
    return [{"prediction": t if exact else method.parse_prediction(t), "text": t} for t in texts]


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
    correct, and with scoring the candidates' scores)."""
    candidates = candidate_sets(task, examples) if cfg.eval_mode == "score" else None
    records = answers(model, tokenizer, [e.input for e in examples], cfg, accelerator, candidates)
    return judged(records, tokenizer, task, examples, cfg)


def judged(records: list[dict], tokenizer, task, examples, cfg: TrainConfig) -> tuple[float, list[dict]]:
    """(accuracy, records with `correct`) of answers to examples. Accuracy as cfg.protocol measures it: dss's
    normalized match (SVAMP by exact value), or the reference's exact match of the decoded text against the
    tokenizer's decoding of the label (SVAMP as Python floats)."""
    if PROTOCOLS[cfg.protocol].accuracy == "exact":
        ids = tokenizer(text_target=[e.label for e in examples], max_length=cfg.max_target_length,
                        truncation=True)["input_ids"]
        labels = tokenizer.batch_decode(ids, skip_special_tokens=True)
        correct = [reference.match(r["prediction"], y, task.metric) for r, y in zip(records, labels)]
    else:
        correct = [task.is_correct(r["prediction"], e.label) for r, e in zip(records, examples)]
    for r, c in zip(records, correct):
        r.pop("text", None)
        r["correct"] = c
    return (sum(correct) / len(correct) if correct else 0.0), records
