"""Checkpoint files on disk: the atomic write, ``{scope}-{k}.pth`` numbering, dead writers' temp files."""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

import torch

from ._procs import pid_alive

__all__ = ["atomic_save", "mtime", "numbered", "remove_dead_temps", "resolved"]


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_save(obj: Any, path: str, fsync: bool = True) -> None:
    """``torch.save`` to ``{path}.tmp-{pid}``, fsync, then ``os.replace`` onto ``path``."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if fsync:
        _fsync_dir(os.path.dirname(path) or ".")


def mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def resolved(path: str) -> str:
    """``path`` with its folder resolved (symlinks, ``..``, relative), its own name kept as is."""
    return os.path.join(os.path.realpath(os.path.dirname(path) or "."), os.path.basename(path))


def remove_dead_temps(directory: str, final: str) -> None:
    """Delete ``{name}.tmp-{pid}`` files, ``name`` matching the regex ``final``, whose writer is dead.

    A live writer's temp file (this process's, or another job's still writing) is left alone.
    """
    pattern = re.compile(rf"(?:{final})\.tmp-(\d+)")
    for name in os.listdir(directory):
        match = pattern.fullmatch(name)
        if match and not pid_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))


def numbered(directory: str, scope: str | None) -> list[tuple[int, str]]:
    """``(k, name)`` of the ``{scope}-{k}.pth`` files in ``directory``, highest k first."""
    if not scope:
        return []
    pattern = re.compile(re.escape(scope) + r"-(\d+)\.pth")
    found = []
    for name in os.listdir(directory):
        match = pattern.fullmatch(name)
        if match:
            found.append((int(match.group(1)), name))
    found.sort(reverse=True)
    return found
