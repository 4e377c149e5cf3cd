"""`dss train`: one student, one task, one self-contained run folder, on `accelerate.Accelerator`.

    results = train(TrainConfig(task="demo", method="dss", max_steps=200))  # into runs/demo-dss

Runs the same under `python`, `accelerate launch` (DDP; FSDP v2 through an Accelerate config file, see
dss.student.fsdp; DeepSpeed is refused) and `torchrun --nproc_per_node 2` (CPU: gloo). Only the main process
writes. Run folder:
    config.json  metrics.jsonl  results.json  predictions.jsonl  model/  checkpoints/  tokenizer/  tb/  cache/
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from dss.core.config import to_dict
from dss.core.errors import ConfigError
from dss.core.io import disk_space
from dss.student import batching, fsdp, run_folder
from dss.student.checkpoints import latest_checkpoint, save_checkpoint, usable_checkpoint
from dss.student.config import TrainConfig
from dss.student.data import batch_order, load_data, step_batches
from dss.student.evaluate import evaluate
from dss.student.kinds import kind_of
from dss.student.messages import Progress, log
from dss.student.methods import METHODS
from dss.student.prepare import build_student, make_accelerator, make_optimizer, start_trackers
from dss.student.protocols import PROTOCOLS
from dss.student.run_folder import run_info, save_student


def train_step(model, micro_batches, cfg: TrainConfig, accelerator, optimizer, scheduler, kind):
    """One optimizer step over grad_accum micro-batches of one or two parts (forward passes) each.

    dss's protocol: every part's loss divides by the step's global token counts, so the parts, micro-batches
    and processes add up to the token-mean loss of the whole global batch. The reference's: each micro-batch's
    own token means, averaged over micro-batches and (by DDP) processes, as Seq2SeqTrainer computes them.
    Returns [loss, label_loss, rationale_loss] still on device and local to this process: no host sync here.
    """
    alpha = METHODS[cfg.method].alpha(cfg.alpha)  # 1.0: a method without a rationale task
    per_device = PROTOCOLS[cfg.protocol].loss_mean == "per_device"
    counts = torch.stack([sum(b["n_label_tokens"] for b in micro_batches),
                          sum(b["n_rationale_tokens"] for b in micro_batches)]).to(accelerator.device)
    counts = accelerator.reduce(counts, "sum").clamp(min=1)  # global target tokens of this step, per task
    net = accelerator.unwrap_model(model)
    parts = [(p, b) for b in micro_batches for p in b["parts"]]
    total = torch.zeros(3, device=accelerator.device)
    for k, (part, micro) in enumerate(parts):
        if per_device:  # this micro-batch's own token means; DDP averages processes, we average micro-batches
            n = torch.stack([micro["n_label_tokens"], micro["n_rationale_tokens"]]).to(accelerator.device)
            divide, scale = n.clamp(min=1) * len(micro_batches), 1
        else:  # DDP averages gradients over processes; the loss already divides by global counts
            divide, scale = counts, 1 if kind.CALLS_PAST_FORWARD else accelerator.num_processes
        # all-reduce once a step (a kind that calls the model's parts directly syncs by itself, below)
        last = k == len(parts) - 1 or kind.CALLS_PAST_FORWARD
        with nullcontext() if last else accelerator.no_sync(model):
            # past the model's wrapped forward, autocast must be asked for again
            with accelerator.autocast() if kind.CALLS_PAST_FORWARD else nullcontext():
                losses = kind.losses(model, net, part, alpha, divide)
            accelerator.backward(losses[0] * scale)
        total += torch.stack(losses).detach()
    if kind.CALLS_PAST_FORWARD and accelerator.num_processes > 1:
        kind.sync_gradients(net)  # DDP's hooks never ran: the loss divides by global counts, so sum
    if cfg.max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return total


def train(cfg: TrainConfig) -> dict:
    """Train, evaluate on valid every eval_steps (best model kept), test the best; returns results.json."""
    from accelerate.utils import set_seed
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" / "Writing" bars at every checkpoint
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    accelerator = make_accelerator(cfg)
    run = Path(cfg.output_dir)
    with run_folder.run_lock(run, accelerator.is_main_process), \
            disk_space(run, "the checkpoints written before are whole: free some space and rerun with resume=true"):
        run_folder.check_shared(run)  # every process sees what the main one writes (several nodes: one filesystem)
        mode = prepare_run(cfg, run, accelerator)
        set_seed(cfg.seed)
        data = load_data(cfg)
        if mode != "fresh":
            check_same_run(run, cfg, data.stats["fingerprint"], accelerator.mixed_precision)
        if mode == "finished":
            return run_folder.read_results(run)
        return fit(cfg, run, accelerator, mode, data)


def fit(cfg: TrainConfig, run: Path, accelerator, mode: str, data) -> dict:
    """The training loop, flat: batches, steps, logging, evaluation and checkpoints, then the test."""
    items, stats = data.items, data.stats
    model, tokenizer = build_student(cfg, items, run, accelerator)
    kind = kind_of(model, cfg.method)  # seq2seq, causal or shared: the one place that asks
    kind.check_parallelism(accelerator.distributed_type.value)
    fsdp.prepare(model, cfg, accelerator)  # under FSDP: what it needs, before accelerator.prepare
    log(f"tokenizing {sum(map(len, items))} rows of {len(items)} examples")
    with accelerator.main_process_first():  # main tokenizes and caches; the others read the cache
        features = batching.cached_tokenize(items, tokenizer, cfg, run / "cache", kind)
    order = batch_order(features, cfg, accelerator.num_processes)
    optimizer, scheduler = make_optimizer(model, cfg)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    state = resume_state(run, accelerator, mode)
    stats.update(parameters=sum(p.numel() for p in model.parameters()),
                 trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad))
    if accelerator.is_main_process:
        run_folder.write_config(run, run_info(cfg, stats, accelerator.num_processes, accelerator.mixed_precision))
        run_folder.write_splits(run, data.splits)
    start_trackers(cfg, run, accelerator)
    window = torch.zeros(3, device=accelerator.device)  # summed step losses since the last log line
    last_log, t0 = state["step"], time.perf_counter()
    progress = Progress(cfg.max_steps, state["step"], accelerator.is_local_main_process)
    log(f"training {cfg.method} for {cfg.max_steps - state['step']} steps of {cfg.batch_size} examples "
        f"({order.steps_per_epoch} steps an epoch)")
    model.train()
    batches = step_batches(features, order, state["step"], cfg, accelerator, tokenizer.pad_token_id, kind)
    for micro in batches:
        lr = scheduler.get_last_lr()[0]  # the rate this step trains at
        window += train_step(model, micro, cfg, accelerator, optimizer, scheduler, kind)
        step = state["step"] = state["step"] + 1
        is_eval = step % cfg.eval_steps == 0 or step == cfg.max_steps
        if step % cfg.log_steps == 0 or is_eval:
            wait_for_device(accelerator.device)  # a GPU runs the step's kernels after the step returns
            state["train_seconds"] += time.perf_counter() - t0
            progress.loss = log_losses(accelerator, run, cfg, step, window, step - last_log, lr)
            last_log = step
        progress.update(step)
        if is_eval:
            evaluate_and_checkpoint(model, tokenizer, data, cfg, accelerator, run, state)
        if step % cfg.log_steps == 0 or is_eval:
            t0 = time.perf_counter()  # evaluation and checkpoints do not count as training time
    progress.close()
    if cfg.test_last and "test_accuracy_last" not in state:  # the reference's figure: the last model, no selection
        state["test_accuracy_last"] = evaluate(model, tokenizer, data.task, data.test, cfg, accelerator)[0]
    results = finish(cfg, run, data.task, data.test, state, stats, accelerator)
    accelerator.end_training()
    return results


def evaluate_and_checkpoint(model, tokenizer, data, cfg: TrainConfig, accelerator, run: Path, state: dict) -> None:
    """Valid accuracy now; the best model so far is kept (selection on valid only, never test). Under the
    reference's protocol test is evaluated too (metrics.jsonl), as the reference evaluates it at every step."""
    step = state["step"]
    acc, _ = evaluate(model, tokenizer, data.task, data.valid, cfg, accelerator)
    record = {"step": step, "valid_accuracy": acc}
    if PROTOCOLS[cfg.protocol].test_every_eval:
        record["test_accuracy"] = state["test_accuracy_last"] = \
            evaluate(model, tokenizer, data.task, data.test, cfg, accelerator)[0]
    log_metrics(accelerator, run, record)
    state["eval_history"].append([step, acc])
    if acc > state["best_valid_accuracy"]:
        state["best_valid_accuracy"], state["best_step"] = acc, step
        save_student(model, tokenizer, cfg, accelerator, run / "model", step)
    log(f"step {step}/{cfg.max_steps}: valid accuracy {100 * acc:.1f} % "
        f"(best {100 * state['best_valid_accuracy']:.1f} % at step {state['best_step']})"
        + (f", test {100 * record['test_accuracy']:.1f} %" if "test_accuracy" in record else ""))
    save_checkpoint(accelerator, run, step, state, cfg.keep_checkpoints)


