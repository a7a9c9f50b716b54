"""The interpreter internals fuel reaches into, each in one place, each covered by a test naming its Python version.

Written against CPython 3.11 (checked up to 3.13). When one of these names moves, `tests/test_compat.py` fails and
says which; the code here is the only place to change.
"""

from __future__ import annotations

from typing import Any

WRITTEN_FOR = "CPython 3.11"


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
