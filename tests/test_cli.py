"""The console script starts, explains itself and reports its version."""

import subprocess
import sys
from pathlib import Path

import persona_exp
from persona_exp import _core
from persona_exp.cli import main


def test_help_lists_the_program(capsys):
    assert main([]) == 0
    assert "persona-exp" in capsys.readouterr().out


def test_version_flag_prints_package_version():
    out = subprocess.run(
        [sys.executable, "-m", "persona_exp", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"persona-exp {persona_exp.__version__}"
    assert persona_exp.__version__ == _core.__version__


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("persona-exp")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: persona-exp" in out
