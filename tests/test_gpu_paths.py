"""The paths a GPU run takes that a CPU can still check: fp32 master weights for checkpoints stored in bf16, the
precision `auto` picks (compute capability, never another process's GPU), fp16 refused for T5, dss-shared's
encoder under autocast, evaluation that ignores a checkpoint's generation settings, the clock read after the
device finished, and load errors that name a gated repo or remote code instead of "offline?"."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train import tiny_args

from dss.commands.cli import main
from dss.core.errors import ConfigError
from dss.student import prepare as P
from dss.student.config import TrainConfig


def safetensors_dtypes(folder: Path) -> set[str]:
    with open(folder / "model.safetensors", "rb") as fh:
        header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
    return {v["dtype"] for k, v in header.items() if k != "__metadata__"}


@pytest.mark.slow
def test_a_checkpoint_stored_in_bf16_trains_and_saves_in_fp32(tiny_cqa_dir, tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    from dss.tasks import get_task
    from dss.testing.hf_folders import t5_folder
    texts = [e.input for e in get_task("cqa").load("train", tiny_cqa_dir)]
    folder = t5_folder(tmp_path / "t5", texts)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    model.to(torch.bfloat16).save_pretrained(folder)  # as Llama, Qwen and Gemma checkpoints are stored
    assert safetensors_dtypes(folder) == {"BF16"}
    run = tmp_path / "run"
    assert main(["train", "--task", "cqa", "--data-dir", str(tiny_cqa_dir), "--model", str(folder), "--batch-size",
                 "4", "--max-steps", "2", "--eval-steps", "2", "--max-eval-examples", "2", "--no-tensorboard",
                 "--output-dir", str(run)]) == 0
    assert safetensors_dtypes(run / "model") == {"F32"}
    optimizer = torch.load(run / "checkpoints" / "step_00000002" / "optimizer.bin", weights_only=False)
    assert {s["exp_avg"].dtype for s in optimizer["state"].values()} == {torch.float32}


@pytest.fixture
def fake_gpus(monkeypatch):
    """Two CUDA devices as the driver describes them, without CUDA: (capabilities asked for, by device)."""
    asked = []
    caps = {0: (7, 0), 1: (8, 0)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d: asked.append(d) or caps[d])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: {0: "Tesla V100-SXM2-16GB", 1: "NVIDIA A100"}[d])

    def emulated():  # what torch answers on a V100: yes, by emulation
        raise AssertionError("is_bf16_supported counts emulation; ask the compute capability")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", emulated)
    return asked


def test_auto_precision_needs_compute_capability_8_on_this_process_gpu(fake_gpus, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    native, why = P.native_bf16("cuda")
    assert not native and "Tesla V100" in why and "compute capability 7.0" in why and "fp32" in why
    assert P.precision(TrainConfig()) == "no"
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert P.native_bf16("cuda")[0] and P.precision(TrainConfig()) == "bf16"
    assert fake_gpus and set(fake_gpus) == {0, 1} and fake_gpus[-1] == 1  # each process asks of its own GPU


def test_fp16_is_refused_for_t5_students_unless_forced():
    from transformers import T5Config, T5ForConditionalGeneration
    model = T5ForConditionalGeneration(T5Config(vocab_size=40, d_model=8, d_kv=4, d_ff=16, num_layers=1,
                                                num_heads=2, decoder_start_token_id=0))
    with pytest.raises(ConfigError, match="overflow fp16's range.*force_fp16=true"):
        P.adapt(model, TrainConfig(mixed_precision="fp16"), "cpu")
    P.adapt(model, TrainConfig(mixed_precision="fp16", force_fp16=True, fast_kernels=False), "cpu")


@pytest.mark.slow
def test_dss_shared_runs_its_encoder_under_autocast(tiny_cqa_dir, tmp_path, monkeypatch):
    from dss.student.kinds import shared
    seen, real = [], shared.losses

    def spy(*a, **k):
        seen.append(torch.is_autocast_enabled("cpu"))
        return real(*a, **k)
    monkeypatch.setattr(shared, "losses", spy)
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "run", "--method", "dss-shared", "--mixed-precision", "bf16",
                          "--max-steps", "2", "--eval-steps", "2", "--eval-max-new-tokens", "4")) == 0
    assert seen == [True, True]


def test_evaluation_decodes_greedily_whatever_the_checkpoint_says(tmp_path):
    from accelerate import Accelerator

    from dss.student import model as M
    from dss.student.evaluate import generate
    from dss.student.kinds import seq2seq
    cfg = TrainConfig(d_model=16, d_ff=32, heads=2, layers=1)
    tok = M.train_tokenizer(["a b c d e f g h", "x y z w v"] * 4, ["[label] ", "[rationale] "], 64, tmp_path / "t")
    torch.manual_seed(0)
    model = M.tiny_model(cfg, tok).eval()
    sources = ["a b c", "x y", "d e f g"]
    acc = Accelerator(cpu=True)
    plain = generate(model, tok, sources, acc, 2, 32, 6, seq2seq)
    model.generation_config.min_new_tokens = 6  # what a checkpoint's generation_config.json may hold
    model.generation_config.no_repeat_ngram_size = 1
    model.generation_config.repetition_penalty = 10.0
    assert generate(model, tok, sources, acc, 2, 32, 6, seq2seq) == plain
    assert model.generation_config.min_new_tokens == 6  # the model's own settings are left as they were


@pytest.mark.slow
def test_train_time_is_read_after_the_device_has_finished(tiny_cqa_dir, tmp_path, monkeypatch):
    import time as real_time

    import dss.student.loop as loop
    events = []

    class Clock:
        def perf_counter(self):
            events.append("clock")
            return real_time.perf_counter()
    monkeypatch.setattr(loop, "time", Clock())
    monkeypatch.setattr(loop, "wait_for_device", lambda device: events.append("sync"))
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "run", "--max-steps", "4", "--eval-steps", "4",
                          "--log-steps", "2", "--eval-max-new-tokens", "4")) == 0
    syncs = [k for k, e in enumerate(events) if e == "sync"]
    assert len(syncs) == 2 and all(events[k + 1] == "clock" for k in syncs)  # one per logged window


def test_cuda_waits_and_cpu_does_not(monkeypatch):
    from dss.student.loop import wait_for_device
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    wait_for_device(torch.device("cpu"))
    wait_for_device(torch.device("cuda", 1))
    assert calls == [torch.device("cuda", 1)]


def test_load_errors_name_a_gated_repo_and_remote_code(tmp_path, monkeypatch):
    import httpx
    import transformers
    from huggingface_hub.errors import GatedRepoError

    from dss.student import model as M
    from dss.testing.hf_folders import t5_folder
    response = httpx.Response(401, request=httpx.Request("GET", "https://huggingface.co/org/llama"))

    def gated(*a, **k):
        try:
            raise GatedRepoError("401 Client Error: access to model org/llama is restricted", response=response)
        except GatedRepoError as e:
            raise OSError("You are trying to access a gated repo. Make sure to have access to it.") from e
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", gated)
    with pytest.raises(ConfigError, match="gated repository: accept its terms.*HF_TOKEN"):
        M.load_pretrained("org/llama")
    monkeypatch.undo()
    folder = t5_folder(tmp_path / "custom", ["some words to learn a vocabulary from"] * 20)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="mycustom", auto_map={"AutoConfig": "configuration_my.MyConfig",
                                                   "AutoModelForSeq2SeqLM": "modeling_my.MyModel"})
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="needs code of its own \\(trust_remote_code\\), which dss never runs"):
        M.load_pretrained(str(folder))

