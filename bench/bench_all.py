"""Run every package's benchmark and collect their ratio lines into one markdown table.

Usage: ``hatch run bench:all [--out bench-output/benchmarks.md]``. Each benchmark measures its
baseline in the same run; this script only gathers the lines that report a ratio and keeps
each benchmark's full output next to the table.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("fuel", "aerolog", "astro", "cockpit")
RATIO = re.compile(r"ratio|\d\s*x\b|×", re.IGNORECASE)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-output/benchmarks.md", help="where to write the table")
    parser.add_argument("--only", nargs="*", choices=PACKAGES, help="run only these benchmarks")
    args = parser.parse_args()
    out = Path(args.out)
    rows: list[tuple[str, str]] = []
    failed = []
    for name in args.only or PACKAGES:
        script = HERE / f"bench_{name}.py"
        print(f"== bench:{name}", flush=True)
        start = time.perf_counter()
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        print(run.stdout, end="")
        _write_atomic(out.with_name(f"bench_{name}.log"), run.stdout + run.stderr)
        if run.returncode != 0:
            failed.append(name)
            rows.append((name, f"FAILED (exit {run.returncode}); see bench_{name}.log"))
            print(run.stderr[-2000:], file=sys.stderr)
            continue
        found = [line.strip() for line in run.stdout.splitlines() if RATIO.search(line)]
        rows.extend((name, line) for line in found)
        rows.append((name, f"(benchmark ran in {seconds:.0f} s)"))
    table = ["| package | measurement (ratios measured against a baseline in the same run) |", "|---|---|"]
    table += [f"| {name} | `{line.replace('|', '/')}` |" for name, line in rows]
    text = "# Nebulae benchmarks\n\n" + "\n".join(table) + "\n"
    _write_atomic(out, text)
    print("\n" + text + f"\nwritten to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
