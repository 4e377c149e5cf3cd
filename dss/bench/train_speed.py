"""`dss speed`: training throughput of dss's loop against the reference code's way of training.

The baseline is what the original Distilling Step-by-Step code ran: a `Seq2SeqTrainer` subclass whose
`compute_loss` makes two forward passes (label batch, rationale batch), fed by a collator that pads each task's
rows to the longest in a random batch. Variants of our loop isolate what makes it faster:

    dss          what `dss train` runs: length-grouped batches, each task's rows padded to their own longest
                 row and run as their own forward/backward, loss normalised by global token counts, no host
                 sync per step
    dss-joint    one forward pass over both tasks' rows (label rows padded to rationale length)
    dss-nogroup  random batches instead of length-grouped ones
    dss-plain    dss with transformers' own modules (fast_kernels=false)
    dss-shared   method dss-shared: x encoded once, the task prefix at the decoder's start (changes the method)
    baseline     the reference TaskPrefixTrainer

Every variant runs in a fresh process (so peak memory is its own) on the same model initialisation, data,
and global batch, for `warmup` untimed steps then `steps` timed ones.
"""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from dss.student.kinds import kind_of
from dss.student.methods import METHODS

VARIANTS = ("dss", "dss-joint", "dss-nogroup", "dss-plain", "dss-shared", "baseline")


def _setup(cfg):
    """(task items as features, tokenizer, freshly initialised model): what `dss train` builds, identical in
    every variant (the tokenizer and token cache are made once, in the parent, and reused)."""
    from dss.student import batching
    from dss.student.data import load_data
    from dss.student.prepare import build_student

    items = load_data(cfg).items
    model, tokenizer = build_student(cfg, items, Path(cfg.output_dir))
    features = batching.cached_tokenize(items, tokenizer, cfg, Path(cfg.output_dir) / "cache",
                                        kind_of(model, cfg.method))
    if METHODS[cfg.method].rationale_task:
        # the reference trains on examples that all have a rationale (its collator needs one per row); examples
        # without one (e-SNLI: PaLM's unparsed answers) are left out of every variant alike, and said so
        whole = [f for f in features if len(f["input_ids"]) > 1]
        if len(whole) < len(features):
            print(f"dss speed: {len(features) - len(whole)} of {len(features)} examples have no rationale row; "
                  "every variant runs on the other ones", file=sys.stderr)
        features = whole
    return features, tokenizer, model


def _peak_memory(device) -> int:
    import torch
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run_ours(cfg, variant: str, steps: int, warmup: int) -> dict:
    import torch
    from accelerate import Accelerator, DataLoaderConfiguration

    from dss.student import loop
    from dss.student.prepare import fresh_precision, precision

    cfg = dataclasses.replace(cfg, group_by_length=variant != "dss-nogroup", max_steps=warmup + steps)
    if variant == "dss-shared":
        cfg = dataclasses.replace(cfg, method="dss-shared")
    if variant == "dss-plain":
        cfg = dataclasses.replace(cfg, fast_kernels=False)
    features, tokenizer, model = _setup(cfg)
    fresh_precision(precision(cfg))
    accelerator = Accelerator(mixed_precision=precision(cfg),
                              dataloader_config=DataLoaderConfiguration(split_batches=True))
    optimizer, scheduler = loop.make_optimizer(model, cfg)  # exactly what `dss train` uses
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    tokens = torch.zeros((), dtype=torch.long, device=accelerator.device)
    kind = kind_of(model, cfg.method)
    batches = loop.step_batches(features, loop.batch_order(features, cfg), 0, cfg, accelerator, tokenizer.pad_token_id,
                             kind, split_tasks=variant != "dss-joint")
    t0 = None
    model.train()
    for done, micro in enumerate(batches):
        if done == warmup:
            if accelerator.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        if done >= warmup:  # real (non-pad) tokens, summed on the device: no host sync
            tokens = tokens + sum(_real_tokens(p) for b in micro for p in b["parts"])
        last = loop.train_step(model, micro, cfg, accelerator, optimizer, scheduler, kind)
    final_loss = float(last[0])  # the one host sync of the timed run
    seconds = time.perf_counter() - t0
    return _report(variant, cfg, steps, seconds, int(tokens), accelerator.device, final_loss,
                   accelerator.mixed_precision)


