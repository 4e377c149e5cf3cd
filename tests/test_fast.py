"""Fast kernels (dss.student.fast) compute what transformers' modules compute; mixed_precision=auto resolves
per machine and a run records what it resolved to."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from test_train import read_jsonl, tiny_args

from dss.commands.cli import main
from dss.core.errors import ConfigError
from dss.student import fast
from dss.student import prepare as P
from dss.student.config import TrainConfig


def tiny_t5(dropout: float):
    from transformers import T5Config, T5ForConditionalGeneration
    torch.manual_seed(0)
    return T5ForConditionalGeneration(T5Config(
        vocab_size=120, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
        dropout_rate=dropout, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0))


def loss_and_grads(model, batch):
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_fused_modules_give_the_plain_loss_and_gradients_in_fp32():
    plain = tiny_t5(dropout=0.0)
    fused = copy.deepcopy(plain)
    # per layer: 2 norms (encoder) / 3 (decoder), dropouts, one GELU; plus the final norms and dropouts
    assert fast.fuse(fused, "cpu") > 20
    assert plain.state_dict().keys() == fused.state_dict().keys()
    kinds = {type(m).__name__ for m in fused.modules()}
    assert {"RMSNorm", "Dropout", "GELU"} <= kinds and "T5LayerNorm" not in kinds
    # on a CPU the fused model attends eagerly, the plain one through SDPA: the comparison below covers both
    assert (plain.config._attn_implementation, fused.config._attn_implementation) == ("sdpa", "eager")
    g = torch.Generator().manual_seed(1)
    batch = {"input_ids": torch.randint(2, 120, (4, 11), generator=g),
             "attention_mask": torch.ones(4, 11, dtype=torch.long),
             "labels": torch.randint(2, 120, (4, 7), generator=g)}
    batch["attention_mask"][1, 8:] = 0
    (l0, g0), (l1, g1) = loss_and_grads(plain.train(), batch), loss_and_grads(fused.train(), batch)
    assert l1 == pytest.approx(l0, abs=1e-5)
    assert g0.keys() == g1.keys()
    for name in g0:
        assert torch.allclose(g0[name], g1[name], atol=1e-5, rtol=1e-4), name
    # a plain model again after a save: the fused modules hold no state of their own
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), fused.state_dict().values()))


def test_eager_attention_is_for_cpus_only():
    on_gpu = tiny_t5(dropout=0.0)
    fast.fuse(on_gpu, "cuda")  # CUDA's SDPA kernels are the fast ones there
    assert on_gpu.config._attn_implementation == "sdpa"


def test_fast_dropout_keeps_one_minus_p_and_rescales():
    drop = fast.Dropout(0.25).train()
    x = torch.ones(400, 500)
    torch.manual_seed(0)
    y = drop(x)
    zero = float((y == 0).float().mean())
    assert zero == pytest.approx(0.25, abs=0.005)  # 200,000 draws: s.e. 0.001
    assert torch.unique(y).tolist() == [0.0, pytest.approx(1 / 0.75)]
    assert float(y.mean()) == pytest.approx(1.0, abs=0.01)
    assert torch.equal(drop.eval()(x), x)  # off in evaluation
    xg = torch.ones(3, 4, requires_grad=True)
    out = fast.Dropout(0.5).train()(xg)
    out.sum().backward()
    assert torch.equal(xg.grad, (out.detach() != 0).float() * 2.0)  # the gradient goes through the kept units


def test_fast_and_plain_training_predict_the_same(tiny_cqa_dir, tmp_path):
    # dropout off and fp32: the two runs differ only in the modules' kernels
    args = ["--method", "dss", "--max-steps", "6", "--eval-steps", "3", "--dropout", "0", "--mixed-precision", "no"]
    fast_run, plain_run = tmp_path / "fast", tmp_path / "plain"
    assert main(tiny_args(tiny_cqa_dir, fast_run, *args)) == 0
    assert main(tiny_args(tiny_cqa_dir, plain_run, *args, "fast_kernels=false")) == 0
    for a, b in zip(read_jsonl(fast_run / "metrics.jsonl"), read_jsonl(plain_run / "metrics.jsonl")):
        for k in ("loss", "label_loss", "rationale_loss"):
            if k in a:
                assert b[k] == pytest.approx(a[k], abs=1e-5), (a["step"], k)
    assert ([r["prediction"] for r in read_jsonl(fast_run / "predictions.jsonl")] ==
            [r["prediction"] for r in read_jsonl(plain_run / "predictions.jsonl")])


def test_auto_precision_is_bf16_only_where_native(monkeypatch):
    cfg = TrainConfig(task="demo")
    assert cfg.mixed_precision == "auto"
    monkeypatch.setattr(P, "native_bf16", lambda device_type=None: (True, "native here"))
    assert P.precision(cfg) == "bf16"
    monkeypatch.setattr(P, "native_bf16", lambda device_type=None: (False, "emulated here"))
    assert P.precision(cfg) == "no"
    assert P.precision(TrainConfig(task="demo", mixed_precision="bf16")) == "bf16"  # asked for: as asked
    assert P.native_bf16("mps")[0] is False


def test_a_run_records_its_precision_and_resumes_only_in_it(tiny_cqa_dir, tmp_path, monkeypatch):
    from dss.student.loop import check_same_run
    run = tmp_path / "run"
    monkeypatch.setattr(P, "native_bf16", lambda device_type=None: (False, "emulated here"))
    assert main(tiny_args(tiny_cqa_dir, run, "--method", "standard", "--max-steps", "2", "--eval-steps", "2")) == 0
    info, results = (json.loads((run / f).read_text()) for f in ("config.json", "results.json"))
    assert info["config"]["mixed_precision"] == "auto" and info["precision"] == results["precision"] == "no"
    cfg = TrainConfig(**info["config"])
    check_same_run(run, cfg, info["data"]["fingerprint"], "no")  # the same machine: fine
    with pytest.raises(ConfigError, match=r"precision: trained in no.*to bf16 \(pass mixed_precision=no\)"):
        check_same_run(run, cfg, info["data"]["fingerprint"], "bf16")
