"""Fixtures shared by the cross-package tests: one wheelhouse and one venv per library, built once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# test modules import the helpers by name (pytest runs with --import-mode=importlib)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from integration_support import LIBRARIES, PACKAGES, Venv, run


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """Every distribution of the monorepo built once into a temporary wheelhouse."""
    house = tmp_path_factory.mktemp("wheelhouse")
    dirs = [str(PACKAGES / f"nebulae-{name}") for name in LIBRARIES] + [str(PACKAGES / "nebulae")]
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(house),
            *dirs,
        ]
    )
    return house


_venvs: dict[str, Venv] = {}


@pytest.fixture(scope="session")
def library_venv(wheelhouse, tmp_path_factory):
    """``library_venv('fuel')``: a venv holding nebulae-fuel alone (built on first use, then reused)."""

    def get(name: str) -> Venv:
        if name not in _venvs:
            env = Venv(tmp_path_factory.mktemp(f"venv-{name}"))
            env.install_alone(wheelhouse, f"nebulae-{name}")
            _venvs[name] = env
        return _venvs[name]

    return get
