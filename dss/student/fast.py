"""Fast kernels for a T5-family student: the same maths as transformers' modules, in fewer, fused operations.

The profile of a tiny T5 training step on a CPU (batch 32, one thread) put 16 % of the time in dropout's
`bernoulli_` (torch draws each mask element through a slow per-element path on CPUs), and several more percent
in T5's hand-written tanh-GELU and RMS norm, each five to eight element-wise kernels and as many saved tensors.
`fuse(model, device_type)` swaps, in place and without touching any parameter or state-dict key:

    nn.Dropout         -> Dropout: a uniform draw compared with p (one kernel; same keep probability 1 - p,
                          same 1 / (1 - p) scaling) on CPUs; CUDA keeps torch's fused dropout
    NewGELUActivation  -> nn.GELU(approximate="tanh"): the same formula as one kernel
    T5LayerNorm (mT5, UMT5) -> RMSNorm: torch's rms_norm over fp32 (the same fp32 statistics T5 computes)

On CPUs a T5-family model also runs transformers' eager attention (matmul, fp32 softmax, matmul) instead of
torch's scaled_dot_product_attention: with T5's additive position-bias mask and these short sequences the
CPU flash kernel is the slower one (a tiny e-SNLI training step 1.25x, label scoring 1.3x faster eager);
CUDA keeps SDPA.

Outputs equal the plain modules' within float rounding (tests: losses within 1e-5, greedy predictions equal);
dropout draws other random masks than torch's, with the same distribution. A saved model is a plain
transformers model: these modules hold no state of their own.
"""
from __future__ import annotations

import torch
from torch import nn

RMS_NORMS = ("T5LayerNorm", "MT5LayerNorm", "UMT5LayerNorm")
T5_FAMILY = ("t5", "mt5", "umt5")


class Dropout(nn.Module):
    """Inverted dropout with the mask drawn as uniform >= p: exactly the keep probability 1 - p of torch's."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":  # torch's fused kernel is the fast one there
            return nn.functional.dropout(x, self.p, True)
        # the mask is drawn in fp32 (a bf16 uniform could not resolve p), then takes x's dtype; autograd saves
        # it for the backward pass, as torch's dropout saves its own
        keep = torch.rand(x.shape, dtype=torch.float32, device=x.device).ge_(self.p)
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


class RMSNorm(nn.Module):
    """T5's layer norm (no mean, no bias, statistics in fp32) as torch's rms_norm; it shares the weight."""

    def __init__(self, weight: nn.Parameter, eps: float):
        super().__init__()
        self.weight, self.variance_epsilon = weight, eps

    def forward(self, x):
        if self.weight.dtype in (torch.float16, torch.bfloat16):  # T5 casts to the weight's half type first
            out = nn.functional.rms_norm(x.float(), (x.shape[-1],), None, self.variance_epsilon)
            return self.weight * out.to(self.weight.dtype)
        return nn.functional.rms_norm(x.float(), (x.shape[-1],), self.weight, self.variance_epsilon)


def fuse(model, device_type: str) -> int:
    """Swap the modules above inside model, in place, and on a CPU (device_type) pick eager attention for the
    T5 family; returns how many modules were swapped (0 for other families)."""
    from transformers.activations import NewGELUActivation

    swaps = []
    for parent in model.modules():
        for name, child in parent.named_children():
            new = None
            if type(child) is nn.Dropout:
                new = Dropout(child.p)
            elif type(child) is NewGELUActivation:
                new = nn.GELU(approximate="tanh")
            elif type(child).__name__ in RMS_NORMS:
                new = RMSNorm(child.weight, child.variance_epsilon)
            if new is not None:
                new.train(child.training)
                swaps.append((parent, name, new))
    for parent, name, new in swaps:
        setattr(parent, name, new)
    if device_type == "cpu" and getattr(model.config, "model_type", None) in T5_FAMILY:
        model.set_attn_implementation("eager")
    return len(swaps)
