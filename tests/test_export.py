"""`dss export` and `dss predict --runtime ct2`: a trained tiny T5 (dss and dss-shared), a BART-shaped and a
Llama-shaped folder, exported to CTranslate2 and answering as PyTorch does.

fp32: the acceptance bar is agreement >= 99.5 % of predictions; on these test sets (at most 400 rows) that
means every row equal, which is what is asserted, for greedy label-only decoding, rationales and closed-set
scoring, and every candidate's score within 1e-3 of PyTorch's. int8: agreement and accuracy are printed
(pytest -s), not held to equality: int8 weights round the logits."""
from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("ctranslate2", reason="CTranslate2 is not installed (the `fast` extra, in `dev`)")

from dss.commands.cli import main  # noqa: E402 -- after the skip: nothing here runs without ctranslate2
from dss.core.errors import ConfigError  # noqa: E402
from dss.student import export  # noqa: E402
from dss.student.predict import predict  # noqa: E402
from dss.tasks import get_task  # noqa: E402

pytestmark = pytest.mark.slow  # trains two tiny students (about a minute), converts eight models

TINY = ["--task", "demo", "--d-model", "64", "--d-ff", "128", "--heads", "2", "--layers", "2", "--batch-size", "32",
        "--lr", "3e-3", "--max-eval-examples", "40", "--no-tensorboard", "--threads", "1"]


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    """Run folders of tiny demo students and random folders shaped like BART and Llama checkpoints (their
    answers run to the length limit: BART's forced EOS, Llama without one). After 60 steps the dss student
    gives most rows one label; what tells runtimes apart is its rationales (10 greedy tokens, varied) and
    every candidate's score, compared too; the e-SNLI comparison (docs/speed.md) has 1,000 varied answers."""
    from dss.testing.hf_folders import bart_folder, llama_folder
    root = tmp_path_factory.mktemp("export")
    for method, steps in (("dss", "60"), ("dss-shared", "20")):
        assert main(["train", *TINY, "--method", method, "--max-steps", steps, "--eval-steps", steps, "--output-dir",
                     str(root / method)]) == 0
    texts = [t for e in get_task("demo").load("train", None)[:200] for t in (e.input, e.label, e.llm_rationale or "")]
    bart_folder(root / "bart" / "model", texts)
    llama_folder(root / "llama" / "model", texts)
    return {name: root / name for name in ("dss", "dss-shared", "bart", "llama")}


@pytest.fixture(autouse=True)
def fp32_pytorch():
    """PyTorch answers in fp32, as `dss predict` in a fresh process: training in this process left Accelerate's
    per-process state at its precision (bf16 where the CPU has it), which predict's Accelerator() would reuse."""
    from accelerate.state import AcceleratorState
    AcceleratorState._reset_state()


def demo_rows(n=None):
    rows = get_task("demo").load("test", None)
    return [e.input for e in rows[:n]], [e.label for e in rows[:n]]


def agreement(a: list[dict], b: list[dict]) -> float:
    return sum(x["prediction"] == y["prediction"] for x, y in zip(a, b, strict=True)) / len(a)


@pytest.mark.parametrize("name", ["dss", "dss-shared", "bart", "llama"])
def test_fp32_answers_as_pytorch_and_int8_is_reported(name, students):
    """Greedy label-only decoding and closed-set scoring through predict, PyTorch against both exports."""
    model = students[name] / "model"
    inputs, labels = demo_rows(None if name.startswith("dss") else 60)
    sets = [["yes", "no", "maybe so"]] * len(inputs)  # a 3-token candidate: scores of several tokens summed
    limit = None if name.startswith("dss") else 8  # random folders write to the limit: keep it short
    for kw in ({"max_new_tokens": limit}, {"candidates": sets}):
        want = predict(model, inputs, **kw)
        got = predict(model, inputs, runtime="ct2", **kw)
        assert agreement(want, got) == 1.0, (name, kw)  # >= 99.5 % of at most 400 rows: every row
        for w, g in zip(want, got):
            assert g.get("scores", {}) == pytest.approx(w.get("scores", {}), abs=1e-3)
        int8 = predict(model, inputs, runtime="ct2-int8", **kw)
        accuracy = sum(p["prediction"] == y for p, y in zip(int8, labels)) / len(labels)
        print(f"{name} {'score' if 'candidates' in kw else 'generate'}: int8 agrees with PyTorch on "
              f"{agreement(want, int8):.1%} of {len(inputs)} rows; accuracy int8 {accuracy:.1%}, fp32 "
              f"{sum(p['prediction'] == y for p, y in zip(want, labels)) / len(labels):.1%}")
    assert (students[name] / "export-ct2" / "model.bin").is_file()
    assert (students[name] / "export-ct2-int8" / "model.bin").is_file()


def test_rationales_and_the_command_line(students, capsys):
    """--rationale (dozens of greedy tokens per row) through the export; `dss predict --split test --runtime
    ct2` on the command line answers every test row as PyTorch does."""
    run = students["dss"]
    inputs, _ = demo_rows()
    want = predict(run / "model", inputs, rationale=True)
    assert len({w["rationale"] for w in want}) > 1  # varied texts, not one answer repeated
    assert predict(run / "export-ct2", inputs, rationale=True) == want
    capsys.readouterr()
    assert main(["predict", "--model", str(run / "model"), "--task", "demo", "--split", "test",
                 "--runtime", "ct2"]) == 0
    out = capsys.readouterr()
    got = [json.loads(line) for line in out.out.splitlines()]
    assert [g["prediction"] for g in got] == [w["prediction"] for w in want] and "accuracy: " in out.err


def test_an_export_knows_its_student_and_is_remade_when_stale(students, tmp_path, capsys):
    run = students["dss"]
    out = export.export(run, output=tmp_path / "ct2")
    assert {"model.bin", "config.json", "dss.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    info = json.loads((out / "dss.json").read_text())
    assert info["method"] == "dss" and info["export"]["quantization"] == "float32"
    assert export.fresh(out, run / "model")
    weights = run / "model" / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # "retrained"
    assert not export.fresh(out, run / "model")
    capsys.readouterr()
    assert main(["predict", "--model", str(run / "model"), "--runtime", "ct2", "--input", "x has a fig ."]) == 0
    assert "exporting" in capsys.readouterr().err and export.fresh(run / "export-ct2", run / "model")


def test_refusals_name_what_is_wrong(students, tmp_path):
    from transformers import GenerationConfig
    folder = tmp_path / "mbart-like"
    folder.mkdir()
    for p in (students["bart"] / "model").iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    GenerationConfig(forced_bos_token_id=0, eos_token_id=2).save_pretrained(folder)
    with pytest.raises(ConfigError, match="forced_bos_token_id"):
        export.export(folder)
    with pytest.raises(ConfigError, match="neither a run folder"):
        export.export(tmp_path)
    with pytest.raises(ConfigError, match="--runtime 'onnx'"):
        predict(students["dss"] / "model", ["x"], runtime="onnx")
