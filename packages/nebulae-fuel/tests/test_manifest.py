"""Run ids and the shard family manifest: what generate() writes and how a family is opened."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from nebulae.fuel import FuelGenerator, Tank, fill, info
from nebulae.fuel._files import read_run_id
from nebulae.fuel._manifest import verify

SPEC = {"label": "int64"}


def pack(photo_dir, dst, **kwargs):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    return fg.generate(str(dst), 8, 8, nworker=1, verbose=False, **kwargs)


def tank_labels(path) -> list[int]:
    with Tank(str(path), SPEC, 4, shuffle=False, nworker=0, verbose=False) as tank:
        return np.concatenate([tank.next()["label"] for _ in range(tank.MPE)]).tolist()


@pytest.mark.parametrize("suffix", ["hdf5", "npz"])
def test_a_family_gets_one_run_id_and_a_manifest_of_its_shards(photo_dir, tmp_path, suffix):
    written = pack(photo_dir, tmp_path / f"t.{suffix}", shards=3)
    with open(tmp_path / f"t.{suffix}.manifest.json") as fh:
        manifest = json.load(fh)
    assert manifest["format"] == "nebulae-fuel-manifest" and manifest["version"] == 1
    # the source key column that every pack adds comes last
    assert manifest["columns"] == ["image", "label", "__key__"] and manifest["dtypes"][1] == "int64"
    assert manifest["rows"] == 20 and [s["rows"] for s in manifest["shards"]] == [7, 7, 6]
    for path, entry in zip(written, manifest["shards"], strict=True):
        assert entry["file"] == os.path.basename(path)
        assert entry["bytes"] == os.path.getsize(path)
        assert entry["sha256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()
        assert read_run_id(path, suffix) == manifest["run"]
    assert verify(str(tmp_path / f"t.{suffix}")) == written


def test_a_single_file_has_a_run_id_and_no_manifest(photo_dir, tmp_path):
    pack(photo_dir, tmp_path / "a.hdf5")
    pack(photo_dir, tmp_path / "b.hdf5")
    assert sorted(os.listdir(tmp_path))[:2] == ["a.hdf5", "b.hdf5"]
    assert not any(n.endswith(".json") for n in os.listdir(tmp_path))
    assert read_run_id(str(tmp_path / "a.hdf5"), "hdf5") != read_run_id(str(tmp_path / "b.hdf5"), "hdf5")


def test_tank_and_info_open_a_family_by_its_manifest_path(photo_dir, tmp_path):
    pack(photo_dir, tmp_path / "t.hdf5", shards=2)
    manifest = str(tmp_path / "t.hdf5.manifest.json")
    assert tank_labels(manifest) == [i % 5 for i in range(20)]
    assert info(manifest)["rows"] == 20


def test_files_beyond_the_manifest_are_ignored(photo_dir, tmp_path):
    pack(photo_dir, tmp_path / "t.hdf5", shards=2)
    pack(photo_dir, tmp_path / "other.hdf5", shards=3)
    os.replace(tmp_path / "other_2.hdf5", tmp_path / "t_2.hdf5")  # a surplus shard of another run
    assert tank_labels(tmp_path / "t.hdf5") == [i % 5 for i in range(20)]


def test_a_shard_that_does_not_match_the_manifest_is_an_error_naming_it(photo_dir, tmp_path):
    pack(photo_dir, tmp_path / "t.hdf5", shards=2)
    pack(photo_dir, tmp_path / "other.hdf5", shards=2)
    os.replace(tmp_path / "other_1.hdf5", tmp_path / "t_1.hdf5")
    with pytest.raises(ValueError, match=r"t\.hdf5\.manifest\.json.*t_1\.hdf5.*overwrite=True"):
        Tank(str(tmp_path / "t.hdf5"), SPEC, 4, nworker=0, verbose=False)
    os.unlink(tmp_path / "t_1.hdf5")
    with pytest.raises(ValueError, match=r"t_1\.hdf5 \(missing\)"):
        info(str(tmp_path / "t.hdf5"))


def test_a_manifest_naming_files_outside_its_directory_is_refused(photo_dir, tmp_path):
    pack(photo_dir, tmp_path / "t.hdf5", shards=2)
    path = tmp_path / "t.hdf5.manifest.json"
    body = json.loads(path.read_text())
    body["shards"][0]["file"] = "../t_0.hdf5"
    path.write_text(json.dumps(body))
    with pytest.raises(ValueError, match="not a nebulae fuel manifest"):
        info(str(tmp_path / "t.hdf5"))


def test_shards_of_mixed_runs_without_a_manifest_are_an_error(photo_dir, tmp_path):
    pack(photo_dir, tmp_path / "t.hdf5", shards=2)
    pack(photo_dir, tmp_path / "other.hdf5", shards=2)
    os.unlink(tmp_path / "t.hdf5.manifest.json")
    assert tank_labels(tmp_path / "t.hdf5") == [i % 5 for i in range(20)]  # one run: still loads
    os.replace(tmp_path / "other_1.hdf5", tmp_path / "t_1.hdf5")
    with pytest.raises(ValueError, match=r"different packing runs \(t_0\.hdf5 vs t_1\.hdf5\)"):
        Tank(str(tmp_path / "t.hdf5"), SPEC, 4, nworker=0, verbose=False)


def test_families_without_run_ids_load_as_before(photo_dir, tmp_path):
    # what the original Nebulae (and this package before run ids) wrote: shards by name, no run id, no manifest
    pack(photo_dir, tmp_path / "t.hdf5", shards=2)
    os.unlink(tmp_path / "t.hdf5.manifest.json")
    for i in range(2):
        with h5py.File(tmp_path / f"t_{i}.hdf5", "a") as f:
            del f.attrs["nebulae_run"]
    assert tank_labels(tmp_path / "t.hdf5") == [i % 5 for i in range(20)]
    with h5py.File(tmp_path / "t_1.hdf5", "a") as f:
        f.attrs["nebulae_run"] = "0" * 32  # one shard of a newer run among old ones
    with pytest.raises(ValueError, match="different packing runs"):
        info(str(tmp_path / "t.hdf5"))


def test_fill_on_a_shard_keeps_its_family_openable(photo_dir, tmp_path):
    pack(photo_dir, tmp_path / "t.hdf5", shards=2)
    for i in range(2):
        fill(str(tmp_path / f"t_{i}.hdf5"), "classes", [1, 2, 3])
    assert tank_labels(tmp_path / "t.hdf5") == [i % 5 for i in range(20)]
    verify(str(tmp_path / "t.hdf5"))


def test_verify_finds_a_changed_byte(photo_dir, tmp_path):
    pack(photo_dir, tmp_path / "t.npz", shards=2)
    with open(tmp_path / "t_1.npz", "r+b") as fh:
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match=r"t_1\.npz .*sha256"):
        verify(str(tmp_path / "t.npz"))


def test_overwrite_check_counts_a_lone_manifest(photo_dir, tmp_path):
    pack(photo_dir, tmp_path / "t.hdf5", shards=2)
    for i in range(2):
        os.unlink(tmp_path / f"t_{i}.hdf5")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        pack(photo_dir, tmp_path / "t.hdf5", shards=2)
    pack(photo_dir, tmp_path / "t.hdf5", shards=2, overwrite=True)
    assert tank_labels(tmp_path / "t.hdf5") == [i % 5 for i in range(20)]


def test_cli_verify_reports_a_good_and_a_changed_family(photo_dir, tmp_path):
    pack(photo_dir, tmp_path / "t.hdf5", shards=2)
    run = [sys.executable, "-m", "nebulae.fuel", "verify", str(tmp_path / "t.hdf5")]
    ok = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "2 shard(s)" in ok.stdout
    with h5py.File(tmp_path / "t_0.hdf5", "a") as f:
        f["label"][0] = 99  # same size, other bytes
    bad = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "t_0.hdf5" in bad.stderr and "sha256" in bad.stderr
