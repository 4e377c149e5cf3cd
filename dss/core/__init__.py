"""The small core every stage stands on: errors, config machinery (dataclasses, YAML, key=value, flags), file
I/O that survives kills (atomic writes, JSON lines), locks that work on cluster filesystems, child
processes that die with their parent, and metrics. Imports nothing else of dss."""
