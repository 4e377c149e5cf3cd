"""`dss train`: one student, one task, one self-contained run folder, on `accelerate.Accelerator`.

    results = train(TrainConfig(task="demo", method="dss", max_steps=200, output_dir="runs/demo"))

Runs the same under `python`, `accelerate launch` (DDP; FSDP/DeepSpeed via an Accelerate config file) and
`torchrun --nproc_per_node 2` (CPU: gloo). Only the main process writes. Run folder:
    config.json  metrics.jsonl  results.json  predictions.jsonl  model/  checkpoints/  tokenizer/  tb/  cache/
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from dss import data as D
from dss import run_folder as RF
from dss.core.io import atomic_write_json
from dss.runinfo import run_info
from dss.tasks.rationales import apply_rationales
from dss.train_config import TrainConfig


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


def load_splits(cfg: TrainConfig):
    """(task, {split: examples}) as the task's loader gives them."""
    from dss.tasks import get_task

    task = get_task(cfg.task, **cfg.task_options)
    return task, {s: task.load(s, cfg.data_dir) for s in ("train", "valid", "test")}


def data_fingerprint(cfg: TrainConfig) -> str:
    """The fingerprint a run with this config records for its data (see load_data)."""
    return D.fingerprint(load_splits(cfg)[1], cfg.rationales)


def load_data(cfg: TrainConfig):
    """(task, train items, valid examples, test examples, stats). The only place examples come from.

    stats["fingerprint"] hashes the content of every split read (and of the rationale file): a run, a resume
    or a sweep cell counts as the same only when it trained on the same data.
    """
    log(f"loading {cfg.task} data")
    task, splits = load_splits(cfg)
    stats = {"fingerprint": D.fingerprint(splits, cfg.rationales)}
    train = D.nested_subset(splits["train"], cfg.train_fraction, cfg.seed)
    stats["train_subset"] = len(train)
    if cfg.rationales:
        stats["rationale_file"] = apply_rationales(train, cfg.rationales, task)
    items, item_stats = D.training_items(train, cfg)
    stats.update(item_stats)
    cap = cfg.max_eval_examples
    valid, test = splits["valid"][:cap], splits["test"][:cap]
    stats.update(valid_examples=len(valid), test_examples=len(test))
    log(f"{len(splits['train'])} train examples, {len(train)} in the {100 * cfg.train_fraction:g} % subset, "
        f"{len(items)} used; {len(valid)} valid, {len(test)} test")
    return task, items, valid, test, stats


def build_student(cfg: TrainConfig, items, run: Path, accelerator):
    """(model, tokenizer). tiny: the tokenizer is trained once (main process) and stored in run/tokenizer."""
    from accelerate.utils import set_seed

    from dss import model as M

    if cfg.model != "tiny":
        return M.load_pretrained(cfg.model)
    tok_dir = run / "tokenizer"
    with accelerator.main_process_first():
        if not (tok_dir / "tokenizer.json").is_file():
            texts = [t for it in items for r in it for t in (r.source, r.target)]
            texts = [t.removeprefix(cfg.label_prefix).removeprefix(cfg.rationale_prefix) for t in texts]
            log(f"training a tokenizer of at most {cfg.vocab_size} pieces on {len(texts)} texts")
            M.train_tokenizer(texts, [cfg.label_prefix, cfg.rationale_prefix], cfg.vocab_size, tok_dir)
        tokenizer = M.load_tokenizer(tok_dir)
    set_seed(cfg.seed)  # initialisation depends on the seed only
    return M.tiny_model(cfg, tokenizer), tokenizer


def batch_order(features, cfg: TrainConfig) -> D.LengthGroupedBatchSampler:
    return D.LengthGroupedBatchSampler([f["length"] for f in features], cfg.batch_size // cfg.grad_accum,
                                       cfg.grad_accum, cfg.seed, cfg.group_by_length)


