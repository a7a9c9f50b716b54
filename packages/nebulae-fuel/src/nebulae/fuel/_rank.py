"""Private copy of kit's rank helpers (NEB_RANK/RANK, WORLD_SIZE, LOCAL_RANK); fuel imports no sibling."""

import os


def _env(names: tuple[str, ...], default: int) -> int:
    for name in names:
        if os.environ.get(name, "").strip():
            return int(os.environ[name])
    return default


get_rank = lambda: _env(("NEB_RANK", "RANK"), -1)  # noqa: E731
get_world_size = lambda: _env(("WORLD_SIZE",), 1)  # noqa: E731
get_local_rank = lambda: _env(("LOCAL_RANK",), get_rank())  # noqa: E731
