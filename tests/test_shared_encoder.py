"""Shared-encoder DSS (method dss-shared): the task prefix starts the decoder and x is encoded once. Its fast
path must compute exactly the loss of encoding x once per task, the prefix is given (never scored or
predicted), and a run trains, evaluates and predicts through it."""
from __future__ import annotations

import json

import pytest
import torch

from dss.commands.cli import main
from dss.student.batching import training_items
from dss.student.config import TrainConfig
from dss.student.kinds import shared as S
from dss.tasks.base import Example


def tiny_t5(vocab=40):
    from transformers import T5Config, T5ForConditionalGeneration
    torch.manual_seed(0)
    return T5ForConditionalGeneration(T5Config(vocab_size=vocab, d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                               num_decoder_layers=1, num_heads=2, dropout_rate=0.0,
                                               feed_forward_proj="gated-gelu", decoder_start_token_id=0,
                                               pad_token_id=0, eos_token_id=1)).eval()


def features():
    # two examples: sources 5 and 3 tokens; label prompt [30], rationale prompt [31, 32]; the second example has
    # two rationales (rationales_per_example=2)
    return [{"input_ids": [[5, 6, 7, 8, 1], [5, 6, 7, 8, 1]], "labels": [[30, 9, 1], [31, 32, 10, 11, 12, 1]],
             "task": [0, 1], "prompt": [1, 2]},
            {"input_ids": [[13, 14, 1], [13, 14, 1], [13, 14, 1]],
             "labels": [[30, 15, 1], [31, 32, 16, 1], [31, 32, 17, 18, 1]], "task": [0, 1, 1], "prompt": [1, 2, 2]}]


def test_the_rows_carry_the_prefix_in_the_target_not_the_input():
    ex = Example("a", "x1", "y", llm_label="y", llm_rationale="r0")
    (rows,), _ = training_items([ex], TrainConfig(task="demo", method="dss-shared"))
    assert [(r.source, r.target) for r in rows] == [("x1", "y"), ("x1", "r0")]
    (rows,), _ = training_items([ex], TrainConfig(task="demo", method="dss"))
    assert [r.source for r in rows] == ["[label] x1", "[rationale] x1"]


def test_collate_masks_the_given_prompt_and_maps_rationales_to_their_example():
    batch = S.collate(features(), pad_id=0)
    lab, rat = batch["parts"][0]["label"], batch["parts"][0]["rationale"]
    assert lab["labels"].tolist() == [[-100, 9, 1], [-100, 15, 1]]
    assert lab["decoder_labels"].tolist() == [[30, 9, 1], [30, 15, 1]]
    assert rat["row_of"].tolist() == [0, 1, 1] and rat["labels"][0].tolist() == [-100, -100, 10, 11, 12, 1]
    assert (int(batch["n_label_tokens"]), int(batch["n_rationale_tokens"])) == (4, 4 + 2 + 3)


def test_one_encoder_pass_gives_exactly_the_loss_of_encoding_per_task():
    from dss.student.loss import multitask_loss
    net = tiny_t5()
    batch = S.collate(features(), pad_id=0)
    counts = torch.stack([batch["n_label_tokens"], batch["n_rationale_tokens"]])
    fast = S.losses(net, net, batch["parts"][0], 0.3, counts)
    total = torch.zeros(3)
    for part in batch["parts"][0].values():  # the plain way: every row re-encodes its own source
        src = batch["parts"][0]["label"]["input_ids"]
        mask = batch["parts"][0]["label"]["attention_mask"]
        if "row_of" in part:
            src, mask = src[part["row_of"]], mask[part["row_of"]]
        logits = net(input_ids=src, attention_mask=mask,
                     decoder_input_ids=net.prepare_decoder_input_ids_from_labels(labels=part["decoder_labels"])).logits
        total += torch.stack(multitask_loss(logits, part["labels"], part["is_rationale"], 0.3, counts[0], counts[1]))
    assert torch.allclose(torch.stack(fast), total, atol=1e-6)
    assert torch.allclose(fast[0], 0.3 * fast[1] + 0.7 * fast[2], atol=1e-6)


@pytest.mark.slow
def test_a_shared_encoder_run_trains_evaluates_and_predicts(tiny_cqa_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "cqa", "--data-dir", str(tiny_cqa_dir), "--method", "dss-shared", "--model",
                 "tiny", "--d-model", "32", "--d-ff", "64", "--heads", "2", "--layers", "1", "--vocab-size", "200",
                 "--batch-size", "4", "--max-steps", "8", "--eval-steps", "4", "--max-eval-examples", "4",
                 "--eval-mode", "score", "--lr", "3e-3", "--no-tensorboard", "--log-steps", "1",
                 "--output-dir", str(run)]) == 0
    log = [json.loads(x) for x in open(run / "metrics.jsonl") if '"loss"' in x]
    assert {"label_loss", "rationale_loss"} <= set(log[0]) and log[-1]["loss"] < log[0]["loss"]
    preds = [json.loads(x) for x in open(run / "predictions.jsonl")]
    assert all(p["prediction"] in p["scores"] for p in preds)
    capsys.readouterr()
    assert main(["predict", "--model", str(run / "model"), "--input", "Where would you find item 1?",
                 "--rationale"]) == 0
    assert "rationale:" in capsys.readouterr().out
    # label-only decoding starts the decoder with the label prompt and returns only what follows it
    from accelerate import Accelerator
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from dss.student.evaluate import generate
    net, tok = AutoModelForSeq2SeqLM.from_pretrained(run / "model").eval(), AutoTokenizer.from_pretrained(run / "model")
    prompt = S.prompt(tok, "[label] ")
    assert len(prompt) == 1  # tiny: the prefix is one added token
    (text,) = generate(net, tok, ["Where would you find item 1?"], Accelerator(cpu=True), 4, 512, 6, S, prompt)
    enc = tok(["Where would you find item 1?"], return_tensors="pt")
    ids = net.generate(**enc, decoder_input_ids=torch.tensor([[0, *prompt]]), max_new_tokens=6, do_sample=False)
    assert ids[0, 1].item() == prompt[0] and text == tok.decode(ids[0, 2:], skip_special_tokens=True)


def test_it_runs_alone_or_under_ddp_and_refuses_sharded_parameters():
    from dss.core.errors import ConfigError
    for kind in ("NO", "MULTI_CPU", "MULTI_GPU"):
        S.check_parallelism(kind)
    for kind in ("FSDP", "DEEPSPEED", "XLA"):
        with pytest.raises(ConfigError, match=f"dss-shared runs in one process or under DDP, not {kind}"):
            S.check_parallelism(kind)
