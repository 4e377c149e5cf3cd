"""`dss plan`: how much teacher budget a target accuracy needs, from a study's measured points.

The model is a saturating power law of the spend c (teacher USD, or requests):

    accuracy(c) = a - b * c^(-alpha)        a <= 1: the ceiling it approaches, alpha > 0

fitted by least squares (for each alpha on a grid, a and b are linear, a held at 1 when the free fit passes it;
the alpha with the smallest squared error wins). The budget for a target T is c = (b / (a - T))^(1/alpha) when
T < a; above the fitted ceiling no budget reaches it, and the answer says so. Intervals: 90 % of 400 bootstrap
refits (points resampled with replacement). `fit_rounds` fits on the first rounds only and reports the error on
the rounds held out.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

ALPHAS = [0.02 * k for k in range(1, 151)]  # 0.02 .. 3.0


@dataclass
class Curve:
    a: float
    b: float
    alpha: float

    def at(self, c: float) -> float:
        return self.a - self.b * c ** -self.alpha

    def budget_for(self, target: float) -> float | None:
        """The spend at which the curve reaches target; None when the ceiling is below it."""
        if target >= self.a or self.b <= 0:
            return None
        return (self.b / (self.a - target)) ** (1 / self.alpha)


def fit(points: list[tuple[float, float]], ceiling: float = 1.0) -> Curve | None:
    """Least-squares saturating power law through (spend, accuracy) points (spend > 0) with a <= ceiling (an
    accuracy cannot pass 100 %: unbounded, three noisy points fit ceilings of 117 % and more); None with fewer
    than three distinct spends (two points fit any curve of this family)."""
    pts = [(c, y) for c, y in points if c > 0]
    if len({c for c, _ in pts}) < 3:
        return None
    best = None
    for alpha in ALPHAS:
        xs = [c ** -alpha for c, _ in pts]  # y = a - b * x
        n, mx, my = len(pts), sum(xs) / len(xs), sum(y for _, y in pts) / len(pts)
        var = sum((x - mx) ** 2 for x in xs)
        if var == 0:
            continue
        b = -sum((x - mx) * (y - my) for x, (_, y) in zip(xs, pts)) / var
        a = my + b * mx
        if a > ceiling:  # the best curve with its ceiling on the bound: a fixed, b by least squares
            a, b = ceiling, sum(x * (ceiling - y) for x, (_, y) in zip(xs, pts)) / sum(x * x for x in xs)
        sse = sum((a - b * x - y) ** 2 for x, (_, y) in zip(xs, pts)) / n
        if best is None or sse < best[0]:
            best = (sse, Curve(a, b, alpha))
    return best[1] if best else None


def interval(values: list[float | None], level: float = 0.9) -> tuple[float, float] | None:
    vals = sorted(v for v in values if v is not None and math.isfinite(v))
    if len(vals) < len(values) * level:  # too many refits say "never": no interval
        return None
    lo, hi = vals[int(len(vals) * (1 - level) / 2)], vals[min(len(vals) - 1, int(len(vals) * (1 + level) / 2))]
    return lo, hi


def bootstrap(points: list[tuple[float, float]], fn, runs: int = 400, seed: int = 0) -> list:
    rng = random.Random(seed)
    out = []
    for _ in range(runs):
        curve = fit([rng.choice(points) for _ in points])
        out.append(fn(curve) if curve is not None else None)
    return out


def plan(rows: list[dict], target: float, by: str = "cost_usd", fit_rounds: int | None = None) -> list[dict]:
    """Per strategy: the fitted curve, its error on held-out rounds, and the budget for `target` (a fraction)
    with its interval."""
    out = []
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == strategy and r.get(by) is not None]
        rounds = sorted({r["round"] for r in mine})
        fit_on = set(rounds[:fit_rounds]) if fit_rounds else set(rounds)
        points = [(float(r[by]), float(r["test_accuracy"])) for r in mine if r["round"] in fit_on]
        curve = fit(points)
        result = {"strategy": strategy, "by": by, "points": len(points), "curve": curve, "held_out": []}
        if curve is not None:
            for k in (k for k in rounds if k not in fit_on):
                at = [r for r in mine if r["round"] == k]
                spend = sum(float(r[by]) for r in at) / len(at)
                measured = sum(r["test_accuracy"] for r in at) / len(at)
                result["held_out"].append({"round": k, "spend": spend, "measured": measured,
                                           "predicted": curve.at(spend)})
            result["budget"] = curve.budget_for(target)
            result["budget_interval"] = interval(bootstrap(points, lambda c: c.budget_for(target)))
        out.append(result)
    return out


def format_plan(results: list[dict], target: float) -> str:
    unit = {"cost_usd": "USD", "requests": "requests", "tokens": "tokens"}
    lines = []
    for r in results:
        u = unit.get(r["by"], r["by"])
        c = r["curve"]
        if c is None:
            lines.append(f"{r['strategy']}: fewer than three spends to fit: run more rounds")
            continue
        lines.append(f"{r['strategy']}: accuracy = {c.a:.3f} - {c.b:.4g} * {u}^-{c.alpha:.2f} "
                     f"(fitted on {r['points']} points; ceiling {100 * c.a:.1f} %)")
        for h in r["held_out"]:
            lines.append(f"  held-out round {h['round']} ({h['spend']:.4g} {u}): predicted "
                         f"{100 * h['predicted']:.1f} %, measured {100 * h['measured']:.1f} % "
                         f"(error {100 * (h['predicted'] - h['measured']):+.1f} points)")
        if r["budget"] is None:
            lines.append(f"  {100 * target:.1f} %: not reachable (above the fitted ceiling {100 * c.a:.1f} %)")
        else:
            ci = r["budget_interval"]
            lines.append(f"  {100 * target:.1f} %: about {r['budget']:.4g} {u}" + (
                f" (90 % interval {ci[0]:.4g} to {ci[1]:.4g})" if ci else
                " (no interval: most bootstrap refits never reach it)"))
    return "\n".join(lines)
