"""Benchmarks of nebulae-aerolog against tqdm, as ratios measured in the same run.

1. gauge(): per-call cost, (loop - empty loop) / N over 100,000 steps, recording on, default throttling,
   against tqdm's update(1) + set_postfix(entry, refresh=False) on the same entries.
2. track(): per-item overhead against iterating with tqdm(iterable).
3. import nebulae.aerolog: what it adds over numpy (-X importtime), and that matplotlib stays out.

Run with `flock /tmp/nebulae-bench.lock hatch run bench:aerolog`.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from time import perf_counter

from tqdm import tqdm

from nebulae.aerolog import DashBoard

N_GAUGE = 100_000
N_TRACK = 1_000_000
MPE = 1_000
REPEAT = 5


class FakeTerminal(io.StringIO):
    """A sink that claims to be a terminal, so the board draws its chart and redraws in place."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


def best(fn) -> float:
    return min(fn() for _ in range(REPEAT))


def entries(i: int) -> dict[str, float]:
    return {"loss": 1.0 / (i + 1), "acc": i / N_GAUGE}


def loop_empty() -> float:
    t = perf_counter()
    for i in range(N_GAUGE):
        entries(i)
    return perf_counter() - t


@contextlib.contextmanager
def board_printing_to(sink, **kwargs) -> Iterator[DashBoard]:
    """A fresh board whose output goes to `sink` (a plain buffer, or a fake terminal)."""
    board = DashBoard(tempfile.mkdtemp(), **kwargs)
    real, sys.stdout = sys.stdout, sink
    try:
        yield board
    finally:
        sys.stdout = real


def loop_gauge(sink) -> float:
    with board_printing_to(sink, window=10) as board:
        t = perf_counter()
        for i in range(N_GAUGE):
            board.gauge(entries(i), i % MPE, i // MPE, MPE, "TRAIN")
        return perf_counter() - t


def loop_tqdm_postfix() -> float:
    with open(os.devnull, "w") as null:
        bar = tqdm(total=N_GAUGE, file=null)
        t = perf_counter()
        for i in range(N_GAUGE):
            bar.update(1)
            bar.set_postfix(entries(i), refresh=False)
        elapsed = perf_counter() - t
        bar.close()
    return elapsed


def iter_bare() -> float:
    t = perf_counter()
    for _ in range(N_TRACK):
        pass
    return perf_counter() - t


def iter_tqdm() -> float:
    with open(os.devnull, "w") as null:
        t = perf_counter()
        for _ in tqdm(range(N_TRACK), file=null):
            pass
        return perf_counter() - t


def iter_track(sink) -> float:
    with board_printing_to(sink) as board:
        t = perf_counter()
        for _ in board.track(range(N_TRACK), stage="TRAIN", epoch=0):
            pass
        return perf_counter() - t


def iter_tqdm_postfix() -> float:
    with open(os.devnull, "w") as null:
        bar = tqdm(range(N_GAUGE), file=null)
        t = perf_counter()
        for i in bar:
            bar.set_postfix(entries(i), refresh=False)
        return perf_counter() - t


def iter_track_gauge(sink) -> float:
    with board_printing_to(sink) as board:
        t = perf_counter()
        for i in board.track(range(N_GAUGE), stage="TRAIN", epoch=0):
            board.gauge(entries(i))
        return perf_counter() - t


def import_cost() -> tuple[float, bool]:
    """Microseconds that `import nebulae.aerolog` adds after numpy, and whether matplotlib got imported."""
    code = "import numpy; import nebulae.aerolog"
    costs = []
    for _ in range(REPEAT):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stderr
        rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:")][1:]
        names = [r[2].rstrip() for r in rows]
        top = [(int(r[1]), n.strip()) for r, n in zip(rows, names, strict=True) if not n.startswith("  ")]
        after = [c for c, n in top[[n for _, n in top].index("numpy") + 1 :]]
        costs.append(sum(after))
        matplotlib = any(n.strip().startswith("matplotlib") for n in names)
    return min(costs), matplotlib


def report(title: str, base_name: str, base: float, rows: dict[str, float], unit: float, suffix: str) -> None:
    print(title)
    print(f"  {base_name:<40}: {base * unit:8.3f} {suffix}")
    for name, value in rows.items():
        print(f"  {name:<40}: {value * unit:8.3f} {suffix}   ratio {value / base:.2f} (target <= 1.0)")


def main() -> None:
    warnings.simplefilter("ignore")  # the fake terminal has no width; the board warns once about it
    empty = best(loop_empty)
    report(
        f"gauge() per call, {N_GAUGE:,} steps, 2 metrics, window=10, mpe={MPE}",
        "tqdm update(1) + set_postfix(refresh=False)",
        (best(loop_tqdm_postfix) - empty) / N_GAUGE,
        {
            "DashBoard.gauge, plain output": (best(lambda: loop_gauge(io.StringIO())) - empty) / N_GAUGE,
            "DashBoard.gauge, terminal (chart, 10 Hz)": (best(lambda: loop_gauge(FakeTerminal())) - empty)
            / N_GAUGE,
        },
        1e6,
        "us",
    )
    bare = best(iter_bare)
    report(
        f"track() per-item overhead, {N_TRACK:,} items, empty body",
        "tqdm(iterable)",
        (best(iter_tqdm) - bare) / N_TRACK,
        {
            "DashBoard.track, plain output": (best(lambda: iter_track(io.StringIO())) - bare) / N_TRACK,
            "DashBoard.track, terminal": (best(lambda: iter_track(FakeTerminal())) - bare) / N_TRACK,
        },
        1e9,
        "ns",
    )
    report(
        f"track() with gauge(entry) in the body (every step timed), {N_GAUGE:,} items, per item",
        "tqdm(iterable) + set_postfix(refresh=False)",
        (best(iter_tqdm_postfix) - empty) / N_GAUGE,
        {
            "DashBoard.track + gauge, plain output": (best(lambda: iter_track_gauge(io.StringIO())) - empty)
            / N_GAUGE
        },
        1e6,
        "us",
    )
    added, matplotlib = import_cost()
    print("import nebulae.aerolog after numpy (-X importtime, best of 5)")
    print(f"  adds {added / 1000:.1f} ms (target < 20 ms); matplotlib imported: {matplotlib}")


if __name__ == "__main__":
    main()
