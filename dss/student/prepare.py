"""What a run needs before its first step, each from one place: the data (the only place examples come from),
the student and its tokenizer, the batches of every step, the accelerator and the optimizer."""
from __future__ import annotations

import logging
import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from dss.core.hardware import warn_cpu_torch
from dss.student import batching as D
from dss.student import fsdp
from dss.student.config import TrainConfig
from dss.student.evaluate import candidate_sets
from dss.student.loss import lr_factor
from dss.student.methods import METHODS
from dss.student.protocols import PROTOCOLS
from dss.tasks.base import carve_split, warn_unseen_labels
from dss.tasks.rationales import apply_rationales


def load_splits(cfg: TrainConfig):
    """(task, {split: examples}) as the task's loader gives them."""
    from dss.tasks import get_task

    task = get_task(cfg.task, **cfg.task_options)
    return task, {s: task.load(s, cfg.data_dir) for s in ("train", "valid", "test")}


def eos_text(cfg: TrainConfig) -> str:
    """The student tokenizer's EOS token as text: "</s>" for tiny (and T5); a pretrained one's own."""
    if cfg.model == "tiny":
        return "</s>"
    from dss.student.model import load_pretrained_tokenizer
    return load_pretrained_tokenizer(cfg.model).eos_token


def data_fingerprint(cfg: TrainConfig) -> str:
    """The fingerprint a run with this config records for its data (see load_data)."""
    return D.fingerprint(load_splits(cfg)[1], cfg.rationales)


@dataclass
class Data:
    """What a run trains and evaluates on: load_data's one result."""
    task: object
    items: list          # [examples][rows]: each training example's rows (dss.student.batching.Row)
    valid: list          # Examples
    test: list
    stats: dict          # counts for config.json / results.json, the data fingerprint
    splits: dict         # the ids of every example used, per split (the run folder's splits.json)


def load_data(cfg: TrainConfig) -> Data:
    """The only place examples come from.

    stats["fingerprint"] hashes the content of every split read (and of the rationale file): a run, a resume
    or a sweep cell counts as the same only when it trained on the same data.
    """
    log(f"loading {cfg.task} data")
    task, splits = load_splits(cfg)
    warn_unseen_labels(task, splits, log)
    stats = {"fingerprint": D.fingerprint(splits, cfg.rationales)}
    train, valid = subsets(task, splits, cfg)
    test = splits["test"]
    if cfg.input_format == "reference":
        eos = eos_text(cfg)
        for ex in (e for part in (train, valid, test) for e in part):
            ex.input = task.reference_input(ex, eos)
    stats["train_subset"] = len(train)
    if cfg.rationales:
        stats["rationale_file"] = apply_rationales(train, cfg.rationales, task)
    if PROTOCOLS[cfg.protocol].teacher_parsing == "reference":
        stats["teacher_parsing"] = reference_parsing(task, train, cfg)
    items, item_stats = D.training_items(train, cfg)
    stats.update(item_stats)
    check_usable(cfg, task, train, items, stats)
    cap = cfg.max_eval_examples
    valid, test = valid[:cap], test[:cap]
    if cfg.eval_mode == "score":
        candidate_sets(task, valid + test)  # a task without a closed answer set fails now, not after training
    stats.update(valid_examples=len(valid), test_examples=len(test))
    log(f"{len(splits['train'])} train examples, {len(train)} in the {100 * cfg.train_fraction:g} % subset, "
        f"{len(items)} used; {len(valid)} valid, {len(test)} test")
    ids = {"train": [e.id for e in train], "valid": [e.id for e in valid], "test": [e.id for e in test]}
    unused = [e.id for e in train if not D.example_rows(e, cfg)]
    if unused:
        ids["train_unused"] = unused
    return Data(task, items, valid, test, stats, ids)


def subsets(task, splits: dict, cfg: TrainConfig) -> tuple[list, list]:
    """(the train subset, the valid split) as cfg.protocol takes them. dss: a nested subset of the train split
    (valid carved before). reference (run.py): train_test_split(test_size=1 - fraction, seed)["train"] of the
    task's whole train file and, for a task without a valid split, valid carved from that subset (10 %,
    seed 0); sizes round as that function rounds (dss.tasks.base.carve_split is it, index for index)."""
    if PROTOCOLS[cfg.protocol].subsets == "nested":
        return D.nested_subset(splits["train"], cfg.train_fraction, cfg.seed), splits["valid"]
    pool, carves_valid = task.reference_train(cfg.data_dir)
    if cfg.train_fraction < 1:
        keep, _ = carve_split(len(pool), 1.0 - cfg.train_fraction, cfg.seed)
        pool = [pool[i] for i in keep]
    if not carves_valid:
        return pool, splits["valid"]
    keep, held = carve_split(len(pool), 0.1, 0)
    return [pool[i] for i in keep], [pool[i] for i in held]


