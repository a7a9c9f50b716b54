"""The console scripts `nebulae-fuel` and `nebulae-kit` exist after installing the wheel and are the -m programs."""

from __future__ import annotations

import subprocess
import zipfile

import pytest
from integration_support import pip_env, run, wheel_of

SCRIPTS = {"fuel": "nebulae-fuel", "kit": "nebulae-kit"}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_wheel_declares_the_console_script(wheelhouse, name):
    with zipfile.ZipFile(wheel_of(wheelhouse, f"nebulae-{name}")) as archive:
        entry = next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
        text = archive.read(entry).decode()
    assert f"{SCRIPTS[name]} = nebulae.{name}.__main__:main" in text


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_script_runs_help_like_python_m(library_venv, name):
    env = library_venv(name)
    script = env.path / "bin" / SCRIPTS[name]
    assert script.is_file(), f"installing nebulae-{name} made no {SCRIPTS[name]} script"
    by_script = run([str(script), "--help"], env=pip_env(), timeout=120).stdout
    by_module = env.run("-m", f"nebulae.{name}", "--help").stdout
    assert by_script.startswith(f"usage: {SCRIPTS[name]} ")
    assert by_module.startswith(f"usage: python -m nebulae.{name} ")
    # past the usage block (wrapped by the program name's length), the help is the same text
    assert by_script.split("\n\n", 1)[1] == by_module.split("\n\n", 1)[1]


def test_fuel_script_reports_errors_in_flags_with_exit_code_2(library_venv, tmp_path):
    script = library_venv("fuel").path / "bin" / "nebulae-fuel"
    (tmp_path / "list.csv").write_text("a.jpg,1\n")
    source = ["--file-dir", str(tmp_path), "--file-list", "list.csv", "--dtype", "int64"]
    out = subprocess.run(
        [str(script), "pack", *source, "--dst", str(tmp_path / "out.h5"), "--shards", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env=pip_env(),
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "nebulae-fuel pack: error: --shards must be >= 1 (got 0)"
