"""Tank: opening, decoding, defaults, order and epochs, workers, cleanup (SPEC 2.5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from nebulae.fuel import Comburant, Crop, FuelGenerator, Tank, depot, farm
from nebulae.fuel._order import epoch_order, miles_per_epoch, rank_batch


@pytest.fixture
def packed(photo_dir, tmp_path):
    """The 20 photos packed at 16x16 as PNG, JPEG and RAW, in HDF5 and NPZ."""
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    out = {}
    for enc in ("PNG", "JPEG", "RAW"):
        for suffix in ("hdf5", "npz"):
            path = tmp_path / f"{enc.lower()}.{suffix}"
            fg.generate(str(path), 16, 16, encode=enc, nworker=1, verbose=False)
            out[enc, suffix] = str(path)
    return out


def reference(photo_dir: Path, i: int) -> np.ndarray:
    img = Image.open(photo_dir / f"img_{i}.png").convert("RGB")
    return np.asarray(img.resize((16, 16), Image.Resampling.LANCZOS))


def fetcher(data, idx):
    return {"image": data["image"][idx], "label": data["label"][idx].astype("int64"), "idx": idx}


def prep(data):
    data["image"] = np.transpose(data["image"], (2, 0, 1)).astype("float32")
    return data


SPEC = {"image": "vuint8", "label": "int64"}


def test_tank_is_one_object_in_fuel_depot_and_farm():
    import nebulae.fuel as fuel

    assert fuel.Tank is depot.Tank is farm.Tank
    assert set(farm.__all__) == set(depot.__all__)


@pytest.mark.parametrize("enc", ["PNG", "RAW"])
@pytest.mark.parametrize("suffix", ["hdf5", "npz"])
def test_round_trip_is_exact_for_png_and_raw(packed, photo_dir, enc, suffix):
    with Tank(
        packed[enc, suffix], SPEC, 4, shuffle=False, fetch_fn=fetcher, nworker=0, verbose=False
    ) as tank:
        seen = 0
        for batch in tank:
            for img, idx in zip(batch["image"], batch["idx"], strict=True):
                np.testing.assert_array_equal(img, reference(photo_dir, int(idx)))
                seen += 1
    assert seen == 20


def test_jpeg_round_trip_within_stated_psnr(packed, photo_dir):
    with Tank(
        packed["JPEG", "hdf5"], SPEC, 5, shuffle=False, fetch_fn=fetcher, nworker=0, verbose=False
    ) as t:
        batch = t.next()
    for img, idx in zip(batch["image"], batch["idx"], strict=True):
        mse = np.mean((img.astype(float) - reference(photo_dir, int(idx))) ** 2)
        assert 10 * np.log10(255**2 / max(mse, 1e-8)) > 30


def test_brochure_fetcher_and_prep_give_float_chw_batches(packed):
    tank = depot.Tank(packed["JPEG", "hdf5"], SPEC, 4, True, True, fetcher, prep, None, seed=3, verbose=False)
    batch = tank.next()
    assert batch["image"].shape == (4, 3, 16, 16) and batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int64 and len(tank) == 20 and tank.MPE == 5
    tank.close()


def test_default_fetch_casts_and_collates_per_key(packed):
    with Tank(packed["RAW", "hdf5"], {"image": "uint8", "label": "int32"}, 6, seed=0, verbose=False) as tank:
        batch = tank.next()
    assert batch["image"].shape == (6, 16, 16, 3) and batch["image"].dtype == np.uint8
    assert batch["label"].dtype == np.int32


def test_decode_false_returns_encoded_bytes(packed):
    with Tank(packed["PNG", "hdf5"], SPEC, 2, decode=False, seed=0, nworker=0, verbose=False) as tank:
        batch = tank.next()
    # one 1-D uint8 array per row; rows of equal byte length are stacked by the default collation like any
    # equal-shape arrays (a random seed made this test flaky when it required a list)
    first = np.asarray(batch["image"][0])
    assert first.dtype == np.uint8 and first.ndim == 1 and bytes(first[:4]) == b"\x89PNG"


def test_raw_hdf5_is_memory_mapped(packed):
    with Tank(packed["RAW", "hdf5"], SPEC, 2, nworker=0, verbose=False) as tank:
        arr = tank.data.source.shards[0].raw_array("image")
        assert isinstance(arr, np.memmap)
        assert tank.data["image"][3].shape == (16, 16, 3)


def _fetch_twice(data, idx):
    first = data["image"][idx]  # served from the batch's prefetched bytes
    again = data["image"][idx]  # read again: prefetched rows are handed out once
    np.testing.assert_array_equal(first, again)
    return {"image": first, "label": data["label"][np.int64(idx)]}


def test_columns_index_like_sequences_and_refuse_other_keys(packed, photo_dir):
    with Tank(
        packed["PNG", "hdf5"], SPEC, 4, shuffle=False, fetch_fn=_fetch_twice, nworker=0, verbose=False
    ) as tank:
        image, label = tank.data["image"], tank.data["label"]
        np.testing.assert_array_equal(image[3], reference(photo_dir, 3))
        np.testing.assert_array_equal(image[np.int64(3)], image[3])
        np.testing.assert_array_equal(image[-1], image[19])
        assert [int(x) for x in label[2:5]] == [2, 3, 4]
        assert [int(x) for x in label[[4, 0]]] == [4, 0]
        assert [int(x) for x in label[np.array([1, 6])]] == [1, 1]
        for bad in (True, np.bool_(False), 1.0, "3", None):
            with pytest.raises(TypeError, match="'image' rows are indexed by int"):
                image[bad]
        with pytest.raises(IndexError, match="out of range for column 'label'"):
            label[20]
        batch = tank.next()
    assert batch["label"].tolist() == [0, 1, 2, 3]
    for k in range(4):
        np.testing.assert_array_equal(batch["image"][k], reference(photo_dir, k))


def test_sharded_files_open_as_one_dataset(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(tmp_path / "s.hdf5"), 8, 8, shards=3, nworker=1, verbose=False)
    with Tank(str(tmp_path / "s.hdf5"), SPEC, 5, shuffle=False, nworker=0, verbose=False) as tank:
        labels = np.concatenate([tank.next()["label"] for _ in range(tank.MPE)])
    assert len(tank) == 20 and labels.tolist() == [i % 5 for i in range(20)]


def test_sequences_decode_to_frame_lists_without_padding(seq_dir, tmp_path):
    fg = FuelGenerator(str(seq_dir), "clips.csv", ["int64"], is_seq=True)
    for suffix in ("hdf5", "npz"):
        fg.generate(str(tmp_path / f"s.{suffix}"), 12, 16, encode="PNG", nworker=1, verbose=False)
        with Tank(
            str(tmp_path / f"s.{suffix}"),
            {"video": "vuint8", "label": "int64", "_MAX_FRAMES": "int64"},
            3,
            shuffle=False,
            nworker=0,
            verbose=False,
        ) as tank:
            batch = tank.next()
            assert tank.data["_MAX_FRAMES"] == 7
        assert [len(v) for v in batch["video"]] == [2, 3, 4]
        assert batch["video"][2][3].shape == (12, 16, 3)


def test_original_layout_without_attributes_still_loads(tmp_path):
    path = tmp_path / "orig.hdf5"
    with h5py.File(path, "w") as f:
        img = f.create_dataset("image", (3,), dtype=h5py.vlen_dtype(np.uint8))
        for i in range(3):
            img[i] = np.arange(5 + i, dtype=np.uint8)
        f.create_dataset("label", data=np.arange(3))
        f.create_dataset("name", data=np.array([b"a", b"b", b"c"], dtype=object), dtype=h5py.string_dtype())
    with Tank(
        str(path),
        {"image": "vuint8", "label": "int64", "name": "str"},
        3,
        shuffle=False,
        nworker=0,
        verbose=False,
    ) as tank:
        batch = tank.next()
    assert [len(x) for x in batch["image"]] == [5, 6, 7] and batch["name"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data_specf": {"image": "vuint8", "nope": "int8"}}, KeyError, "'nope'.*available"),
        ({"data_specf": {}}, ValueError, "'data_specf' is empty"),
        ({"data_specf": {"label": "int65"}}, ValueError, "data_specf\\['label'\\]"),
        ({"batch_size": 0}, ValueError, "'batch_size'"),
        ({"batch_size": 21}, ValueError, "fewer than batch_size"),
        ({"seed": -1}, ValueError, "'seed'"),
        ({"worker_type": "fiber"}, ValueError, "'worker_type'"),
    ],
)
def test_invalid_arguments_name_what_is_wrong(packed, kwargs, error, message):
    args = {"data_specf": SPEC, "batch_size": 4, **kwargs}
    with pytest.raises(error, match=message):
        Tank(packed["PNG", "hdf5"], args.pop("data_specf"), args.pop("batch_size"), verbose=False, **args)


def test_missing_truncated_and_foreign_files_are_clear_errors(packed, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Tank(str(tmp_path / "none.hdf5"), SPEC, 2)
    with pytest.raises(ValueError, match=r"must be an .hdf5"):
        Tank(str(tmp_path / "x.csv"), SPEC, 2)
    data = Path(packed["PNG", "hdf5"]).read_bytes()
    (tmp_path / "cut.hdf5").write_bytes(data[:200])
    with pytest.raises(ValueError, match=r"cut.hdf5 is not a readable HDF5"):
        Tank(str(tmp_path / "cut.hdf5"), SPEC, 2)
    (tmp_path / "foreign.npz").write_bytes(b"PK\x03\x04 this is no archive")
    with pytest.raises(ValueError, match=r"foreign.npz is not a readable NPZ"):
        Tank(str(tmp_path / "foreign.npz"), SPEC, 2)
    np.savez(tmp_path / "pickled.npz", image=np.array([np.zeros(2), np.zeros(3)], dtype=object))
    with pytest.raises(ValueError, match="cannot be read"):
        Tank(str(tmp_path / "pickled.npz"), {"image": "vuint8"}, 1, nworker=0, verbose=False).next()


def test_epochs_cover_every_sample_and_change_order(packed):
    with Tank(packed["PNG", "hdf5"], SPEC, 5, fetch_fn=fetcher, seed=7, nworker=0, verbose=False) as tank:
        epochs = []
        for _ in range(2):
            epochs.append(np.concatenate([tank.next()["idx"] for _ in range(tank.MPE)]))
        assert tank.epoch == 2 and tank.mile == 0
    assert sorted(epochs[0]) == list(range(20)) and sorted(epochs[1]) == list(range(20))
    assert epochs[0].tolist() != epochs[1].tolist()


def test_shuffle_false_keeps_csv_order_and_in_same_size_false_keeps_remainder(packed):
    with Tank(
        packed["PNG", "hdf5"],
        SPEC,
        6,
        shuffle=False,
        in_same_size=False,
        fetch_fn=fetcher,
        nworker=0,
        verbose=False,
    ) as tank:
        sizes = [len(b["idx"]) for b in tank]
        assert tank.MPE == 4 and sizes == [6, 6, 6, 2]


def _run_epochs(path, nworker, worker_type, prep_fn=None):
    with Tank(
        path,
        SPEC,
        4,
        fetch_fn=fetcher if worker_type != "process" else None,
        prep_fn=prep_fn,
        seed=11,
        nworker=nworker,
        worker_type=worker_type,
        verbose=False,
    ) as tank:
        return [tank.next() for _ in range(2 * tank.MPE)]


def test_order_and_augmentation_do_not_depend_on_worker_count(packed, tmp_path, monkeypatch):
    helper = tmp_path / "fuel_aug_helper.py"
    helper.write_text(
        textwrap.dedent(
            """
        import numpy as np
        from nebulae.fuel import Comburant, Crop, Brighten, Random, Flip, VERTICAL
        CBR = Comburant(Crop((8, 8)), Random(0.5, Flip(VERTICAL)), Brighten(0.3), end=False)
        def aug(item):
            item["image"] = CBR(item["image"])
            item["noise"] = np.random.rand()
            return item
        """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    aug = importlib.import_module("fuel_aug_helper").aug
    path = packed["JPEG", "hdf5"]
    runs = [
        _run_epochs(path, n, t, aug) for n, t in [(0, None), (1, "thread"), (3, "thread"), (2, "process")]
    ]
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a["label"], b["label"])
            np.testing.assert_array_equal(a["image"], b["image"])
    # process workers and the inline mode reseed the global numpy generator per batch
    for a, b in zip(runs[0], runs[3], strict=True):
        np.testing.assert_array_equal(a["noise"], b["noise"])


def test_seed_makes_runs_reproducible_and_seeds_differ(packed):
    a = _run_epochs(packed["PNG", "hdf5"], 0, None)
    b = _run_epochs(packed["PNG", "hdf5"], 2, "thread")
    assert all((x["idx"] == y["idx"]).all() for x, y in zip(a, b, strict=True))
    with Tank(packed["PNG", "hdf5"], SPEC, 4, fetch_fn=fetcher, seed=12, nworker=0, verbose=False) as t:
        c = [t.next()["idx"] for _ in range(t.MPE)]
    assert np.concatenate(c).tolist() != np.concatenate([x["idx"] for x in a[:5]]).tolist()


def test_set_distributed_reshards_and_recomputes_mpe(packed):
    with (
        Tank(packed["PNG", "hdf5"], SPEC, 3, fetch_fn=fetcher, seed=5, nworker=0, verbose=False) as t0,
        Tank(packed["PNG", "hdf5"], SPEC, 3, fetch_fn=fetcher, seed=99, nworker=0, verbose=False) as t1,
    ):
        t0.set_distributed(0, 2)
        t1.set_distributed(1, 2, seed=5)
        assert t0.MPE == t1.MPE == 3 and t1.seed == 5
        a = np.concatenate([t0.next()["idx"] for _ in range(3)])
        b = np.concatenate([t1.next()["idx"] for _ in range(3)])
    assert not set(a) & set(b) and len(set(a) | set(b)) == 18


def test_seek_resumes_at_the_same_batch(packed):
    with Tank(packed["PNG", "hdf5"], SPEC, 4, fetch_fn=fetcher, seed=2, nworker=2, verbose=False) as t:
        batches = [t.next()["idx"] for _ in range(8)]
        t.seek(1, 2)
        np.testing.assert_array_equal(t.next()["idx"], batches[7])


def test_closed_tank_refuses_next(packed):
    tank = Tank(packed["PNG", "hdf5"], SPEC, 4, nworker=0, verbose=False)
    tank.next()
    tank.close()
    with pytest.raises(RuntimeError, match="closed"):
        tank.next()


def test_worker_exception_is_reraised_and_workers_cleaned(packed):
    def broken(item):
        raise ZeroDivisionError("bad prep")

    tank = Tank(
        packed["PNG", "hdf5"], SPEC, 4, prep_fn=broken, nworker=2, worker_type="thread", verbose=False
    )
    with pytest.raises(ZeroDivisionError, match="bad prep"):
        tank.next()
    tank.close()


def test_process_worker_exception_carries_the_traceback(packed, tmp_path, monkeypatch):
    (tmp_path / "fuel_boom_helper.py").write_text("def boom(item):\n    raise KeyError('boom-key')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    boom = importlib.import_module("fuel_boom_helper").boom
    tank = Tank(packed["PNG", "hdf5"], SPEC, 4, prep_fn=boom, nworker=1, worker_type="process", verbose=False)
    with pytest.raises(KeyError, match="boom-key") as info:
        tank.next()
    assert "raised in a Tank worker process" in "".join(getattr(info.value, "__notes__", []))
    pid = tank._executor.workers[0].proc.pid
    tank.close()
    assert not _alive(pid)


def test_dead_process_worker_is_a_runtime_error(packed):
    tank = Tank(packed["PNG", "hdf5"], SPEC, 2, nworker=1, worker_type="process", verbose=False)
    tank.next()
    worker = tank._executor.workers[0]
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.join(10)
    with pytest.raises(RuntimeError, match="died"):
        for _ in range(tank.MPE * 2):
            tank.next()
    tank.close()
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(worker.tag)]


def test_process_batches_survive_close_and_slabs_are_removed(packed):
    tank = Tank(
        packed["RAW", "hdf5"], SPEC, 4, shuffle=False, nworker=2, worker_type="process", verbose=False
    )
    kept = [tank.next() for _ in range(6)]
    pids = [w.proc.pid for w in tank._executor.workers]
    tags = [w.tag for w in tank._executor.workers]
    tank.close()
    assert all(not _alive(p) for p in pids)
    assert not [n for n in os.listdir("/dev/shm") if any(n.startswith(t) for t in tags)]
    assert kept[0]["image"].shape == (4, 16, 16, 3) and int(kept[0]["image"].sum()) > 0  # still readable


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split()[2] != "Z"


_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from nebulae.fuel import Tank
    tank = Tank(sys.argv[1], {"image": "vuint8", "label": "int64"}, 2, nworker=2, worker_type="process",
                verbose=False)
    tank.next()
    print(" ".join(str(w.proc.pid) for w in tank._executor.workers), flush=True)
    print(os.getpid(), flush=True)
    if sys.argv[2] == "loop":
        while True:
            tank.next()
    """
)


