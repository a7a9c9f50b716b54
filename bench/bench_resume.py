"""Benchmark of resuming a Tank mid-epoch: new Tank + load_state_dict + first batch vs new Tank + first batch.

`bench_tank_resume()` prints both times and their ratio (target <= 1.2) for a packed JPEG family read by process
workers with a Comburant prep, and for a 2-million-row numeric column read by threads (where replaying the
batches before the resume point, instead of computing the order, would show). bench_cockpit can call it.
Run alone with `python bench/bench_resume.py [--quick]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import h5py
import numpy as np
from PIL import Image

from nebulae.fuel import Brighten, Comburant, Crop, Flip, FuelGenerator, Random, Tank

CBR = Comburant(Crop((24, 24)), Random(0.5, Flip(21)), Brighten(0.2), end=False)


def prep(item: dict[str, Any]) -> dict[str, Any]:
    item["image"] = CBR(item["image"])
    return item


def make_family(root: str, n: int) -> str:
    """`n` photo-like PNGs packed at 32x32 as a two-shard JPEG HDF5 family (with its manifest)."""
    photos = os.path.join(root, "photos")
    os.makedirs(photos)
    yy, xx = np.mgrid[0:40, 0:48].astype(np.float32)
    rows = []
    for i in range(n):
        a, b, c = np.random.default_rng(i).uniform(-1, 1, 3)
        arr = 128 + 60 * np.sin(np.stack([a * xx / 7 + b * yy / 9 + c * k for k in range(3)], axis=2))
        Image.fromarray(arr.astype(np.uint8)).save(os.path.join(photos, f"p{i}.png"))
        rows.append(f"p{i}.png,{i % 10},{i}\n")
    with open(os.path.join(photos, "list.csv"), "w", encoding="utf-8") as fh:
        fh.write("image,label,key\n" + "".join(rows))
    dst = os.path.join(root, "family.hdf5")
    FuelGenerator(photos, "list.csv", ["int64", "int64"]).generate(dst, 32, 32, shards=2, verbose=False)
    return dst


def make_numeric(root: str, n: int) -> str:
    path = os.path.join(root, "numeric.hdf5")
    with h5py.File(path, "w") as f:
        f["key"] = np.arange(n, dtype=np.int64)
    return path


def _first_batch(make: Any, state: dict[str, Any] | None) -> float:
    start = time.perf_counter()
    tank = make()
    if state is not None:
        tank.load_state_dict(state)
    tank.next()
    took = time.perf_counter() - start
    tank.close()
    return took


def compare(name: str, make: Any, rounds: int) -> dict[str, float]:
    """Median seconds of a fresh start and of a resume in the middle of epoch 3, measured in turns.

    Mid-epoch, as a preempted job resumes: at an epoch's last mile both starts would also order the next epoch.
    """
    with make() as tank:
        mile = tank.MPE // 2
        tank.seek(3, mile)
        state = tank.state_dict()
    _first_batch(make, state)  # warm the page cache and the fork server's imports
    fresh, resumed = [], []
    for _ in range(rounds):
        fresh.append(_first_batch(make, None))
        resumed.append(_first_batch(make, state))
    f, r = statistics.median(fresh), statistics.median(resumed)
    print(
        f"{name}: fresh epoch (Tank + first batch) {f * 1e3:.1f} ms, resume at epoch 3 mile {mile} (Tank + "
        f"load_state_dict + first batch) {r * 1e3:.1f} ms, ratio {r / f:.2f} (target <= 1.2)",
        flush=True,
    )
    return {"fresh_s": f, "resume_s": r, "ratio": r / f}


def bench_tank_resume(quick: bool = False) -> dict[str, dict[str, float]]:
    """Print and return the fresh-start and resume times (seconds, medians) and their ratios."""
    rounds = 5 if quick else 15
    results = {}
    with tempfile.TemporaryDirectory(prefix="nebulae-bench-resume-") as root:
        family = make_family(root, 400 if quick else 2000)
        numeric = make_numeric(root, 200_000 if quick else 2_000_000)
        results["jpeg_process"] = compare(
            "JPEG family, 2 process workers, Comburant prep, batch 32",
            lambda: Tank(
                family,
                {"image": "vuint8", "label": "int64", "key": "int64"},
                32,
                prep_fn=prep,
                seed=1,
                nworker=2,
                worker_type="process",
                verbose=False,
            ),
            rounds,
        )
        results["numeric_thread"] = compare(
            f"{'200k' if quick else '2M'}-row int64 column, 2 thread workers, batch 256",
            lambda: Tank(
                numeric, {"key": "int64"}, 256, seed=1, nworker=2, worker_type="thread", verbose=False
            ),
            rounds,
        )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer rounds")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    # process workers must import `prep` from a module, not from this script run as __main__
    import bench_resume

    bench_resume.bench_tank_resume(parser.parse_args().quick)
