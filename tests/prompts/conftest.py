"""Shared fixtures for the prompt-set tests.

The PRISM sample is read here with the standard library only, so that counts
computed from it are independent of the polars loader under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# ../shared/data next to the checkout, as for every real data set the suite reads.
PRISM_SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "prism_opening_prompts_sample.jsonl"


@pytest.fixture(scope="session")
def prism_path() -> Path:
    if not PRISM_SAMPLE.is_file():
        pytest.skip(f"PRISM opening-prompt sample not found at {PRISM_SAMPLE}; real-data tests need ../shared/data next to the checkout")
    return PRISM_SAMPLE


@pytest.fixture(scope="session")
def prism_records(prism_path) -> list[dict]:
    """The raw records, one dict per non-blank line."""
    with prism_path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
