"""What training says while it runs: phase lines (`log`) and the progress of the steps (`Progress`), on the main
process's stderr. DSS_QUIET=1 silences the phase lines and TQDM_DISABLE=1 the progress (`dss bench --jobs N` sets
both in its workers)."""
from __future__ import annotations

import os
import sys
import time


def log(message: str) -> None:
    """A phase of training, on the main process's stderr (the progress line says how far it is)."""
    from accelerate import PartialState
    if PartialState().is_main_process and os.environ.get("DSS_QUIET") != "1":
        print(f"dss train: {message}", file=sys.stderr, flush=True)


class Progress:
    """A tqdm bar on a terminal; elsewhere (logs, CI, a sweep's workers) a plain line every 5 % of the steps.
    TQDM_DISABLE=1 (set by `dss bench --jobs N` in its workers) silences both."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self.total, self.loss, self.t0, self.first = total, None, time.perf_counter(), initial
        self.enabled = enabled and os.environ.get("TQDM_DISABLE") != "1"
        self.every = max(1, total // 20)
        self.bar = None
        if self.enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=initial, desc="train")

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if self.loss is not None:
                self.bar.set_postfix(loss=f"{self.loss:.4f}", refresh=False)
        elif self.enabled and (step % self.every == 0 or step == self.total):
            rate = (step - self.first) / max(time.perf_counter() - self.t0, 1e-9)
            loss = "" if self.loss is None else f", loss {self.loss:.4f}"
            print(f"dss train: step {step}/{self.total} ({100 * step // self.total} %{loss}, {rate:.2f} steps/s)",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
