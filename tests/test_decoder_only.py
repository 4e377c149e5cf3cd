"""Decoder-only students (dss.student.kinds.causal): prompt -> completion rows, the loss on completion tokens only,
left-padded generation equal to one-at-a-time generation, scoring equal to a plain forward pass, chat templates,
and whole runs on local Llama- and Qwen2-style folders and on a from-scratch tiny Llama."""
from __future__ import annotations

import json

import pytest
import torch

from dss.commands.cli import main
from dss.student.kinds import causal as C
from dss.tasks import get_task
from dss.testing.hf_folders import llama_folder, qwen2_folder

GREEDY6 = {"max_new_tokens": 6, "do_sample": False, "num_beams": 1}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from dss.testing.release import write_cqa
    root = tmp_path_factory.mktemp("causal")
    data = write_cqa(root, {"train": 40, "test": 10}, batch=16)
    exs = get_task("cqa").load("train", data)
    texts = [t for e in exs for t in (e.input, e.label, e.llm_rationale or "")] + ["predict: explain: so"] * 5
    return data, {"llama": llama_folder(root / "llama", texts), "qwen2": qwen2_folder(root / "qwen2", texts)}


def load(folder):
    from dss.student.model import load_pretrained
    model, tok = load_pretrained(str(folder))
    return model.eval(), tok


def test_prompts_and_completions(folders):
    _, models = folders
    _, llama = load(models["llama"])
    _, qwen = load(models["qwen2"])
    (p,) = C.prompt_ids(llama, ["Where is a plate?"], 512)
    assert p[0] == llama.bos_token_id and llama.eos_token_id not in p  # BOS kept, no EOS after the prompt
    (c,) = C.completion_ids(llama, ["kitchen"], 64)
    assert c[-1] == llama.eos_token_id and llama.bos_token_id not in c
    assert llama.pad_token is not None  # none in the folder: EOS stands in, masked everywhere
    (q,) = C.prompt_ids(qwen, ["Where is a plate?"], 512)
    assert qwen.decode(q) == "<|im_start|>user\nWhere is a plate?<|im_end|>\n<|im_start|>assistant\n"
    assert C.completion_ids(qwen, ["kitchen"], 64)[0][-1] == qwen.convert_tokens_to_ids("<|im_end|>")
    (t,) = C.prompt_ids(qwen, ["x " * 900], 20)
    assert len(t) == 20 and qwen.decode(t).endswith("assistant\n")  # cut from the left: the question survives


def test_the_loss_is_on_completion_tokens_only():
    part = C.pad_causal([[5, 6, 7], [5]], [[8, 1], [9, 9, 1]], [0, 1], pad_id=0)
    assert part["labels"].tolist() == [[-100, -100, -100, 8, 1], [-100, 9, 9, 1, -100]]
    assert part["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]

    class Echo(torch.nn.Module):  # logits that name the input token at each position
        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"logits": torch.nn.functional.one_hot(input_ids, 10).float()})()
    logits, labels = C.forward(Echo(), part)
    assert labels.tolist() == [[-100, -100, 8, 1], [9, 9, 1, -100]]  # position t is scored on token t + 1
    assert logits.argmax(-1)[0, 2].item() == 7  # the logits at the prompt's last token predict the completion


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_left_padded_generation_and_scoring_equal_one_at_a_time(family, folders):
    _, models = folders
    model, tok = load(models[family])
    prompts = ["Where?", "Where would you find item 3 on a long shelf?", "A plate"]
    with torch.no_grad():
        together = C.generate(model, tok, prompts, "cpu", 512, GREEDY6)
        alone = [C.generate(model, tok, [p], "cpu", 512, GREEDY6)[0] for p in prompts]
        assert together == alone
        cands = [["kitchen", "sky"], ["a"], ["shelf top", "b", "c"]]
        scores = C.score(model, tok, prompts, cands, "cpu", 512, 64)
        for prompt, cs, got in zip(prompts, cands, scores):
            for cand, s in zip(cs, got):  # one unpadded sequence, scored by hand
                p, c = C.prompt_ids(tok, [prompt], 512)[0], C.completion_ids(tok, [cand], 64)[0]
                logp = torch.log_softmax(model(input_ids=torch.tensor([p + c])).logits[0, :-1], -1)
                want = sum(logp[len(p) - 1 + k, t].item() for k, t in enumerate(c))
                assert s == pytest.approx(want, abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_a_decoder_only_folder_trains_and_its_run_folder_reloads(family, folders, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    data, models = folders
    run = tmp_path / "run"
    assert main(["train", "--task", "cqa", "--data-dir", str(data), "--model", str(models[family]), "--method",
                 "dss", "--label-prefix", "predict: ", "--rationale-prefix", "explain: ", "--batch-size", "4",
                 "--max-steps", "12", "--eval-steps", "6", "--lr", "3e-3", "--max-eval-examples", "4",
                 "--eval-max-new-tokens", "8", "--max-target-length", "48", "--no-tensorboard", "--log-steps", "1",
                 "--output-dir", str(run)]) == 0
    model = AutoModelForCausalLM.from_pretrained(run / "model")
    assert type(model).__name__ == {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[family]
    assert AutoTokenizer.from_pretrained(run / "model").pad_token is not None
    log = [json.loads(x) for x in open(run / "metrics.jsonl") if '"loss"' in x]
    assert sum(r["loss"] for r in log[-3:]) < sum(r["loss"] for r in log[:3])
    assert {"label_loss", "rationale_loss"} <= set(log[0])
    capsys.readouterr()
    assert main(["predict", "--model", str(run / "model"), "--task", "cqa", "--split", "test", "--data-dir",
                 str(data), "--limit", "3", "--score"]) == 0
    scored = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(scored) == 3 and all(r["prediction"] in r["scores"] for r in scored)


@pytest.mark.slow
def test_a_tiny_llama_from_scratch_learns_the_demo_with_its_rationales(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--task", "demo", "--tiny-arch", "llama", "--method", "dss", "--max-steps", "200",
                 "--batch-size", "32", "--d-model", "128", "--heads", "4", "--d-ff", "256", "--layers", "2",
                 "--dropout", "0", "--eval-steps", "200", "--eval-max-new-tokens", "4", "--max-eval-examples",
                 "100", "--threads", "1", "--no-tensorboard", "--output-dir", str(run)]) == 0
    res = json.loads((run / "results.json").read_text())
    assert res["test_accuracy"] >= 0.8, res  # chance is 50 %
    assert json.loads((run / "config.json").read_text())["config"]["tiny_arch"] == "llama"
