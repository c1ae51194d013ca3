"""Progress display for long runs: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts done / cached / failed calls, tokens and cost, with an ETA."""

    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.done = self.cached = self.failed = 0
        self.tokens = 0
        self.cost = 0.0
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self._rich = None
        self._task = None
        self._last = 0.0
        self._start = time.monotonic()
        if self.enabled and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                transient=False,
                console=Console(file=self.stream),
            )
            self._rich.start()
            self._task = self._rich.add_task("calls", total=total, info="")

    def _info(self) -> str:
        return f"cached {self.cached}  failed {self.failed}  tokens {self.tokens:,}  cost ${self.cost:.4f}"

    def step(self, name: str) -> None:
        if self._rich is not None:
            self._rich.update(self._task, description=name)
        elif self.enabled:
            print(f"[{name}]", file=self.stream, flush=True)

    def advance(self, *, cached: bool = False, failed: bool = False, tokens: int = 0, cost: float | None = 0.0) -> None:
        self.done += 1
        self.cached += cached
        self.failed += failed
        self.tokens += tokens
        self.cost += cost or 0.0
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done, info=self._info())
        elif self.enabled:
            now = time.monotonic()
            if now - self._last >= 5.0 or self.done == self.total:
                self._last = now
                rate = self.done / max(now - self._start, 1e-9)
                eta = (self.total - self.done) / rate if rate > 0 else float("inf")
                print(f"  {self.done}/{self.total} calls  {self._info()}  eta {eta:.0f}s", file=self.stream, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