def step_batches(features, order, start: int, cfg: TrainConfig, accelerator, pad_id: int,
                 split_tasks: bool = True):
    """The micro-batches of each optimizer step from `start` to max_steps, collated on this process's device.

    Step s is batch s mod steps_per_epoch of epoch s // steps_per_epoch, and an epoch's batches are a pure
    function of (seed, epoch): a run resumed at any step sees what the uninterrupted run saw. Each process
    takes its contiguous slice of every global micro-batch.
    """
    per_epoch, k = order.steps_per_epoch, cfg.grad_accum
    rank, world = accelerator.process_index, accelerator.num_processes
    step = start
    while step < cfg.max_steps:
        epoch, done = divmod(step, per_epoch)
        batches = order.epoch_batches(epoch)
        for i in range(done, min(per_epoch, done + cfg.max_steps - step)):
            micro = []
            for b in batches[i * k:(i + 1) * k]:
                n = len(b) // world
                mine = [features[j] for j in b[rank * n:(rank + 1) * n]]
                micro.append(D.to_device(D.collate(mine, pad_id, split_tasks), accelerator.device))
            yield micro
            step += 1


def train_step(model, micro_batches, alpha, accelerator, optimizer, scheduler, max_grad_norm):
    """One optimizer step over grad_accum micro-batches of one or two parts (forward passes) each.

    Every part's loss divides by the step's global token counts, so the parts, micro-batches and processes
    add up to the token-mean loss of the whole global batch. Returns [loss, label_loss, rationale_loss] still
    on device and local to this process: no host sync here.
    """
    counts = torch.stack([sum(b["n_label_tokens"] for b in micro_batches),
                          sum(b["n_rationale_tokens"] for b in micro_batches)]).to(accelerator.device)
    counts = accelerator.reduce(counts, "sum").clamp(min=1)  # global target tokens of this step, per task
    shift = accelerator.unwrap_model(model).prepare_decoder_input_ids_from_labels
    parts = [p for b in micro_batches for p in b["parts"]]
    total = torch.zeros(3, device=accelerator.device)
    for k, part in enumerate(parts):
        with nullcontext() if k == len(parts) - 1 else accelerator.no_sync(model):  # all-reduce once a step
            # [rows, src_len] -> logits [rows, tgt_len, vocab]
            logits = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"],
                           decoder_input_ids=shift(labels=part["labels"])).logits
            losses = multitask_loss(logits, part["labels"], part["is_rationale"], alpha, counts[0], counts[1])
            # DDP averages gradients over processes; the loss already divides by global counts
            accelerator.backward(losses[0] * accelerator.num_processes)
        total += torch.stack(losses).detach()
    if max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return total


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
    max_new = cfg.max_target_length if cfg.method == "single" else cfg.eval_max_new_tokens
    texts = generate(model, tokenizer, [D.eval_source(e, cfg) for e in examples], accelerator,
                     cfg.eval_batch_size, cfg.max_input_length, max_new)
    preds = [D.parse_prediction(t, cfg) for t in texts]
    return task.accuracy(preds, [e.label for e in examples]), preds


def save_checkpoint(accelerator, run: Path, step: int, state: dict) -> None:
    """Full training state for --resume; only the newest checkpoint is kept."""
    ckpt = run / "checkpoints" / f"step_{step:08d}"
    accelerator.save_state(str(ckpt))
    if accelerator.is_main_process:
        atomic_write_json(ckpt / "trainer_state.json", {**state, "step": step})
        for old in (run / "checkpoints").glob("step_*"):
            if old != ckpt:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def latest_checkpoint(run: Path) -> Path | None:
    done = [c for c in (run / "checkpoints").glob("step_*") if (c / "trainer_state.json").is_file()]
    return max(done, key=lambda c: int(c.name.split("_")[1])) if done else None


def save_student(model, tokenizer, cfg: TrainConfig, accelerator, path: Path, step: int) -> None:
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(str(path), safe_serialization=True)
        tokenizer.save_pretrained(str(path))
        # what `dss predict` needs to build inputs the way training did
        atomic_write_json(path / "dss.json", {"task": cfg.task, "method": cfg.method, "step": step,
                                       "label_prefix": cfg.label_prefix, "rationale_prefix": cfg.rationale_prefix,
                                       "max_input_length": cfg.max_input_length,
                                       "eval_max_new_tokens": cfg.eval_max_new_tokens,
                                       "max_target_length": cfg.max_target_length})


