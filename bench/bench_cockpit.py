"""Benchmark of nebulae-cockpit's TimeMachine against plain torch.save/torch.load, ratios in one run.

Targets: drop() and to() of a ~100 MB model within 1.1 x of the baseline (torch.save to a temp file +
fsync + os.replace; torch.load(weights_only=True)); the no-fsync figures are printed too.
drop(blocking=False) blocks the training loop <= 0.1 x a blocking drop of the same model (with the time
until the write is on disk). Resuming mid-epoch (TimeMachine.to with the Tank's state + first batch)
<= 1.2 x starting a fresh epoch (Tank + first batch), on bench_resume's packed JPEG family.
Run with: flock /tmp/nebulae-bench.lock hatch run bench:cockpit [--mb 100] [--repeat 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

import torch

import nebulae.cockpit._timemachine as impl
from nebulae.cockpit import TimeMachine


def _model(megabytes: int) -> torch.nn.Module:
    width = 2048
    layers = max(1, round(megabytes * 2**20 / (4 * (width * width + width))))
    net = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)])
    net.scope = "bench"
    return net


def _paired(base, ours, repeat: int) -> tuple[float, float]:
    """Median seconds of two callables, alternating which runs first so drift hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for k in range(repeat):
        order = (0, 1) if k % 2 == 0 else (1, 0)
        for which in order:
            start = time.perf_counter()
            (base, ours)[which]()
            times[which].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def _baseline_save(state: dict, path: str, fsync: bool) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        if fsync:
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def _background(net: torch.nn.Module, tm: TimeMachine, repeat: int) -> list[tuple[str, float]]:
    """Median seconds a blocking drop, and a non-blocking one, keep the caller; and the flush after it."""
    blocking, returned, flushed = [], [], []
    for _ in range(repeat):
        start = time.perf_counter()
        tm.drop(net, "run.pth")
        blocking.append(time.perf_counter() - start)
        start = time.perf_counter()
        tm.drop(net, "run.pth", blocking=False)
        returned.append(time.perf_counter() - start)
        tm.wait()
        flushed.append(time.perf_counter() - start)
    return [
        ("drop, blocking", statistics.median(blocking)),
        ("drop(blocking=False)", statistics.median(returned)),
        ("... until on disk", statistics.median(flushed)),
    ]


def _resume(root: str, repeat: int, quick: bool) -> tuple[float, float]:
    """Median seconds of a fresh epoch's first batch and of a mid-epoch resume's (checkpoint load included)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_resume  # process workers import its prep from a module

    from nebulae.fuel import Tank

    family = bench_resume.make_family(root, 400 if quick else 2000)

    def make() -> Tank:
        spec = {"image": "vuint8", "label": "int64", "key": "int64"}
        return Tank(
            family,
            spec,
            32,
            prep_fn=bench_resume.prep,
            seed=1,
            nworker=2,
            worker_type="process",
            verbose=False,
        )

    net = torch.nn.Linear(64, 10)
    net.scope = "resume"
    tm = TimeMachine(ckpt_path=root, save_path=root, verbose=False)
    with make() as tank:
        tank.seek(3, tank.MPE // 2)
        tm.drop(net, "resume.pth", state={"train": tank})

    def fresh() -> None:
        with make() as tank:
            tank.next()

    def resumed() -> None:
        with make() as tank:
            tm.to(net, "resume.pth", state={"train": tank})
            tank.next()

    resumed()  # warm the page cache and the workers' imports
    return _paired(fresh, resumed, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100, help="model size in MB (float32)")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a smaller data set for the resume figures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")

    net = _model(args.mb)
    size = sum(p.numel() * p.element_size() for p in net.parameters()) / 2**20
    target = _model(args.mb)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        base_path = os.path.join(tmp, "base.pth")
        tm = TimeMachine(ckpt_path=tmp, save_path=tmp, max_anchors=1, verbose=False)
        rows = []
        for fsync in (True, False):
            original = impl.atomic_save

            def drop_no_fsync(obj, path, fsync=True, _save=original):
                _save(obj, path, fsync=False)

            if not fsync:
                impl.atomic_save = drop_no_fsync
            try:
                base, ours = _paired(
                    lambda f=fsync: _baseline_save(net.state_dict(), base_path, f),
                    lambda: tm.drop(net, "run.pth"),
                    args.repeat,
                )
            finally:
                impl.atomic_save = original
            rows.append((f"save (drop){'' if fsync else ', no fsync'}", base, ours))
        base, ours = _paired(
            lambda: torch.load(base_path, map_location="cpu", weights_only=True),
            lambda: tm.to(target, "run.pth"),
            args.repeat,
        )
        rows.append(("load (to)", base, ours))
        background = _background(net, tm, max(3, args.repeat // 3))
        fresh, resumed = _resume(tmp, max(3, args.repeat // 3), args.quick)

    print(f"TimeMachine on a {size:.0f} MB model, median of {args.repeat} (1 torch thread)")
    print(f"{'operation':<20} {'baseline s':>11} {'TimeMachine s':>14} {'ratio':>9}  (target <= 1.10 x)")
    for name, base, ours in rows:
        print(f"{name:<20} {base:>11.4f} {ours:>14.4f} {ours / base:>7.3f} x")

    print()
    for name, seconds in background:
        print(f"{name:<22} {seconds:>8.4f} s")
    ratio = background[1][1] / background[0][1]
    print(f"drop(blocking=False) keeps the loop {ratio:.3f} x as long as a blocking drop  (target <= 0.10 x)")
    print(
        f"first batch: fresh epoch {fresh:.4f} s, mid-epoch resume (to + Tank state) {resumed:.4f} s, "
        f"ratio {resumed / fresh:.3f} x  (target <= 1.20 x)"
    )


if __name__ == "__main__":
    main()
