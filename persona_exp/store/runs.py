"""Writing, listing and finding stored runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from persona_exp.errors import DataError, InvalidArgumentError


@dataclass(frozen=True)
class RunInfo:
    experiment: str
    run_id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def created(self) -> str:
        return str(self.manifest.get("created", ""))


SIMULATED = "SIMULATED: offline simulator sim/..., not a real model"


def label_simulated(title: str) -> str:
    """A headline title marked as simulated on its first line (plain text: no
    brackets, which rich would read as markup)."""
    first, _, rest = title.partition("\n")
    return f"{first} ({SIMULATED})" + (f"\n{rest}" if rest else "")


def simulated_roles(models: Mapping[str, Any]) -> list[str]:
    """The roles answered by the offline simulator, from role -> model name
    (or a manifest's role -> {"model": ...})."""
    names = {role: m.get("model") if isinstance(m, Mapping) else m for role, m in models.items()}
    return sorted(role for role, name in names.items() if str(name or "").startswith("sim/"))


def is_simulated(manifest: Mapping[str, Any]) -> bool:
    """Whether a run used the simulator: the manifest says so (runs stored
    before it did are judged by their models)."""
    if "simulated" in manifest:
        return bool(manifest["simulated"])
    return bool(simulated_roles(manifest.get("models", {})))


def new_run_id(plan_key: str) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{plan_key[:8]}"


def write_run(
    root: str | Path,
    experiment: str,
    run_id: str,
    manifest: Mapping[str, Any],
    metrics: Mapping[str, Any],
    tables: Mapping[str, pl.DataFrame],
    exports: Sequence[tuple[str, str]] = (),
) -> Path:
    """Writes a complete run atomically and returns its folder. A run id that is
    taken (two runs of one plan within a second) gets a numeric suffix."""
    base = Path(root) / "runs" / experiment
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{run_id}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        for name, frame in tables.items():
            frame.write_parquet(tmp / f"{name}.parquet")
        for name, fmt in exports:
            if fmt == "jsonl":
                tables[name].write_ndjson(tmp / f"{name}.jsonl")
            elif fmt == "csv":
                tables[name].write_csv(tmp / f"{name}.csv")
            else:
                raise ValueError(f"unknown export format {fmt!r} for table {name}")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=_jsonable) + "\n")
        for n in range(1, 1000):
            final = base / (run_id if n == 1 else f"{run_id}-{n}")
            # The tables it holds are listed, so a folder that lost one is known to be damaged.
            record = {**manifest, "run_id": final.name, "tables": sorted(tables)}
            (tmp / "manifest.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=_jsonable) + "\n")
            try:
                os.rename(tmp, final)  # atomic; refuses to replace an existing run
                break
            except OSError:
                if not final.exists():
                    raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_run_name(name: str | None) -> None:
    """A run name is a short label a reference can use (`show pilot-20`,
    `diff pilot-20 full`): letters, digits, '.', '_' and '-', not a `latest` form."""
    if name is None:
        return
    if not _NAME.fullmatch(name) or name.startswith("latest"):
        raise InvalidArgumentError(
            f"--name {name!r}: a run name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit, "
            "and not beginning with 'latest' (which names the newest runs); e.g. --name pilot-20."
        )


def damage(run_dir: Path, manifest: Mapping[str, Any]) -> str | None:
    """Why a stored run folder cannot be read whole (None when it can): a
    missing or unreadable metrics.json, or a table the manifest lists (older
    runs: the calls table) missing or not a complete parquet file."""
    try:
        json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError) as exc:
        return f"metrics.json is {'missing' if isinstance(exc, FileNotFoundError) else 'unreadable'}"
    for name in manifest.get("tables") or ["calls"]:
        path = run_dir / f"{name}.parquet"
        try:
            with open(path, "rb") as f:
                head = f.read(4)
                f.seek(-4, os.SEEK_END)
                tail = f.read(4)
        except FileNotFoundError:
            return f"table {path.name} is missing"
        except OSError:
            return f"table {path.name} is cut short or unreadable"
        if head != b"PAR1" or tail != b"PAR1":  # a parquet file begins and ends with its magic bytes
            return f"table {path.name} is cut short or unreadable"
    return None


@dataclass(frozen=True)
class DamagedRun:
    experiment: str
    run_id: str
    path: Path
    why: str


