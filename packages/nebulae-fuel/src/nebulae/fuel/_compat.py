"""Interpreter and standard-library internals that fuel reaches into, each in exactly one place.

Written against CPython 3.11 (checked on 3.12 and 3.13). When one of these names moves, `tests/test_compat.py` fails naming it and
the Python version; the functions here are the only code to change.
"""

from __future__ import annotations

from typing import Any

WRITTEN_FOR = "CPython 3.11 (checked on 3.12 and 3.13)"


def forkserver_preload() -> list[str]:
    """The modules the fork server will import when it starts (`set_forkserver_preload` has no getter).

    `["__main__"]`, the interpreter's own default, where the private attribute is missing.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    return list(getattr(server, "_preload_modules", ["__main__"]))


def shm_fd(shm: Any) -> int:
    """The file descriptor of a `multiprocessing.shared_memory.SharedMemory` (POSIX), to map it ourselves."""
    return shm._fd


def parser_actions(parser: Any) -> list[Any]:
    """The options of an `argparse.ArgumentParser` (kept in its private `_actions` list; no public accessor)."""
    return list(parser._actions)
