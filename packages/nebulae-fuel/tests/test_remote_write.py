"""Packing to object storage: a real S3 API (moto's server on 127.0.0.1) used through s3fs, as a user would."""

from __future__ import annotations

from pathlib import Path

from nebulae.fuel import FuelGenerator


def _pack(photo_dir: Path, dst: str, s3, tmp_path: Path, **kw):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    kw.setdefault("shards", 3)
    return fg.generate(
        dst,
        16,
        16,
        nworker=1,
        verbose=False,
        storage_options=s3.storage_options,
        work_dir=str(tmp_path / "work"),
        **kw,
    )


def test_pack_to_s3_uploads_shards_then_manifest(photo_dir, s3_server, tmp_path):
    s3 = s3_server
    written = _pack(photo_dir, s3.url("ds/train.hdf5"), s3, tmp_path)
    assert written == [s3.url(f"ds/train_{i}.hdf5") for i in range(3)]
    objects = s3.objects("ds")
    assert sorted(objects) == ["ds/train.hdf5.manifest.json", *(f"ds/train_{i}.hdf5" for i in range(3))]
    print(s3.log.entries)
