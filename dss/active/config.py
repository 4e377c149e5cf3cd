"""ActiveConfig: every knob of `dss active`, with its default, help and range, loaded like the other configs
(YAML, `key=value` overrides, unknown keys are errors). `train:` and `extract:` hold the values every round's
`dss train` and `dss extract` get."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dss.active.choose import STRATEGIES
from dss.core.config import check, field_, load_sectioned
from dss.core.errors import ConfigError
from dss.student.config import SEED_MAX

# set per round by the loop, so they cannot come from `train:` / `extract:`
TRAIN_KEYS = ("task", "task_options", "data_dir", "rationales", "labels", "output_dir", "seed", "train_fraction")
EXTRACT_KEYS = ("task", "split", "data_dir", "ids_file", "out", "max_requests", "max_cost", "samples", "dry_run")


@dataclass
class ActiveConfig:
    name: str = field_("", "study name; output goes to runs/<name> (default: the config file's name)")
    output_dir: str = field_("", "study folder (default runs/<name>)")
    task: str = field_("demo", "the task whose train split is the unlabelled pool (dss tasks lists them)")
    task_options: dict = field_({}, "task options (custom: train_file, ...)")
    data_dir: str | None = field_(None, "release-layout data folder (default $DSS_DATA_DIR, then ./data)")
    strategies: list[str] = field_(["random", "uncertainty", "student-first"], "how each round chooses what "
                                   "the teacher answers next (dss/active/choose.py)", choices=STRATEGIES)
    seeds: list[int] = field_([0, 1, 2], "seeds: each (strategy, seed) is one chain of rounds; tables show "
                              "mean +- standard error over them", min=0, max=SEED_MAX)
    seed_size: int = field_(100, "examples answered before the first student, drawn at random", min=1)
    round_size: int = field_(100, "examples sent to the teacher in the first round after the seed set", min=1)
    round_growth: float = field_(1.0, "each later round sends this many times the examples of the one before "
                                 "(2: budgets double, 1,250 / 2,500 / 5,000 / 10,000)", min=1.0)
    budget_requests: int = field_(800, "the teacher requests a chain may spend in all (dss extract "
                                  "--max-requests over the chain's answers file)", min=1)
    budget_usd: float | None = field_(None, "also cap the chain's teacher cost in USD (--max-cost)", min=0.0)
    use_gold: bool = field_(False, "student-first may choose by the pool's gold labels (the student's wrong "
                            "answers); off: the pool is treated as unlabelled, gold labels only score the test")
    pool_limit: int | None = field_(None, "use only the first N examples of the train split as the pool", min=1)
    train: dict = field_({}, "TrainConfig values for every round's student (method, max_steps, lr, ...)")
    train_by_round: dict = field_({}, "TrainConfig values for one round's student, over `train:`, e.g. {0: "
                                  "{max_steps: 500}, 3: {max_steps: 2000}} (budgets scaled to the data)")
    extract: dict = field_({}, "ExtractConfig values for every round's extraction (teacher, replay_from, "
                           "prices, max_tokens, concurrency, ...)")
    jobs: int = field_(1, "chains run at once (worker processes sharing the cores)", min=1)

    def __post_init__(self):
        check(self)
        if self.name and not re.fullmatch(r"\w[\w.+=-]*", self.name):
            raise ConfigError(f"name: {self.name!r}: one folder name under runs/ (letters, digits, . _ - + =)")
        for key, fixed in (("train", TRAIN_KEYS), ("extract", EXTRACT_KEYS)):
            clash = sorted(set(getattr(self, key)) & set(fixed))
            if clash:
                raise ConfigError(f"{key}: {', '.join(clash)} are set by dss active for each round")
        if "teacher" not in self.extract:
            raise ConfigError("extract.teacher: name the teacher, e.g. replay:gemini-3.5-flash (with "
                              "extract.replay_from: task) for an offline study, or gemini:<model>")
        if not self.strategies or not self.seeds:
            raise ConfigError("strategies and seeds need at least one value each")

    def out_dir(self) -> Path:
        return Path(self.output_dir or f"runs/{self.name or 'active'}")


def load_active_config(yaml_path=None, overrides: dict | None = None) -> ActiveConfig:
    """ActiveConfig from YAML + overrides; `train.KEY=VALUE` and `extract.KEY=VALUE` go into those sections."""
    return load_sectioned(ActiveConfig, yaml_path, overrides, ("train", "extract"))
