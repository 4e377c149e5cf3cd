"""benchmarks/gpu_check.py without a GPU: its dry run builds every configuration the GPU run builds (one
plan(); only device, shapes and step counts differ), the encoder-decoder FLOP count equals torch's own count,
and GPU names map to their own peaks or to none."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402

TINY = {"batch": 2, "steps": 1, "warmup": 0, "repeats": 1, "launch_steps": 2, "eval_train_steps": 2, "eval_limit": 8}


def test_the_dry_run_differs_from_the_gpu_run_only_in_device_shapes_and_step_counts(tmp_path):
    # every TrainConfig the GPU run makes is valid (TrainConfig checks ranges: the GPU run's threads=0 was refused
    # before it did anything, while the dry run took threads=1)
    gpu = gpu_check.plan("cuda", False)
    for precision in gpu["precisions"]:
        cfg = gpu_check.train_config(gpu, tmp_path / "model", tmp_path / "data.jsonl", tmp_path / "run", precision)
        assert cfg.threads is None and cfg.mixed_precision == precision and cfg.batch_size == 64
    dry = gpu_check.plan("cpu", True)
    assert gpu["shapes"] == gpu_check.SHAPES and dry["shapes"] == gpu_check.DRY_SHAPES
    assert gpu["sizes"] == gpu_check.SIZES and dry["sizes"] == gpu_check.DRY_SIZES
    assert dry["launch"].pop("accelerate") == gpu["launch"].pop("accelerate") + ["--cpu"]  # the device
    sized = {"train": ("batch_size", "max_input_length", "max_target_length"), "launch": ("steps",),
             "eval": ("train_steps", "repeats", "limit")}  # the sizes and step counts, by section
    for p in (gpu, dry):
        for key in ("device", "shapes", "sizes"):
            p.pop(key)
        for section, keys in sized.items():
            for key in keys:
                p[section].pop(key)
    assert gpu == dry  # precisions, TrainConfig values, thread counts, tolerances: the same


@pytest.mark.parametrize("name,peak", [
    ("NVIDIA H100 80GB HBM3", (989e12, "H100 SXM")), ("NVIDIA H100 PCIe", (756e12, "H100 PCIe")),
    ("NVIDIA H100 NVL", (835e12, "H100 NVL")), ("NVIDIA H200", (989e12, "H200 SXM")),
    ("NVIDIA H200 NVL", (835e12, "H200 NVL")), ("NVIDIA GH200 480GB", (989e12, "GH200")),
    ("NVIDIA A100-SXM4-80GB", (312e12, "A100")), ("NVIDIA A100 80GB PCIe", (312e12, "A100")),
    ("NVIDIA L40S", (362e12, "L40S")), ("NVIDIA L4", (121e12, "L4")),
    # not known: no MFU rather than a neighbour's peak
    ("NVIDIA H100", None), ("NVIDIA H800", None), ("NVIDIA H20", None), ("NVIDIA L40", None),
    ("NVIDIA A10G", None), ("NVIDIA RTX A1000", None), ("NVIDIA GeForce RTX 4090", None), ("cpu (dry run)", None)])
def test_gpu_names_map_to_their_own_dense_bf16_peak(name, peak):
    assert gpu_check.peak_flops(name) == peak


def tiny_t5(gated: bool, tie: bool, attn: str = "eager"):
    from transformers import T5Config, T5ForConditionalGeneration
    config = T5Config(vocab_size=50, d_model=16, d_kv=4, num_heads=3, d_ff=24, num_layers=2, num_decoder_layers=3,
                      feed_forward_proj="gated-gelu" if gated else "relu", tie_word_embeddings=tie,
                      dropout_rate=0.0, decoder_start_token_id=0, attn_implementation=attn)
    return T5ForConditionalGeneration(config)


def test_model_flops_in_closed_form():
    from transformers import T5Config
    c = T5Config(vocab_size=10, d_model=4, d_kv=2, num_heads=2, d_ff=8, num_layers=1, num_decoder_layers=1,
                 feed_forward_proj="gated-gelu")
    # by hand, S=3 source and T=2 target tokens, inner = 2 x 2 = 4, gated FFN: 3 x 4 x 8 = 96 weights
    n_enc, n_dec, n_xkv = 4 * 4 * 4 + 96, 6 * 4 * 4 + 96, 2 * 4 * 4  # 160, 192, 32
    weights = 6 * (n_enc * 3 + n_dec * 2 + n_xkv * 3)  # 5,760
    lm_head = 6 * 4 * 10 * 2  # 480
    attention = 12 * 4 * (3 * 3 + 2 * 2 + 2 * 3)  # encoder self, decoder self, cross: 912
    assert gpu_check.model_flops(c, 3, 2) == weights + lm_head + attention == 7152


@pytest.mark.parametrize("gated,tie", [(True, False), (False, True)])
def test_model_flops_equal_torch_counting_a_forward_and_backward(gated, tie):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    model = tiny_t5(gated, tie)  # eager attention: its matmuls are what the counter sees (sdpa on CPU is not)
    weights = sum(p.numel() for n, p in model.named_parameters()
                  if p.ndim == 2 and not any(k in n for k in ("shared", "embed", "relative", "lm_head")))
    c, inner, ffn = model.config, 12, (3 if gated else 2) * 16 * 24
    assert weights == 2 * (4 * 16 * inner + ffn) + 3 * (6 * 16 * inner + ffn) + 3 * 2 * 16 * inner  # N's split
    for s, t in ((7, 5), (1, 9)):
        counter = FlopCounterMode(display=False)
        with counter:
            model(input_ids=torch.randint(1, 50, (1, s)), labels=torch.randint(1, 50, (1, t))).loss.backward()
        assert counter.get_total_flops() == gpu_check.model_flops(c, s, t)


@pytest.mark.slow
def test_the_dry_run_runs_the_plan_end_to_end(tmp_path, capsys):
    # every section, smallest sizes: ~60 s on 2 shared cores, mostly the 9 processes that import torch
    args = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path), *args]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["plan"] == json.loads(json.dumps(gpu_check.plan("cpu", True, TINY)))
    rows = {(s["variant"], s["precision"]): s for s in report["throughput"]}
    assert set(rows) == {(v, p) for v in ("dss", "baseline") for p in ("bf16", "no")}
    assert rows["baseline", "bf16"]["x_baseline"] == 1.0 and rows["dss", "bf16"]["tflops"] > 0
    assert all(s["mfu"] is None for s in report["throughput"])  # no peak for a CPU
    launch = report["accelerate_launch"]
    assert launch["same_losses"] and launch["steps"] == 2 and launch["precision"] == "no"
    assert report["evaluation"]["rows"] == 8
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| tiny-dry | bf16 | dss |" in md and "| tiny-dry | fp32 | baseline |" in md and "MFU not reported" in md
