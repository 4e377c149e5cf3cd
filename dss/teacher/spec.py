"""Which teacher answers: `provider:model` from --teacher, parsed once (ExtractConfig.spec) and passed as it is to
every part that needs the provider or the model (the client, prices, the dry-run estimate, the summary).
`replay:<model>` answers from earlier answers (--replay-from, dss.teacher.replay) and is charged at <model>'s price."""
from __future__ import annotations

from dataclasses import dataclass

from dss.core.errors import ConfigError

PROVIDERS = ("gemini", "openai", "replay")
RELEASED = "palm"  # the release's PaLM 540B completions (dss extract --import-released): never called


@dataclass(frozen=True)
class TeacherSpec:
    provider: str   # gemini | openai | replay (| palm: the released answers)
    model: str

    @classmethod
    def parse(cls, text: str) -> TeacherSpec:
        provider, sep, model = str(text).partition(":")
        if not sep or not model or provider not in (*PROVIDERS, RELEASED):
            raise ConfigError(f"--teacher {text!r}: expected gemini:<model>, openai:<model> or replay:<model> (e.g. "
                              "gemini:gemini-3.5-flash, openai:gpt-4o-mini, openai:llama3.1 with --base-url, "
                              "replay:gemini-3.5-flash with --replay-from)")
        return cls(provider, model)

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"
