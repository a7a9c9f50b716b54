"""`nebulae.fuel.info()` and `python -m nebulae.fuel info` on every kind of packed file."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nebulae.fuel import FuelGenerator, info


def cli_info(path):
    return subprocess.run(
        [sys.executable, "-m", "nebulae.fuel", "info", path], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("encode", ["PNG", "RAW"])
@pytest.mark.parametrize("suffix", ["hdf5", "npz"])
@pytest.mark.parametrize("shards", [1, 2])
def test_info_describes_sequence_files_and_families(seq_dir, tmp_path, encode, suffix, shards):
    dst = str(tmp_path / f"clips.{suffix}")
    fg = FuelGenerator(str(seq_dir), "clips.csv", ["int64"], is_seq=True)
    fg.generate(dst, 12, 16, encode=encode, shards=shards, nworker=1, verbose=False)
    summary = info(dst)
    assert summary["rows"] == 6 and summary["shards"] == shards and summary["max_frames"] == 7
    columns = {c["name"]: c for c in summary["columns"]}
    # the frame count scalar and per-row frame counts are bookkeeping, not columns
    assert sorted(columns) == ["__key__", "label", "video"]  # plus the source key column of every pack
    assert columns["label"]["shape"] == [6]
    assert columns["video"]["encode"] == encode
    video_shape = [6, 7, 12, 16, 3] if encode == "RAW" else [6, 7]
    assert columns["video"]["shape"] == video_shape
    res = cli_info(dst)
    assert res.returncode == 0, res.stderr
    assert f"{shards} file(s), 6 rows" in res.stdout and "max frames: 7" in res.stdout
    assert f"shape={tuple(video_shape)}" in res.stdout and "_MAX_FRAMES" not in res.stdout


def test_info_of_plain_files_still_lists_every_column(photo_dir, tmp_path):
    dst = str(tmp_path / "photos.hdf5")
    FuelGenerator(str(photo_dir), "labels.csv", ["int64"]).generate(dst, 8, 8, nworker=1, verbose=False)
    summary = info(dst)
    assert summary["rows"] == 20 and summary["max_frames"] == 0
    # the source key column that every pack adds is listed too
    assert [(c["name"], c["shape"]) for c in summary["columns"]] == [
        ("__key__", [20]),
        ("image", [20]),
        ("label", [20]),
    ]
