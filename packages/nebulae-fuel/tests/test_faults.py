"""Faults and hostile inputs for fuel's writers.

Kills are injected at exact points: a child process wraps `os.replace` / `os.unlink` and SIGKILLs itself at a given
call, then the test checks what a user finds (old data, new data, or an error naming the files; never a silent mix)
and what the next run does.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from nebulae.fuel import FuelGenerator, Tank
from nebulae.fuel._image import EncodeSpec
from nebulae.fuel._pack import RowError, encode_rows

SPEC = {"label": "int64"}

# the child packs `rows` rows labelled first..first+rows-1 into dst with `shards` shards, and SIGKILLs itself when
# it is about to make the n-th call of os.<func> on the file named `match`; it first writes the pids of
# the processes it started (the fork server, any worker), so that the test can check that none outlives it
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from nebulae.fuel import FuelGenerator

    def descendants():
        parent = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat") as fh:
                        parent[int(name)] = int(fh.read().rsplit(")", 1)[1].split()[1])
                except OSError:
                    pass
        found, todo = [], [os.getpid()]
        while todo:
            me = todo.pop()
            kids = [p for p, pp in parent.items() if pp == me]
            found += kids
            todo += kids
        return found

    func, match, nth, file_dir, dst, shards, pids, sig = sys.argv[1:9]
    real = getattr(os, func)
    calls = []

    def killing(*args, **kwargs):
        path = os.fspath(args[1] if func == "replace" else args[0])
        if os.path.basename(path) == match:
            calls.append(path)
            if len(calls) == int(nth):
                with open(pids, "w") as fh:
                    fh.write(" ".join(map(str, descendants())))
                os.kill(os.getpid(), getattr(signal, sig))
        return real(*args, **kwargs)

    setattr(os, func, killing)
    fg = FuelGenerator(file_dir, "labels.csv", ["int64"])
    fg.generate(dst, 8, 8, encode="PNG", shards=int(shards), overwrite=True, nworker=2, verbose=False)
    """
)


@pytest.fixture
def sets(tmp_path, photo, csvfile):
    """OLD: 30 rows labelled 0..29; NEW: 20 rows labelled 1000..1019."""

    def make_rows(name: str, rows: int, first: int) -> Path:
        d = tmp_path / name
        d.mkdir()
        for i in range(rows):
            photo(d / f"img_{i}.png", 12, 12, seed=i)
        csvfile(d / "labels.csv", ["image", "label"], [[f"img_{i}.png", str(first + i)] for i in range(rows)])
        return d

    return make_rows("old", 30, 0), make_rows("new", 20, 1000)


def labels(path) -> list[int]:
    with Tank(str(path), SPEC, 5, shuffle=False, nworker=0, verbose=False) as tank:
        return np.concatenate([tank.next()["label"] for _ in range(tank.MPE)]).tolist()


def pack(file_dir, dst, shards) -> None:
    fg = FuelGenerator(str(file_dir), "labels.csv", ["int64"])
    fg.generate(str(dst), 8, 8, encode="PNG", shards=shards, overwrite=True, nworker=1, verbose=False)


linux_only = pytest.mark.skipif(
    not os.path.isdir("/proc"), reason="the kill tests list processes through /proc"
)


def killed_pack(tmp_path, func, match, nth, file_dir, dst, shards, sig="SIGKILL") -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    pids = tmp_path / "pids.txt"
    args = [func, match, str(nth), str(file_dir), str(dst), str(shards), str(pids), sig]
    res = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    # it died where it was told to: generate() turns SIGTERM into exit code 143 and SIGINT into KeyboardInterrupt,
    # which Python ends by SIGINT
    want = {"SIGKILL": -signal.SIGKILL, "SIGTERM": 143, "SIGINT": -signal.SIGINT}[sig]
    assert res.returncode == want, res.stderr
    started = [int(p) for p in pids.read_text().split()]
    assert started  # the fork server at least: the check below is not vacuous
    for pid in started:  # they notice that their parent is gone and exit
        _wait_gone(pid)


def _wait_gone(pid: int) -> None:
    import time

    for _ in range(600):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} outlived the killed pack")


def temps_in(directory) -> list[str]:
    return [n for n in os.listdir(directory) if ".tmp-" in n]


def check_next_run(tmp_path, new, dst) -> None:
    """The next run replaces whatever the crash left, and leaves no temp files."""
    pack(new, dst, 2)
    assert labels(dst) == list(range(1000, 1020))
    assert sorted(os.listdir(tmp_path / "out")) == ["t.hdf5.manifest.json", "t_0.hdf5", "t_1.hdf5"]


@pytest.fixture
def dst(tmp_path):
    (tmp_path / "out").mkdir()
    return tmp_path / "out" / "t.hdf5"


