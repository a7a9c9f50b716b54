"""Tank under faults: dead workers, damaged HDF5 files and columns it cannot cast, each error naming its cause."""

from __future__ import annotations

import importlib
import os
import re
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest

from nebulae.fuel import FuelGenerator, Tank

SPEC = {"image": "vuint8", "label": "int64"}


@pytest.fixture
def png_file(photo_dir, tmp_path):
    path = tmp_path / "photos.hdf5"
    FuelGenerator(str(photo_dir), "labels.csv", ["int64"]).generate(
        str(path), 16, 16, encode="PNG", nworker=1, verbose=False
    )
    return path


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _slabs(tags):
    return [n for n in os.listdir("/dev/shm") if any(n.startswith(t) for t in tags)]


def _workers(tank):
    return [w.proc.pid for w in tank._executor.workers], [w.tag for w in tank._executor.workers]


def test_worker_killed_by_sigkill_is_named_and_leaves_nothing(png_file):
    tank = Tank(str(png_file), SPEC, 2, nworker=2, worker_type="process", verbose=False)
    tank.next()
    pids, tags = _workers(tank)
    os.kill(pids[1], signal.SIGKILL)
    with pytest.raises(RuntimeError, match=rf"Tank worker process {pids[1]} died \(killed by SIGKILL\)"):
        for _ in range(2 * tank.MPE):
            tank.next()
    tank.close()
    assert not [p for p in pids if _alive(p)] and not _slabs(tags)


def test_worker_that_exits_is_reported_with_its_exit_code(png_file, tmp_path, monkeypatch):
    (tmp_path / "fuel_exit_helper.py").write_text("import os\n\ndef leave(item):\n    os._exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    leave = importlib.import_module("fuel_exit_helper").leave
    tank = Tank(str(png_file), SPEC, 2, prep_fn=leave, nworker=1, worker_type="process", verbose=False)
    with pytest.raises(RuntimeError, match=r"died \(exit code 3\)") as info:
        tank.next()
    assert "None" not in str(info.value)
    pids, tags = _workers(tank)
    tank.close()
    assert not [p for p in pids if _alive(p)] and not _slabs(tags)


# -- damaged files: real HDF5 files written by h5py (through FuelGenerator), then overwritten on disk ----------


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _read_all(path, nworker=0, worker_type=None, **kwargs):
    with Tank(
        str(path), SPEC, 4, shuffle=False, nworker=nworker, worker_type=worker_type, verbose=False, **kwargs
    ) as t:
        for _ in range(t.MPE):
            t.next()


def _fetch(data, idx):
    return {"image": data["image"][idx], "label": data["label"][idx]}


@pytest.mark.parametrize(
    ("nworker", "worker_type", "fetch_fn"),
    [(0, None, None), (2, "process", None), (1, "thread", _fetch)],
)
def test_overwritten_image_bytes_name_file_column_and_row(png_file, nworker, worker_type, fetch_fn):
    with h5py.File(png_file) as f:
        encoded = f["image"][13].tobytes()
    at = png_file.read_bytes().find(encoded)
    assert at > 0
    _overwrite(png_file, at, b"NOTAPNG!")
    with pytest.raises(
        ValueError, match=r"photos\.hdf5: column 'image', row 13: the stored image does not decode"
    ):
        _read_all(png_file, nworker, worker_type, fetch_fn=fetch_fn)


def test_overwritten_sequence_frame_names_its_row(seq_dir, tmp_path):
    path = tmp_path / "clips.hdf5"
    FuelGenerator(str(seq_dir), "clips.csv", ["int64"], is_seq=True).generate(
        str(path), 12, 16, encode="PNG", nworker=1, verbose=False
    )
    with h5py.File(path) as f:
        encoded = f["video"][4, 2].tobytes()
    _overwrite(path, path.read_bytes().find(encoded), b"NOTAPNG!")
    with (
        pytest.raises(ValueError, match=r"clips\.hdf5: column 'video', row 4: the stored image"),
        Tank(
            str(path), {"video": "vuint8", "label": "int64"}, 3, shuffle=False, nworker=0, verbose=False
        ) as t,
    ):
        t.next()
        t.next()


def test_overwritten_row_reference_is_an_os_error_naming_the_row(png_file):
    with h5py.File(png_file) as f:
        ds = f["image"]
        assert ds.chunks is None  # contiguous: one 16-byte heap reference per row
        offset = ds.id.get_offset()
    _overwrite(png_file, offset + 16 * 6, b"\xff" * 16)
    with pytest.raises(
        OSError, match=r"photos\.hdf5: column 'image', row 6: the stored data cannot be read"
    ) as info:
        _read_all(png_file)
    assert "re-pack" in str(info.value)


def test_shard_rows_are_named_within_their_file(photo_dir, tmp_path):
    FuelGenerator(str(photo_dir), "labels.csv", ["int64"]).generate(
        str(tmp_path / "fam.hdf5"), 16, 16, encode="PNG", shards=2, nworker=1, verbose=False
    )
    second = tmp_path / "fam_1.hdf5"
    with h5py.File(second) as f:
        encoded = f["image"][2].tobytes()
    _overwrite(second, second.read_bytes().find(encoded), b"NOTAPNG!")
    with pytest.raises(ValueError, match=r"fam_1\.hdf5: column 'image', row 2:"):
        _read_all(tmp_path / "fam.hdf5", fetch_fn=_fetch)


def test_damaged_heap_and_truncated_file_name_the_file(png_file, tmp_path):
    data = png_file.read_bytes()
    heap = tmp_path / "heap.hdf5"
    heap.write_bytes(data)
    _overwrite(heap, data.find(b"GCOL"), b"XXXX")  # the signature of the heap holding images and attributes
    with pytest.raises(OSError, match=r"heap\.hdf5: the attributes of column 'image' cannot be read"):
        _read_all(heap)
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ValueError, match=r"cut\.hdf5 is not a readable HDF5 file"):
        _read_all(cut)


