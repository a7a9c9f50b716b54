"""Importing nebulae.astro does no device work and loads no sibling but kit."""

from __future__ import annotations

import subprocess
import sys


def test_importing_astro_starts_no_cuda_and_loads_no_sibling_but_kit() -> None:
    code = (
        "import sys, nebulae.astro, nebulae.astro.dock\n"
        "import torch\n"
        "assert not torch.cuda.is_initialized()\n"
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('nebulae.')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = set(eval(out.stdout))
    assert {"astro", "kit"} <= loaded and not loaded & {"fuel", "aerolog", "cockpit"}
