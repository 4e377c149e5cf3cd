"""How sure a round's student is of each pool example (and, where a strategy may look, whether it is wrong): the
student's own answers through dss.student.evaluate.answers, the one implementation training and predict use."""
from __future__ import annotations

from pathlib import Path

from dss.active.choose import margins


def pool_answers(cfg, round_dir: Path, pool: list, task, gold: bool) -> tuple[list[float], list[bool] | None, str]:
    """(sureness per example: small = unsure, wrong per example or None, how it was measured). Closed answer
    sets: the margin between the two most probable candidates; open answers: the summed log-likelihood of the
    answer the student generates. `gold`: also compare the student's answer with the pool's gold label."""
    import dataclasses

    from accelerate import Accelerator

    from dss.student.evaluate import answers
    from dss.student.model import load_pretrained
    from dss.student.prepare import fresh_precision, precision
    from dss.student.run_folder import trained_config

    tcfg = trained_config(round_dir)
    model, tokenizer = load_pretrained(str(round_dir / "model"), what="student")
    fresh_precision(precision(tcfg))
    accelerator = Accelerator(mixed_precision=precision(tcfg))
    model = model.to(accelerator.device)
    inputs = [e.input for e in pool]
    sets = [task.candidates(e) for e in pool]
    if all(sets):  # closed answer sets: score every candidate
        out = answers(model, tokenizer, inputs, tcfg, accelerator, candidates=sets)
        sureness, by = margins([o["scores"] for o in out]), "closed-set margin"
    else:  # open answers: how likely the student finds its own answer
        said = answers(model, tokenizer, inputs, dataclasses.replace(tcfg, eval_mode="generate"), accelerator)
        out = answers(model, tokenizer, inputs, tcfg, accelerator, candidates=[[o["prediction"]] for o in said])
        sureness, by = [next(iter(o["scores"].values())) for o in out], "answer log-likelihood"
    wrong = [not task.is_correct(o["prediction"], e.label) for o, e in zip(out, pool)] if gold else None
    return sureness, wrong, by + (" (wrong answers first: gold labels)" if gold else "")
