"""The `hil` command's contract: help works, usage errors are one line with exit 2."""

from __future__ import annotations

import subprocess
import sys

from hil.cli import main


def test_help_lists_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "Exit codes" in out


def test_unknown_command_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "hil", "no-such-command"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "error" in proc.stderr
