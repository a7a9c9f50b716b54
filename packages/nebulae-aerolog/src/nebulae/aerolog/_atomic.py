"""Atomic file replacement for log files, and removal of the temp files that killed writers left."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "remove_dead_temps"]

# the temp files atomic_write() makes for log files, named after the writer's pid
_TEMP = re.compile(r".\.(?:csv|png)\.tmp-(\d+)$")


def atomic_write(path: str | os.PathLike[str], fill: Callable[[IO[bytes]], object]) -> None:
    """Write `path` through a temp file ``{path}.tmp-{pid}``, fsync it, ``os.replace`` it into place, then
    fsync the directory so that the rename survives a power cut.

    A reader never sees a half-written file, and an interrupted run leaves the previous file intact.
    """
    final = os.fspath(path)
    tmp = f"{final}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    if os.name == "posix":  # elsewhere a directory cannot be opened to be synced
        fd = os.open(os.path.dirname(final) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or no pid to judge: keep its file
        return True
    return True


def remove_dead_temps(folder: Path) -> None:
    """Delete the temp files that writers killed mid-write (pid no longer alive) left in `folder`."""
    for entry in os.scandir(folder):
        match = _TEMP.search(entry.name)
        if match and entry.is_file(follow_symlinks=False) and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):  # another cleaner got there first
                os.unlink(entry.path)
