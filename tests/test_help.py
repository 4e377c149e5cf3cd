"""The command line's own documentation: every subcommand is there, every flag says what it does and its
default, every example in a `--help` text runs, and the Makefile's variables reach the commands."""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from dss.commands.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"tasks", "data", "score", "extract", "train", "predict", "export", "speed", "bench", "plot", "report",
            "active", "plan"}


def subparsers(parser: argparse.ArgumentParser, prefix: str = "dss"):
    """(name, parser) for every (sub)command, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, p in action.choices.items():
                yield f"{prefix} {name}", p
                yield from subparsers(p, f"{prefix} {name}")


def test_the_exact_set_of_subcommands():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == COMMANDS


@pytest.mark.parametrize("name,parser", list(subparsers(build_parser())), ids=lambda x: str(x))
def test_every_flag_has_help_and_says_its_default(name, parser):
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        where = f"{name} {'/'.join(action.option_strings) or action.dest}"
        assert action.help and len(action.help) > 8, f"{where}: no help"
        takes_value = action.option_strings and action.nargs != 0 and not isinstance(
            action, argparse.BooleanOptionalAction)
        if takes_value and not action.required and action.default is not None:
            assert "default" in action.help, f"{where}: help does not say its default ({action.default!r})"


def examples() -> list[tuple[str, str]]:
    """(subcommand, example line) for every `    dss ...` line of every --help text."""
    out = []
    for name, parser in subparsers(build_parser()):
        for line in (parser.description or "").splitlines():
            if line.startswith("    dss "):
                out.append((name, line.split("  #")[0].strip()))  # without a trailing comment
    return out


# what makes an example cheap here: trainers get a 1-layer model and 2 steps, sweeps and extractions list
# their work instead of doing it, the speed benchmark times one step
TINY = ["max_steps=2", "eval_steps=2", "d_model=16", "heads=2", "d_ff=32", "layers=1", "vocab_size=120",
        "batch_size=4", "max_eval_examples=4", "tensorboard=false", "eval_max_new_tokens=4"]
CHEAP = {"train": TINY, "speed": ["--steps", "1", "--warmup", "0", "--repeats", "1", *TINY[2:8]],
         "bench": ["--dry-run"], "extract": ["--dry-run"], "active": ["--dry-run"]}


def cheap(line: str) -> list[str]:
    """A `dss ...` line as argv with CHEAP's overrides; an extraction that only shows a prompt or lists models
    does what it says (it has nothing to dry-run)."""
    argv = shlex.split(line)[1:]
    argv += CHEAP.get(argv[0], [])
    if argv[0] == "extract" and ("--show-prompt" in argv or "--list-models" in argv):
        argv.remove("--dry-run")
    return argv


def run_cli(argv: list[str]) -> int:
    """`dss argv` in this process; --list-models, which asks the provider, is asked of a loopback teacher."""
    if "--list-models" not in argv:
        return main(argv)
    from dss.testing.fake_teacher import FakeTeacher
    with FakeTeacher() as srv, pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEMINI_API_KEY", "k")
        return main([*argv, "--base-url", srv.gemini_url])


@pytest.mark.slow
def test_every_help_example_runs(sandbox, capsys):
    todo = examples()
    assert len(todo) >= 20
    # trainers first: later examples use the students they make
    todo.sort(key=lambda e: e[0] not in ("dss train",))
    failures = []
    for _, line in todo:
        rc = run_cli(cheap(line))
        err = capsys.readouterr().err
        if rc != 0:
            failures.append(f"{line}  ->  exit {rc}: {err.strip().splitlines()[-1:] if err.strip() else ''}")
    assert not failures, "\n".join(failures)


MAKE = ["make", "-n", "-s", "-C", str(ROOT)]


def make(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*MAKE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MAKEFLAGS": ""})


def test_make_variables_reach_the_commands_or_fail_naming_themselves():
    assert "max_steps=200" in make("train", "DATA=my.jsonl", "STEPS=200").stdout
    out = make("train", "DATA=my.jsonl", "SEEDS=0,1")
    assert out.returncode != 0 and "make train does not read SEEDS" in out.stderr
    out = make("demo", "METHOD=dss")
    assert out.returncode != 0 and "does not read METHOD" in out.stderr
    assert "--seeds 0,1 --jobs 1 train.max_steps=50" in make("demo", "SEEDS=0,1", "JOBS=1", "STEPS=50").stdout
    assert "--name study-other" in make("study", "DATA=data/other.jsonl").stdout  # one sweep per data file