def wait_for_device(device) -> None:
    """Block until the device has run every kernel queued so far (CUDA runs them asynchronously: a clock read
    after the step returns would not count them); nothing to wait for on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def log_losses(accelerator, run: Path, cfg: TrainConfig, step: int, window, steps: int, lr: float) -> float:
    """Log the mean losses of the last `steps` steps over all processes, and reset the window. This is the
    logging window's only host sync."""
    loss, label_loss, rationale_loss = (accelerator.reduce(window, "sum") / steps).tolist()
    record = {"step": step, "lr": lr, "loss": loss, "label_loss": label_loss}
    if METHODS[cfg.method].rationale_task:
        record["rationale_loss"] = rationale_loss
    log_metrics(accelerator, run, record)
    window.zero_()
    return loss


def finish(cfg: TrainConfig, run: Path, task, test, state: dict, stats: dict, accelerator) -> dict:
    """Test accuracy of the best checkpoint (chosen on valid), predictions.jsonl and results.json."""
    from dss.student.model import load_student_model, load_tokenizer

    accelerator.wait_for_everyone()
    best = load_student_model(run / "model").to(accelerator.device)
    tokenizer = load_tokenizer(run / "model")
    t0 = time.perf_counter()
    test_acc, records = evaluate(best, tokenizer, task, test, cfg, accelerator)
    eval_seconds = time.perf_counter() - t0
    log(f"test accuracy {100 * test_acc:.1f} % (model of step {state['best_step']}, chosen on valid; "
        f"{cfg.eval_mode}, {len(test) / max(eval_seconds, 1e-9):.0f} examples/s)")
    trained = cfg.max_steps * cfg.batch_size
    results = {"task": cfg.task, "method": cfg.method, "model": cfg.model, "train_fraction": cfg.train_fraction,
               "seed": cfg.seed, "valid_accuracy": state["best_valid_accuracy"], "test_accuracy": test_acc,
               "best_step": state["best_step"], "max_steps": cfg.max_steps,
               "train_examples": stats["train_examples"], "valid_examples": stats["valid_examples"],
               "test_examples": len(test), "chance": task.chance(), "data": stats,
               "parameters": stats["parameters"], "protocol": run_folder.PROTOCOL, "eval_mode": cfg.eval_mode,
               "precision": accelerator.mixed_precision,
               "test_accuracy_last": state.get("test_accuracy_last"),
               "eval_examples_per_second": round(len(test) / max(eval_seconds, 1e-9), 1),
               "train_seconds": round(state["train_seconds"], 3),
               "examples_per_second": round(trained / max(state["train_seconds"], 1e-9), 2),
               "num_processes": accelerator.num_processes}
    if accelerator.is_main_process:
        run_folder.write_predictions(run, [{"id": ex.id, "input": ex.input, "prediction": r["prediction"],
                                    "label": ex.label, "correct": r["correct"],
                                    "eval_mode": cfg.eval_mode, **({"scores": r["scores"]} if "scores" in r else {})}
                                   for ex, r in zip(test, records)])
        run_folder.write_results(run, results)
    accelerator.wait_for_everyone()
    return results