def reference_parsing(task, train: list, cfg: TrainConfig) -> dict:
    """Under protocol=reference, the teacher's labels and rationales as the reference code reads the released
    completions (dss.tasks.reference, flaws included). Returns counts: changed labels, ' ' labels."""
    from dss.core.errors import ConfigError
    if cfg.rationales:
        raise ConfigError("protocol=reference reads the released PaLM completions as the reference code does; "
                          "with rationales=FILE use protocol=dss")
    parse = task.reference_parser()
    if parse is None:
        log(f"protocol {cfg.protocol}: task {task.name} has no reference parser; its teacher answers are dss's")
        return {"parser": "dss"}
    raw = task.released_completions("train", cfg.data_dir)
    changed = blank = 0
    for ex in train:
        if ex.id in raw:
            rationale, label = parse(raw[ex.id])
            changed += label != ex.llm_label
            blank += label == " "
            ex.llm_rationale, ex.llm_label = rationale, label
    return {"parser": "reference", "labels_changed": changed, "labels_blank": blank}


def check_usable(cfg: TrainConfig, task, train, items, stats: dict) -> None:
    """Stop before training when the data cannot train what cfg asks for, naming the cause; when only some
    examples lack a rationale, say how many (results.json counts them too, as missing_rationale)."""
    from dss.core.errors import DataError

    method = METHODS[cfg.method]
    if not train:
        raise DataError(f"task {cfg.task}: the train split is empty; nothing to train on")
    if cfg.rationales:
        c = stats["rationale_file"]
        origin = (f"{cfg.rationales} gave {c['matched']} of {len(train)} train examples a parsed answer "
                  f"({c['missing']} have no record in it, {c['unparsed']} only unusable answers)")
        if not c["matched"] and c["missing"] == len(train):
            origin += "; its ids match none of them: was it extracted for another task or split?"
    else:
        origin = task.rationale_origin(cfg.data_dir)
    if not items:
        what = "label" if stats["dropped_no_label"] else "rationale"
        raise DataError(f"none of the {len(train)} train examples has a teacher {what} to train on "
                        f"(method={cfg.method}, label source {method.label_source(cfg.labels)}): {origin}")
    missing = stats["missing_rationale"] if method.rationale_task else 0
    if missing == len(items):
        raise DataError(f"method {cfg.method} trains on teacher rationales, but none of the {len(items)} train "
                        f"examples has one: {origin}. Use method=standard to train on labels alone")
    if missing:
        log(f"{missing} of {len(items)} train examples have no usable rationale: they train the label task only")


def build_student(cfg: TrainConfig, items, run: Path, accelerator=None):
    """(model, tokenizer). tiny: the tokenizer is trained once (by the main process) and stored in
    run/tokenizer; the model is initialised from the seed alone."""
    from accelerate.utils import set_seed

    from dss.student import model as M

    device_type = accelerator.device.type if accelerator else "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.model != "tiny":
        model, tokenizer = M.load_pretrained(cfg.model)
        return adapt(model, cfg, device_type), tokenizer
    tok_dir = run / "tokenizer"
    with accelerator.main_process_first() if accelerator else nullcontext():
        if not (tok_dir / "tokenizer.json").is_file():
            texts = [t for it in items for r in it for t in (r.source, r.target)]
            texts = [t.removeprefix(cfg.label_prefix).removeprefix(cfg.rationale_prefix) for t in texts]
            log(f"training a tokenizer of at most {cfg.vocab_size} pieces on {len(texts)} texts")
            M.train_tokenizer(texts, [cfg.label_prefix, cfg.rationale_prefix], cfg.vocab_size, tok_dir)
        tokenizer = M.load_tokenizer(tok_dir)
    set_seed(cfg.seed)  # initialisation depends on the seed only
    return adapt(M.tiny_model(cfg, tokenizer), cfg, device_type), tokenizer


T5_FAMILY = ("t5", "mt5", "umt5", "longt5")