def scan_runs(root: str | Path, experiment: str | None = None) -> tuple[list[RunInfo], list[DamagedRun]]:
    """The stored runs (oldest first, by creation time to the microsecond),
    optionally of one experiment, and the run folders that are damaged
    (reported by `runs`, never used by latest, diff or report)."""
    runs_dir = Path(root) / "runs"
    out: list[RunInfo] = []
    damaged: list[DamagedRun] = []
    if not runs_dir.is_dir():
        return out, damaged
    for exp_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if experiment is not None and exp_dir.name != experiment:
            continue
        for run_dir in sorted(p for p in exp_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                manifest = json.loads((run_dir / "manifest.json").read_text())
                if not isinstance(manifest, dict):
                    raise ValueError("not an object")
            except (OSError, ValueError) as exc:
                missing = isinstance(exc, FileNotFoundError)
                damaged.append(DamagedRun(exp_dir.name, run_dir.name, run_dir, f"manifest.json is {'missing' if missing else 'unreadable'}"))
                continue
            why = damage(run_dir, manifest)
            if why:
                damaged.append(DamagedRun(exp_dir.name, run_dir.name, run_dir, why))
                continue
            out.append(RunInfo(exp_dir.name, run_dir.name, run_dir, manifest))
    out.sort(key=lambda r: (r.created, r.run_id))
    return out, damaged


def list_runs(root: str | Path, experiment: str | None = None) -> list[RunInfo]:
    """The intact stored runs (see scan_runs)."""
    return scan_runs(root, experiment)[0]


def nothing_succeeded(info: RunInfo) -> bool:
    """A run where every call failed: stored for the record, never `latest`."""
    from persona_exp.execute.runner import failures_of  # reads this version's counts and older manifests alike

    c = info.manifest.get("counts") or {}
    return int(c.get("calls") or 0) > 0 and failures_of(c)[0] >= int(c["calls"])


def resolve_run(root: str | Path, ref: str, experiment: str | None = None) -> RunInfo:
    """A run from an id (or a prefix), `experiment/run-id`, a run name (the
    newest run carrying it), `latest` or `latest~N` (within ``experiment``
    when given), or `experiment:latest~N`. `latest` counts back over runs
    where some call succeeded: a run where every call failed is still listed
    by `runs` and reachable by its id. A damaged run folder is never chosen;
    naming it says what is damaged."""
    if ":" in ref:
        experiment, ref = ref.split(":", 1)
        if not experiment or not ref.startswith("latest"):
            raise DataError(f"run reference {experiment}:{ref}: the form is experiment:latest or experiment:latest~N, e.g. loo:latest~1.")
    runs, damaged = scan_runs(root, experiment)
    for d in damaged:
        if ref in (d.run_id, f"{d.experiment}/{d.run_id}"):
            raise DataError(f"run {d.experiment}/{d.run_id} is damaged ({d.why} in {d.path}); it cannot be read. "
                            "Rerun its spec (the cache keeps its answers) and move the damaged folder away.")
    if not runs:
        where = f" of experiment {experiment!r}" if experiment else ""
        raise DataError(f"no stored runs{where} under {Path(root) / 'runs'}; run an experiment first (persona-exp run SPEC).")
    if ref == "latest" or ref.startswith("latest~"):
        back = 0
        if ref.startswith("latest~"):
            try:
                back = int(ref.split("~", 1)[1])
            except ValueError:
                raise DataError(f"run reference {ref!r}: use latest, latest~1, latest~2 ...") from None
        usable = [r for r in runs if not nothing_succeeded(r)]
        if back >= len(usable):
            skipped = len(runs) - len(usable)
            extra = f" ({skipped} more where every call failed, reachable by their ids)" if skipped else ""
            n = len(usable)
            raise DataError(f"run reference {ref!r}: only {n} run{'' if n == 1 else 's'} with answers {'is' if n == 1 else 'are'} stored"
                            f"{' for ' + repr(experiment) if experiment else ''}{extra}; `persona-exp runs` lists them.")
        return usable[-1 - back]
    exact = [r for r in runs if ref in (r.run_id, f"{r.experiment}/{r.run_id}")]
    if exact:
        return exact[-1]
    named = [r for r in runs if r.manifest.get("name") == ref]
    if named:
        return named[-1]
    matches = [r for r in runs if r.run_id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DataError(f"no stored run matches {ref!r}; `persona-exp runs` lists them.")
    raise DataError(f"run reference {ref!r} is ambiguous ({len(matches)} runs match); give more of the id.")


def load_run(info: RunInfo) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """The metrics and the tables of a run; a file that cannot be read is
    named in a DataError, not a traceback."""
    path = info.path / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
        tables = {}
        for path in sorted(info.path.glob("*.parquet")):
            tables[path.stem] = pl.read_parquet(path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"run {info.experiment}/{info.run_id} is damaged: {path} cannot be read ({type(exc).__name__}). "
                        "Rerun its spec (the cache keeps its answers) and move the damaged folder away.") from None
    return metrics, tables
