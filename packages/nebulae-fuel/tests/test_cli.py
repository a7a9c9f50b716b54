"""`python -m nebulae.fuel pack|info` (subprocesses, as a user runs them)."""

from __future__ import annotations

import subprocess
import sys

import h5py


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "nebulae.fuel", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_pack_then_info(photo_dir, tmp_path):
    dst = str(tmp_path / "cli.hdf5")
    res = cli(
        "pack",
        "--file-dir",
        str(photo_dir),
        "--file-list",
        "labels.csv",
        "--dtype",
        "int64",
        "--dst",
        dst,
        "--height",
        "8",
        "--width",
        "8",
        "--encode",
        "png",
        "--shards",
        "2",
        "--nworker",
        "1",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(tmp_path / "cli_0.hdf5"), str(tmp_path / "cli_1.hdf5")]
    with h5py.File(tmp_path / "cli_0.hdf5") as f:
        assert f["image"].attrs["nebulae_encode"] == "PNG"
    info = cli("info", dst)
    assert info.returncode == 0, info.stderr
    assert "2 file(s), 20 rows" in info.stdout and "encode=PNG" in info.stdout and "label" in info.stdout


def test_pack_refuses_existing_output_without_overwrite(photo_dir, tmp_path):
    args = [
        "pack",
        "--file-dir",
        str(photo_dir),
        "--file-list",
        "labels.csv",
        "--dtype",
        "int64",
        "--dst",
        str(tmp_path / "c.npz"),
        "--height",
        "8",
        "--width",
        "8",
        "--quality",
        "FAST",
        "--nworker",
        "1",
        "--no-exif",
        "--quiet",
    ]
    assert cli(*args).returncode == 0
    again = cli(*args)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert cli(*args, "--overwrite").returncode == 0
