"""Rank and world-size helpers read from the launcher's environment variables."""

from __future__ import annotations

import os

from ._law import Law

__all__ = ["get_local_rank", "get_local_world_size", "get_rank", "get_world_size"]


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer (got {value!r})") from None


def get_rank() -> int:
    """Return this process's global rank: ``NEB_RANK``, else ``RANK``, else -1 (not distributed).

    Example:
        >>> get_rank() <= 0  # the main process prints
        True
    """
    for name in (Law.ENV_RANK, "RANK"):
        value = _int_env(name)
        if value is not None:
            return value
    return -1


def get_world_size() -> int:
    """Return the number of processes in the run: ``WORLD_SIZE``, default 1."""
    value = _int_env("WORLD_SIZE")
    return 1 if value is None else value


def get_local_rank() -> int:
    """Return the device index inside this node: ``LOCAL_RANK``, default the global rank."""
    value = _int_env("LOCAL_RANK")
    return get_rank() if value is None else value


def get_local_world_size() -> int:
    """Return the number of processes on this node: ``LOCAL_WORLD_SIZE``, default the world size."""
    value = _int_env("LOCAL_WORLD_SIZE")
    return get_world_size() if value is None else value
