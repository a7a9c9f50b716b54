"""Benchmark of nebulae-cockpit's TimeMachine against plain torch.save/torch.load, ratios in one run.

Target: drop() and to() of a ~100 MB model within 1.1 x of the baseline (torch.save to a temp file +
fsync + os.replace; torch.load(weights_only=True)). The no-fsync figures are printed too.
Run with: flock /tmp/nebulae-bench.lock hatch run bench:cockpit [--mb 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100, help="model size in MB (float32)")
    parser.add_argument("--repeat", type=int, default=15)
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

    print(f"TimeMachine on a {size:.0f} MB model, median of {args.repeat} (1 torch thread)")
    print(f"{'operation':<20} {'baseline s':>11} {'TimeMachine s':>14} {'ratio':>9}  (target <= 1.10 x)")
    for name, base, ours in rows:
        print(f"{name:<20} {base:>11.4f} {ours:>14.4f} {ours / base:>7.3f} x")


if __name__ == "__main__":
    main()
