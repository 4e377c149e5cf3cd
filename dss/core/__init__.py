"""The small core every stage stands on: errors, config machinery (dataclasses, YAML, key=value, flags), file
I/O that survives kills (atomic writes, JSON lines), and metrics. Imports nothing else of dss."""