def _real_tokens(part: dict):
    """Source and target tokens of a part's rows. A dss-shared part counts each rationale row's source too, as
    the other variants do, so that tokens/s compares the same data (it encodes them once, not twice)."""
    if "label" not in part:
        return part["attention_mask"].sum() + (part["labels"] != -100).sum()
    lab, rat = part["label"], part.get("rationale")
    n = lab["attention_mask"].sum() + (lab["labels"] != -100).sum()
    if rat is not None:
        n = n + lab["attention_mask"][rat["row_of"]].sum() + (rat["labels"] != -100).sum()
    return n


def reference_trainer(cfg, warmup: int, timer: dict):
    """(collator class, trainer class, timing callback class) of the reference code's TaskPrefixTrainer: two
    forward passes per batch (label rows, rationale rows), each padded to its longest row in a random batch."""
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, TrainerCallback
    two_tasks = METHODS[cfg.method].rationale_task

    class TaskPrefixDataCollator(DataCollatorForSeq2Seq):
        def __call__(self, feats, return_tensors=None):
            pred = [{"input_ids": f["input_ids"], "labels": f["labels"]} for f in feats]
            if not two_tasks:
                return {"pred": super().__call__(pred, return_tensors)}
            expl = [{"input_ids": f["expl_input_ids"], "labels": f["aux_labels"]} for f in feats]
            return {"pred": super().__call__(pred, return_tensors), "expl": super().__call__(expl, return_tensors)}

    class TaskPrefixTrainer(Seq2SeqTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if timer.get("t0") is not None:
                for part in inputs.values():  # summed on the device: counting adds no host sync
                    timer["tokens"] = timer["tokens"] + part["attention_mask"].sum() + (part["labels"] != -100).sum()
            pred_outputs = model(**inputs["pred"])
            if not two_tasks:
                return pred_outputs.loss
            expl_outputs = model(**inputs["expl"])
            return cfg.alpha * pred_outputs.loss + (1.0 - cfg.alpha) * expl_outputs.loss

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == warmup and timer.get("t0") is None:
                timer["t0"] = time.perf_counter()

        def on_train_end(self, args, state, control, **kw):
            timer["seconds"] = time.perf_counter() - timer["t0"]

    return TaskPrefixDataCollator, TaskPrefixTrainer, Timer


def run_baseline(cfg, steps: int, warmup: int, precision: str = "no") -> dict:
    """The reference code's TaskPrefixTrainer on the same features and initialisation, with transformers' own
    modules (the reference has no fast kernels); precision: no (fp32, the reference's default) or bf16 (its
    --bf16 flag)."""
    import torch
    from transformers import Seq2SeqTrainingArguments

    from dss.student.prepare import fresh_precision

    cfg = dataclasses.replace(cfg, fast_kernels=False)
    fresh_precision(precision)
    features, tokenizer, model = _setup(cfg)
    rows = []
    for f in features:  # the reference's columns: the label task's row and the rationale task's row
        r = {"input_ids": f["input_ids"][0], "labels": f["labels"][0]}
        if len(f["input_ids"]) > 1:
            r.update(expl_input_ids=f["input_ids"][1], aux_labels=f["labels"][1])
        rows.append(r)
    timer = {"tokens": 0}
    collator, trainer_cls, timer_cb = reference_trainer(cfg, warmup, timer)
    with tempfile.TemporaryDirectory() as out:
        args = Seq2SeqTrainingArguments(
            output_dir=out, max_steps=warmup + steps, per_device_train_batch_size=cfg.batch_size // cfg.grad_accum,
            gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr, max_grad_norm=cfg.max_grad_norm,
            remove_unused_columns=False, report_to="none", save_strategy="no", eval_strategy="no",
            logging_steps=10 ** 6, seed=cfg.seed, dataloader_num_workers=0, disable_tqdm=True,
            bf16=precision == "bf16", use_cpu=not torch.cuda.is_available())
        if args.n_gpu > 1:
            from dss.core.errors import ConfigError
            raise ConfigError(f"the reference trainer sees {args.n_gpu} GPUs and would run DataParallel over them: "
                              "set CUDA_VISIBLE_DEVICES to one (speed() does, in each variant's process)")
        trainer = trainer_cls(model=model, args=args, train_dataset=rows, callbacks=[timer_cb()],
                              data_collator=collator(tokenizer=tokenizer, model=model))
        trainer.train()
    loss = trainer.state.log_history[-1].get("train_loss")
    return {**_report("baseline", cfg, steps, timer["seconds"], int(timer["tokens"]), args.device, loss, precision),
            "gpus": args.n_gpu}


def _report(variant, cfg, steps, seconds, tokens, device, loss, precision) -> dict:
    return {"variant": variant, "steps": steps, "batch_size": cfg.batch_size, "seconds": round(seconds, 3),
            "examples_per_second": round(steps * cfg.batch_size / seconds, 2),
            "tokens": int(tokens), "tokens_per_second": round(tokens / seconds, 1),
            "peak_memory_mb": round(_peak_memory(device) / 2**20, 1),
            "device": str(device), "final_loss": loss, "precision": precision, "fast_kernels": cfg.fast_kernels}


def one_gpu(visible: str | None) -> str:
    """CUDA_VISIBLE_DEVICES that leaves the first of `visible` (the variable's value; None: unset, every GPU):
    the Trainer wraps the model in DataParallel over every GPU it sees (transformers 5 sets its n_gpu to
    torch.cuda.device_count(); no argument turns that off), while our loop uses one; "" (none) stays none."""
    return "0" if visible is None else visible.split(",")[0].strip()


def _child(cfg_dict: dict, variant: str, steps: int, warmup: int, baseline_precision: str) -> dict:
    # before CUDA starts in this fresh (spawned) process: every variant, the baseline included, on one GPU
    os.environ["CUDA_VISIBLE_DEVICES"] = one_gpu(os.environ.get("CUDA_VISIBLE_DEVICES"))
    import torch

    from dss.student.config import TrainConfig
    from dss.student.prepare import precision
    cfg = TrainConfig(**cfg_dict)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if variant == "baseline":
        return {**run_baseline(cfg, steps, warmup, precision(cfg) if baseline_precision == "same" else
                               baseline_precision), "threads": torch.get_num_threads(),
                "cuda_visible_devices": os.environ["CUDA_VISIBLE_DEVICES"]}
    run = run_ours(cfg, variant, steps, warmup)
    return {**run, "threads": torch.get_num_threads(), "cuda_visible_devices": os.environ["CUDA_VISIBLE_DEVICES"]}


def order(variants, repeat: int) -> list[str]:
    """A B C, then C B A, ...: each variant runs early and late equally often, so a trend in the machine's
    load (another job starting or ending) does not favour the variant that always runs first."""
    return list(variants) if repeat % 2 == 0 else list(reversed(variants))


def speed(cfg, variants=("dss", "baseline"), steps: int = 20, warmup: int = 3, repeats: int = 1,
          baseline_precision: str = "no") -> list[dict]:
    """Run each variant in its own process from the same initialisation, repeats interleaved A-B-B-A. dss's
    variants run at cfg's precision (mixed_precision=auto: bf16 where native); the baseline at
    baseline_precision: no (fp32, the reference's default), bf16, or same (as the dss variants)."""
    from dss.core.config import to_dict

    unknown = set(variants) - set(VARIANTS)
    if unknown:
        from dss.core.errors import ConfigError
        raise ConfigError(f"unknown variant(s) {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
    _setup(cfg)  # tokenizer and token cache once, in the parent; children reuse them
    ctx = multiprocessing.get_context("spawn")
    runs = []
    for r in range(repeats):
        for v in order(variants, r):
            with ctx.Pool(1) as pool:
                runs.append({**pool.apply(_child, (to_dict(cfg), v, steps, warmup, baseline_precision)), "repeat": r})
            print(json.dumps(runs[-1]), flush=True)
    return runs


def summarize(runs: list[dict]) -> list[dict]:
    """Per variant: median and min examples/s, median tokens/s, and its ratio to the baseline measured within
    each repeat (the two ran back to back, under the same load), median and min over repeats."""
    import statistics
    out = []
    base = {r.get("repeat", 0): r["examples_per_second"] for r in runs if r["variant"] == "baseline"}
    for v in dict.fromkeys(r["variant"] for r in runs):
        rs = [r for r in runs if r["variant"] == v]
        eps = [r["examples_per_second"] for r in rs]
        ratios = [r["examples_per_second"] / base[r.get("repeat", 0)] for r in rs if r.get("repeat", 0) in base]
        out.append({"variant": v, "examples_per_second": statistics.median(eps), "examples_per_second_min": min(eps),
                    "tokens_per_second": statistics.median(r["tokens_per_second"] for r in rs),
                    "peak_memory_mb": max(r["peak_memory_mb"] for r in rs), "runs": len(rs),
                    "threads": rs[0].get("threads"), "precision": rs[0].get("precision"),
                    "x_baseline": round(statistics.median(ratios), 2) if ratios else None,
                    "x_baseline_min": round(min(ratios), 2) if ratios else None})
    return out
