"""What a run under FSDP (v2: `fully_shard`, accelerate's `fsdp_version: 2`) needs beyond DDP.

Under FSDP each forward gathers the parameters' shards from every process and each backward scatters the
gradients: every process must run the same forwards, in the same order, or the others wait for ever. So:
    - every micro-batch has the same parts on every process (a rationale part with no rows becomes a dummy
      row that carries no loss: dss.student.batching.collate(both_tasks=True));
    - evaluation runs as many batches on every process and decodes in lockstep (dss.student.evaluate);
    - saving the student gathers the full weights on every process, then the main process writes them.
A T5's encoder and decoder embed with modules of their own that share the input embedding's weight; FSDP keeps a
weight in one group only, so they are pointed at the input embedding module itself (`share_embeddings`).
Tested on CPU processes (gloo), where accelerate does not run FSDP, by turning its distributed type to FSDP
after the Accelerator is made (tests/fsdp_cpu.py); not yet on GPUs.
"""
from __future__ import annotations

from dss.core.errors import ConfigError


def is_fsdp(accelerator) -> bool:
    return accelerator.distributed_type.value == "FSDP"


def prepare(model, cfg, accelerator) -> None:
    """Under FSDP, check what dss runs under it and make the model shardable; call before accelerator.prepare."""
    if not is_fsdp(accelerator):
        return
    plugin = accelerator.state.fsdp_plugin
    if getattr(plugin, "fsdp_version", 1) != 2:
        raise ConfigError("dss train runs FSDP version 2 (fully_shard) only: set fsdp_version: 2 in the "
                          "accelerate config (configs/accelerate/fsdp-t5.yaml)")
    if cfg.lora_r > 0:
        raise ConfigError("LoRA under FSDP is not supported by dss train (merging sharded adapters is untested); "
                          "train LoRA students under DDP")
    share_embeddings(model)


def share_embeddings(model) -> int:
    """Point every submodule embedding that shares the input embedding's weight at the input embedding module
    itself (T5's encoder.embed_tokens and decoder.embed_tokens); returns how many were replaced."""
    shared = model.get_input_embeddings()
    weight = getattr(shared, "weight", None)
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if child is not shared and getattr(child, "weight", None) is weight and weight is not None and \
                    type(child) is type(shared):
                setattr(parent, name, shared)
                replaced += 1
    return replaced


def full_state_dict(model, accelerator) -> dict | None:
    """The whole model's weights, gathered with every process taking part (call it on all of them); None when
    the model is not sharded and the main process can save it alone."""
    return accelerator.get_state_dict(model) if is_fsdp(accelerator) else None
