"""The `dss` command line: subcommands parse arguments, build a config, and make one call.

Each subcommand lives in `dss/commands/<name>.py` with `register(subparsers)`: it parses arguments, builds a
config and makes one call into the library; heavy imports (torch,
transformers) happen inside the handlers so `dss --help` and `dss tasks` stay fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from dss.core.errors import ConfigError, DataError
from dss.core.processes import Terminated

# subcommand modules, in the order `dss --help` lists them
COMMAND_MODULES = ["tasks", "data", "score", "extract", "train", "predict", "export", "speed", "bench", "plot",
                   "report", "active", "plan"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dss", description="Distilling Step-by-Step: extract teacher "
                                     "rationales, train a small student (seq2seq or decoder-only) on labels and "
                                     "rationales, and benchmark data efficiency.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:  # a module that fails to import is an error, never a missing subcommand
        importlib.import_module(f"dss.commands.{name}").register(sub)
    return parser


def parse(argv=None) -> argparse.Namespace:
    """Arguments of one `dss` command line. A subcommand's `key=value` overrides may come before, between or
    after its flags (plain argparse takes positionals in one run only)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices.get(argv[0]) if argv else None
    if command is None or any(isinstance(a, argparse._SubParsersAction) for a in command._actions):
        return parser.parse_args(argv)
    args = command.parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


def main(argv=None) -> int:
    args = parse(argv)
    args.argv = ["dss", *(sys.argv[1:] if argv is None else argv)]  # the command as typed (a sweep records it)
    try:
        return int(args.func(args) or 0)
    except (DataError, ConfigError) as e:
        print(f"dss {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `dss tasks | head`: the reader left; end quietly (SIGPIPE stays ignored so that sockets to a
        # teacher that closed never kill the process)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Terminated:
        print(f"dss {args.command}: terminated (SIGTERM); rerun the same command to continue", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"dss {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
