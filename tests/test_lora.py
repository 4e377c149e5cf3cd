"""Large students on small GPUs: LoRA through peft (model/ merged and loadable without peft, adapter/ the
adapter alone, only adapters train) and gradient checkpointing (the same numbers, less memory)."""
from __future__ import annotations

import json

import pytest
import torch

from dss.commands.cli import main
from dss.tasks import get_task
from dss.testing.hf_folders import llama_folder, t5_folder

pytestmark = pytest.mark.slow
pytest.importorskip("peft")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from dss.testing.release import write_cqa
    root = tmp_path_factory.mktemp("lora")
    data = write_cqa(root, {"train": 40, "test": 10}, batch=16)
    texts = [t for e in get_task("cqa").load("train", data) for t in (e.input, e.label, e.llm_rationale or "")]
    return data, {"t5": t5_folder(root / "t5", texts), "llama": llama_folder(root / "llama", texts)}


def train(data, model, out, *extra):
    return main(["train", "--task", "cqa", "--data-dir", str(data), "--model", str(model), "--method", "dss",
                 "--batch-size", "4", "--max-steps", "4", "--eval-steps", "4", "--max-eval-examples", "4",
                 "--eval-max-new-tokens", "4", "--max-target-length", "32", "--lr", "1e-2", "--dropout", "0",
                 "--no-tensorboard", "--log-steps", "1", "--output-dir", str(out), *extra])


def test_a_lora_run_saves_a_merged_model_and_its_adapter(folders, tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    data, models = folders
    run = tmp_path / "run"
    assert train(data, models["t5"], run, "--lora-r", "4", "--lora-alpha", "8") == 0
    stats = json.loads((run / "results.json").read_text())["data"]
    assert 0 < stats["trainable_parameters"] < stats["parameters"] / 5
    merged_sd = load_file(run / "model" / "model.safetensors")
    assert not any("lora" in k for k in merged_sd)  # plain weights: from_pretrained needs no peft
    base_sd = load_file(models["t5"] / "model.safetensors")
    query = "encoder.block.0.layer.0.SelfAttention.q.weight"
    assert not torch.equal(merged_sd[query], base_sd[query])  # the adapter is merged in
    assert torch.equal(merged_sd["encoder.block.0.layer.1.DenseReluDense.wo.weight"],
                       base_sd["encoder.block.0.layer.1.DenseReluDense.wo.weight"])  # the rest stayed frozen
    assert json.loads((run / "adapter" / "adapter_config.json").read_text())["r"] == 4
    tok = AutoTokenizer.from_pretrained(run / "model")
    enc = tok(["Where is a plate?"], return_tensors="pt")
    dec = torch.tensor([[0, 5, 6]])
    merged = AutoModelForSeq2SeqLM.from_pretrained(run / "model").eval()
    adapted = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(models["t5"]), run / "adapter").eval()
    with torch.no_grad():
        a = merged(**enc, decoder_input_ids=dec).logits
        b = adapted(**enc, decoder_input_ids=dec).logits
    assert torch.allclose(a, b, atol=1e-5)


def test_lora_on_a_decoder_only_folder(folders, tmp_path):
    from transformers import AutoModelForCausalLM
    data, models = folders
    assert train(data, models["llama"], tmp_path / "run", "--lora-r", "2", "--gradient-checkpointing") == 0
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")).__name__ == "LlamaForCausalLM"
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


def test_lora_targets_that_do_not_exist_are_named(folders, tmp_path, capsys):
    data, models = folders
    assert train(data, models["t5"], tmp_path / "run", "--lora-r", "2", "--lora-targets", "q_proj") == 2
    assert "lora_targets: q_proj not found in t5" in capsys.readouterr().err


def test_gradient_checkpointing_changes_memory_not_numbers(folders, tmp_path):
    data, models = folders
    assert train(data, models["t5"], tmp_path / "plain") == 0
    assert train(data, models["t5"], tmp_path / "ckpt", "--gradient-checkpointing") == 0
    plain, ckpt = ([json.loads(x) for x in open(tmp_path / r / "metrics.jsonl") if '"loss"' in x]
                   for r in ("plain", "ckpt"))
    assert [r["step"] for r in plain] == [r["step"] for r in ckpt]
    for p, c in zip(plain, ckpt):
        assert c["loss"] == pytest.approx(p["loss"], rel=1e-4)


def test_a_killed_lora_run_resumes_exactly(folders, tmp_path, monkeypatch):
    import dss.student.loop as T
    data, models = folders
    args = ["--lora-r", "4", "--max-steps", "6", "--eval-steps", "3"]
    assert train(data, models["t5"], tmp_path / "full", *args) == 0
    save = T.save_checkpoint

    def crash_after_step_3(accelerator, run, step, state, *keep):
        save(accelerator, run, step, state, *keep)
        if step == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(T, "save_checkpoint", crash_after_step_3)
    assert train(data, models["t5"], tmp_path / "cut", *args) == 130
    monkeypatch.setattr(T, "save_checkpoint", save)
    assert train(data, models["t5"], tmp_path / "cut", *args, "--resume") == 0
    full, cut = ([json.loads(x) for x in open(tmp_path / r / "metrics.jsonl")] for r in ("full", "cut"))
    assert full == cut
    assert (tmp_path / "full/adapter/adapter_model.safetensors").read_bytes() == \
        (tmp_path / "cut/adapter/adapter_model.safetensors").read_bytes()