def adapt(model, cfg: TrainConfig, device_type: str):
    """Fast kernels (for device_type: cpu, cuda, ...), gradient checkpointing and LoRA adapters, as the config
    asks."""
    if precision(cfg) == "fp16" and model.config.model_type in T5_FAMILY and not cfg.force_fp16:
        from dss.core.errors import ConfigError
        raise ConfigError(f"mixed_precision=fp16 with a {model.config.model_type} student: T5-family activations "
                          "overflow fp16's range (NaN losses are common); use bf16 (GPUs of compute capability 8.0 "
                          "or newer) or no (fp32), or pass force_fp16=true to take the risk")
    if cfg.fast_kernels:
        from dss.student import fast
        fast.fuse(model, device_type)
    if cfg.gradient_checkpointing:
        # transformers 5.24 renamed it (the old name warns); older versions only have the old one
        enable = getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)
        enable()
        model.config.use_cache = False  # the cache is for generation; with checkpointing it is recomputed
    if cfg.lora_r > 0:
        from dss.student import lora
        if cfg.gradient_checkpointing:
            model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still need a grad path
        model = lora.wrap(model, cfg)
    return model


def batch_order(features, cfg: TrainConfig, processes: int = 1) -> D.LengthGroupedBatchSampler:
    return D.LengthGroupedBatchSampler([f["length"] for f in features], cfg.batch_size // cfg.grad_accum,
                                       cfg.grad_accum, cfg.seed, cfg.group_by_length,
                                       keep_last=PROTOCOLS[cfg.protocol].keep_last_batch,
                                       min_last=processes * cfg.grad_accum)


