"""FuelGenerator: settings, formats, shards, EXIF, overwrite and atomicity (SPEC 2.2, 2.3)."""

from __future__ import annotations

import functools
import io
import json
import operator
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

import nebulae.fuel as fuel
from nebulae.fuel import FuelGenerator, Generator, byte2arr
from nebulae.fuel._image import EncodeSpec, encode_image
from nebulae.fuel._pack import RowEncoder
from nebulae.fuel._procs import mp_context


def test_generator_is_an_alias_of_fuelgenerator():
    assert Generator is FuelGenerator


def test_config_dict_and_explicit_arguments_are_exclusive(photo_dir):
    cfg = {"file_dir": str(photo_dir), "file_list": "labels.csv", "dtype": ["int64"], "height": 8, "width": 8}
    fg = FuelGenerator(config=cfg)
    assert fg.height == 8 and fg.file_list == "labels.csv"
    assert FuelGenerator(cfg).width == 8  # a dict as first positional argument is config
    with pytest.raises(TypeError, match="either config= or explicit arguments"):
        FuelGenerator(str(photo_dir), config=cfg)
    with pytest.raises(KeyError, match="unknown setting"):
        FuelGenerator(config={**cfg, "colour": 3})


def test_missing_required_settings_and_bad_file_dir(photo_dir, tmp_path):
    with pytest.raises(ValueError, match="'dtype' is required"):
        FuelGenerator(str(photo_dir), "labels.csv")
    with pytest.raises(FileNotFoundError, match="'file_dir'"):
        FuelGenerator(str(tmp_path / "nope"), "labels.csv", ["int64"])
    with pytest.raises(TypeError, match="'dtype' must be a list"):
        FuelGenerator(str(photo_dir), "labels.csv", "int64")


def test_modify_accepts_kwargs_or_config_and_validates(photo_dir):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.modify(height=200, width=200)
    assert (fg.height, fg.width) == (200, 200)
    fg.modify(config={"height": 100, "width": 50})
    assert (fg.height, fg.width) == (100, 50)
    with pytest.raises(KeyError):
        fg.modify(colour=1)
    with pytest.raises(ValueError, match="invalid dtype"):
        fg.modify(dtype=["int65"])
    with pytest.raises(TypeError, match="not both"):
        fg.modify({"height": 1}, width=1)


