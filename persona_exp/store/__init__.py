"""Stored runs: `<dir>/runs/<experiment>/<run-id>/` with `manifest.json`,
`metrics.json` and parquet tables. A run is written into a hidden temporary
folder and renamed into place, so a crash never leaves a half-written run."""

from persona_exp.store.runs import (
    SIMULATED,
    DamagedRun,
    RunInfo,
    check_run_name,
    is_simulated,
    label_simulated,
    list_runs,
    load_run,
    resolve_run,
    scan_runs,
    simulated_roles,
    write_run,
)

__all__ = ["SIMULATED", "DamagedRun", "RunInfo", "check_run_name", "is_simulated", "label_simulated", "list_runs", "load_run", "resolve_run", "scan_runs", "simulated_roles", "write_run"]
