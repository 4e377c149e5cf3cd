"""Closed-set answer scoring: the chosen candidate is the one with the higher likelihood, computed here
independently; CQA scoring always answers with one of the row's choices."""
from __future__ import annotations

import json

import pytest
import torch
from test_train import read_jsonl, tiny_args

from dss.commands.cli import main


def tiny_student(tmp_path):
    from dss.student import model as M
    from dss.student.config import TrainConfig
    tok = M.train_tokenizer(["the cat sat on the mat", "yes no maybe", "a dog ran"], ["[label] ", "[rationale] "],
                            80, tmp_path / "tok")
    torch.manual_seed(0)
    return M.tiny_model(TrainConfig(d_model=16, heads=2, d_ff=32, layers=1), tok).eval(), tok


def test_the_higher_likelihood_candidate_wins(tmp_path):
    from accelerate import Accelerator

    from dss.student.evaluate import score
    from dss.student.kinds import seq2seq
    model, tok = tiny_student(tmp_path)
    sources, cands = ["the cat sat", "a dog"], [["yes", "no"], ["no maybe", "yes"]]
    got = score(model, tok, sources, cands, Accelerator(cpu=True), batch_size=2, max_input_length=32,
                max_target_length=16, kind=seq2seq)

    def loglik(src, tgt):  # the sequence's log-probability, EOS included, by a plain forward pass
        ids = tok(src, return_tensors="pt")["input_ids"]
        labels = tok(text_target=tgt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=ids, labels=labels).logits[0]
        return float(torch.log_softmax(logits, -1)[torch.arange(labels.shape[1]), labels[0]].sum())

    for src, cs, scores in zip(sources, cands, got):
        want = [loglik(src, c) for c in cs]
        assert scores == pytest.approx(want, abs=1e-4)
        assert cs[max(range(len(cs)), key=scores.__getitem__)] == cs[max(range(len(cs)), key=want.__getitem__)]


@pytest.mark.slow
def test_cqa_scoring_answers_with_one_of_the_rows_choices(tiny_cqa_dir, tmp_path):
    run = tmp_path / "run"
    assert main(tiny_args(tiny_cqa_dir, run, "--method", "dss", "--max-steps", "6", "--eval-steps", "3",
                          "--eval-mode", "score")) == 0
    choices = {json.loads(line)["id"]: json.loads(line)["choices"]
               for line in open(tiny_cqa_dir / "cqa" / "cqa_test.json")}
    preds = read_jsonl(run / "predictions.jsonl")
    assert len(preds) == 10
    for p in preds:
        assert p["eval_mode"] == "score" and p["prediction"] in choices[p["id"]]
        assert set(p["scores"]) == set(choices[p["id"]]) and p["prediction"] == max(p["scores"], key=p["scores"].get)
    res = json.loads((run / "results.json").read_text())
    assert res["eval_mode"] == "score" and res["test_accuracy"] == sum(p["correct"] for p in preds) / 10
    # dss predict scores the same way: each row's own choices, the same answers
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model", str(run / "model"), "--task", "cqa", "--split", "test", "--data-dir",
                 str(tiny_cqa_dir), "--score", "--output", str(out)]) == 0
    assert [r["prediction"] for r in read_jsonl(out)] == [p["prediction"] for p in preds]


def test_scoring_needs_a_closed_answer_set(tmp_path, capsys, shared_data):
    assert main(["train", "--task", "svamp", "--data-dir", str(shared_data), "--eval-mode", "score",
                 "--max-steps", "1", "--output-dir", str(tmp_path / "r"), "--max-eval-examples", "2",
                 "--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff", "32"]) == 2
    assert "needs a closed answer set" in capsys.readouterr().err
    assert main(["train", "--task", "demo", "--method", "single", "--eval-mode", "score"]) == 2
