"""The README's set-up commands are the ones the project really runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shell_blocks(text: str) -> list[str]:
    blocks, inside, current = [], False, []
    for line in text.splitlines():
        if line.startswith("```"):
            if inside:
                blocks.append("\n".join(current).strip())
                current = []
            inside = not inside and line.strip() == "```sh"
            continue
        if inside:
            current.append(line)
    return blocks


def test_ci_runs_exactly_the_readme_test_command():
    readme_blocks = _shell_blocks((ROOT / "README.md").read_text())
    ci_lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith(("#", "set ", "cd "))]
    assert len(ci_lines) == 1
    assert ci_lines[0] in readme_blocks
    assert "pytest" in ci_lines[0] and "cargo test" in ci_lines[0]


def test_readme_main_job_command_is_present():
    readme_blocks = _shell_blocks((ROOT / "README.md").read_text())
    assert any(b.startswith("python3 -m venv .venv") and "persona-exp" in b for b in readme_blocks)
