"""The two errors a user sees as one clear line (`dss <command>: error: ...`), never as a traceback."""
from __future__ import annotations


class ConfigError(ValueError):
    """A setting is unknown, out of range or inconsistent; the message names it."""


class DataError(ValueError):
    """Bad or missing input data; the message names the file, line and field where it can."""