@pytest.mark.parametrize("mode", ["loop", "exit"])
def test_ctrl_c_and_interpreter_exit_leave_no_process_or_shared_memory(packed, mode):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, packed["PNG", "hdf5"], mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: list[int] = []
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        parent = int(proc.stdout.readline())
        if mode == "loop":
            proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:  # a hang must not leak the child, its workers or their slabs into the rest of the session
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        leftover = [p for p in workers if _alive(p)]
        for pid in leftover:
            os.kill(pid, signal.SIGKILL)
    assert len(workers) == 2 and not leftover
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"nebfuel_{parent}_")]


def test_as_torch_yields_tensors(packed):
    torch = pytest.importorskip("torch")
    with Tank(packed["RAW", "hdf5"], SPEC, 4, nworker=0, verbose=False) as tank:
        batches = list(tank.as_torch())
    assert len(batches) == 5 and isinstance(batches[0]["image"], torch.Tensor)


def test_mounted_notice_is_printed_unless_silenced(packed, capsys):
    Tank(packed["PNG", "hdf5"], SPEC, 2).close()
    assert "tank mounted: png.hdf5" in capsys.readouterr().out
    Tank(packed["PNG", "hdf5"], SPEC, 2, verbose=False).close()
    assert capsys.readouterr().out == ""


