"""GPU leases: one exclusive ``flock`` per GPU (by NVML UUID) so concurrent jobs never share a GPU.

The lock files live in the temp directory (``tempfile.gettempdir()``, normally ``/tmp``) so that jobs of
every user on the machine see each other's leases. That directory is shared with other users, so a lock
file is never trusted: it is opened without following symlinks, used only when it is a regular file with
a single link, made writable by all only when this call created it, and written only while locked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import tempfile
import threading
import warnings

from ._procs import pid_alive
from ._warnings import CockpitWarning

try:
    import fcntl
except ImportError:  # Windows has no flock: the package still imports, and leasing is off there
    fcntl = None  # type: ignore[assignment]

__all__ = ["AVAILABLE", "holder_pid", "holds", "lease_dir", "lease_path", "release", "try_lease"]

# Whether this platform can lease GPUs (Linux, macOS). Where it cannot, callers use GPUs unleased and say so.
AVAILABLE = fcntl is not None

# uuid -> file descriptor holding the lock. The kernel drops a lock when its holder exits,
# even by SIGKILL, so nothing has to be cleaned up on exit.
_held: dict[str, int] = {}
_lock = threading.Lock()
_warned: set[str] = set()

# O_NONBLOCK: opening a FIFO planted at the path must not wait for a writer.
# (getattr: Windows, where leasing is off, lacks these flags and the module must still import)
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


# Why an existing lock path cannot be opened as a lock file, by the errno of that open.
_REFUSED = {
    errno.ELOOP: "is a symbolic link",
    errno.EISDIR: "is a directory",
    errno.ENXIO: "is not a regular file",
    errno.ENOTDIR: "is not a regular file",
}


class _Refused(OSError):
    """A lock path that is not a lock file this process may use (a symlink, a FIFO, a directory, ...)."""


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, CockpitWarning, stacklevel=4)


def _sharing_problem(directory: str) -> str | None:
    """Why other users could replace files in ``directory`` or above it (None when they cannot).

    A directory is safe when it and each parent belong to root or to us and are not writable by
    others, or are writable by others but sticky (as /tmp is: only a file's owner may remove it).
    """
    me = os.getuid()
    path = directory
    while True:
        try:
            info = os.lstat(path)
        except OSError as exc:
            return f"cannot be inspected ({exc.strerror})"
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            return f"has {path!r}, which is not a directory"
        if info.st_uid not in (0, me):
            return f"has {path!r}, owned by uid {info.st_uid}, who could replace lease files"
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            return f"has {path!r}, writable by other users without the sticky bit"
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def lease_dir() -> str | None:
    """Return the directory of the lock files, or None when no safe directory exists.

    Normally the temp directory, shared by every user. When other users could replace files there
    (not sticky, or owned by another user), a directory private to this user is used instead, with a
    warning: leases then only exclude this user's other jobs.
    """
    shared = os.path.realpath(tempfile.gettempdir())
    problem = _sharing_problem(shared)
    if problem is None:
        return shared
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    private = os.path.join(os.path.realpath(cache), "nebulae", "gpu-leases")
    with contextlib.suppress(OSError):
        os.makedirs(private, mode=0o700, exist_ok=True)
    private_problem = _sharing_problem(private)
    if private_problem is None:
        _warn_once(
            shared,
            f"GPU leases are kept in {private!r}, visible to this user's jobs only: the temp directory "
            f"{shared!r} {problem}. Point TMPDIR at a sticky directory such as /tmp to share leases with "
            "other users' jobs",
        )
        return private
    _warn_once(
        shared,
        f"no safe directory for GPU leases: the temp directory {shared!r} {problem}, and {private!r} "
        f"{private_problem}. GPUs count as held; point TMPDIR at a sticky directory such as /tmp, or pass "
        "lease=False",
    )
    return None


def lease_path(uuid: str) -> str | None:
    """Return the lock file of the GPU with this NVML UUID (None when no safe directory exists)."""
    directory = lease_dir()
    if directory is None:
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in uuid)
    return os.path.join(directory, f"nebulae-gpu-{safe}.lock")


def _check_regular(fd: int, path: str) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise _Refused(errno.EINVAL, "is not a regular file", path)
    if info.st_nlink != 1:
        # A hard link planted at the lock path would make the holder write into another file.
        raise _Refused(errno.EMLINK, f"has {info.st_nlink} hard links", path)
    return info


def _open_lock(path: str) -> int:
    """Open (creating if needed) the lock file at ``path`` for reading and writing.

    Raises:
        _Refused: the path is a symlink, not a regular file, or has several links.
        OSError: it cannot be opened (e.g. another user's file without write permission).
    """
    for _ in range(8):  # a file removed between the two opens is simply created again
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o666)
            created = True
        except FileExistsError:
            try:
                fd = os.open(path, os.O_RDWR | _OPEN_FLAGS)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in _REFUSED:
                    raise _Refused(exc.errno, _REFUSED[exc.errno], path) from None
                raise
            created = False
        try:
            _check_regular(fd, path)
            if created:
                # Other users' jobs must be able to open the file too, whatever our umask.
                os.fchmod(fd, 0o666)
        except BaseException:
            os.close(fd)
            raise
        return fd
    raise _Refused(errno.EAGAIN, "keeps disappearing while being opened", path)


def _read_pid(fd: int) -> int | None:
    """The holder's pid written in the file, if that process is alive on this machine."""
    try:
        fields = os.pread(fd, 256, 0).decode("ascii", "replace").split()
        pid = int(fields[0]) if fields else None
    except (OSError, ValueError):
        return None
    if pid is None:
        return None
    if len(fields) > 1 and fields[1] != socket.gethostname():
        return None  # a pid of another machine sharing this directory says nothing here
    return pid if pid_alive(pid) else None  # a dead holder's pid is stale


def holds(uuid: str) -> bool:
    """Return whether this process holds the lease on ``uuid``."""
    return uuid in _held


def holder_pid(uuid: str) -> int | None:
    """Return the pid of the live process that holds ``uuid``'s lease (None if unknown or free)."""
    path = lease_path(uuid) if AVAILABLE else None
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except OSError:
        return None
    try:
        _check_regular(fd, path)
        return _read_pid(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def try_lease(uuid: str) -> tuple[bool, int | None]:
    """Try to lease a GPU without blocking.

    A lock path that is a symlink, a directory, a FIFO or a hard link is left untouched and the GPU
    counts as held, with a warning naming the path.

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
        if path is None:
            return False, None
        try:
            fd = _open_lock(path)
        except _Refused as exc:
            _warn_once(
                path,
                f"GPU lease file {path!r} {exc.strerror}; it was left untouched and the GPU counts as "
                "held. Remove it if no job uses that GPU",
            )
            return False, None
        except OSError:
            # A lock file we cannot open belongs to someone else: count the GPU as held.
            return False, None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            return False, pid
        # Written only now that we hold the lock: a stale pid of a dead holder is replaced here.
        record = f"{os.getpid()} {socket.gethostname()}\n".encode("ascii", "replace")
        try:
            os.pwrite(fd, record, 0)
            os.ftruncate(fd, len(record))
        except OSError:
            pass  # the lease holds without the pid; holder_pid() then says "unknown"
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
