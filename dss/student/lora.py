"""LoRA students through `peft` (pip install 'dss[lora]'): the base weights frozen, low-rank adapters trained.

    model = wrap(model, cfg)            # cfg.lora_r > 0
    save(model, tokenizer, model_dir, adapter_dir)

The run folder's model/ holds the merged model (base + B @ A * lora_alpha / r), loadable by a plain
`from_pretrained` with no peft installed; adapter/ holds the adapter alone (PeftModel.from_pretrained(base,
"adapter")). Target modules: `lora_targets`, else peft's per-family defaults (the attention query and value
projections: T5/mT5 `q`,`v`; BART, Llama, Qwen2, Gemma `q_proj`,`v_proj`), else q/v by name for families
peft does not list (UMT5 follows T5).
"""
from __future__ import annotations

import copy

from dss.core.errors import ConfigError

FALLBACK = {"umt5": ["q", "v"]}


def targets(model, cfg) -> list[str]:
    if cfg.lora_targets:
        return list(cfg.lora_targets)
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS
    kind = model.config.model_type
    found = DEFAULTS.get(kind) or FALLBACK.get(kind)
    if not found:
        raise ConfigError(f"lora: no default target modules for model type {kind!r}; set lora_targets "
                          "(the names of its attention projections, e.g. q_proj,v_proj)")
    return list(found)


def wrap(model, cfg):
    """The model with LoRA adapters on `targets`; only the adapters train."""
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError:
        raise ConfigError("lora_r > 0 needs peft: pip install 'dss[lora]'") from None
    kind = TaskType.SEQ_2_SEQ_LM if model.config.is_encoder_decoder else TaskType.CAUSAL_LM
    modules = targets(model, cfg)
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [m for m in modules if m not in names]
    if missing:
        raise ConfigError(f"lora_targets: {', '.join(missing)} not found in {model.config.model_type} "
                          f"(its modules include {', '.join(sorted(names - {''})[:12])}, ...)")
    config = LoraConfig(task_type=kind, r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=modules)
    return get_peft_model(model, config)


def save(model, tokenizer, model_dir, adapter_dir) -> None:
    """adapter/ (the adapter) and model/ (a merged copy; the training model keeps its adapters)."""
    model.save_pretrained(str(adapter_dir))
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(str(model_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(model_dir))
