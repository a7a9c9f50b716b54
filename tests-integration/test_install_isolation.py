"""Each library builds, ships only its portion, and installs and imports alone."""

from __future__ import annotations

import zipfile

import pytest
from integration_support import LIBRARIES, SMOKE, TORCH_FREE, wheel_of


@pytest.mark.parametrize("name", LIBRARIES)
def test_library_wheel_ships_only_its_own_portion(wheelhouse, name):
    with zipfile.ZipFile(wheel_of(wheelhouse, f"nebulae-{name}")) as archive:
        files = [n for n in archive.namelist() if ".dist-info/" not in n]
    assert files, "the wheel is empty"
    assert all(n.startswith(f"nebulae/{name}/") for n in files), files
    assert f"nebulae/{name}/py.typed" in files
    assert "nebulae/__init__.py" not in files and "nebulae/py.typed" not in files


def test_only_the_meta_wheel_owns_the_namespace_init(wheelhouse):
    with zipfile.ZipFile(wheel_of(wheelhouse, "nebulae")) as archive:
        files = sorted(n for n in archive.namelist() if ".dist-info/" not in n)
    assert files == ["nebulae/__about__.py", "nebulae/__init__.py", "nebulae/law.py", "nebulae/py.typed"]


@pytest.mark.parametrize("name", LIBRARIES)
def test_library_installs_alone_and_imports(library_venv, name):
    env = library_venv(name)
    code = (
        "import importlib, importlib.util, sys\n"
        f"m = importlib.import_module('nebulae.{name}')\n"
        "print(m.__version__, importlib.util.find_spec('torch') is not None,"
        " sorted(n for n in sys.modules if n.split('.')[0] == 'nebulae'))\n"
    )
    version, has_torch, modules = env.run("-c", code).stdout.strip().split(" ", 2)
    assert version == "0.1.0"
    siblings = {m.split(".")[1] for m in eval(modules) if m.count(".") >= 1} - {name}
    allowed = {"kit"} if name in ("astro", "cockpit") else set()
    assert siblings <= allowed, f"nebulae.{name} imported undeclared siblings {siblings}"
    if name in TORCH_FREE:
        assert has_torch == "False", f"nebulae-{name} must install without torch"


@pytest.mark.parametrize("name", [p.stem for p in sorted(SMOKE.glob("*.py"))])
def test_smoke_check_passes_in_the_isolated_install(library_venv, name):
    out = library_venv(name).run(str(SMOKE / f"{name}.py"), f"nebulae.{name}")
    assert out.stdout.strip().splitlines()[-1] == "ok"


def test_meta_namespace_names_the_missing_distribution(library_venv, wheelhouse):
    env = library_venv("kit")
    env.pip("--no-index", "--no-deps", str(wheel_of(wheelhouse, "nebulae")))
    code = (
        "import sys, nebulae as neb\n"
        "assert neb.Law is neb.kit.Law\n"
        "try:\n    neb.fuel\nexcept ImportError as e:\n    print(e)\n"
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))\n"
    )
    first, second = env.run("-c", code).stdout.strip().splitlines()
    assert "nebulae-fuel" in first and "pip install nebulae-fuel" in first
    assert second == "[]"
