"""Benchmark of what fuel packs: JPEG passthrough vs re-encoding, and opening a 10-million-row data set.

Called by bench_fuel.py (`--only content`); runs alone too: `python bench/bench_pack_content.py [--quick]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time
from unittest import mock

import h5py
import numpy as np
from PIL import Image

from nebulae.fuel import FuelGenerator

ROWS_10M = 10_000_000


def _photos(directory: str, n: int, size: int = 224) -> None:
    """`n` photo-like JPEGs of size x size (quality 90), listed in list.csv."""
    os.makedirs(directory, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    with open(os.path.join(directory, "list.csv"), "w", encoding="utf-8") as fh:
        fh.write("image,label\n")
        for i in range(n):
            name = f"p{i}.jpg"
            path = os.path.join(directory, name)
            if not os.path.exists(path):
                rng = np.random.default_rng(i)
                a, b, c = rng.uniform(-1, 1, (3, 3))
                arr = np.stack(
                    [128 + 60 * np.sin(a[k] * xx / 17 + b[k] * yy / 23 + c[k]) for k in range(3)], 2
                )
                Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)
            fh.write(f"{name},{i % 10}\n")


def _pack_rate(src: str, dst: str, n: int, passthrough: bool) -> float:
    fg = FuelGenerator(src, "list.csv", ["int64"])
    # the re-encoding path is the same pack with the passthrough test answering "no" (nworker=1: in this process)
    patch = (
        mock.patch("nebulae.fuel._image._as_is", return_value=None) if not passthrough else mock.MagicMock()
    )
    with patch:
        start = time.perf_counter()
        fg.generate(dst, 224, 224, nworker=1, overwrite=True, verbose=False)
        return n / (time.perf_counter() - start)


_OPEN_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from nebulae.fuel import Tank, info
    path, specf = sys.argv[1], {k: v for k, v in (kv.split("=") for kv in sys.argv[2:])}
    start = time.perf_counter()
    tank = Tank(path, specf, 256, nworker=0, verbose=False)
    opened = time.perf_counter() - start
    tank.next()
    first = time.perf_counter() - start
    start = time.perf_counter()
    rows = info(path)["rows"]
    told = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    print(opened, first, told, peak, rows)
    """
)


def _open_10m(directory: str, keys: bool) -> tuple[float, float, float, float]:
    """Open time, open + first shuffled batch, info time (s) and peak RSS (MB) of a fresh process; with `keys`, a
    data set of a uint8 label and a `__key__` string column (what generate() writes), both read."""
    path = os.path.join(directory, "keys_10m.hdf5" if keys else "rows_10m.hdf5")
    if not os.path.exists(path):
        with h5py.File(path + ".part", "w") as f:
            if keys:
                f.create_dataset("label", data=np.zeros(ROWS_10M, np.uint8))
                ds = f.create_dataset("__key__", shape=(ROWS_10M,), dtype=h5py.string_dtype())
                for s in range(0, ROWS_10M, 1_000_000):
                    names = [f"train/n{i:08d}.JPEG" for i in range(s, s + 1_000_000)]
                    ds[s : s + 1_000_000] = np.array(names, dtype=object)
            else:
                f.create_dataset("x", data=np.random.default_rng(0).random(ROWS_10M, dtype=np.float32))
                f.create_dataset("label", data=np.arange(ROWS_10M, dtype=np.int64) % 1000)
        os.replace(path + ".part", path)
    specf = ["label=uint8", "__key__=str"] if keys else ["x=float32", "label=int64"]
    out = subprocess.run(
        [sys.executable, "-c", _OPEN_SCRIPT, path, *specf], check=True, capture_output=True, text=True
    ).stdout.split()
    assert int(out[4]) == ROWS_10M
    return float(out[0]), float(out[1]), float(out[2]), float(out[3])


def bench_pack_content(directory: str, quick: bool = False, results: dict | None = None) -> None:
    """Print passthrough vs re-encoding packing of 224x224 JPEGs and the 10M-row open; fill `results`."""
    n = 200 if quick else 1000
    src = os.path.join(directory, "sized_224")
    _photos(src, n)
    out = os.path.join(directory, "content")
    os.makedirs(out, exist_ok=True)
    _pack_rate(src, os.path.join(out, "warm.hdf5"), n, True)  # page cache and imports
    fast = _pack_rate(src, os.path.join(out, "pass.hdf5"), n, True)
    slow = _pack_rate(src, os.path.join(out, "reenc.hdf5"), n, False)
    print(
        f"\n== packing already-sized JPEGs: {n} photos 224x224, generate(224, 224), 1 process ==", flush=True
    )
    print(f"  passthrough (bytes stored as they are): {fast:8.0f} img/s")
    print(f"  re-encoding (decode + JPEG q95):        {slow:8.0f} img/s")
    print(f"  ratio: {fast / slow:.1f}x (target >= 5x)")
    figures: dict[str, float] = {
        "passthrough_img_s": fast,
        "reencode_img_s": slow,
        "passthrough_ratio": fast / slow,
    }
    for keys, what in (
        (False, "float32 + int64 columns"),
        (True, "uint8 label + __key__ strings, both read"),
    ):
        opened, first, told, peak = _open_10m(directory, keys)
        print(f"\n== a 10,000,000-row data set ({what}), a fresh process ==")
        print(f"  Tank(...) open: {opened:.2f} s; open + first shuffled batch: {first:.2f} s (target < 2 s)")
        print(f"  info(): {told * 1000:.1f} ms; peak RSS of the process: {peak:.0f} MB (target < 300 MB)")
        tag = "open_10m_keys" if keys else "open_10m"
        figures.update({f"{tag}_s": opened, f"{tag}_first_batch_s": first, f"{tag}_info_s": told})
        figures[f"{tag}_peak_rss_mb"] = peak
    if results is not None:
        results["pack_content"] = figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dir", default=os.environ.get("NEBULAE_BENCH_DIR", "/tmp/nebulae-bench-fuel"))
    args = parser.parse_args()
    bench_pack_content(args.dir, args.quick)
