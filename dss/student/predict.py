"""Inference with a trained student: labels, and rationales when asked (the rationale task runs too).

    predictions = predict("runs/demo/model", ["some input"], rationale=True)

The model folder's `dss.json` (written by `dss train`) says how training built inputs (method, prefixes);
a plain Hugging Face checkpoint without it is treated as a `standard` student (input -> label).

    predictions = predict("runs/demo-dss/model", ["some input"], runtime="ct2")   # the CTranslate2 export
"""
from __future__ import annotations

from pathlib import Path

from dss.core.errors import ConfigError, DataError
from dss.core.io import read_jsonl_numbered
from dss.student.config import TrainConfig
from dss.student.methods import METHODS
from dss.student.run_folder import STUDENT_KEYS, student_info


def read_inputs(path) -> list[dict]:
    """Records with at least `input` (and optionally `id`, `label`) from a JSONL file."""
    numbered = read_jsonl_numbered(Path(path))
    if not numbered:
        raise DataError(f"{path}: no rows (expected JSON lines with an 'input' field)")
    for lineno, r in numbered:
        if "input" not in r or r["input"] is None or r["input"] == "":
            raise DataError(f"{path}:{lineno}: field 'input' is missing or empty")
        if not isinstance(r["input"], str):
            raise DataError(f"{path}:{lineno}: field 'input' must be text, got {type(r['input']).__name__}")
        if not r["input"].strip():
            raise DataError(f"{path}:{lineno}: field 'input' is empty")
        cands = r.get("candidates")
        if cands is not None and (not isinstance(cands, list) or not cands or
                                  not all(isinstance(c, str) and c for c in cands)):
            raise DataError(f"{path}:{lineno}: field 'candidates' must be a list of answer texts")
        r.setdefault("id", f"{Path(path).stem}-{lineno}")
    return [r for _, r in numbered]


def predict(model_dir, inputs: list[str], rationale: bool = False, batch_size: int = 32,
            max_new_tokens: int | None = None, candidates: list[list[str]] | None = None,
            runtime: str = "torch") -> list[dict]:
    """[{"prediction": label, "rationale": text (when asked)}] for each input: by greedy decoding, or with
    `candidates` (one list per input) the candidate the label task scores highest, with "scores". Answered by
    dss.student.evaluate.answers, as training's evaluation answers, or with runtime ct2 / ct2-int8 (or
    model_dir an export folder) by dss.student.runtimes.answers from the student's CTranslate2 export."""
    import dataclasses

    from transformers.utils import logging as hf_logging

    from dss.student import export
    from dss.student.model import HUB_ID

    hf_logging.disable_progress_bar()   # a "Loading weights" bar would mix into the predictions on the terminal
    if not Path(model_dir).is_dir() and not HUB_ID.fullmatch(str(model_dir)):
        raise ConfigError(f"--model {model_dir}: no such folder (a run's model folder is runs/NAME/model)")
    if runtime != "torch" or export.is_export(model_dir):
        from dss.student.runtimes import exported
        model_dir, runtime = exported(model_dir, runtime), "ct2"
    info = student_info(model_dir)
    method = METHODS[info["method"]]
    if rationale and not method.explains:
        raise ConfigError(f"this student was trained with method {method.name!r}: it has no rationale "
                          "task (train with --method dss or single)")
    if candidates is not None and method.rationale_in_target:
        raise ConfigError("a `single` student writes its rationale before the label: it cannot score candidates")
    # what training's evaluation used, from the model folder's dss.json (and this command's batch and length)
    settings = {k: info[k] for k in STUDENT_KEYS}
    if max_new_tokens:  # the label's tokens, and a rationale's (scoring keeps the trained target length)
        settings.update(eval_max_new_tokens=max_new_tokens,
                        **({"max_target_length": max_new_tokens} if candidates is None else {}))
    cfg = dataclasses.replace(TrainConfig(), **settings, eval_batch_size=batch_size)
    ask = answerer(model_dir, runtime, cfg)
    out = ask(inputs, candidates)
    if rationale and method.rationale_in_target:  # the single target holds the rationale before the label
        for o in out:
            o["rationale"] = method.split_rationale(o["text"])
    elif rationale:
        for o, r in zip(out, ask(inputs, task="rationale")):
            o["rationale"] = r["text"].strip()
    for o in out:
        o.pop("text", None)
    return out


def answerer(model_dir, runtime: str, cfg: TrainConfig):
    """ask(inputs, candidates=None, task="label") -> answers, from the student loaded once: PyTorch (on the GPU
    when there is one) or the CTranslate2 export in model_dir."""
    if runtime == "ct2":
        from dss.student import runtimes
        student = runtimes.load(model_dir, batch_size=cfg.eval_batch_size)
        return lambda inputs, candidates=None, task="label": runtimes.answers(student, inputs, cfg, candidates, task)
    from accelerate import Accelerator

    from dss.student.evaluate import answers
    from dss.student.model import load_pretrained
    model, tokenizer = load_pretrained(str(model_dir), what="student")
    accelerator = Accelerator()  # picks the GPU when there is one
    model = model.to(accelerator.device)
    return lambda inputs, candidates=None, task="label": answers(model, tokenizer, inputs, cfg, accelerator,
                                                                 candidates, task)


def scored(rows: list[dict], preds: list[dict], task) -> tuple[list[dict], float | None]:
    """Prediction records (id, input, prediction[, rationale][, label, correct]) and the accuracy, where rows
    carry labels and a task scores them (else None)."""
    records, correct = [], []
    for r, p in zip(rows, preds, strict=True):
        rec = {"id": r["id"], "input": r["input"], **p}
        if "label" in r:
            rec["label"] = r["label"]
            if task is not None:
                rec["correct"] = task.is_correct(p["prediction"], str(r["label"]))
                correct.append(rec["correct"])
        records.append(rec)
    return records, (sum(correct) / len(correct) if correct else None)
