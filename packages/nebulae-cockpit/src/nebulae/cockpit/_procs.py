"""Whether a process id recorded in a file (a lease holder, a checkpoint writer) still runs here."""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """Return whether ``pid`` names a live process of this machine (zombies count as alive)."""
    if pid <= 0:
        return False  # 0 and negative values would name process groups to os.kill
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, and belongs to another user
    except (OverflowError, OSError):
        return False
    return True
