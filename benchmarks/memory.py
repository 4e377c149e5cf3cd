"""Memory a DSS student needs on a GPU, estimated without one: T5 v1.1 base, large and XL built on PyTorch's
meta device (shapes, no storage, no compute), with exact parameter counts and training-state bytes, and the
activations saved for backward counted tensor by tensor during one DSS step's forward passes.

    .venv/bin/python benchmarks/memory.py [--input 512] [--label 8] [--rationale 256] [--batch 32] [--lora-r 16]

What is counted, per model:
- parameters (as transformers builds the v1.1 configs), and the training state: fp32 weights (4 B/param) plus
  gradients (4) plus AdamW's two moments (8) = 16 B/param for full fine-tuning; with LoRA the base weights only
  (4 B/param, frozen) plus 16 B per adapter parameter.
- activations saved for backward for one example of each task (the label row: `input` source tokens,
  `label` target tokens; the rationale row: `input` and `rationale`), in fp32 and with bf16 weights and
  activations, with and without gradient checkpointing; multiplied by `batch`.
What is not: the allocator's fragmentation and temporaries (attention scores before softmax, the loss's
fp32 logits), CUDA context (~0.5-1 GiB), communication buffers. Treat the totals as a floor: measured peaks on
a GPU run 10-30 % higher (benchmarks/gpu_check.sh measures them when a GPU is lent).
"""
from __future__ import annotations

import argparse
import warnings

MODELS = {  # google/t5-v1_1-{base,large,xl} configs: d_model, d_kv, d_ff, layers (each side), heads
    "t5-v1_1-base": (768, 64, 2048, 12, 12),
    "t5-v1_1-large": (1024, 64, 2816, 24, 16),
    "t5-v1_1-xl": (2048, 64, 5120, 24, 32),
}
GIB = 2 ** 30


def build(name: str, dtype, checkpointing: bool):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration
    d, kv, ff, layers, heads = MODELS[name]
    cfg = T5Config(vocab_size=32128, d_model=d, d_kv=kv, d_ff=ff, num_layers=layers, num_decoder_layers=layers,
                   num_heads=heads, feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.1,
                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    with torch.device("meta"):
        model = T5ForConditionalGeneration(cfg).to(dtype)
    if checkpointing:
        model.gradient_checkpointing_enable()
    return model.train()


def saved_bytes(model, src: int, tgt: int) -> int:
    """Bytes of the distinct tensors autograd keeps for backward in one forward pass of one row."""
    import torch
    seen: dict[int, int] = {}
    keep = []  # holds the tensors so that their ids stay unique
    params = {id(q) for q in model.parameters()}

    def pack(t):
        base = t._base if t._base is not None else t
        if id(base) in params:  # a weight (or its transpose) saved for the backward: counted in the state
            return t
        if id(t) not in seen:
            seen[id(t)] = t.numel() * t.element_size()
            keep.append(t)
        return t
    with torch.device("meta"), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=torch.zeros(1, src, dtype=torch.long), labels=torch.zeros(1, tgt, dtype=torch.long))
    return sum(seen.values())


def lora_params(name: str, r: int) -> int:
    d, kv, _, layers, heads = MODELS[name]
    inner = kv * heads
    per_proj = r * (d + inner)  # A [r, d] and B [inner, r]
    attn_blocks = layers + 2 * layers  # encoder self, decoder self and cross
    return 2 * per_proj * attn_blocks  # q and v


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=int, default=512)
    p.add_argument("--label", type=int, default=8)
    p.add_argument("--rationale", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lora-r", type=int, default=16)
    args = p.parse_args(argv)
    import torch
    from transformers.utils import logging as hf_logging
    warnings.filterwarnings("ignore", category=FutureWarning)
    hf_logging.set_verbosity_error()
    print(f"DSS step, per GPU: batch {args.batch} examples = {args.batch} label rows ({args.input} -> {args.label} "
          f"tokens) + {args.batch} rationale rows ({args.input} -> {args.rationale}); GiB; estimates (meta device)")
    print("| student | params | full FT state (fp32 AdamW) | LoRA r=%d state | activations fp32 | bf16 | bf16 + "
          "checkpointing |" % args.lora_r)
    print("|---|---|---|---|---|---|---|")
    for name in MODELS:
        n = sum(t.numel() for t in build(name, torch.float32, False).parameters())
        acts = []
        for dtype, ckpt in ((torch.float32, False), (torch.bfloat16, False), (torch.bfloat16, True)):
            model = build(name, dtype, ckpt)
            per_example = saved_bytes(model, args.input, args.label) + saved_bytes(model, args.input, args.rationale)
            acts.append(per_example * args.batch / GIB)
        lora = lora_params(name, args.lora_r)
        print(f"| {name} | {n / 1e6:.0f}M | {16 * n / GIB:.1f} | {(4 * n + 16 * lora) / GIB:.1f} | "
              f"{acts[0]:.0f} | {acts[1]:.0f} | {acts[2]:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
