"""Teacher rationales: few-shot CoT prompts (`prompts`), the HTTP clients (`client`, the one network seam),
the resumable extractor (`extract`, with `extract_config`, `items`, `live`, `batch`, `cost`, `summary`) and
the record store the trainer reads and the extractor appends to (`store`)."""
from dss.teacher.store import apply_rationales, read_records  # noqa: F401
