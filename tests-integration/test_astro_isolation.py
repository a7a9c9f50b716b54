"""nebulae-astro works as a wheel installed with only kit, and as a vendored one-folder copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "tests-integration" / "smoke" / "astro.py"
TIMEOUT = 300


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_astro_wheel_runs_with_only_kit_installed(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(wheels), str(ROOT / "packages" / "nebulae-kit"), str(ROOT / "packages" / "nebulae-astro")])
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # torch, numpy and nvidia-ml-py come from this environment as a plain path entry: its editable
    # .pth files are not processed there, so no nebulae source tree leaks into the venv.
    (site / "zz_third_party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--no-deps", "-q",
         *map(str, sorted(wheels.glob("*.whl")))])
    out = run([str(python), str(SMOKE), "nebulae.astro"], cwd=tmp_path)
    assert out.stdout.strip().endswith("ok")
    probe = run([str(python), "-c", (
        "import importlib.util as u, nebulae.astro as a, sys\n"
        "print(a.__file__)\n"
        "print([m for m in ('nebulae.fuel', 'nebulae.aerolog', 'nebulae.cockpit') if u.find_spec(m)])\n"
        "print('nebulae.cockpit' in sys.modules)\n"
    )], cwd=tmp_path)
    path, siblings, cockpit_loaded = probe.stdout.split("\n")[:3]
    assert path.startswith(str(site)) and siblings == "[]" and cockpit_loaded == "False"


@pytest.mark.slow
def test_vendored_astro_copy_runs_under_another_name(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "packages" / "nebulae-astro" / "src" / "nebulae" / "astro", tmp_path / "vendored_astro")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = run([sys.executable, str(SMOKE), "vendored_astro"], cwd=tmp_path, env=env)
    assert out.stdout.strip().endswith("ok")


def test_importing_astro_starts_no_cuda_and_loads_no_sibling_but_kit() -> None:
    code = (
        "import sys, nebulae.astro, nebulae.astro.dock\n"
        "import torch\n"
        "assert not torch.cuda.is_initialized()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('nebulae.') and not m.startswith('nebulae.astro'))\n"
        "print(loaded)\n"
    )
    out = run([sys.executable, "-c", code])
    assert "nebulae.kit" in out.stdout
    assert all(name not in out.stdout for name in ("fuel", "aerolog", "cockpit"))
