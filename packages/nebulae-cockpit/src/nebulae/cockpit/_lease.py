"""GPU leases: one exclusive ``flock`` per GPU (by NVML UUID) so concurrent jobs never share a GPU."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading

try:
    import fcntl
except ImportError:  # Windows has no flock: the package still imports, and leasing is off there
    fcntl = None  # type: ignore[assignment]

__all__ = ["AVAILABLE", "holder_pid", "holds", "lease_path", "release", "try_lease"]

# Whether this platform can lease GPUs (Linux, macOS). Where it cannot, callers use GPUs unleased and say so.
AVAILABLE = fcntl is not None

# uuid -> file descriptor holding the lock. The kernel drops a lock when its holder exits,
# even by SIGKILL, so nothing has to be cleaned up on exit.
_held: dict[str, int] = {}
_lock = threading.Lock()


def lease_path(uuid: str) -> str:
    """Return the lock file of the GPU with this NVML UUID."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in uuid)
    return os.path.join(tempfile.gettempdir(), f"nebulae-gpu-{safe}.lock")


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def holds(uuid: str) -> bool:
    """Return whether this process holds the lease on ``uuid``."""
    return uuid in _held


def holder_pid(uuid: str) -> int | None:
    """Return the pid written by the current holder of ``uuid``'s lease (None if unknown or free)."""
    if not AVAILABLE:
        return None
    try:
        fd = os.open(lease_path(uuid), os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_pid(fd)
    finally:
        os.close(fd)


def try_lease(uuid: str) -> tuple[bool, int | None]:
    """Try to lease a GPU without blocking.

    Returns:
        ``(True, None)`` when this process now holds the lease (or already did), else
        ``(False, pid)`` with the holder's pid (None when unknown, e.g. an unreadable lock file).
        Without flock (``AVAILABLE`` is False) always ``(True, None)``, holding nothing.
    """
    if not AVAILABLE:
        return True, None
    with _lock:
        if uuid in _held:
            return True, None
        path = lease_path(uuid)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            # A lock file we cannot open belongs to someone else: count the GPU as held.
            return False, None
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)  # writable by every user, whatever our umask
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            return False, pid
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        _held[uuid] = fd
        return True, None


def release(uuid: str) -> None:
    """Give back this process's lease on ``uuid`` (nothing happens if it holds none)."""
    with _lock:
        fd = _held.pop(uuid, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)
