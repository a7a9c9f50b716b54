"""Helpers for the cross-package tests: paths, subprocess runs, wheel metadata and fresh venvs."""

from __future__ import annotations

import os
import re
import subprocess
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
SMOKE = Path(__file__).resolve().parent / "smoke"
LIBRARIES = ("kit", "fuel", "aerolog", "astro", "cockpit")
TORCH_FREE = ("kit", "fuel", "aerolog")
CONSTRAINTS = ROOT / "constraints.txt"


def run(cmd: list[str], *, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output when it exits non-zero."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if out.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} exited {out.returncode}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
        )
    return out


def pip_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PIP_CONSTRAINT"] = str(CONSTRAINTS)  # torch resolves to the local 2.13.0 CPU wheel
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def wheel_of(house: Path, dist: str) -> Path:
    prefix = dist.replace("-", "_") + "-"
    found = [p for p in house.glob("*.whl") if p.name.startswith(prefix)]
    assert len(found) == 1, f"expected one wheel for {dist} in {house}, found {found}"
    return found[0]


def requirements_of(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel (markers for extras dropped)."""
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(meta).decode())
    return [r for r in message.get_all("Requires-Dist", []) if "extra ==" not in r]


class Venv:
    """A fresh virtual environment with helpers to install and run in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
        self.python = str(path / "bin" / "python")

    def pip(self, *args: str) -> subprocess.CompletedProcess:
        return run([self.python, "-m", "pip", "install", "-q", *args], env=pip_env())

    def run(self, *args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
        return run([self.python, *args], env=pip_env(), cwd=cwd, timeout=600)

    def install_alone(self, house: Path, dist: str) -> None:
        """Third-party dependencies from the registry, then the nebulae wheels with --no-index."""
        third_party: list[str] = []
        pending, seen = [dist], set()
        while pending:  # follow sibling wheels to their own third-party requirements
            current = pending.pop()
            seen.add(current)
            for req in requirements_of(wheel_of(house, current)):
                name = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0]
                if name.startswith("nebulae"):
                    pending.extend([name] if name not in seen else [])
                elif req not in third_party:
                    third_party.append(req)
        if third_party:
            self.pip(*third_party)
        self.pip("--no-index", "--find-links", str(house), dist)