def prepare_run(cfg: TrainConfig, run: Path, accelerator) -> str:
    """What to do with the run folder: 'fresh', 'resume' (from its latest checkpoint) or 'finished'.

    An existing run is never replaced silently: without resume or overwrite, a folder holding any of a run's
    files is an error. resume on a folder with nothing to resume says so and starts at step 0.
    """

    if (run / "bench.yaml").is_file():
        raise ConfigError(f"{run} is the folder of a `dss bench` sweep; give this run its own output_dir")
    has_results = run_folder.read_results(run) is not None
    ckpt = latest_checkpoint(run)
    started = any((run / f).exists() for f in run_folder.RUN_FILES)
    mode = "fresh"
    if cfg.resume:
        mode = "finished" if has_results else "resume" if ckpt else "fresh"
        if mode == "fresh" and started and accelerator.is_main_process:  # (a new folder: nothing to say)
            print(f"dss train: resume: {run} holds no checkpoint yet (a run killed before its first one); "
                  "starting at step 0", file=sys.stderr)
    elif started and not cfg.overwrite:
        what = "a finished run" if has_results else "a run with a checkpoint" if ckpt else "a started run"
        raise ConfigError(f"{run} already holds {what}; pass resume=true to continue it or overwrite=true "
                          "to replace it")
    accelerator.wait_for_everyone()  # every process has decided before the main one changes anything
    if mode == "fresh" and accelerator.is_main_process:
        run_folder.refuse_links(run)
        for stale in run_folder.RUN_FILES:
            p = run / stale
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    return mode


