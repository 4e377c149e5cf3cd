"""Cost per 1M predictions: the student's (measured throughput on a machine of a stated price per hour) against
the teacher's (what its answers cost per example, from an extraction's recorded usage and the price table).

    prediction_costs("runs/esnli-student", examples_per_second=2500.0, price_per_hour=0.085,
                     rationale_file="runs/esnli-teacher-test.jsonl")
    -> {"per": 1000000, "student": {"examples_per_second": 2500.0, "price_per_hour": 0.085,
                                    "seconds_per_prediction": 0.0004, "usd": 0.0094},
        "teacher": {"file": ..., "model": "gemini-3.5-flash", "examples": 9824, "requests": 9824,
                    "tokens": 5650726, "estimated": True, "cost_usd": 13.259, "usd": 1349.65},
        "teacher_over_student": 143581.0}

The student's price is the whole machine's for every second it answers (one process; a machine running
several, one per core, answers more for the same price, so this is an upper bound). The teacher's file is
`rationale_file`, else the extraction the run trained on (its config's `rationales`); a run on the release's
PaLM answers has none (they recorded no usage): `dss extract --teacher replay:MODEL --replay-from task`
prices the same answers as MODEL would have. Used by benchmarks/eval_modes.py and meant for report pages.
"""
from __future__ import annotations

from pathlib import Path

# an on-demand 2-vCPU compute VM, the shape of the machine the throughput is measured on (AWS c6i.large,
# us-east-1, Linux: 0.085 USD an hour, the list price of 2025; set price_per_hour to yours)
DEFAULT_PRICE_PER_HOUR = 0.085
PER = 1_000_000


def student_cost(examples_per_second: float, price_per_hour: float = DEFAULT_PRICE_PER_HOUR) -> dict:
    """USD for PER predictions at `examples_per_second` on a machine costing price_per_hour."""
    seconds = 1.0 / examples_per_second
    return {"examples_per_second": round(examples_per_second, 2), "price_per_hour": price_per_hour,
            "seconds_per_prediction": seconds, "usd": round(seconds * PER * price_per_hour / 3600, 6)}


def teacher_cost(rationale_file) -> dict | None:
    """USD for PER teacher answers, at the mean cost per example of an extraction file (requests, tokens and
    USD as dss.teacher.cost.answers_spend counts them; None when its model has no price)."""
    from dss.tasks.rationales import read_rationale_file
    from dss.teacher.cost import answers_spend
    records = read_rationale_file(rationale_file)
    examples = {str(r["id"]) for r in records if r.get("status") != "error"}
    spend = answers_spend(records)
    usd = spend["cost_usd"]
    return {"file": str(rationale_file), "model": next((r.get("model") for r in records if r.get("model")), None),
            "examples": len(examples), **spend,
            "estimated": any((r.get("usage") or {}).get("estimated") for r in records),
            "usd": None if usd is None or not examples else round(usd / len(examples) * PER, 4)}


def teacher_for(run_dir, rationale_file=None) -> dict | None:
    """teacher_cost of `rationale_file`, else of the extraction the run trained on (its config's `rationales`)
    while that file is still there; None when nothing prices the teacher."""
    from dss.student.run_folder import read_config
    if rationale_file is None:
        named = ((read_config(Path(run_dir)) or {}).get("config") or {}).get("rationales")
        rationale_file = named if named and Path(named).is_file() else None
    return teacher_cost(rationale_file) if rationale_file else None


def over(teacher: dict | None, student: dict) -> float | None:
    """How many times the student's cost per prediction the teacher's is (None without a priced teacher)."""
    ok = teacher and teacher["usd"] and student["usd"]
    return round(teacher["usd"] / student["usd"], 1) if ok else None


def prediction_costs(run_dir, examples_per_second: float, price_per_hour: float = DEFAULT_PRICE_PER_HOUR,
                     rationale_file=None) -> dict:
    """The student's and the teacher's cost per PER predictions, and their ratio (teacher None when there is no
    extraction file to price it from)."""
    student, teacher = student_cost(examples_per_second, price_per_hour), teacher_for(run_dir, rationale_file)
    return {"per": PER, "student": student, "teacher": teacher, "teacher_over_student": over(teacher, student)}
