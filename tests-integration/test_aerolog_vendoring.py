"""nebulae-aerolog works as a one-folder copy under another top-level name (relative imports only)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nebulae.aerolog

SMOKE = Path(__file__).parent / "smoke" / "aerolog.py"


def test_vendored_copy_passes_the_smoke_script(tmp_path: Path) -> None:
    shutil.copytree(Path(nebulae.aerolog.__file__).parent, tmp_path / "vendored_aerolog")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, str(SMOKE), "vendored_aerolog"], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_vendored_copy_never_names_the_nebulae_package(tmp_path: Path) -> None:
    root = Path(nebulae.aerolog.__file__).parent
    offenders = [
        p.name
        for p in root.glob("*.py")
        if "from nebulae" in p.read_text() or "import nebulae" in p.read_text()
    ]
    assert offenders == []
