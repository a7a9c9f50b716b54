"""Command line of nebulae-kit: ``nebulae-kit gpus`` (or ``python -m nebulae.kit gpus``)."""

from __future__ import annotations

import argparse
import os
import sys

from ._gpu import format_table, query_gpus


def _gpus() -> int:
    readings, reason = query_gpus(with_usage=True)
    if reason is not None:
        print(f"No NVIDIA GPU: {reason}.")
        return 0
    if not readings:
        print("No NVIDIA GPU: the driver is loaded but reports no device.")
        return 0
    rows = [
        [
            str(r.info.index),
            r.info.name,
            f"{r.info.free:.0f} / {r.info.total:.0f}",
            "n/a" if r.utilization is None else f"{r.utilization:.0f}%",
            "n/a" if r.temperature is None else f"{r.temperature:.0f}ºC",
        ]
        for r in readings
    ]
    print(format_table(["GPU", "Name", "Free / total MiB", "Util", "Temp"], rows))
    return 0


def _prog() -> str:
    # the name the user typed: the console script (or its Windows launcher), else the module form
    launched = os.path.splitext(os.path.basename(sys.argv[0] if sys.argv else ""))[0]
    return "nebulae-kit" if launched in ("nebulae-kit", "nebulae-kit-script") else "python -m nebulae.kit"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Nebulae kit tools.",
        # no option has a default worth showing yet; the formatter shows any added later
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "gpus",
        help="list the GPUs with free memory, utilisation and temperature",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    args = parser.parse_args(argv)
    if args.command == "gpus":
        return _gpus()
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