def check_same_run(run: Path, cfg: TrainConfig, fingerprint: str, precision: str) -> None:
    """A resumed or finished run continues only with the settings, data and precision it was started with
    (mixed_precision=auto resolves per machine: a run started in bf16 does not go on in fp32)."""
    stored = run_folder.read_config(run)
    changes = run_folder.identity_changes(stored, to_dict(cfg), fingerprint)
    was = (stored or {}).get("precision", precision)
    if was != precision:
        changes.append(f"precision: trained in {was}, this machine resolves mixed_precision={cfg.mixed_precision} "
                   f"to {precision} (pass mixed_precision={was})")
    if changes:
        raise ConfigError(f"{run} was trained with other settings or data ({'; '.join(changes)}); pass "
                          "overwrite=true to start it over, or choose another output_dir")


def log_metrics(accelerator, run: Path, record: dict) -> None:
    if accelerator.is_main_process:
        run_folder.append_metrics(run, record)
    accelerator.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])


def resume_state(run: Path, accelerator, mode: str) -> dict:
    """Trainer state from the latest checkpoint (model, optimizer, scheduler, RNGs restored), or a fresh one.
    metrics.jsonl keeps exactly the lines up to that step: later ones and torn ones are written again."""
    state = {"step": 0, "best_valid_accuracy": -1.0, "best_step": None, "train_seconds": 0.0, "eval_history": []}
    ckpt = usable_checkpoint(run, accelerator, log) if mode == "resume" else None
    if ckpt is not None:
        try:
            accelerator.load_state(str(ckpt))
        except Exception as e:  # whole files that still do not fit this run (another model, another world)
            raise ConfigError(f"{ckpt}: cannot be loaded into this run ({type(e).__name__}: {str(e)[:300]}); "
                              "pass overwrite=true to start over") from None
        state = json.loads((ckpt / "trainer_state.json").read_text())
        state.pop("files", None)  # the checkpoint's own manifest, not the loop's state
        log(f"resuming {run} from step {state['step']}")
    if accelerator.is_main_process:
        run_folder.repair_metrics(run, state["step"])
    return state
