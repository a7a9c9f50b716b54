"""What packing keeps and leaves out: bad files skipped into a report, each row's source key, JPEG sources stored
as they are, samples of any function, and data sets of millions of rows opened without per-row objects."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from nebulae.fuel import FuelGenerator, Tank, depot, info, pack_samples
from nebulae.fuel.__main__ import main as cli

SKIP_REASONS = {
    "trunc.jpg": "unreadable",
    "zero.jpg": "empty",
    "missing.jpg": "missing",
    "bomb.png": "too large",
}


@pytest.fixture
def mixed_dir(tmp_path: Path, photo, csvfile) -> Path:
    """8 good 32x32 JPEGs and, between them, a truncated JPEG, a zero-byte file, a missing file and a bomb."""
    d = tmp_path / "mixed"
    d.mkdir()
    rows = []
    for i in range(8):
        photo(d / f"ok_{i}.jpg", 32, 32, seed=i)
        rows.append([f"ok_{i}.jpg", str(i)])
    whole = (d / "ok_0.jpg").read_bytes()
    (d / "trunc.jpg").write_bytes(whole[: len(whole) // 2])
    (d / "zero.jpg").write_bytes(b"")
    Image.new("L", (400, 400)).save(d / "bomb.png")  # a bomb for max_pixels=100_000
    bad = [["trunc.jpg", "100"], ["zero.jpg", "101"], ["missing.jpg", "102"], ["bomb.png", "103"]]
    rows = rows[:2] + bad[:2] + rows[2:5] + bad[2:] + rows[5:]
    csvfile(d / "list.csv", ["image", "label"], rows)
    return d


def pack_mixed(d: Path, dst: Path, **kwargs) -> list[str]:
    fg = FuelGenerator(str(d), "list.csv", ["int64"])
    kwargs.setdefault("nworker", 1)
    return fg.generate(str(dst), 32, 32, max_pixels=100_000, verbose=False, **kwargs)


def read_report(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def labels(path: Path, specf: dict[str, str] | None = None) -> dict[str, list]:
    specf = specf or {"label": "int64", "__key__": "str"}
    with Tank(str(path), specf, 1, shuffle=False, nworker=0, verbose=False) as tank:
        batches = [tank.next() for _ in range(tank.MPE)]
    return {k: [b[k][0] for b in batches] for k in specf}


# -- on_error -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "encode", "shards"), [("hdf5", "JPEG", 1), ("npz", "RAW", 3), ("hdf5", "RAW", 2)]
)
def test_skip_lists_truncated_empty_missing_and_bomb_rows_and_packs_every_other_row(
    mixed_dir, tmp_path, suffix, encode, shards
):
    dst = tmp_path / "out" / f"mixed.{suffix}"
    written = pack_mixed(mixed_dir, dst, encode=encode, shards=shards, on_error="skip")
    report = read_report(tmp_path / "out" / f"mixed.{suffix}.skipped.csv")
    assert {r["file"]: r["reason"] for r in report} == SKIP_REASONS
    assert [int(r["row"]) for r in report] == [4, 5, 9, 10]  # CSV lines, in row order
    got = labels(dst)
    assert got["label"] == list(range(8))
    assert got["__key__"] == [f"ok_{i}.jpg" for i in range(8)]
    assert info(str(dst))["skipped"] == 4 and info(str(dst))["rows"] == 8
    assert len(written) == shards


def test_skip_report_and_shards_do_not_depend_on_the_number_of_workers(mixed_dir, tmp_path):
    pack_mixed(mixed_dir, tmp_path / "a" / "m.hdf5", shards=2, on_error="skip", nworker=1)
    pack_mixed(mixed_dir, tmp_path / "b" / "m.hdf5", shards=2, on_error="skip", nworker=2)
    a = (tmp_path / "a" / "m.hdf5.skipped.csv").read_bytes()
    assert a == (tmp_path / "b" / "m.hdf5.skipped.csv").read_bytes()
    # shard boundaries are set before skipping: shard 0 holds rows 1-6 of 12, less its 2 bad ones
    ma = json.loads((tmp_path / "a" / "m.hdf5.manifest.json").read_text())
    mb = json.loads((tmp_path / "b" / "m.hdf5.manifest.json").read_text())
    assert [(s["rows"], s["skipped"]) for s in ma["shards"]] == [(4, 2), (4, 2)] and ma["skipped"] == 4
    assert [(s["rows"], s["skipped"]) for s in mb["shards"]] == [(4, 2), (4, 2)]


def test_raise_stays_the_default_and_names_the_first_bad_row(mixed_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.jpg"):
        pack_mixed(mixed_dir, tmp_path / "m.hdf5")  # a missing file is found before any encoding
    (mixed_dir / "missing.jpg").write_bytes((mixed_dir / "ok_0.jpg").read_bytes())
    with pytest.raises(ValueError, match=r"row 4 of list.csv: .*trunc.jpg"):
        pack_mixed(mixed_dir, tmp_path / "m.hdf5")
    assert not (tmp_path / "m.hdf5").exists() and not (tmp_path / "m.hdf5.skipped.csv").exists()


def test_a_single_file_records_its_skipped_rows_and_a_clean_rerun_removes_the_report(mixed_dir, tmp_path):
    dst = tmp_path / "m.hdf5"
    pack_mixed(mixed_dir, dst, on_error="skip")
    with h5py.File(dst, "r") as f:
        assert f.attrs["nebulae_skipped"] == 4 and len(f["image"]) == 8
    for name in ("trunc.jpg", "zero.jpg", "missing.jpg", "bomb.png"):
        (mixed_dir / name).write_bytes((mixed_dir / "ok_0.jpg").read_bytes())
    pack_mixed(mixed_dir, dst, on_error="skip", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["m.hdf5", "mixed"]  # the old report went with the old data
    assert info(str(dst))["skipped"] == 0 and info(str(dst))["rows"] == 12


def test_every_row_skipped_is_an_error_that_writes_nothing(tmp_path, csvfile):
    (tmp_path / "a.jpg").write_bytes(b"")
    csvfile(tmp_path / "l.csv", ["image", "label"], [["a.jpg", "1"]])
    fg = FuelGenerator(str(tmp_path), "l.csv", ["int64"])
    with pytest.raises(ValueError, match=r"every row of l\.csv was skipped"):
        fg.generate(str(tmp_path / "o.hdf5"), 8, 8, on_error="skip", nworker=1, verbose=False)
    assert sorted(os.listdir(tmp_path)) == ["a.jpg", "l.csv"]


def test_on_error_must_be_raise_or_skip(mixed_dir, tmp_path):
    with pytest.raises(ValueError, match="'on_error' must be 'raise'"):
        pack_mixed(mixed_dir, tmp_path / "m.hdf5", on_error="ignore")
    fg = FuelGenerator(
        config={"file_dir": str(mixed_dir), "file_list": "list.csv", "dtype": ["int64"], "on_error": "skip"}
    )
    assert fg.on_error == "skip"


def test_cli_on_error_skip_writes_the_report(mixed_dir, tmp_path, capsys):
    dst = tmp_path / "c.hdf5"
    argv = [
        "pack",
        "--file-dir",
        str(mixed_dir),
        "--file-list",
        "list.csv",
        "--dtype",
        "int64",
        "--dst",
        str(dst),
    ]
    argv += [
        "--height",
        "32",
        "--width",
        "32",
        "--max-pixels",
        "100000",
        "--nworker",
        "1",
        "--on-error",
        "skip",
    ]
    assert cli(argv) == 0
    assert len(read_report(tmp_path / "c.hdf5.skipped.csv")) == 4
    err = capsys.readouterr().err  # the progress line and the summary count the skipped rows
    assert "12/12" in err and "skipped 4" in err and "skipped 4 row(s), listed in c.hdf5.skipped.csv" in err
    assert cli(["info", str(dst)]) == 0
    assert "skipped rows (on_error='skip'): 4" in capsys.readouterr().out


# -- keys -----------------------------------------------------------------------------------------------------


def test_fetch_fn_sees_the_source_key_column_like_any_column(photo_dir, tmp_path):
    dst = tmp_path / "k.npz"
    FuelGenerator(str(photo_dir), "labels.csv", ["int64"]).generate(str(dst), 8, 8, nworker=1, verbose=False)

    def fetch(data, idx):
        return {"key": data["__key__"][idx], "label": np.int64(data["label"][idx])}

    with Tank(
        str(dst), {"label": "int64"}, 20, shuffle=False, fetch_fn=fetch, nworker=0, verbose=False
    ) as tank:
        batch = tank.next()
    assert list(batch["key"]) == [f"img_{i}.png" for i in range(20)]
    assert "__key__" in [c["name"] for c in info(str(dst))["columns"]]


def test_files_without_a_key_column_keep_loading(tmp_path):
    dst = tmp_path / "old.hdf5"
    with h5py.File(dst, "w") as f:
        f.create_dataset("label", data=np.arange(6))
    assert labels(dst, {"label": "int64"})["label"] == list(range(6))


# -- passthrough ----------------------------------------------------------------------------------------------


def test_a_jpeg_of_the_target_size_is_stored_bit_identical(tmp_path, photo, csvfile):
    photo(tmp_path / "a.jpg", 224, 224, seed=1)
    photo(tmp_path / "b.jpg", 300, 200, seed=2)
    csvfile(tmp_path / "l.csv", ["image", "label"], [["a.jpg", "0"], ["b.jpg", "1"]])
    dst = tmp_path / "p.hdf5"
    FuelGenerator(str(tmp_path), "l.csv", ["int64"]).generate(str(dst), 224, 224, nworker=1, verbose=False)
    with h5py.File(dst, "r") as f:
        assert f["image"][0].tobytes() == (tmp_path / "a.jpg").read_bytes()
        resized = f["image"][1].tobytes()
    assert resized[:2] == b"\xff\xd8" and resized != (tmp_path / "b.jpg").read_bytes()


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("exif to drop", {"keep_exif": False}),
        ("gray target", {"channel": 1}),
        ("FAST preset", {"quality": 1}),
    ],
)
def test_a_jpeg_is_encoded_again_when_something_must_change(tmp_path, photo, csvfile, case, kwargs):
    photo(tmp_path / "src.jpg", 64, 64, seed=1, exif=True)
    with Image.open(tmp_path / "src.jpg") as im:
        # quality 90: a re-encode at FAST's quality 75 cannot come out bit-identical by chance
        im.save(tmp_path / "a.jpg", quality=90, exif=im.info["exif"])
    csvfile(tmp_path / "l.csv", ["image", "label"], [["a.jpg", "0"]])
    dst = tmp_path / "p.hdf5"
    FuelGenerator(str(tmp_path), "l.csv", ["int64"]).generate(
        str(dst), 64, 64, nworker=1, verbose=False, **kwargs
    )
    with h5py.File(dst, "r") as f:
        assert f["image"][0].tobytes() != (tmp_path / "a.jpg").read_bytes(), case


# -- pack_samples ---------------------------------------------------------------------------------------------


def sample_of(i: int) -> dict:
    return {"vec": np.arange(6, dtype=np.float32).reshape(2, 3) * i + 0.5, "name": f"sample-{i}", "n": i * 7}


@pytest.mark.parametrize("spelling", ["relative", "dot", "absolute", "symlinked_dir"])
def test_pack_samples_round_trips_arrays_strings_and_ints_through_tank(tmp_path, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "out", target_is_directory=True)
    dst = {"relative": "out/s.hdf5", "dot": "./out/s.hdf5", "absolute": str(tmp_path / "out/s.hdf5")}.get(
        spelling, "link/s.hdf5"
    )
    written = pack_samples(sample_of, range(23), dst, shards=3, nworker=1, verbose=False)
    pack_samples(sample_of, range(23), dst, shards=3, nworker=1, verbose=False, overwrite=True)
    assert len(written) == 3 and sorted(os.listdir("out")) == [
        "s.hdf5.manifest.json",
        "s_0.hdf5",
        "s_1.hdf5",
        "s_2.hdf5",
    ]
    specf = {"vec": "float32", "name": "str", "n": "int64"}
    with Tank(dst, specf, 23, shuffle=False, nworker=0, verbose=False) as tank:
        batch = tank.next()
    assert batch["vec"].dtype == np.float32
    np.testing.assert_array_equal(batch["vec"], np.stack([sample_of(i)["vec"] for i in range(23)]))
    assert list(batch["name"]) == [f"sample-{i}" for i in range(23)]
    assert batch["n"].tolist() == [i * 7 for i in range(23)]


def test_pack_samples_with_workers_keeps_input_order_and_bytes(tmp_path):
    samples = [{"blob": bytes([i, 0, 255]), "ok": bool(i % 2)} for i in range(17)]
    assert depot.pack_samples is pack_samples
    pack_samples(dict, samples, str(tmp_path / "w.h5"), shards=2, nworker=2, verbose=False)
    with Tank(
        str(tmp_path / "w.h5"), {"blob": "vuint8", "ok": "bool"}, 17, shuffle=False, nworker=0, verbose=False
    ) as tank:
        batch = tank.next()
    assert [bytes(b) for b in batch["blob"]] == [s["blob"] for s in samples]
    assert batch["ok"].tolist() == [s["ok"] for s in samples]


def test_pack_samples_names_the_input_whose_sample_differs(tmp_path):
    def fn(i):
        return {"x": np.zeros(3, np.float32) if i != 4 else np.zeros(4, np.float32)}

    with pytest.raises(
        ValueError, match=r"input 4: sample\['x'\] is float32\[4\], but input 0's is float32\[3\]"
    ):
        pack_samples(fn, range(6), str(tmp_path / "e.hdf5"), nworker=1, verbose=False)
    with pytest.raises(ValueError, match="input 2: fn returned keys"):
        pack_samples(
            lambda i: {"a": 1} if i != 2 else {"b": 1}, range(3), str(tmp_path / "e.hdf5"), nworker=1
        )
    with pytest.raises(ValueError, match=r"fn\(inputs\[1\]\) raised ZeroDivisionError"):
        pack_samples(
            lambda i: {"a": 1 / (i - 1)}, range(3), str(tmp_path / "e.hdf5"), nworker=1, verbose=False
        )
    with pytest.raises(TypeError, match="cannot be sent to worker processes"):
        pack_samples(lambda i: {"a": i}, range(3), str(tmp_path / "e.hdf5"), nworker=2)
    with pytest.raises(ValueError, match="writes HDF5"):
        pack_samples(dict, [{"a": 1}], str(tmp_path / "e.npz"))
    assert sorted(os.listdir(tmp_path)) == []


# -- very large data sets -------------------------------------------------------------------------------------


def test_ten_million_rows_open_with_order_arrays_and_no_per_row_objects(tmp_path):
    n = 10_000_000
    dst = tmp_path / "big.hdf5"
    with h5py.File(dst, "w") as f:
        f.create_dataset("label", data=(np.arange(n) % 251).astype(np.uint8))  # 10 MB on disk
    assert info(str(dst))["rows"] == n
    with Tank(str(dst), {"label": "uint8"}, 1000, nworker=0, seed=3, verbose=False) as tank:
        order = tank._order(0)
        assert isinstance(order, np.ndarray) and order.dtype == np.int64 and len(order) == n
        batch = tank.next()
        np.testing.assert_array_equal(batch["label"], order[:1000] % 251)


def test_a_long_string_column_is_read_per_batch_not_held_as_python_strings(tmp_path, monkeypatch):
    from nebulae.fuel import _shard

    monkeypatch.setattr(_shard, "STR_CACHE_ROWS", 4)
    dst = tmp_path / "s.hdf5"
    keys = [f"file_{i}.jpg" for i in range(10)]
    with h5py.File(dst, "w") as f:
        f.create_dataset("__key__", data=np.array(keys, dtype=object), dtype=h5py.string_dtype())
    with Tank(str(dst), {"__key__": "str"}, 5, shuffle=True, seed=1, nworker=0, verbose=False) as tank:
        order = tank._order(0)
        got = list(tank.next()["__key__"]) + list(tank.next()["__key__"])
        assert got == [keys[i] for i in order]
        assert tank.data.source.shards[0].cache["__key__"] == ("strings", None)


@pytest.mark.parametrize(
    ("suffix", "encode"), [("hdf5", "PNG"), ("npz", "PNG"), ("hdf5", "RAW"), ("npz", "RAW")]
)
def test_a_sequence_with_one_bad_frame_is_skipped_whole(seq_dir, tmp_path, suffix, encode):
    (seq_dir / "vid_2" / "f1.png").write_bytes(b"not a png")
    dst = tmp_path / f"clips.{suffix}"
    fg = FuelGenerator(str(seq_dir), "clips.csv", ["int64"], is_seq=True)
    fg.generate(str(dst), 16, 16, encode=encode, shards=2, on_error="skip", nworker=1, verbose=False)
    report = read_report(tmp_path / f"clips.{suffix}.skipped.csv")
    assert [(r["row"], r["reason"]) for r in report] == [("4", "unreadable")]
    assert "vid_2/f1.png" in report[0]["message"]
    assert labels(dst)["label"] == [0, 1, 3, 4, 5]
    with Tank(str(dst), {"video": "uint8"}, 1, shuffle=False, nworker=0, verbose=False) as tank:
        assert [len(tank.next()["video"][0]) for _ in range(tank.MPE)] == [2, 3, 5, 6, 7]
