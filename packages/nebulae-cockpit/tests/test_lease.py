"""GPU lease files: never written through a planted path, stale holders, the lease directory."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nebulae.cockpit import CockpitWarning, _lease

UUID = "GPU-00000000-0000-4000-8000-000000000007"


def _victim(tmp_path) -> tuple[str, bytes, int]:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious data\n")
    victim.chmod(0o600)
    return str(victim), victim.read_bytes(), stat.S_IMODE(victim.stat().st_mode)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_a_symlink_at_the_lock_path_is_never_followed(lease_dir, tmp_path):
    victim, content, mode = _victim(tmp_path)
    path = _lease.lease_path(UUID)
    os.symlink(victim, path)
    with pytest.warns(CockpitWarning, match="symbolic link"):
        assert _lease.try_lease(UUID) == (False, None)
    assert _lease.holder_pid(UUID) is None
    assert Path(victim).read_bytes() == content
    assert stat.S_IMODE(os.stat(victim).st_mode) == mode
    assert os.path.islink(path) and not _lease.holds(UUID)


def test_a_dangling_symlink_creates_nothing_at_its_target(lease_dir, tmp_path):
    target = tmp_path / "elsewhere.txt"
    os.symlink(target, _lease.lease_path(UUID))
    with pytest.warns(CockpitWarning, match="symbolic link"):
        assert _lease.try_lease(UUID) == (False, None)
    assert not target.exists()


def test_a_hard_link_at_the_lock_path_is_refused(lease_dir, tmp_path):
    victim, content, mode = _victim(tmp_path)
    os.link(victim, _lease.lease_path(UUID))
    with pytest.warns(CockpitWarning, match="2 hard links"):
        assert _lease.try_lease(UUID) == (False, None)
    assert Path(victim).read_bytes() == content
    assert stat.S_IMODE(os.stat(victim).st_mode) == mode


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_fifo_or_directory_at_the_lock_path_counts_as_held(lease_dir, kind):
    path = _lease.lease_path(UUID)
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        os.mkdir(path, 0o700)
    with pytest.warns(CockpitWarning, match=r"left untouched and the GPU counts as held"):
        assert _lease.try_lease(UUID) == (False, None)
    assert _lease.holder_pid(UUID) is None
    assert stat.S_IMODE(os.lstat(path).st_mode) in (0o600, 0o700)  # not made world-writable


def test_an_existing_lock_file_keeps_its_mode_and_a_new_one_is_shared(lease_dir):
    path = _lease.lease_path(UUID)
    with open(path, "w") as handle:
        handle.write("")
    os.chmod(path, 0o640)
    assert _lease.try_lease(UUID) == (True, None)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640  # not ours to chmod
    fresh = "GPU-00000000-0000-4000-8000-000000000008"
    old_umask = os.umask(0o077)
    try:
        assert _lease.try_lease(fresh) == (True, None)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(_lease.lease_path(fresh)).st_mode) == 0o666  # created here: shared


def test_a_stale_pid_is_not_reported_and_the_lease_is_reclaimed(lease_dir):
    path = _lease.lease_path(UUID)
    with open(path, "w") as handle:
        handle.write(f"{_dead_pid()}\n")
    assert _lease.holder_pid(UUID) is None
    assert _lease.try_lease(UUID) == (True, None)
    assert _lease.holder_pid(UUID) == os.getpid()
    _lease.release(UUID)
    assert _lease.holder_pid(UUID) is None


def test_a_pid_recorded_on_another_host_is_not_reported(lease_dir):
    with open(_lease.lease_path(UUID), "w") as handle:
        handle.write(f"{os.getpid()} some-other-host\n")
    assert _lease.holder_pid(UUID) is None


def test_a_lease_excludes_another_process_until_it_dies(hold_lease):
    holder = hold_lease(UUID)
    assert _lease.try_lease(UUID) == (False, holder.pid)
    assert _lease.holder_pid(UUID) == holder.pid
    holder.kill()
    holder.wait(timeout=30)
    assert _lease.holder_pid(UUID) is None  # the file still names the dead holder
    assert _lease.try_lease(UUID) == (True, None)
    assert _lease.holder_pid(UUID) == os.getpid()


def test_the_lock_is_not_inherited_by_programs_this_process_starts(lease_dir):
    assert _lease.try_lease(UUID) == (True, None)
    assert fcntl.fcntl(_lease._held[UUID], fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def test_a_temp_dir_others_could_tamper_with_is_replaced_by_a_private_one(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # writable by all, no sticky bit: anyone could swap lock files
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    private = os.path.realpath(tmp_path / "cache" / "nebulae" / "gpu-leases")
    with pytest.warns(CockpitWarning, match="visible to this user's jobs only.*without the sticky bit"):
        assert _lease.lease_dir() == private
    assert _lease.lease_path(UUID) == os.path.join(private, f"nebulae-gpu-{UUID}.lock")
    shared.chmod(0o1777)  # sticky, like /tmp: shared by every user's jobs
    assert _lease.lease_dir() == os.path.realpath(shared)


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_a_temp_dir_owned_by_another_user_is_not_trusted(tmp_path, monkeypatch):
    shared = tmp_path / "theirs"
    shared.mkdir()
    os.chown(shared, 54321, -1)
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.warns(CockpitWarning, match="owned by uid 54321"):
        assert _lease.lease_dir() == os.path.realpath(tmp_path / "cache" / "nebulae" / "gpu-leases")


def test_no_safe_directory_means_the_gpu_counts_as_held(tmp_path, monkeypatch):
    shared = tmp_path / "open"
    shared.mkdir()
    shared.chmod(0o777)
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)  # the private fallback is no better
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    with pytest.warns(CockpitWarning, match="lease=False"):
        assert _lease.try_lease(UUID) == (False, None)
    assert _lease.holder_pid(UUID) is None
