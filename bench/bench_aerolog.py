"""Benchmarks of nebulae-aerolog against tqdm, as ratios measured in the same run.

1. gauge(): per-call cost, (loop - empty loop) / N over 100,000 steps, recording on, default throttling,
   against tqdm's update(1) + set_postfix(entry, refresh=False) on the same entries, and against the
   DashBoard of a base commit (`--base REF`, default a1784a1, the last one before sinks and ETAs), whose
   aerolog sources are read from git into a temporary package and timed in the same process, turn about.
2. gauge() with a TensorBoardSink against tqdm update + set_postfix + torch's SummaryWriter.add_scalar
   for each of the same values.
3. track(): per-item overhead against iterating with tqdm(iterable).
4. import nebulae.aerolog: what it adds over numpy (-X importtime), and that matplotlib, IPython and
   TensorBoard stay out.

Run with `flock /tmp/nebulae-bench.lock hatch run bench:aerolog [--base REF]`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from time import perf_counter

from tqdm import tqdm

from nebulae.aerolog import DashBoard, TensorBoardSink

AEROLOG_SRC = "packages/nebulae-aerolog/src/nebulae/aerolog"
N_SINK = 20_000
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


def base_board(ref: str) -> type | None:
    """The DashBoard class of commit `ref`, imported from its sources as package `aerolog_at_base`
    (aerolog imports itself relatively only, so its folder works under any name); None without git."""
    root = Path(__file__).resolve().parent.parent
    try:
        names = subprocess.run(
            ["git", "ls-tree", "--name-only", f"{ref}:{AEROLOG_SRC}"],
            cwd=root, capture_output=True, text=True, check=True, timeout=60,
        ).stdout.split()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    folder = Path(tempfile.mkdtemp()) / "aerolog_at_base"
    folder.mkdir()
    for name in names:
        if name.endswith(".py"):
            text = subprocess.run(
                ["git", "show", f"{ref}:{AEROLOG_SRC}/{name}"],
                cwd=root, capture_output=True, check=True, timeout=60,
            ).stdout  # fmt: skip
            (folder / name).write_bytes(text)
    sys.path.insert(0, str(folder.parent))
    return importlib.import_module("aerolog_at_base").DashBoard  # type: ignore[no-any-return]


@contextlib.contextmanager
def board_printing_to(sink, cls: type = DashBoard, **kwargs) -> Iterator[DashBoard]:
    """A fresh board whose output goes to `sink` (a plain buffer, or a fake terminal)."""
    board = cls(tempfile.mkdtemp(), **kwargs)
    real, sys.stdout = sys.stdout, sink
    try:
        yield board
    finally:
        sys.stdout = real


def loop_gauge(sink, cls: type = DashBoard, n: int = N_GAUGE, **kwargs) -> float:
    with board_printing_to(sink, cls, window=10, **kwargs) as board:
        t = perf_counter()
        for i in range(n):
            board.gauge(entries(i), i % MPE, i // MPE, MPE, "TRAIN")
        elapsed = perf_counter() - t
        board.close()
        return elapsed


def loop_tqdm_writer() -> float:
    """tqdm's update + set_postfix, and torch's SummaryWriter.add_scalar for each value of the step."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(tempfile.mkdtemp())
    with open(os.devnull, "w") as null:
        bar = tqdm(total=N_SINK, file=null)
        t = perf_counter()
        for i in range(N_SINK):
            entry = entries(i)
            bar.update(1)
            bar.set_postfix(entry, refresh=False)
            for name, value in entry.items():
                writer.add_scalar(f"{name}/TRAIN", value, i + 1)
        elapsed = perf_counter() - t
        bar.close()
    writer.close()
    return elapsed


def loop_empty_sink() -> float:
    t = perf_counter()
    for i in range(N_SINK):
        entries(i)
    return perf_counter() - t


def turn_about(a, b) -> tuple[float, float]:
    """Best of REPEAT runs of `a` and of `b`, run in turn so that both see the same machine load."""
    times_a, times_b = [], []
    for _ in range(REPEAT):
        times_a.append(a())
        times_b.append(b())
    return min(times_a), min(times_b)


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


def import_cost() -> tuple[float, list[str]]:
    """Microseconds that `import nebulae.aerolog` adds after numpy, and which heavy modules it imported."""
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
        heavy = sorted(
            {n.strip().split(".")[0] for n in names}
            & {"matplotlib", "IPython", "tensorboard", "mlflow", "torch"}
        )
    return min(costs), heavy


def report(title: str, base_name: str, base: float, rows: dict[str, float], unit: float, suffix: str) -> None:
    print(title)
    print(f"  {base_name:<40}: {base * unit:8.3f} {suffix}")
    for name, value in rows.items():
        print(f"  {name:<40}: {value * unit:8.3f} {suffix}   ratio {value / base:.2f} (target <= 1.0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="a1784a1", help="commit whose gauge() is timed side by side")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the fake terminal has no width; the board warns once about it
    empty = best(loop_empty)
    base = base_board(args.base)
    if base is None:
        print(f"gauge() against {args.base}: skipped (git or that commit is not available)")
    else:
        then, now = turn_about(lambda: loop_gauge(io.StringIO(), base), lambda: loop_gauge(io.StringIO()))
        then, now = (then - empty) / N_GAUGE, (now - empty) / N_GAUGE
        print(f"gauge() per call, no sink, against the DashBoard of {args.base} (same run, in turn)")
        print(f"  {'DashBoard at ' + args.base:<40}: {then * 1e6:8.3f} us")
        print(f"  {'DashBoard now':<40}: {now * 1e6:8.3f} us   ratio {now / then:.2f} (target <= 1.05)")
    empty_sink = best(loop_empty_sink)
    try:
        theirs, ours = turn_about(
            loop_tqdm_writer,
            lambda: loop_gauge(io.StringIO(), n=N_SINK, sinks=[TensorBoardSink(tempfile.mkdtemp())]),
        )
    except ImportError as exc:
        print(f"gauge() with a TensorBoardSink: skipped ({exc})")
    else:
        report(
            f"gauge() with a TensorBoardSink, {N_SINK:,} steps, 2 metrics, per call",
            "tqdm update + set_postfix + 2 x SummaryWriter.add_scalar",
            (theirs - empty_sink) / N_SINK,
            {"DashBoard.gauge, TensorBoardSink": (ours - empty_sink) / N_SINK},
            1e6,
            "us",
        )
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
    added, heavy = import_cost()
    print("import nebulae.aerolog after numpy (-X importtime, best of 5)")
    print(f"  adds {added / 1000:.1f} ms (target < 20 ms); heavy modules imported: {heavy or 'none'}")


if __name__ == "__main__":
    main()
