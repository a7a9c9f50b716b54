"""Independent versions: every sibling range admits the sibling's current version; torch is never pinned."""

from __future__ import annotations

import re
import tomllib

import pytest
from integration_support import PACKAGES
from packaging.requirements import Requirement


def _current_versions() -> dict[str, str]:
    versions = {}
    for about in PACKAGES.glob("*/src/nebulae/**/__about__.py"):
        dist = about.parts[about.parts.index("packages") + 1]
        versions[dist] = re.search(r'__version__ = "([^"]+)"', about.read_text()).group(1)
    return versions


def _requirements() -> list[tuple[str, Requirement]]:
    found = []
    for pyproject in sorted(PACKAGES.glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        reqs = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            reqs.extend(extra)
        found.extend((project["name"], Requirement(r)) for r in reqs)
    return found


def test_every_distribution_has_a_version_file():
    assert set(_current_versions()) == {p.name for p in PACKAGES.iterdir() if (p / "pyproject.toml").exists()}


def test_libraries_start_at_0_1_and_the_meta_package_at_1_0():
    versions = _current_versions()
    assert versions.pop("nebulae") == "1.0.0"
    assert set(versions.values()) == {"0.1.0"}


@pytest.mark.parametrize(
    ("dist", "req"),
    [(d, r) for d, r in _requirements() if r.name.startswith("nebulae")],
    ids=lambda v: str(v),
)
def test_sibling_range_admits_the_siblings_current_version(dist, req):
    current = _current_versions()[req.name]
    assert req.specifier.contains(current, prereleases=True), (
        f"{dist} requires {req}, but {req.name} is {current}"
    )
    assert any(s.operator in ("<", "<=", "~=", "==") for s in req.specifier), (
        f"{dist}: {req} has no upper cap"
    )


def test_torch_is_declared_as_a_floor_never_pinned():
    torch_reqs = [(d, r) for d, r in _requirements() if r.name == "torch"]
    assert torch_reqs
    for dist, req in torch_reqs:
        assert str(req.specifier) == ">=2.1", f"{dist} declares {req}; metadata must say torch>=2.1"


def test_the_test_environment_runs_the_pinned_cpu_torch():
    torch = pytest.importorskip("torch")
    assert torch.__version__.split("+")[0] == "2.13.0"