# -- epoch and rank arithmetic, as properties ----------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 200),
    bs=st.integers(1, 16),
    nworld=st.integers(1, 5),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 5),
    shuffle=st.booleans(),
)
def test_property_ranks_cover_every_sample_with_duplicates_only_in_last_batch(
    n, bs, nworld, seed, epoch, shuffle
):
    mpe = miles_per_epoch(n, bs, nworld, in_same_size=False)
    order = epoch_order(n, seed, epoch, shuffle)
    per_rank = [[rank_batch(order, b, bs, nworld, r, False) for b in range(mpe)] for r in range(nworld)]
    assert all(len(batches) == mpe for batches in per_rank)
    for b in range(mpe - 1):
        assert all(len(per_rank[r][b]) == bs for r in range(nworld))
    last = [len(per_rank[r][-1]) for r in range(nworld)]
    assert len(set(last)) == 1 and 1 <= last[0] <= bs
    early = np.concatenate(
        [per_rank[r][b] for r in range(nworld) for b in range(mpe - 1)] or [np.zeros(0, int)]
    )
    everything = np.concatenate([early, *[per_rank[r][-1] for r in range(nworld)]])
    assert set(everything.tolist()) == set(range(n))
    assert len(set(early.tolist())) == len(early)
    assert len(everything) - n < nworld


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 200), bs=st.integers(1, 16), nworld=st.integers(1, 5), seed=st.integers(0, 2**31))
def test_property_in_same_size_gives_full_disjoint_batches(n, bs, nworld, seed):
    mpe = miles_per_epoch(n, bs, nworld, in_same_size=True)
    order = epoch_order(n, seed, 0, True)
    got = [rank_batch(order, b, bs, nworld, r, True) for r in range(nworld) for b in range(mpe)]
    assert mpe == n // (bs * nworld)
    assert all(len(x) == bs for x in got)
    flat = np.concatenate(got) if got else np.zeros(0, int)
    assert len(set(flat.tolist())) == len(flat) == mpe * bs * nworld


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 300), seed=st.integers(0, 2**31), epoch=st.integers(0, 100))
def test_property_epoch_order_is_a_function_of_seed_and_epoch(n, seed, epoch):
    a = epoch_order(n, seed, epoch, True)
    np.testing.assert_array_equal(a, epoch_order(n, seed, epoch, True))
    assert sorted(a.tolist()) == list(range(n))


