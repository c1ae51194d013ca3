"""What both benchmark scripts collect: table rows, correctness checks, notes.

Each script defines its own ``Row`` (the columns differ) and hands it to
``Report``; the checks and notes are the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


class Report:
    def __init__(self, row_type: Callable[..., Any]) -> None:
        self.row_type = row_type
        self.rows: list[Any] = []
        self.checks: list[Check] = []
        self.notes: list[str] = []

    def row(self, *args: Any, **kwargs: Any) -> Any:
        r = self.row_type(*args, **kwargs)
        self.rows.append(r)
        return r

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, bool(ok), detail))
        print(f"    check {'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"    {text}", flush=True)