# what a started run leaves in its folder (the token cache is not listed: it is keyed by content)
RUN_FILES = ("checkpoints", "model", "tokenizer", "tb", "metrics.jsonl", "results.json", "config.json",
             "predictions.jsonl")


def prepare_run(cfg: TrainConfig, run: Path, accelerator) -> str:
    """What to do with the run folder: 'fresh', 'resume' (from its latest checkpoint) or 'finished'.

    An existing run is never replaced silently: without resume or overwrite, a folder holding any of a run's
    files is an error. resume on a folder with nothing to resume says so and starts at step 0.
    """
    from dss.core.errors import ConfigError

    if (run / "bench.yaml").is_file():
        raise ConfigError(f"{run} is the folder of a `dss bench` sweep; give this run its own output_dir")
    has_results = RF.read_results(run) is not None
    ckpt = latest_checkpoint(run)
    started = any((run / f).exists() for f in RUN_FILES)
    mode = "fresh"
    if cfg.resume:
        mode = "finished" if has_results else "resume" if ckpt else "fresh"
        if mode == "fresh" and accelerator.is_main_process:
            print(f"dss train: resume: {run} holds no checkpoint yet"
                  f"{' (a run killed before its first one)' if started else ''}; starting at step 0",
                  file=sys.stderr)
    elif started and not cfg.overwrite:
        what = "a finished run" if has_results else "a run with a checkpoint" if ckpt else "a started run"
        raise ConfigError(f"{run} already holds {what}; pass resume=true to continue it or overwrite=true "
                          "to replace it")
    accelerator.wait_for_everyone()  # every process has decided before the main one changes anything
    if mode == "fresh" and accelerator.is_main_process:
        for stale in RUN_FILES:
            p = run / stale
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    return mode


def check_same_run(run: Path, cfg: TrainConfig, fingerprint: str) -> None:
    """A resumed or finished run continues only with the settings and data it was started with."""
    from dss.core.config import to_dict
    from dss.core.errors import ConfigError

    changes = RF.identity_changes(RF.read_config(run), to_dict(cfg), fingerprint)
    if changes:
        raise ConfigError(f"{run} was trained with other settings or data ({'; '.join(changes)}); pass "
                          "overwrite=true to start it over, or choose another output_dir")


def log_metrics(accelerator, run: Path, record: dict) -> None:
    if accelerator.is_main_process:
        RF.append_metrics(run, record)
    accelerator.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])


def make_accelerator(cfg: TrainConfig):
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import ProjectConfiguration

    run = Path(cfg.output_dir)
    accelerator = Accelerator(
        # several processes and no GPU (torchrun --nproc_per_node 2 on CPU): Accelerate's gloo backend
        cpu=int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available(),
        mixed_precision=cfg.mixed_precision, log_with="tensorboard" if cfg.tensorboard else None,
        project_config=ProjectConfiguration(project_dir=str(run), logging_dir=str(run / "tb")),
        # one scheduler step per optimizer step, however many processes (batches are ours: see step_batches)
        dataloader_config=DataLoaderConfiguration(split_batches=True))
    # T5 ties its embeddings and lm_head; accelerate would warn at every checkpoint that it stored them once
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)
    if cfg.batch_size % (cfg.grad_accum * accelerator.num_processes):
        from dss.core.errors import ConfigError
        raise ConfigError(f"batch_size {cfg.batch_size} must divide by grad_accum x processes "
                          f"({cfg.grad_accum} x {accelerator.num_processes})")
    return accelerator


def make_optimizer(model, cfg: TrainConfig):
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]  # norms and biases
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_factor, warmup_steps=cfg.warmup_steps, max_steps=cfg.max_steps))
    return optimizer, scheduler


def resume_state(run: Path, accelerator, mode: str) -> dict:
    """Trainer state from the latest checkpoint (model, optimizer, scheduler, RNGs restored), or a fresh one.
    metrics.jsonl keeps exactly the lines up to that step: later ones and torn ones are written again."""
    state = {"step": 0, "best_valid_accuracy": -1.0, "best_step": None, "train_seconds": 0.0, "eval_history": []}
    ckpt = latest_checkpoint(run) if mode == "resume" else None
    if ckpt is not None:
        accelerator.load_state(str(ckpt))
        state = json.loads((ckpt / "trainer_state.json").read_text())
        log(f"resuming {run} from step {state['step']}")
    if accelerator.is_main_process:
        RF.repair_metrics(run, state["step"])
    return state


