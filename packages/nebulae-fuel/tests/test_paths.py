"""Every fuel writer under every spelling of its destination: relative, `./`, absolute, a symlinked directory, and a
symlink at the destination file. A second run with overwrite=True must leave exactly the new output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from nebulae.fuel import FuelGenerator, deduct, fill, info, merge

SPELLINGS = ("relative", "dot", "absolute", "symlinked_dir")


def spelled(tmp_path: Path, spelling: str, name: str) -> str:
    """`name` inside tmp_path/out, spelled as asked; the test runs with tmp_path as working directory."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    if spelling == "relative":
        return f"out/{name}"
    if spelling == "dot":
        return f"./out/{name}"
    if spelling == "absolute":
        return str(out / name)
    link = tmp_path / "link"
    if not link.exists():
        link.symlink_to(out, target_is_directory=True)
    return f"link/{name}"


def listing(tmp_path: Path) -> list[str]:
    return sorted(os.listdir(tmp_path / "out"))


def labels_of(path: str) -> list[int]:
    """The label column as a user reads it back (through the same family resolution as Tank)."""
    from nebulae.fuel._source import Source, resolve_paths

    paths, kind = resolve_paths(path)
    source = Source(paths, kind, decode=False)
    try:
        return [int(v) for v in source.read("label", np.arange(source.length("label")))]
    finally:
        source.close()


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize(
    ("suffix", "encode", "shards"),
    [("hdf5", "JPEG", 1), ("npz", "PNG", 1), ("hdf5", "RAW", 1), ("hdf5", "PNG", 2), ("npz", "RAW", 3)],
)
def test_generate_overwrite_keeps_the_new_output(
    photo_dir, tmp_path, monkeypatch, spelling, suffix, encode, shards
):
    monkeypatch.chdir(tmp_path)
    dst = spelled(tmp_path, spelling, f"d.{suffix}")
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(dst, 8, 8, encode=encode, shards=shards, nworker=1, verbose=False)
    written = fg.generate(dst, 6, 6, encode=encode, shards=shards, nworker=1, verbose=False, overwrite=True)
    assert all(os.path.isfile(p) for p in written)
    want = [f"d.{suffix}"] if shards == 1 else [f"d_{i}.{suffix}" for i in range(shards)]
    want += [f"d.{suffix}.manifest.json"] if shards > 1 else []
    assert listing(tmp_path) == sorted(want)
    assert labels_of(dst) == [i % 5 for i in range(20)]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_generate_changing_shard_count_removes_only_the_old_files(photo_dir, tmp_path, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    dst = spelled(tmp_path, spelling, "f.hdf5")
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(dst, 8, 8, shards=3, nworker=1, verbose=False)
    fg.generate(dst, 8, 8, shards=2, nworker=1, verbose=False, overwrite=True)
    assert listing(tmp_path) == ["f.hdf5.manifest.json", "f_0.hdf5", "f_1.hdf5"]
    fg.generate(dst, 8, 8, shards=1, nworker=1, verbose=False, overwrite=True)
    assert listing(tmp_path) == ["f.hdf5"]
    fg.generate(dst, 8, 8, shards=2, nworker=1, verbose=False, overwrite=True)
    assert listing(tmp_path) == ["f.hdf5.manifest.json", "f_0.hdf5", "f_1.hdf5"]
    assert labels_of(dst) == [i % 5 for i in range(20)]


def test_generate_through_a_symlink_at_the_destination_replaces_its_target(photo_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    (tmp_path / "out").mkdir()
    fg.generate("out/real.hdf5", 8, 8, nworker=1, verbose=False)
    os.symlink("out/real.hdf5", "alias.hdf5")
    written = fg.generate("alias.hdf5", 6, 6, nworker=1, verbose=False, overwrite=True)
    assert os.path.islink("alias.hdf5") and written == [str(tmp_path / "out" / "real.hdf5")]
    assert listing(tmp_path) == ["real.hdf5"]
    with h5py.File("out/real.hdf5") as f:
        assert f["image"].attrs["nebulae_height"] == 6


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_cli_pack_overwrite_keeps_the_new_output(photo_dir, tmp_path, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    dst = spelled(tmp_path, spelling, "c.hdf5")
    args = ["--file-dir", str(photo_dir), "--file-list", "labels.csv", "--dtype", "int64", "--dst", dst]
    args += ["--height", "8", "--width", "8", "--nworker", "1", "--quiet", "--overwrite"]
    for _ in range(2):
        res = subprocess.run(
            [sys.executable, "-m", "nebulae.fuel", "pack", *args], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [dst]
    assert listing(tmp_path) == ["c.hdf5"] and labels_of(dst) == [i % 5 for i in range(20)]


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("suffix", ["hdf5", "npz"])
def test_merge_fill_deduct_under_every_spelling(photo_dir, tmp_path, monkeypatch, spelling, suffix):
    monkeypatch.chdir(tmp_path)
    dst = spelled(tmp_path, spelling, f"m.{suffix}")
    src_dir = os.path.dirname(dst)
    FuelGenerator(str(photo_dir), "labels.csv", ["int64"]).generate(
        dst, 8, 8, shards=2, nworker=1, verbose=False
    )
    out = merge(src_dir, [f"m_0.{suffix}", f"m_1.{suffix}"], f"all.{suffix}", {"label": "int64"})
    assert os.path.isfile(out) and labels_of(out) == [i % 5 for i in range(20)]
    with pytest.raises(FileExistsError, match="also a source"):
        merge(src_dir, [f"m_0.{suffix}", f"./m_1.{suffix}"], f"./m_1.{suffix}", {})
    fill(out, "classes", [1, 2, 3])
    deduct(out, "classes")
    assert "classes" not in {c["name"] for c in info(out)["columns"]}
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        [f"all.{suffix}", f"m.{suffix}.manifest.json", f"m_0.{suffix}", f"m_1.{suffix}"]
    )


@pytest.mark.parametrize("suffix", ["hdf5", "npz"])
def test_edits_through_a_symlinked_file_rewrite_its_target(photo_dir, tmp_path, monkeypatch, suffix):
    monkeypatch.chdir(tmp_path)
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    (tmp_path / "out").mkdir()
    fg.generate(f"out/a.{suffix}", 8, 8, nworker=1, verbose=False)
    fg.generate(f"out/b.{suffix}", 8, 8, nworker=1, verbose=False)
    os.symlink(f"a.{suffix}", f"out/alias.{suffix}")
    fill(f"out/alias.{suffix}", "classes", [1, 2])
    assert os.path.islink(f"out/alias.{suffix}")
    assert "classes" in {c["name"] for c in info(f"out/a.{suffix}")["columns"]}
    deduct(f"out/alias.{suffix}", "classes")
    assert os.path.islink(f"out/alias.{suffix}")
    assert "classes" not in {c["name"] for c in info(f"out/a.{suffix}")["columns"]}
    # a destination that is a link to one of the sources is that source
    with pytest.raises(FileExistsError, match="also a source"):
        merge("out", [f"a.{suffix}", f"b.{suffix}"], f"alias.{suffix}", {})
    assert listing(tmp_path) == sorted([f"a.{suffix}", f"alias.{suffix}", f"b.{suffix}"])
