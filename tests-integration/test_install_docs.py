"""The READMEs' install commands work from this repository today, and the metadata names OS and Python versions."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest
from integration_support import PACKAGES, ROOT
from packaging.requirements import Requirement

READMES = [ROOT / "README.md", *sorted(PACKAGES.glob("*/README.md"))]
DISTS = sorted(p.parent for p in PACKAGES.glob("*/pyproject.toml"))


def _project(package_dir):
    return tomllib.loads((package_dir / "pyproject.toml").read_text())["project"]


def _local_installs(readme):
    """Each `pip install ./packages/...` command of a README: the package folders it names."""
    commands = []
    for line in readme.read_text().splitlines():
        command = line.split("#", 1)[0].strip()
        if not re.match(r"pip install \"?\./packages/", command):
            continue
        folders = []
        for arg in shlex.split(command)[2:]:
            pattern = re.sub(r"\[.*\]$", "", arg).removeprefix("./").rstrip("/")  # drop extras
            folders.append((arg, [m for m in ROOT.glob(pattern) if (m / "pyproject.toml").is_file()]))
        commands.append((command, folders))
    return commands


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_local_install_commands_name_existing_packages_and_their_siblings(readme):
    commands = _local_installs(readme)
    assert commands, f"{readme} shows no install command that works from this repository"
    for command, folders in commands:
        named = {p.name for _, found in folders for p in found}
        for arg, found in folders:
            assert found, f"{readme}: {arg!r} in {command!r} is no package folder of this repository"
        for folder in named:
            for req in _project(PACKAGES / folder).get("dependencies", []):
                sibling = Requirement(req).name
                assert not sibling.startswith("nebulae") or sibling in named, (
                    f"{readme}: {command!r} needs {sibling}, which pip cannot fetch from PyPI yet; name its folder too"
                )


@pytest.mark.parametrize("package_dir", DISTS, ids=lambda p: p.name)
def test_package_readme_shows_local_and_published_install_and_systems(package_dir):
    readme = package_dir / "README.md"
    local = [{p.name for _, found in folders for p in found} for _, folders in _local_installs(readme)]
    assert any(package_dir.name in named for named in local), f"{readme} never installs {package_dir.name}"
    text = readme.read_text()
    assert re.search(rf"^pip install {re.escape(_project(package_dir)['name'])}\s+#.*once", text, re.M)
    assert "Linux" in text and "Windows" in text and "3.11" in text and "3.12" in text


@pytest.mark.parametrize("package_dir", DISTS, ids=lambda p: p.name)
def test_package_metadata_names_operating_systems_and_python_versions(package_dir):
    project = _project(package_dir)
    classifiers = set(project["classifiers"])
    assert "Operating System :: POSIX :: Linux" in classifiers
    assert {"Programming Language :: Python :: 3.11", "Programming Language :: Python :: 3.12"} <= classifiers
    assert project["requires-python"] == ">=3.11"