@pytest.mark.parametrize("enc", ["PNG", "RAW"])
def test_grayscale_batches_are_hw1(photo_dir, tmp_path, enc):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(tmp_path / "g.hdf5"), 10, 12, channel=1, encode=enc, nworker=1, verbose=False)
    with Tank(str(tmp_path / "g.hdf5"), SPEC, 4, shuffle=False, nworker=0, verbose=False) as tank:
        batch = tank.next()
    ref = np.asarray(
        Image.open(photo_dir / "img_0.png").convert("L").resize((12, 10), Image.Resampling.LANCZOS)
    )
    assert batch["image"].shape == (4, 10, 12, 1)
    np.testing.assert_array_equal(batch["image"][0, :, :, 0], ref)


@pytest.mark.parametrize("suffix", ["hdf5", "npz"])
def test_raw_sequences_return_their_own_frame_count(seq_dir, tmp_path, suffix):
    fg = FuelGenerator(str(seq_dir), "clips.csv", ["int64"], is_seq=True)
    fg.generate(str(tmp_path / f"r.{suffix}"), 6, 8, encode="RAW", nworker=1, verbose=False)
    with Tank(
        str(tmp_path / f"r.{suffix}"),
        {"video": "vuint8", "label": "int64"},
        6,
        shuffle=False,
        nworker=0,
        verbose=False,
    ) as tank:
        batch = tank.next()
    assert [len(v) for v in batch["video"]] == [2, 3, 4, 5, 6, 7]
    assert batch["video"][5][6].shape == (6, 8, 3) and batch["video"][5][6].any()


