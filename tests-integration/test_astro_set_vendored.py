"""The issue-6 crafts and the hangar work from a vendored one-folder copy of nebulae/astro."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import importlib, sys
    import torch

    name = sys.argv[1]
    dock = importlib.import_module(name + ".dock")
    hangar = importlib.import_module(name + ".hangar")
    assert not [m for m in sys.modules if m.startswith("nebulae.astro")], "the copy imported the original"

    adj = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    conv = dock.GraphConvAdj(3, 2, adj)
    assert conv(torch.randn(4, 2, 3)).shape == (4, 2, 2)
    assert dock.SpDot()(adj.to_sparse(), torch.eye(2)).tolist() == [[0.0, 1.0], [1.0, 0.0]]
    ft = dock.FFT(1)(torch.tensor([1.0, 1.0]), in_pair=False)
    assert dock.IFFT(1)(ft, real=True).tolist() == [1.0, 1.0]
    y, h, c = dock.BiLSTM(3, 4)(torch.randn(5, 2, 3))
    assert y.shape == (5, 2, 8)

    gan = hangar.ResGAN((8, 8, 1), latent_dim=4, base_chs=8, norm_fn=hangar.CBN, attention=True, spec_norm=True)
    gan.D(gan.G(torch.randn(2, 4))).sum().backward()
    mu, logvar, recon = hangar.VAE((4, 4, 1), 8, 2)(torch.rand(3, 1, 4, 4))
    assert recon.shape == (3, 1, 4, 4)
    print("ok")
    """
)


def test_vendored_copy_runs_the_issue6_crafts_and_hangar(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "packages" / "nebulae-astro" / "src" / "nebulae" / "astro", tmp_path / "vendored_astro"
    )
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(script), "vendored_astro"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
