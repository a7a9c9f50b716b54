"""A library's folder copied into another project under a new name still works."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from integration_support import PACKAGES, SMOKE


@pytest.mark.parametrize("name", [p.stem for p in sorted(SMOKE.glob("*.py"))])
def test_vendored_copy_under_a_new_name_passes_the_smoke_check(tmp_path, name):
    project = tmp_path / "project"
    shutil.copytree(PACKAGES / f"nebulae-{name}" / "src" / "nebulae" / name, project / f"vendored_{name}")
    script = (
        "import importlib, runpy, sys\n"
        f"m = importlib.import_module('vendored_{name}')\n"
        f"assert m.__file__.startswith({str(project)!r}), m.__file__\n"
        f"sys.argv = [{str(SMOKE / f'{name}.py')!r}, 'vendored_{name}']\n"
        f"runpy.run_path({str(SMOKE / f'{name}.py')!r}, run_name='__main__')\n"
        # the copy must not have pulled in the installed original of itself
        f"assert 'nebulae.{name}' not in sys.modules, 'the vendored copy imported nebulae.{name}'\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=project, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"
