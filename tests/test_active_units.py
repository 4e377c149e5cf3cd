"""`dss active`'s choices and `dss plan`'s curve, in closed form: the strategies pick what a hand computation says,
the saturating power law is recovered from its own points, and an unreachable target is said to be one."""
from __future__ import annotations

import math

import pytest

from dss.active import choose, plan


def test_uncertainty_picks_the_smallest_margins_by_hand():
    # candidates' summed log-likelihoods; softmax then p1 - p2:
    scores = [{"yes": math.log(0.9), "no": math.log(0.1)},     # margin 0.8
              {"yes": math.log(0.55), "no": math.log(0.45)},   # 0.1
              {"yes": math.log(0.3), "no": math.log(0.7)},     # 0.4
              {"a": math.log(0.4), "b": math.log(0.35), "c": math.log(0.25)}]  # 0.05
    m = choose.margins(scores)
    assert m == pytest.approx([0.8, 0.1, 0.4, 0.05])
    assert choose.least_sure(["p", "q", "r", "s"], m, 2) == ["s", "q"]
    assert choose.margins([{"only": -3.0}]) == [1.0]


def test_student_first_asks_about_wrong_answers_first_then_the_least_sure():
    ids, sure = ["a", "b", "c", "d", "e"], [0.9, 0.2, 0.8, 0.1, 0.5]
    wrong = [True, False, True, False, False]
    assert choose.student_first(ids, sure, wrong, 3, seed=0, round_no=1) == ["a", "c", "d"]
    assert sorted(choose.student_first(ids, sure, wrong, 1, 0, 1)) in (["a"], ["c"])  # one of the wrong ones
    assert choose.student_first(ids, sure, None, 2, 0, 1) == ["d", "b"]  # no gold: the least sure


def test_random_choice_is_replayable_and_never_repeats():
    ids = [str(i) for i in range(50)]
    one = choose.random_choice(ids, 10, seed=3, round_no=2)
    assert one == choose.random_choice(ids, 10, seed=3, round_no=2) and len(set(one)) == 10
    assert one != choose.random_choice(ids, 10, seed=3, round_no=3)


def test_the_power_law_is_recovered_and_inverted():
    truth = plan.Curve(a=0.9, b=0.6, alpha=0.5)
    points = [(c, truth.at(c)) for c in (100, 200, 400, 800, 1600)]
    fitted = plan.fit(points)
    assert fitted.a == pytest.approx(0.9, abs=2e-3) and fitted.alpha == pytest.approx(0.5, abs=0.02)
    assert fitted.budget_for(0.85) == pytest.approx(truth.budget_for(0.85), rel=0.05)  # (0.6 / 0.05)^2 = 144
    assert truth.budget_for(0.85) == pytest.approx(144.0)
    assert fitted.budget_for(0.95) is None  # above the ceiling: no budget reaches it
    assert plan.fit(points[:2]) is None  # two spends fit any such curve


def test_the_ceiling_never_passes_100_percent():
    # the demo study's random chains, rounds 0-2: free, the best fit through them rises to 117 %
    points = [(100, 0.636), (200, 0.885), (300, 0.973)]
    fitted = plan.fit(points)
    assert fitted.a == 1.0 and fitted.at(800) <= 1.0
    # with a fixed, b is the least-squares slope of (1 - y) on x = c^-alpha, by hand for the chosen alpha
    xs = [c ** -fitted.alpha for c, _ in points]
    assert fitted.b == pytest.approx(sum(x * (1 - y) for x, (_, y) in zip(xs, points)) / sum(x * x for x in xs))
    assert fitted.budget_for(1.0) is None and fitted.budget_for(0.99) > 300


def test_plan_reports_held_out_error_and_an_interval():
    rows = []
    for seed, noise in enumerate((-0.01, 0.0, 0.01)):
        for k, c in enumerate((100, 200, 400, 800)):
            rows.append({"strategy": "random", "seed": seed, "round": k, "requests": c,
                         "test_accuracy": 0.9 - 0.6 * c ** -0.5 + noise})
    (res,) = plan.plan(rows, target=0.85, by="requests", fit_rounds=3)
    assert res["points"] == 9 and [h["round"] for h in res["held_out"]] == [3]
    assert abs(res["held_out"][0]["predicted"] - res["held_out"][0]["measured"]) < 0.01
    lo, hi = res["budget_interval"]
    assert lo <= res["budget"] <= hi
    text = plan.format_plan([res], 0.85)
    assert "held-out round 3" in text and "90 % interval" in text


def test_rounds_grow_and_a_changed_study_is_refused(tmp_path):
    import yaml

    from dss.active.config import load_active_config
    from dss.active.loop import round_examples
    from dss.active.study import refuse_changed
    from dss.core.config import to_dict
    from dss.core.errors import ConfigError
    base = {"output_dir": str(tmp_path / "study"), "extract": {"teacher": "replay:gemini-3.5-flash",
                                                               "replay_from": "task"}}
    cfg = load_active_config(None, {**base, "seed_size": 1250, "round_size": 1250, "round_growth": 2.0})
    assert [round_examples(cfg, k) for k in range(4)] == [1250, 1250, 2500, 5000]  # budgets 1,250 .. 10,000
    cfg.out_dir().mkdir()
    (cfg.out_dir() / "active.yaml").write_text(yaml.safe_dump(to_dict(cfg)))
    refuse_changed(load_active_config(None, {**base, "seed_size": 1250, "round_size": 1250, "round_growth": 2.0,
                                             "seeds": "0,1,2,3", "budget_requests": 20000}))  # more is fine
    with pytest.raises(ConfigError, match="round_size: 1250 -> 500"):
        refuse_changed(load_active_config(None, {**base, "seed_size": 1250, "round_size": 500, "round_growth": 2.0}))
    # a study made before round_growth existed ran its rounds at the default (1): resuming it is fine, growing not
    added = ("round_growth", "train_by_round")
    old = {k: v for k, v in to_dict(load_active_config(None, base)).items() if k not in added}
    (cfg.out_dir() / "active.yaml").write_text(yaml.safe_dump(old))
    refuse_changed(load_active_config(None, base))
    with pytest.raises(ConfigError, match="round_growth: 1.0 -> 2.0"):
        refuse_changed(load_active_config(None, {**base, "round_growth": 2.0}))
