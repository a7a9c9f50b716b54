"""This process's rank, read from the environment: aerolog runs without nebulae-kit, so it keeps its own helper
(an integration test checks that it agrees with ``nebulae.kit.get_rank()``)."""

from __future__ import annotations

import os


def get_rank() -> int:
    """Return this process's rank: env ``NEB_RANK``, else ``RANK``, else -1 (not distributed)."""
    for name in ("NEB_RANK", "RANK"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"environment variable {name} must be an integer (got {value!r})") from None
    return -1
