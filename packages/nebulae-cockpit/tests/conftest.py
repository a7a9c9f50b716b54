"""Fixtures shared by the cockpit tests: an isolated lease directory and leases held by other processes."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator

import pytest

from nebulae.cockpit import _lease

# Loads _lease.py and the small modules it imports, without the package's __init__ (no torch), so
# holding a lease in another process costs a fraction of a second.
_HOLDER = (
    "import importlib, os, sys, tempfile, types; tempfile.tempdir = sys.argv[2]\n"
    "package = types.ModuleType('cockpit_lite'); package.__path__ = [os.path.dirname(sys.argv[3])]\n"
    "sys.modules['cockpit_lite'] = package; lease = importlib.import_module('cockpit_lite._lease')\n"
    "print(lease.try_lease(sys.argv[1])[0], flush=True); sys.stdin.read()\n"
)


@pytest.fixture
def lease_dir(tmp_path, monkeypatch) -> Iterator[str]:
    """Put lease files under tmp_path and give back this process's leases afterwards."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield str(tmp_path)
    for uuid in list(_lease._held):
        _lease.release(uuid)


@pytest.fixture
def hold_lease(lease_dir) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Return ``hold(uuid)``: another process leases that GPU until the test ends (or it is killed)."""
    holders: list[subprocess.Popen[str]] = []

    def hold(uuid: str) -> subprocess.Popen[str]:
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, uuid, lease_dir, _lease.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        return holder

    yield hold
    for holder in holders:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