_UNGUARDED = textwrap.dedent(
    """
    # a brochure-style script: no `if __name__ == "__main__":` guard
    import sys
    from nebulae.fuel import FuelGenerator, Tank
    print("script body ran", flush=True)
    fg = FuelGenerator(sys.argv[1], "labels.csv", ["int64"])
    fg.generate(sys.argv[2], 8, 8, nworker=2, verbose=False, overwrite=True)
    tank = Tank(sys.argv[2], {"image": "vuint8", "label": "int64"}, 4, verbose=False)
    assert tank.worker_type == "process"
    print(tank.next()["image"].shape, flush=True)
    tank.close()
    """
)


def test_unguarded_script_runs_once_with_process_workers(photo_dir, tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(_UNGUARDED)
    out = subprocess.run(
        [sys.executable, str(script), str(photo_dir), str(tmp_path / "u.hdf5")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("script body ran") == 1
    assert "(4, 8, 8, 3)" in out.stdout


def test_callables_from_main_default_to_threads(packed):
    def main_prep(item):
        return item

    main_prep.__module__ = "__main__"
    with Tank(packed["PNG", "hdf5"], SPEC, 4, prep_fn=main_prep, verbose=False) as tank:
        assert tank.worker_type == "thread"
    with Tank(packed["PNG", "hdf5"], SPEC, 4, prep_fn=Comburant(Crop((4, 4))), verbose=False) as tank:
        assert tank.worker_type == "process"
    with Tank(packed["RAW", "hdf5"], {"image": "uint8"}, 4, verbose=False) as tank:
        assert tank.worker_type == "thread"


def test_partials_of_main_functions_count_as_main():
    import functools

    from nebulae.fuel._procs import uses_main

    def helper(item, k):
        return item

    helper.__module__ = "__main__"
    helper.__qualname__ = "helper"
    import __main__

    __main__.helper = helper  # so that pickle finds it
    try:
        assert uses_main(functools.partial(helper, k=1))
        assert not uses_main(None, Comburant(Crop((2, 2))))
    finally:
        del __main__.helper


@pytest.mark.parametrize("nworker", [0, 2])
def test_tank_opens_its_files_once_in_the_reading_process(packed, monkeypatch, nworker):
    from nebulae.fuel import _source

    opened = []
    real = _source.Shard

    def counting(path, kind):
        opened.append(path)
        return real(path, kind)

    monkeypatch.setattr(_source, "Shard", counting)
    with Tank(
        packed["PNG", "hdf5"], SPEC, 4, fetch_fn=fetcher, nworker=nworker, worker_type="thread", verbose=False
    ) as tank:
        for _ in range(tank.MPE + 1):
            tank.next()
        assert tank.data["label"][0] is not None
    assert opened == [packed["PNG", "hdf5"]]


def _noise(item):
    return {**item, "noise": np.random.random()}


def test_a_seed_given_to_set_distributed_seeds_order_and_augmentation(packed):
    path = packed["PNG", "hdf5"]
    with Tank(path, SPEC, 3, fetch_fn=fetcher, prep_fn=_noise, seed=5, nworker=0, verbose=False) as want:
        expected = [want.next() for _ in range(want.MPE)]
    with Tank(path, SPEC, 3, fetch_fn=fetcher, prep_fn=_noise, seed=99, nworker=0, verbose=False) as tank:
        tank.next()
        tank.set_distributed(0, 1, seed=5)
        got = [tank.next() for _ in range(tank.MPE)]
        assert tank.seed == 5 and "seed=5" in repr(tank)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a["idx"], b["idx"])
        np.testing.assert_array_equal(a["noise"], b["noise"])
