"""`python -m nebulae.kit`: its name, --help and usage errors follow argparse's conventions."""

from __future__ import annotations

import subprocess
import sys

import pytest


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "nebulae.kit", *args], capture_output=True, text=True, timeout=120
    )


def test_help_names_the_program_as_typed_and_lists_commands():
    res = cli("--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: python -m nebulae.kit ")
    assert "gpus" in res.stdout
    assert cli("gpus", "--help").stdout.startswith("usage: python -m nebulae.kit gpus ")


@pytest.mark.parametrize("args", [(), ("nope",), ("gpus", "--bogus")])
def test_usage_errors_exit_2_with_one_argparse_message(args):
    res = cli(*args)
    assert res.returncode == 2
    assert "python -m nebulae.kit" in res.stderr and ": error: " in res.stderr
    assert "Traceback" not in res.stderr


def test_console_script_name_is_used_when_started_as_the_script(monkeypatch, capsys):
    from nebulae.kit.__main__ import main

    monkeypatch.setattr(sys, "argv", ["/venv/bin/nebulae-kit", "--help"])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("usage: nebulae-kit ")