def test_columns_tank_cannot_cast_are_refused_naming_file_and_column(tmp_path):
    path = tmp_path / "odd.hdf5"
    with h5py.File(path, "w") as f:
        f["wave"] = np.arange(4) + 1j
        f["pair"] = np.zeros(4, dtype=[("a", "i4"), ("b", "f4")])
        f["word"] = np.array([b"1", b"2", b"x", b"4"], dtype=object).astype(h5py.string_dtype())
        f["blob"] = np.array([b"ok", b"ok", b"ok", b"\xff\xfe"], dtype=object).astype(h5py.string_dtype())
    for key, dtype in (("wave", "float32"), ("pair", "int64")):
        with pytest.raises(
            ValueError, match=rf"odd\.hdf5: column '{key}' stores .* data_specf\['{key}'\] = '{dtype}'"
        ):
            Tank(str(path), {key: dtype}, 2, nworker=0, verbose=False)
    # with a fetch_fn the file's values are the user's to convert
    Tank(
        str(path), {"wave": "float32"}, 2, fetch_fn=lambda d, i: d["wave"][i], nworker=0, verbose=False
    ).close()
    with Tank(str(path), {"word": "int64"}, 2, shuffle=False, nworker=0, verbose=False) as tank:
        assert tank.next()["word"].tolist() == [1, 2]
        with pytest.raises(
            ValueError, match=re.escape("odd.hdf5: column 'word', row 2: value 'x' cannot be cast")
        ):
            tank.next()
    with (
        Tank(str(path), {"blob": "str"}, 4, nworker=0, verbose=False) as tank,
        pytest.raises(ValueError, match=r"odd\.hdf5: column 'blob', row 3: a stored string is not UTF-8"),
    ):
        tank.next()


def test_data_specf_with_a_non_str_dtype_is_a_type_error(png_file):
    with pytest.raises(TypeError, match=r"data_specf\['label'\]"):
        Tank(str(png_file), {"label": 5}, 2, nworker=0, verbose=False)


_KILLED_PARENT = """
import os, sys
from nebulae.fuel import Tank
tank = Tank(sys.argv[1], {"image": "vuint8", "label": "int64"}, 2, nworker=2, worker_type="process", verbose=False)
tank.next()
print(" ".join(str(w.proc.pid) for w in tank._executor.workers), flush=True)
sys.stdin.readline()
"""


def test_sigkilled_program_leaves_no_worker_or_shared_memory(png_file, lingering):
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_PARENT, str(png_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    workers = [int(p) for p in proc.stdout.readline().split()]
    proc.kill()  # no handler runs: the workers and the fork server must notice their closed pipes themselves
    proc.wait(60)
    proc.stdin.close()
    proc.stdout.close()
    leftover = lingering(proc.pid)
    assert len(workers) == 2 and not leftover
    assert not _slabs([f"nebfuel_{proc.pid}_"])