def log(message: str) -> None:
    """A phase of training, on the main process's stderr (the progress line says how far it is)."""
    from accelerate import PartialState
    if PartialState().is_main_process and os.environ.get("DSS_QUIET") != "1":
        print(f"dss train: {message}", file=sys.stderr, flush=True)


def train(cfg: TrainConfig) -> dict:
    """Train, evaluate on valid every eval_steps (best model kept), test the best; returns results.json."""
    from accelerate.utils import set_seed
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" / "Writing" bars at every checkpoint
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    accelerator = make_accelerator(cfg)
    run = Path(cfg.output_dir)
    with RF.run_lock(run, accelerator.is_main_process):
        mode = prepare_run(cfg, run, accelerator)
        set_seed(cfg.seed)
        task, items, valid, test, stats = load_data(cfg)
        if mode != "fresh":
            check_same_run(run, cfg, stats["fingerprint"])
        if mode == "finished":
            return RF.read_results(run)
        return fit(cfg, run, accelerator, mode, task, items, valid, test, stats)


def fit(cfg: TrainConfig, run: Path, accelerator, mode: str, task, items, valid, test, stats) -> dict:
    """The training loop, flat: batches, steps, logging, evaluation and checkpoints, then the test."""
    model, tokenizer = build_student(cfg, items, run, accelerator)
    log(f"tokenizing {sum(map(len, items))} rows of {len(items)} examples")
    with accelerator.main_process_first():  # main tokenizes and caches; the others read the cache
        features = D.cached_tokenize(items, tokenizer, cfg, run / "cache")
    order = batch_order(features, cfg)
    optimizer, scheduler = make_optimizer(model, cfg)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    state = resume_state(run, accelerator, mode)
    stats["parameters"] = sum(p.numel() for p in model.parameters())
    if accelerator.is_main_process:
        atomic_write_json(run / "config.json", run_info(cfg, stats, accelerator.num_processes))
    if cfg.tensorboard:
        accelerator.init_trackers("tb", config={k: v for k, v in vars(cfg).items()
                                                if isinstance(v, (int, float, str, bool))})
    alpha = cfg.alpha if cfg.method == "dss" else 1.0  # the other methods have only the label task
    window = torch.zeros(3, device=accelerator.device)  # summed step losses since the last log line
    last_log, t0 = state["step"], time.perf_counter()
    progress = Progress(cfg.max_steps, state["step"], accelerator.is_local_main_process)
    log(f"training {cfg.method} for {cfg.max_steps - state['step']} steps of {cfg.batch_size} examples "
        f"({order.steps_per_epoch} steps an epoch)")
    model.train()
    for micro in step_batches(features, order, state["step"], cfg, accelerator, tokenizer.pad_token_id):
        window += train_step(model, micro, alpha, accelerator, optimizer, scheduler, cfg.max_grad_norm)
        step = state["step"] = state["step"] + 1
        is_eval = step % cfg.eval_steps == 0 or step == cfg.max_steps
        if step % cfg.log_steps == 0 or is_eval:
            state["train_seconds"] += time.perf_counter() - t0
            progress.loss = log_losses(accelerator, run, cfg, step, window, step - last_log,
                                       scheduler.get_last_lr()[0])
            last_log = step
        progress.update(step)
        if is_eval:
            evaluate_and_checkpoint(model, tokenizer, task, valid, cfg, accelerator, run, state)
        if step % cfg.log_steps == 0 or is_eval:
            t0 = time.perf_counter()  # evaluation and checkpoints do not count as training time
    progress.close()
    results = finish(cfg, run, task, test, state, stats, accelerator)
    accelerator.end_training()
    return results