@linux_only
@pytest.mark.parametrize(
    ("func", "match", "legacy", "error"),
    [
        # t_0 renamed, t_1 not yet: the old manifest's run no longer matches t_0
        ("replace", "t_1.hdf5", False, r"t\.hdf5\.manifest\.json.*t_0\.hdf5 \(.*overwrite=True"),
        # both renamed, manifest not yet written: the old manifest matches neither
        ("replace", "t.hdf5.manifest.json", False, r"t_0\.hdf5 \(.*\); t_1\.hdf5 \(.*\).*overwrite=True"),
        # an old family without manifest or run ids (as packed before them): new shards next to an old surplus one
        (
            "replace",
            "t.hdf5.manifest.json",
            True,
            r"different packing runs \(t_0\.hdf5, t_1\.hdf5 vs t_2\.hdf5\)",
        ),
    ],
    ids=["between_shard_renames", "before_the_manifest", "before_the_manifest_of_a_legacy_family"],
)
def test_kill_before_the_commit_is_an_error_naming_the_shards(
    tmp_path, sets, dst, func, match, legacy, error
):
    old, new = sets
    pack(old, dst, 3)
    if legacy:
        os.unlink(f"{dst}.manifest.json")
        for i in range(3):
            with h5py.File(tmp_path / "out" / f"t_{i}.hdf5", "a") as f:
                del f.attrs["nebulae_run"]
        assert labels(dst) == list(range(30))
    killed_pack(tmp_path, func, match, 1, new, dst, 2)
    with pytest.raises(ValueError, match=error):
        labels(dst)
    check_next_run(tmp_path, new, dst)


@linux_only
@pytest.mark.parametrize(
    ("old_shards", "new_shards", "func", "match", "reads"),
    [
        # the new manifest is in place: the surplus old shard t_2 is still there, and ignored
        (3, 2, "unlink", "t_2.hdf5", "new"),
        # a family replacing a single file: the old file wins until it is removed
        (1, 2, "replace", "t.hdf5.manifest.json", "old"),
        (1, 2, "unlink", "t.hdf5", "old"),
        # a single file replacing a family: in place, it wins over the old manifest still there
        (3, 1, "unlink", "t.hdf5.manifest.json", "new"),
    ],
    ids=[
        "family_after_its_manifest",
        "family_over_file_before_manifest",
        "family_over_file_before_removal",
        "file_over_family_before_removal",
    ],
)
def test_kill_around_the_commit_reads_one_whole_data_set(
    tmp_path, sets, dst, old_shards, new_shards, func, match, reads
):
    old, new = sets
    pack(old, dst, old_shards)
    killed_pack(tmp_path, func, match, 1, new, dst, new_shards)
    assert os.path.exists(tmp_path / "out" / match) or func == "replace"  # killed right before that removal
    assert labels(dst) == (list(range(1000, 1020)) if reads == "new" else list(range(30)))
    check_next_run(tmp_path, new, dst)


@linux_only
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_between_shard_renames_waits_for_the_commit(tmp_path, sets, dst, sig):
    old, new = sets
    pack(old, dst, 3)
    killed_pack(tmp_path, "replace", "t_1.hdf5", 1, new, dst, 2, sig)
    assert labels(dst) == list(range(1000, 1020))  # the family was committed before the signal was acted on
    assert sorted(os.listdir(tmp_path / "out")) == ["t.hdf5.manifest.json", "t_0.hdf5", "t_1.hdf5"]


# -- hostile inputs -----------------------------------------------------------------------------------------


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims width x height pixels in a few dozen bytes: Pillow reads the size from the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.parametrize("nworker", [1, 2])
def test_a_decompression_bomb_names_its_row_and_file(photo_dir, tmp_path, nworker):
    png_header_only(photo_dir / "img_13.png", 20000, 20000)
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    with pytest.raises(ValueError, match=r"row 15 of labels\.csv: '.*img_13\.png' .*MAX_IMAGE_PIXELS"):
        fg.generate(str(tmp_path / "b.hdf5"), 8, 8, nworker=nworker, verbose=False)
    assert not (tmp_path / "b.hdf5").exists() and not temps_in(tmp_path)


@pytest.mark.parametrize("nworker", [1, 2])
def test_max_pixels_caps_source_images_without_touching_pillow(photo_dir, tmp_path, nworker):
    before = Image.MAX_IMAGE_PIXELS
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    # img_i is (30 + i) x (40 + 2i): img_0 has 1200 pixels, img_1 1302
    with pytest.raises(
        ValueError, match=r"row 3 of labels\.csv: '.*img_1\.png' is 42x31 = 1302 pixels.*max_pixels"
    ):
        fg.generate(str(tmp_path / "c.hdf5"), 8, 8, nworker=nworker, verbose=False, max_pixels=1250)
    assert before == Image.MAX_IMAGE_PIXELS
    fg.modify(max_pixels=100_000)
    fg.generate(str(tmp_path / "c.hdf5"), 8, 8, nworker=nworker, verbose=False)


def test_max_pixels_is_validated():
    fg_args = ("x", "y")
    with pytest.raises(TypeError, match="'max_pixels' must be an int"):
        FuelGenerator(
            config={"file_dir": ".", "file_list": fg_args[0], "dtype": ["int64"], "max_pixels": 1.5}
        )
    with pytest.raises(TypeError, match="'max_pixels' must be an int"):
        FuelGenerator(
            config={"file_dir": ".", "file_list": fg_args[1], "dtype": ["int64"], "max_pixels": True}
        )
    with pytest.raises(ValueError, match="'max_pixels' must be >= 1"):
        FuelGenerator(config={"file_dir": ".", "file_list": "z", "dtype": ["int64"], "max_pixels": 0})


def test_an_unexpected_codec_error_comes_back_as_the_rows_error_not_a_dead_worker():
    spec = EncodeSpec("PNG", 8, 8, 3, False)
    out = encode_rows([(0, 12345)], spec)  # not a path: Pillow fails in a way that is no image error
    # a failed row comes back in its place as a RowError (reason, message), so that on_error='skip' can go on
    assert isinstance(out[0], RowError) and out[0].reason == "failed" and "12345" in out[0].message
