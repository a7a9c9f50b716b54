"""merge, fill and deduct on HDF5 and NPZ (SPEC 2.6)."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from nebulae.fuel import FuelGenerator, Tank, deduct, fill, merge


@pytest.fixture(params=["hdf5", "npz"])
def shards(request, photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    paths = fg.generate(
        str(tmp_path / f"s.{request.param}"), 8, 8, encode="PNG", shards=3, nworker=1, verbose=False
    )
    return tmp_path, [os.path.basename(p) for p in paths], request.param


def test_merge_concatenates_in_order_and_keeps_sources(shards):
    d, names, suffix = shards
    out = merge(str(d), names, f"all.{suffix}", {"image": "vuint8", "label": "int64"})
    with Tank(out, {"image": "vuint8", "label": "int64"}, 5, shuffle=False, nworker=0, verbose=False) as t:
        labels = np.concatenate([t.next()["label"] for _ in range(t.MPE)])
    assert labels.tolist() == [i % 5 for i in range(20)]
    assert all((d / n).exists() for n in names)


def test_merge_deletes_sources_only_after_success(shards):
    d, names, suffix = shards
    merge(str(d), names, f"all.{suffix}", {}, keep_src=False)
    assert not any((d / n).exists() for n in names) and (d / f"all.{suffix}").exists()


def test_merge_rejects_different_keys(shards):
    d, names, suffix = shards
    fill(str(d / names[1]), "extra", [1, 2, 3])
    with pytest.raises(ValueError, match="same keys"):
        merge(str(d), names, f"all.{suffix}", {})
    assert not [n for n in os.listdir(d) if n.startswith("all.")]


def test_merge_re_pads_sequences(seq_dir, tmp_path):
    fg = FuelGenerator(str(seq_dir), "clips.csv", ["int64"], is_seq=True)
    paths = fg.generate(str(tmp_path / "v.hdf5"), 8, 8, encode="PNG", shards=2, nworker=1, verbose=False)
    out = merge(str(tmp_path), [os.path.basename(p) for p in paths], "v_all.hdf5", {"label": "int64"})
    with h5py.File(out) as f:
        assert f["video"].shape == (6, 7) and int(f["_MAX_FRAMES"][()]) == 7


def test_fill_adds_datasets_and_refuses_existing_keys(shards):
    d, names, suffix = shards
    path = str(d / names[0])
    fill(path, "classes", ["cat", "dog"])
    fill(path, "scale", 2.5)
    with pytest.raises(KeyError, match="already exists"):
        fill(path, "classes", ["x"])
    if suffix == "hdf5":
        with h5py.File(path) as f:
            assert f["classes"].asstr()[:].tolist() == ["cat", "dog"] and f["scale"][:].tolist() == [2.5]
    else:
        with np.load(path, allow_pickle=False) as z:
            assert z["classes"].tolist() == ["cat", "dog"] and z["scale"].tolist() == [2.5]


def test_deduct_removes_keys_and_names_missing_ones(shards):
    d, names, suffix = shards
    path = str(d / names[0])
    fill(path, "tmp", [1])
    deduct(path, "tmp")
    with pytest.raises(KeyError, match="'tmp' is not in"):
        deduct(path, "tmp")
    if suffix == "hdf5":
        fill(path, "big", np.zeros(200_000))
        before = os.path.getsize(path)
        deduct(path, "big", repack=True)
        assert os.path.getsize(path) < before - 1_000_000
    assert not [n for n in os.listdir(d) if ".tmp-" in n]
