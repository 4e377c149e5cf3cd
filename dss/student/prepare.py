"""What a run needs before its first step besides its data (dss.student.data): the student and its tokenizer
(adapted: fast kernels, checkpointing, LoRA), the accelerator and its precision, the optimizer, the trackers."""
from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch

from dss.core.hardware import warn_cpu_torch
from dss.student.config import TrainConfig
from dss.student.loss import lr_factor
from dss.student.messages import log
from dss.student.protocols import PROTOCOLS


def build_student(cfg: TrainConfig, items, run: Path, accelerator=None):
    """(model, tokenizer). tiny: the tokenizer is trained once (by the main process) and stored in
    run/tokenizer; the model is initialised from the seed alone."""
    from accelerate.utils import set_seed

    from dss.student import model as model_lib

    device_type = accelerator.device.type if accelerator else "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.model != "tiny":
        model, tokenizer = model_lib.load_pretrained(cfg.model)
        return adapt(model, cfg, device_type), tokenizer
    tok_dir = run / "tokenizer"
    with accelerator.main_process_first() if accelerator else nullcontext():
        if not (tok_dir / "tokenizer.json").is_file():
            texts = [t for it in items for r in it for t in (r.source, r.target)]
            texts = [t.removeprefix(cfg.label_prefix).removeprefix(cfg.rationale_prefix) for t in texts]
            log(f"training a tokenizer of at most {cfg.vocab_size} pieces on {len(texts)} texts")
            model_lib.train_tokenizer(texts, [cfg.label_prefix, cfg.rationale_prefix], cfg.vocab_size, tok_dir)
        tokenizer = model_lib.load_tokenizer(tok_dir)
    set_seed(cfg.seed)  # initialisation depends on the seed only
    return adapt(model_lib.tiny_model(cfg, tokenizer), cfg, device_type), tokenizer


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