def step_batches(features, order, start: int, cfg: TrainConfig, accelerator, pad_id: int, kind,
                 split_tasks: bool = True):
    """The micro-batches of each optimizer step from `start` to max_steps, collated on this process's device.

    Step s is batch s mod steps_per_epoch of epoch s // steps_per_epoch, and an epoch's batches are a pure
    function of (seed, epoch): a run resumed at any step sees what the uninterrupted run saw. Each process
    takes its contiguous slice of every global micro-batch.
    """
    per_epoch, k = order.steps_per_epoch, cfg.grad_accum
    both_tasks = fsdp.is_fsdp(accelerator) and METHODS[cfg.method].rationale_task  # the same forwards everywhere
    rank, world = accelerator.process_index, accelerator.num_processes
    step = start
    while step < cfg.max_steps:
        epoch, done = divmod(step, per_epoch)
        batches = order.epoch_batches(epoch)
        for i in range(done, min(per_epoch, done + cfg.max_steps - step)):
            micro = []
            for b in batches[i * k:(i + 1) * k]:
                # this process's contiguous slice (a kept last step's micro-batch may not divide evenly)
                mine = [features[j] for j in b[len(b) * rank // world:len(b) * (rank + 1) // world]]
                micro.append(kind.to_device(kind.collate(mine, pad_id, split_tasks, both_tasks), accelerator.device))
            yield micro
            step += 1


def tracker_backends(cfg: TrainConfig) -> list[str]:
    """cfg.trackers(), each checked importable (a clear message when an optional tracker is missing)."""
    import importlib.util

    from dss.core.errors import ConfigError
    for name in cfg.trackers():
        if importlib.util.find_spec(name) is None:
            raise ConfigError(f"report_to {name}: the {name} package is not installed (pip install {name})")
    return cfg.trackers()


def start_trackers(cfg: TrainConfig, run: Path, accelerator) -> None:
    """Accelerate's trackers, given the resolved config (lists and mappings as text: trackers take scalars); the
    run folder's name is the run's name, and W&B writes under the run folder."""
    if not cfg.trackers():
        return
    import json

    from dss.core.config import to_dict
    config = {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in to_dict(cfg).items()}
    project = "tb" if cfg.trackers() == ["tensorboard"] else os.environ.get("WANDB_PROJECT", "dss")
    accelerator.init_trackers(project, config=config, init_kwargs={
        "wandb": {"name": run.name, "dir": str(run)}, "mlflow": {"run_name": run.name}})


def local_gpu() -> int:
    """The index of this process's GPU: LOCAL_RANK under torchrun / accelerate launch, else 0. Read before
    any CUDA call, so that no process makes a context on another process's GPU (cuda:0 for all of them)."""
    return int(os.environ.get("LOCAL_RANK", "0")) % max(1, torch.cuda.device_count())


def native_bf16(device_type: str | None = None) -> tuple[bool, str]:
    """(whether this machine runs bf16 matmuls natively, why): a CUDA GPU of compute capability 8.0 or newer
    (Ampere on; torch.cuda.is_bf16_supported() also says yes where bf16 is only emulated, as on V100 and T4),
    or without a GPU a CPU with AVX512-BF16 or AMX tiles. Elsewhere bf16 autocast is emulated and slower than
    fp32."""
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if device_type == "cuda":
        if not torch.cuda.is_available():
            return False, "no CUDA GPU"
        gpu = local_gpu()
        major, minor = torch.cuda.get_device_capability(gpu)  # from the driver: no context is made
        name = torch.cuda.get_device_name(gpu)
        if major >= 8:
            return True, f"{name} (compute capability {major}.{minor}) runs bf16 natively"
        return False, (f"{name} (compute capability {major}.{minor}) has no native bf16 (8.0 or newer has): "
                       "training in fp32; fp16 overflows in T5-family students")
    if device_type == "cpu":  # private helpers, present in torch >= 2.1; absent: assume no
        cpu = getattr(torch, "cpu", None)
        native = any(getattr(cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
        return native, "this CPU " + ("has AVX512-BF16 or AMX" if native else "has neither AVX512-BF16 nor AMX")
    return False, f"device {device_type}: no native bf16 known"


def precision(cfg: TrainConfig) -> str:
    """mixed_precision with auto resolved for this machine: no, bf16 or fp16."""
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    if PROTOCOLS[cfg.protocol].precision_auto == "no":
        return "no"
    return "bf16" if native_bf16()[0] else "no"


def fresh_precision(mixed_precision: str) -> None:
    """Accelerate keeps one AcceleratorState per process and refuses an Accelerator of another precision; runs
    made one after another in one process (a sweep's cells with --jobs 1, tests) may differ in precision. The
    distributed state (PartialState: ranks, process group) is kept."""
    from accelerate.state import AcceleratorState
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", mixed_precision) != mixed_precision:
        AcceleratorState._reset_state()


def make_accelerator(cfg: TrainConfig):
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import ProjectConfiguration

    run = Path(cfg.output_dir)
    check_parallelism(cfg, None)
    fresh_precision(precision(cfg))
    accelerator = Accelerator(
        # several processes and no GPU (torchrun --nproc_per_node 2 on CPU): Accelerate's gloo backend
        cpu=int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available(),
        mixed_precision=precision(cfg), log_with=tracker_backends(cfg) or None,
        project_config=ProjectConfiguration(project_dir=str(run), logging_dir=str(run / "tb")),
        # one scheduler step per optimizer step, however many processes (batches are ours: see step_batches)
        dataloader_config=DataLoaderConfiguration(split_batches=True))
    warn_cpu_torch(main=accelerator.is_local_main_process)  # NVIDIA GPUs, a CPU torch: said loudly, once
    # T5 ties its embeddings and lm_head; accelerate would warn at every checkpoint that it stored them once
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)
    from dss.core.errors import ConfigError
    if cfg.mixed_precision == "auto":
        why = native_bf16(accelerator.device.type)[1] if PROTOCOLS[cfg.protocol].precision_auto == "native" else \
            f"protocol {cfg.protocol} trains in fp32 unless mixed_precision is given"
        log(f"mixed_precision=auto -> {accelerator.mixed_precision}: {why}")
    check_parallelism(cfg, accelerator)
    if cfg.batch_size % (cfg.grad_accum * accelerator.num_processes):
        raise ConfigError(f"batch_size {cfg.batch_size} must divide by grad_accum x processes "
                          f"({cfg.grad_accum} x {accelerator.num_processes})")
    return accelerator


def check_parallelism(cfg: TrainConfig, accelerator) -> None:
    """Refuse, by name, the parallel setups dss does not run: DeepSpeed (its engine steps the optimizer at every
    backward, and a dss step runs one backward per task part; never tested), an FSDP config that accelerate
    quietly turned into DDP (it runs FSDP on GPUs only); the student kind's own limits are its
    check_parallelism. With accelerator None: the checks that can run before it is made (accelerate fails
    first without deepspeed)."""
    from dss.core.errors import ConfigError
    kind = accelerator.distributed_type.value if accelerator is not None else None
    if kind == "DEEPSPEED" or os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true"):
        raise ConfigError("DeepSpeed is not supported by dss train: its engine steps the optimizer at every "
                          "backward, and a dss step runs one backward per task (label, rationale); use DDP, or "
                          "FSDP (fsdp_version: 2) for students too large for one GPU")
    if accelerator is None:
        return
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true") and kind != "FSDP":
        raise ConfigError(f"an FSDP config was given, but accelerate runs this launch as {kind} (it runs FSDP on "
                          "GPUs only): dss will not train with another parallelism than the one asked for")


def make_optimizer(model, cfg: TrainConfig):
    params = [p for p in model.parameters() if p.requires_grad]  # LoRA: the adapters only
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]  # norms and biases
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_factor, warmup_steps=cfg.warmup_steps, max_steps=cfg.max_steps))
    return optimizer, scheduler


def log(message: str) -> None:
    """A phase of training, on the main process's stderr (the progress line says how far it is)."""
    from accelerate import PartialState
    if PartialState().is_main_process and os.environ.get("DSS_QUIET") != "1":
        print(f"dss train: {message}", file=sys.stderr, flush=True)