def evaluate_and_checkpoint(model, tokenizer, task, valid, cfg: TrainConfig, accelerator, run: Path,
                            state: dict) -> None:
    """Valid accuracy now; the best model so far is kept (selection on valid only, never test)."""
    step = state["step"]
    acc, _ = evaluate(model, tokenizer, task, valid, cfg, accelerator)
    log_metrics(accelerator, run, {"step": step, "valid_accuracy": acc})
    state["eval_history"].append([step, acc])
    if acc > state["best_valid_accuracy"]:
        state["best_valid_accuracy"], state["best_step"] = acc, step
        save_student(model, tokenizer, cfg, accelerator, run / "model", step)
    log(f"step {step}/{cfg.max_steps}: valid accuracy {100 * acc:.1f} % "
        f"(best {100 * state['best_valid_accuracy']:.1f} % at step {state['best_step']})")
    save_checkpoint(accelerator, run, step, state)


class Progress:
    """A tqdm bar on a terminal; elsewhere (logs, CI, a sweep's workers) a plain line every 5 % of the steps.
    TQDM_DISABLE=1 (set by `dss bench --jobs N` in its workers) silences both."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self.total, self.loss, self.t0, self.first = total, None, time.perf_counter(), initial
        self.enabled = enabled and os.environ.get("TQDM_DISABLE") != "1"
        self.every = max(1, total // 20)
        self.bar = None
        if self.enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=initial, desc="train")

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if self.loss is not None:
                self.bar.set_postfix(loss=f"{self.loss:.4f}", refresh=False)
        elif self.enabled and (step % self.every == 0 or step == self.total):
            rate = (step - self.first) / max(time.perf_counter() - self.t0, 1e-9)
            loss = "" if self.loss is None else f", loss {self.loss:.4f}"
            print(f"dss train: step {step}/{self.total} ({100 * step // self.total} %{loss}, {rate:.2f} steps/s)",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def log_losses(accelerator, run: Path, cfg: TrainConfig, step: int, window, steps: int, lr: float) -> float:
    """Log the mean losses of the last `steps` steps over all processes, and reset the window. This is the
    logging window's only host sync."""
    loss, label_loss, rationale_loss = (accelerator.reduce(window, "sum") / steps).tolist()
    record = {"step": step, "lr": lr, "loss": loss, "label_loss": label_loss}
    if cfg.method == "dss":
        record["rationale_loss"] = rationale_loss
    log_metrics(accelerator, run, record)
    window.zero_()
    return loss


def finish(cfg: TrainConfig, run: Path, task, test, state: dict, stats: dict, accelerator) -> dict:
    """Test accuracy of the best checkpoint (chosen on valid), predictions.jsonl and results.json."""
    from transformers import AutoModelForSeq2SeqLM

    from dss.model import load_tokenizer

    accelerator.wait_for_everyone()
    best = AutoModelForSeq2SeqLM.from_pretrained(str(run / "model")).to(accelerator.device)
    tokenizer = load_tokenizer(run / "model")
    test_acc, preds = evaluate(best, tokenizer, task, test, cfg, accelerator)
    log(f"test accuracy {100 * test_acc:.1f} % (model of step {state['best_step']}, chosen on valid)")
    trained = cfg.max_steps * cfg.batch_size
    results = {"task": cfg.task, "method": cfg.method, "model": cfg.model, "train_fraction": cfg.train_fraction,
               "seed": cfg.seed, "valid_accuracy": state["best_valid_accuracy"], "test_accuracy": test_acc,
               "best_step": state["best_step"], "max_steps": cfg.max_steps,
               "train_examples": stats["train_examples"], "valid_examples": stats["valid_examples"],
               "test_examples": len(test), "chance": task.chance(), "data": stats,
               "protocol": RF.PROTOCOL,
               "train_seconds": round(state["train_seconds"], 3),
               "examples_per_second": round(trained / max(state["train_seconds"], 1e-9), 2),
               "num_processes": accelerator.num_processes}
    if accelerator.is_main_process:
        with open(run / "predictions.jsonl", "w") as fh:
            fh.writelines(json.dumps({"id": ex.id, "input": ex.input, "prediction": p, "label": ex.label,
                                     "correct": task.is_correct(p, ex.label)}) + "\n" for ex, p in zip(test, preds))
        atomic_write_json(run / "results.json", results)
    accelerator.wait_for_everyone()
    return results
