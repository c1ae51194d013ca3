"""What every benchmark script shares: table rows, correctness checks, notes, the summary.

Each script defines its own ``Row`` (the columns differ) and hands it to
``Report``; the checks and notes are the same everywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence


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

    def finish(self, *, notes: list[str], env: dict[str, Any], elapsed: float, json_path: str | None, other: str = "SKIP",
               checks_label: str = "checks", load: bool = True) -> int:
        """Prints the notes and the summary line, writes the JSON record when
        asked; the exit code is 1 when a correctness check failed."""
        for note in notes:
            print(f"note: {note}")
        failed = [c for c in self.checks if not c.ok]
        n_pass = sum(getattr(r, "passed", None) is True for r in self.rows)
        n_miss = sum(getattr(r, "passed", None) is False for r in self.rows)
        load_end = f" | load average at end {os.getloadavg()[0]:.2f}" if load and hasattr(os, "getloadavg") else ""
        print(f"\ntargets: {n_pass} PASS, {n_miss} MISS, {len(self.rows) - n_pass - n_miss} {other} | "
              f"{checks_label}: {len(self.checks) - len(failed)}/{len(self.checks)} ok | total {elapsed:.1f} s{load_end}")
        for c in failed:
            print(f"FAILED check: {c.name}: {c.detail}")
        if json_path:
            out = {"environment": env, "rows": [asdict(r) for r in self.rows], "checks": [asdict(c) for c in self.checks],
                   "notes": notes, "elapsed_s": elapsed}
            os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
            with open(json_path, "w", encoding="utf-8") as fh:
                json.dump(out, fh, indent=2, default=float)
                fh.write("\n")
            print(f"wrote {json_path}")
        return 1 if failed else 0


def print_table(headers: Sequence[str], cells: Sequence[Sequence[str]], right: frozenset[int] = frozenset({1, 3, 4})) -> None:
    """An aligned text table; columns in ``right`` are right-aligned (numbers)."""
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return " | ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths)))

    print(line(headers))
    print("-+-".join("-" * w for w in widths))
    for c in cells:
        print(line(c))
