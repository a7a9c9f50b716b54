"""Fixtures for nebulae-fuel tests: real image folders and CSV file lists made with Pillow."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_photo(path: Path, h: int, w: int, seed: int, mode: str = "RGB", exif: bool = False) -> None:
    """A smooth, photo-like image (gradients plus a few blobs) so that JPEG behaves realistically."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        chans.append(128 + 60 * np.sin(a * xx / 17 + b * yy / 23 + c * 3))
    arr = np.clip(np.stack(chans, axis=2), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr).convert(mode)
    kwargs = {}
    if exif:
        ex = Image.Exif()
        ex[0x010F] = "NebulaeCam"  # Make
        ex[0x0110] = f"model-{seed}"  # Model
        kwargs["exif"] = ex.tobytes()
    fmt = "PNG" if path.suffix == ".png" else "JPEG"
    img.save(path, fmt, **kwargs)


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter, quotechar='"', lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """20 PNG photos of varied sizes with labels 0..4 in labels.csv (comma separated)."""
    d = tmp_path / "raw"
    d.mkdir()
    rows = []
    for i in range(20):
        make_photo(d / f"img_{i}.png", 30 + i, 40 + 2 * i, seed=i)
        rows.append([f"img_{i}.png", str(i % 5)])
    write_csv(d / "labels.csv", ["image", "label"], rows)
    return d


@pytest.fixture
def seq_dir(tmp_path: Path) -> Path:
    """6 clips of unequal length (2..7 frames) in clips.csv."""
    d = tmp_path / "clips"
    d.mkdir()
    rows = []
    for v in range(6):
        os.makedirs(d / f"vid_{v}")
        frames = []
        for f in range(2 + v):
            make_photo(d / f"vid_{v}" / f"f{f}.png", 24, 32, seed=100 * v + f)
            frames.append(f"vid_{v}/f{f}.png")
        rows.append([",".join(frames) + ",", str(v)])  # a trailing comma is skipped
    write_csv(d / "clips.csv", ["video", "label"], rows)
    return d


@pytest.fixture
def photo():
    """The make_photo helper (test modules cannot import conftest under --import-mode=importlib)."""
    return make_photo


@pytest.fixture
def csvfile():
    """The write_csv helper."""
    return write_csv


def _session_processes(sid: int) -> list[int]:
    """Pids of the live (not zombie) processes of session `sid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry))
    return found


def lingering_processes(sid: int, grace: float = 15.0) -> list[int]:
    """Processes of session `sid` still alive after `grace` seconds, each then SIGKILLed so none outlives the test.

    A program's fork server and workers exit on their own a moment after it: wait for them, not a fixed time.
    """
    import signal
    import time

    deadline = time.monotonic() + grace
    while _session_processes(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _session_processes(sid)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


@pytest.fixture
def lingering():
    """The lingering_processes helper: start children with start_new_session=True and pass the child's pid."""
    return lingering_processes
