"""Run a multi-rank script in a subprocess (with a timeout) and read the ``rank{r}.json`` each rank wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # tests-integration, so `brochure.*` imports in the ranks


def cpu_env() -> dict[str, str]:
    """This environment, forced onto CPU/gloo (even on a GPU machine), with a fresh MASTER_PORT."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env.pop("MASTER_PORT", None)
    return env


def run_ranks(
    args: list[str], workdir: Path, nworld: int, env: dict[str, str], timeout: float = 240
) -> list[dict]:
    """``python *args`` in ``workdir``; fail with its output unless it exits 0; the ranks' reports."""
    env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])))
    out = subprocess.run(
        [sys.executable, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, (
        f"ranks failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return [json.loads((workdir / f"rank{r}.json").read_text()) for r in range(nworld)]