def test_hdf5_layout_attributes_and_png_round_trip(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    out = tmp_path / "out" / "fuel.hdf5"
    written = fg.generate(str(out), 24, 32, encode="PNG", nworker=1, verbose=False)
    assert written == [str(out)]
    with h5py.File(out) as f:
        # every pack also keeps each row's source key (the CSV's first cell) in the `__key__` column
        assert list(f.keys()) == ["__key__", "image", "label"]
        assert f["image"].dtype == h5py.vlen_dtype(np.uint8)
        assert f["image"].attrs["nebulae_encode"] == "PNG"
        assert json.loads(f.attrs["nebulae_columns"]) == ["image", "label", "__key__"]
        assert f["label"][:].tolist() == [i % 5 for i in range(20)]
        img = byte2arr(f["image"][3])
    src = np.asarray(
        Image.open(photo_dir / "img_3.png").convert("RGB").resize((32, 24), Image.Resampling.LANCZOS)
    )
    assert img.shape == (24, 32, 3)
    np.testing.assert_array_equal(img, src)


def test_zero_size_keeps_each_image_and_one_zero_is_an_error(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(tmp_path / "keep.hdf5"), encode="PNG", verbose=False, nworker=1)
    with h5py.File(tmp_path / "keep.hdf5") as f:
        assert byte2arr(f["image"][5]).shape == (35, 50, 3)
    with pytest.raises(ValueError, match="both be > 0"):
        fg.generate(str(tmp_path / "x.hdf5"), 10, 0, verbose=False)


def test_shards_are_contiguous_and_follow_array_split(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    paths = fg.generate(str(tmp_path / "f.hdf5"), 8, 8, shards=3, nworker=2, verbose=False)
    assert [os.path.basename(p) for p in paths] == ["f_0.hdf5", "f_1.hdf5", "f_2.hdf5"]
    labels = []
    for p in paths:
        with h5py.File(p) as f:
            labels.append(f["label"][:].tolist())
    assert [len(x) for x in labels] == [7, 7, 6]
    assert functools.reduce(operator.iadd, labels, []) == [i % 5 for i in range(20)]
    with pytest.raises(ValueError, match="'shards' must be <= the number of rows"):
        fg.generate(str(tmp_path / "g.hdf5"), 8, 8, shards=21, verbose=False)
    assert fg.generate(str(tmp_path / "n.hdf5"), 8, 8, nshard=2, nworker=1, verbose=False)[1].endswith(
        "n_1.hdf5"
    )


def test_grayscale_channel_one_is_stored_and_decoded_as_hw1(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(tmp_path / "g.hdf5"), 16, 16, channel=1, encode="PNG", nworker=1, verbose=False)
    with h5py.File(tmp_path / "g.hdf5") as f:
        img = byte2arr(f["image"][0])
    assert img.shape == (16, 16, 1)


def test_keep_exif_really_keeps_it_and_false_drops_it(tmp_path, photo, csvfile):
    d = tmp_path / "exif"
    d.mkdir()
    photo(d / "a.jpg", 64, 48, seed=1, exif=True)
    csvfile(d / "l.csv", ["image", "label"], [["a.jpg", "1"]])
    fg = FuelGenerator(str(d), "l.csv", ["int8"])
    for keep in (True, False):
        out = tmp_path / f"e{keep}.hdf5"
        fg.generate(str(out), 32, 32, keep_exif=keep, nworker=1, verbose=False)
        with h5py.File(out) as f:
            img = Image.open(io.BytesIO(f["image"][0].tobytes()))
            exif = img.getexif()
        assert (exif.get(0x010F) == "NebulaeCam") is keep


def test_quality_constants_select_codec(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    got = {}
    for q in (fuel.FAST, fuel.GOOD, fuel.OPTIM, fuel.LOSSLESS):
        out = tmp_path / f"q{int(q)}.hdf5"
        fg.generate(str(out), 16, 16, quality=q, nworker=1, verbose=False)
        with h5py.File(out) as f:
            got[int(q)] = (f["image"].attrs["nebulae_encode"], f["image"][0][:4].tobytes())
    assert got[1][0] == got[2][0] == "JPEG" and got[1][1][:2] == b"\xff\xd8"
    assert got[3][0] == got[4][0] == "PNG" and got[3][1] == b"\x89PNG"
    with pytest.raises(ValueError, match="'quality'"):
        fg.generate(str(tmp_path / "bad.hdf5"), 16, 16, quality=9, verbose=False)


def test_jpeg_round_trip_within_psnr(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(tmp_path / "j.hdf5"), 40, 40, nworker=1, verbose=False)
    with h5py.File(tmp_path / "j.hdf5") as f:
        img = byte2arr(f["image"][7]).astype(np.float64)
    ref = np.asarray(
        Image.open(photo_dir / "img_7.png").convert("RGB").resize((40, 40), Image.Resampling.LANCZOS)
    )
    mse = np.mean((img - ref) ** 2)
    assert 10 * np.log10(255**2 / max(mse, 1e-8)) > 35  # JPEG q95: lossy, but close


def test_encode_none_stores_column_zero_as_text(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["str", "int64"])
    fg.generate(str(tmp_path / "t.hdf5"), encode="", nworker=1, verbose=False)
    with h5py.File(tmp_path / "t.hdf5") as f:
        assert f["image"].asstr()[2] == "img_2.png"


def test_npz_has_no_object_arrays_and_loads_without_pickle(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(tmp_path / "n.npz"), 8, 8, encode="PNG", nworker=1, verbose=False)
    with np.load(tmp_path / "n.npz", allow_pickle=False) as z:
        assert {"image", "image__offsets", "label", "__nebulae__"} <= set(z.files)
        off = z["image__offsets"]
        assert len(off) == 21
        img = byte2arr(z["image"][off[4] : off[5]])
    assert img.shape == (8, 8, 3)


def test_raw_hdf5_is_contiguous_and_exact(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(tmp_path / "r.hdf5"), 12, 10, encode="RAW", nworker=2, verbose=False)
    with h5py.File(tmp_path / "r.hdf5") as f:
        ds = f["image"]
        assert ds.shape == (20, 12, 10, 3) and ds.chunks is None and ds.id.get_offset() is not None
        ref = np.asarray(
            Image.open(photo_dir / "img_9.png").convert("RGB").resize((10, 12), Image.Resampling.LANCZOS)
        )
        np.testing.assert_array_equal(ds[9], ref)
    with pytest.raises(ValueError, match="RAW"):
        fg.generate(str(tmp_path / "r2.hdf5"), encode="RAW", verbose=False)


def test_sequences_of_unequal_length_pad_with_empty_frames(seq_dir, tmp_path):
    fg = FuelGenerator(str(seq_dir), "clips.csv", ["int64"], is_seq=True)
    fg.generate(str(tmp_path / "s.hdf5"), 12, 16, encode="PNG", nworker=1, verbose=False)
    with h5py.File(tmp_path / "s.hdf5") as f:
        assert f["video"].shape == (6, 7) and int(f["_MAX_FRAMES"][()]) == 7
        assert [sum(len(x) > 0 for x in row) for row in f["video"][:]] == [2, 3, 4, 5, 6, 7]


def test_existing_output_needs_overwrite_and_overwrite_removes_old_family(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    dst = str(tmp_path / "f.hdf5")
    fg.generate(dst, 8, 8, shards=3, nworker=1, verbose=False)
    with pytest.raises(FileExistsError, match=r"f_0.hdf5"):
        fg.generate(dst, 8, 8, verbose=False)
    fg.generate(dst, 8, 8, overwrite=True, nworker=1, verbose=False)
    assert sorted(os.listdir(tmp_path)) == ["f.hdf5", "raw"]


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"not an image at all", ValueError, "row 3 of labels.csv: .*img_1.png.* not a readable image"),
        (None, FileNotFoundError, "1 file\\(s\\) listed in labels.csv do not exist"),
    ],
)
def test_bad_images_name_row_and_leave_nothing(photo_dir, tmp_path, content, error, message):
    target = photo_dir / "img_1.png"
    if content is None:
        target.unlink()
    else:
        target.write_bytes(content)
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    with pytest.raises(error, match=message):
        fg.generate(str(tmp_path / "out" / "f.hdf5"), 8, 8, nworker=2, verbose=False)
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_truncated_image_is_reported(photo_dir, tmp_path):
    data = (photo_dir / "img_2.png").read_bytes()
    (photo_dir / "img_2.png").write_bytes(data[: len(data) // 2])
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    with pytest.raises(ValueError, match=r"row 4 of labels.csv"):
        fg.generate(str(tmp_path / "f.hdf5"), 8, 8, nworker=1, verbose=False)
    assert not any(n.startswith("f.") for n in os.listdir(tmp_path))


def test_entry_escaping_file_dir_is_refused(photo_dir, tmp_path, csvfile):
    csvfile(photo_dir / "esc.csv", ["image", "label"], [["img_0.png", "1"], ["../outside.png", "2"]])
    (tmp_path / "outside.png").write_bytes((photo_dir / "img_1.png").read_bytes())
    fg = FuelGenerator(str(photo_dir), "esc.csv", ["int64"])
    with pytest.raises(ValueError, match=r"row 3 of esc.csv: .*outside file_dir"):
        fg.generate(str(tmp_path / "f.hdf5"), 8, 8, verbose=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel": 4}, "'channel'"),
        ({"encode": "gif"}, "'encode'"),
        ({"shards": 0}, "'shards'"),
        ({"height": -1, "width": 2}, "'height'"),
    ],
)
def test_invalid_generate_arguments(photo_dir, tmp_path, kwargs, message):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    with pytest.raises(ValueError, match=message):
        fg.generate(str(tmp_path / "f.hdf5"), **kwargs)


def test_bad_dst_suffix_and_csv_suffix(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    with pytest.raises(ValueError, match="'dst_path' must end in"):
        fg.generate(str(tmp_path / "f.zip"))
    fg.modify(file_list="labels.txt")
    with pytest.raises(ValueError, match=r"'file_list' must be a .csv"):
        fg.generate(str(tmp_path / "f.hdf5"))


def test_progress_bar_shows_rate_and_eta_and_verbose_false_silences(photo_dir, tmp_path, capsys):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(tmp_path / "a.hdf5"), 8, 8, nworker=1)
    err = capsys.readouterr().err
    assert "20/20" in err and "/s" in err and "ETA" in err
    fg.generate(str(tmp_path / "b.hdf5"), 8, 8, nworker=1, verbose=False)
    assert capsys.readouterr().err == ""


_PACK_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from nebulae.fuel import FuelGenerator
    import nebulae.fuel._image as im
    slow = im.encode_image
    def encode(path, spec):
        time.sleep(0.05)
        return slow(path, spec)
    im.encode_image = encode
    import nebulae.fuel._pack as pk
    pk.encode_image = encode
    fg = FuelGenerator(sys.argv[1], "labels.csv", ["int64"])
    print("start", flush=True)
    fg.generate(sys.argv[2], 8, 8, nworker=1, verbose=False, overwrite=True)
    print("done", flush=True)
    """
)


def _start_pack(photo_dir: Path, dst: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _PACK_SCRIPT, str(photo_dir), str(dst)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "start"
    deadline = time.time() + 20
    while not any(".tmp-" in n for n in os.listdir(dst.parent)):
        assert time.time() < deadline, "the pack never started writing"
        time.sleep(0.02)
    return proc


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, 143)])
def test_interrupted_pack_leaves_nothing(photo_dir, tmp_path, sig, code):
    out = tmp_path / "out"
    out.mkdir()
    proc = _start_pack(photo_dir, out / "f.hdf5")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert os.listdir(out) == []


def test_killed_pack_keeps_previous_output_and_next_run_removes_stale_temp(photo_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(out / "f.hdf5"), 4, 4, nworker=1, verbose=False)
    before = (out / "f.hdf5").read_bytes()
    proc = _start_pack(photo_dir, out / "f.hdf5")
    proc.kill()
    proc.wait(timeout=30)
    assert (out / "f.hdf5").read_bytes() == before
    assert any(".tmp-" in n for n in os.listdir(out))
    fg.generate(str(out / "f.hdf5"), 8, 8, nworker=1, verbose=False, overwrite=True)
    assert os.listdir(out) == ["f.hdf5"]


def test_a_packing_worker_that_dies_is_an_error_and_leaves_nothing(tmp_path, photo, csvfile, monkeypatch):
    d = tmp_path / "many"
    d.mkdir()
    rows = []
    for i in range(120):
        photo(d / f"p{i}.jpg", 160, 200, seed=i)
        rows.append([f"p{i}.jpg", "0"])
    csvfile(d / "l.csv", ["image", "label"], rows)
    run = RowEncoder.run

    def kill_workers_after_first_chunk(self, refs):
        for k, chunk in enumerate(run(self, refs)):
            if k == 0:  # both workers are busy with later chunks: their chunks are lost with them
                for p in self.procs:
                    os.kill(p.pid, signal.SIGKILL)
            yield chunk

    monkeypatch.setattr(RowEncoder, "run", kill_workers_after_first_chunk)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError, match=r"packing worker process \(pid \d+\) died with exit code -9"):
        FuelGenerator(str(d), "l.csv", ["int64"]).generate(
            str(out / "f.hdf5"), 64, 64, nworker=2, verbose=False
        )
    assert os.listdir(out) == []


_ANNOUNCE_WORKERS = textwrap.dedent(
    """
    import sys, time
    from nebulae.fuel import FuelGenerator
    import nebulae.fuel._pack as pk
    import nebulae.fuel._writer as wr
    enter = pk.RowEncoder.__enter__
    def announce(self):
        out = enter(self)
        print("workers", *[p.pid for p in self.procs], flush=True)
        return out
    pk.RowEncoder.__enter__ = announce
    write = wr.HDF5Writer.write_images
    def slow_write(self, start, items):  # a slow disk: the workers' results (~120 KB a chunk) fill their pipes
        time.sleep(0.3)
        return write(self, start, items)
    wr.HDF5Writer.write_images = slow_write
    FuelGenerator(sys.argv[1], "l.csv", ["int64"]).generate(sys.argv[2], 200, 200, nworker=2, verbose=False)
    """
)


def _gone(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return any(line.startswith("State:") and "Z" in line for line in fh)
    except FileNotFoundError:
        return True


def test_workers_of_a_killed_pack_exit_quietly(tmp_path, csvfile):
    d = tmp_path / "many"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(60):  # noise: large JPEGs, so that results fill the pipes
        Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(d / f"p{i}.jpg")
    csvfile(d / "l.csv", ["image", "label"], [[f"p{i}.jpg", "0"] for i in range(60)])
    proc = subprocess.Popen(
        [sys.executable, "-c", _ANNOUNCE_WORKERS, str(d), str(tmp_path / "f.hdf5")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    words = proc.stdout.readline().split()
    assert words[0] == "workers" and len(words) == 3, words
    time.sleep(1.0)  # both workers are blocked sending results to a parent that writes slowly
    proc.kill()
    # the workers share the parent's stderr: this returns once they have all exited
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert all(_gone(int(pid)) for pid in words[1:])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 13])
def test_row_encoder_keeps_row_order_for_any_row_count(photo_dir, n):
    spec = EncodeSpec("RAW", 8, 8, 3, False)
    refs = [str(photo_dir / f"img_{i}.png") for i in range(n)]
    with RowEncoder(2, spec, chunk=3) as encoder:
        sizes = []
        got = []
        for chunk in encoder.run(refs):
            sizes.append(len(chunk))
            got += chunk
    assert len(got) == n
    for ref, arr in zip(refs, got, strict=True):
        np.testing.assert_array_equal(arr, encode_image(ref, spec))
    assert sizes[: min(2, len(sizes))] == [min(2, n - 2 * k) for k in range(min(2, len(sizes)))]


def test_fork_server_preloads_fuel_modules_and_keeps_the_programs_own(monkeypatch):
    from multiprocessing import forkserver

    monkeypatch.setattr(forkserver._forkserver, "_preload_modules", ["__main__", "my_module"])
    ctx = mp_context()
    assert ctx.get_start_method() == "forkserver"
    mods = forkserver._forkserver._preload_modules
    assert mods[:2] == ["__main__", "my_module"]
    assert {"nebulae.fuel._pack", "nebulae.fuel._workers", "PIL.Image"} <= set(mods)
    mp_context()
    assert forkserver._forkserver._preload_modules == mods  # added once


def test_generation_settings_come_from_config_and_modify(photo_dir, tmp_path):
    cfg = {
        "file_dir": str(photo_dir),
        "file_list": "labels.csv",
        "dtype": ["int64"],
        "dst_path": str(tmp_path / "cfg.npz"),
        "height": 6,
        "width": 7,
        "encode": "raw",
        "shards": 2,
    }
    fg = FuelGenerator(config=cfg)
    paths = fg.generate(nworker=1, verbose=False)
    assert [os.path.basename(p) for p in paths] == ["cfg_0.npz", "cfg_1.npz"]
    with np.load(paths[0], allow_pickle=False) as z:
        assert z["image"].shape == (10, 6, 7, 3)
    fg.modify(dst_path=str(tmp_path / "m.hdf5"), shards=1, encode="PNG")
    assert fg.generate(nworker=1, verbose=False) == [str(tmp_path / "m.hdf5")]


def test_packing_memory_stays_flat_with_more_rows(tmp_path, photo, csvfile):
    """Peak RSS of a RAW pack grows far less than the data (rows are streamed in slabs)."""
    script = textwrap.dedent(
        """
        import resource, sys
        from nebulae.fuel import FuelGenerator
        fg = FuelGenerator(sys.argv[1], sys.argv[2], ["int64"])
        fg.generate(sys.argv[3], 128, 128, encode="RAW", nworker=1, verbose=False)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )
    d = tmp_path / "many"
    d.mkdir()
    photo(d / "a.png", 64, 64, seed=0)
    peaks = []
    for rows in (50, 800):  # 2.4 MB vs 39 MB of pixels
        csvfile(d / f"l{rows}.csv", ["image", "label"], [["a.png", "1"]] * rows)
        out = subprocess.run(
            [sys.executable, "-c", script, str(d), f"l{rows}.csv", str(tmp_path / f"o{rows}.hdf5")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        peaks.append(int(out.stdout.split()[-1]))
    assert peaks[1] - peaks[0] < 20 * 1024  # KiB: far less than the 37 MB of extra pixels
