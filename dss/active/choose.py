"""Which pool examples the next round sends to the teacher: pure functions of the student's answers, so every
choice can be audited and replayed from what choices.jsonl records.

    random         a seeded sample of the pool (today's fraction curve, as a baseline)
    uncertainty    the examples the student is least sure of. Closed answer sets: the smallest margin between
                   the two most probable candidates, the candidates' summed log-likelihoods (dss's scoring)
                   turned into probabilities by a softmax over the set. Open answers (SVAMP's equations): the
                   lowest log-likelihood of the answer the student generates (its sequence likelihood).
    student-first  the student answers first (PERsD): the teacher is asked where it fails. With gold labels
                   allowed (`use_gold: true`), the examples it answers wrong (random among them when there are
                   more, then the least sure); without, the least sure as above. The report says which.
"""
from __future__ import annotations

import math
import random

STRATEGIES = ("random", "uncertainty", "student-first")


def margins(scores: list[dict[str, float]]) -> list[float]:
    """Per example, p1 - p2: the gap between the two most probable candidates under a softmax of their summed
    log-likelihoods (1.0 with a single candidate). Small = unsure."""
    out = []
    for s in scores:
        logs = sorted(s.values(), reverse=True)
        if len(logs) < 2:
            out.append(1.0)
            continue
        top = logs[0]
        z = sum(math.exp(v - top) for v in logs)  # shifted by the maximum: no overflow
        out.append((1.0 - math.exp(logs[1] - top)) / z)
    return out


def least_sure(ids: list[str], sureness: list[float], k: int) -> list[str]:
    """The k ids with the smallest sureness (ties: pool order), in that order."""
    order = sorted(range(len(ids)), key=lambda i: (sureness[i], i))
    return [ids[i] for i in order[:k]]


def random_choice(ids: list[str], k: int, seed: int, round_no: int) -> list[str]:
    """k ids drawn without replacement, seeded by (seed, round): a replayable baseline."""
    rng = random.Random(f"{seed}/{round_no}")
    return rng.sample(ids, min(k, len(ids)))


def student_first(ids: list[str], sureness: list[float], wrong: list[bool] | None, k: int, seed: int,
                  round_no: int) -> list[str]:
    """Wrong answers first (random among them when there are more than k), then the least sure of the rest;
    without gold labels (wrong None), the least sure."""
    if wrong is None:
        return least_sure(ids, sureness, k)
    missed = [i for i, w in zip(ids, wrong) if w]
    if len(missed) >= k:
        return random_choice(missed, k, seed, round_no)
    rest = [(i, s) for i, s, w in zip(ids, sureness, wrong) if not w]
    return missed + least_sure([i for i, _ in rest], [s for _, s in rest], k - len(missed))
