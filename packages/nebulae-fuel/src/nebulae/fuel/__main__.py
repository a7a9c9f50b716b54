"""Command line: `python -m nebulae.fuel pack ...`, `... info FILE` and `... verify FAMILY`."""

from __future__ import annotations

import argparse
import sys

from ._constants import Quality
from ._files import verify
from ._generator import FuelGenerator
from ._info import format_info, info


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nebulae.fuel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    pack = sub.add_parser("pack", help="pack a CSV file list and its images into HDF5/NPZ")
    pack.add_argument("--file-dir", required=True, help="directory of the raw data")
    pack.add_argument("--file-list", required=True, help="CSV file list (relative to --file-dir)")
    pack.add_argument(
        "--dtype", required=True, nargs="+", help="dtype per column (or per column but the first)"
    )
    pack.add_argument("--dst", "--dst-path", dest="dst_path", required=True, help=".hdf5/.h5/.npz output")
    pack.add_argument("--is-seq", action="store_true", help="column 0 lists sequence frames")
    pack.add_argument("--delimiter", default=None, help="',' or 'tab' (default: sniffed)")
    pack.add_argument("--quotechar", default='"')
    pack.add_argument("--height", type=int, default=None)
    pack.add_argument("--width", type=int, default=None)
    pack.add_argument("--channel", type=int, default=None, choices=(1, 3))
    pack.add_argument("--encode", default=None, help="JPEG, PNG, RAW, or 'none'")
    pack.add_argument("--shards", type=int, default=None)
    exif = pack.add_mutually_exclusive_group()
    exif.add_argument("--keep-exif", dest="keep_exif", action="store_true", default=None)
    exif.add_argument("--no-exif", dest="keep_exif", action="store_false")
    pack.add_argument(
        "--quality", default=None, choices=[q.name for q in Quality], help="preset overriding --encode"
    )
    pack.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse source images with more pixels (default: Pillow's limit)",
    )
    pack.add_argument("--overwrite", action="store_true", help="replace an existing output")
    pack.add_argument("--nworker", type=int, default=None, help="encoding processes (default: all cores)")
    pack.add_argument("--quiet", action="store_true", help="no progress bar")
    show = sub.add_parser("info", help="describe a packed file")
    show.add_argument("file", help=".hdf5/.h5/.npz file (or the shard family's name)")
    check = sub.add_parser("verify", help="check a shard family's files against its manifest's sha256")
    check.add_argument("family", help="the family's name (e.g. train.hdf5) or its .manifest.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "info":
            print(format_info(info(args.file)))
            return 0
        if args.command == "verify":
            checked = verify(args.family)
            print(f"ok: {len(checked)} shard(s) match their manifest")
            return 0
        delimiter = "\t" if args.delimiter in ("tab", "\\t") else args.delimiter
        fg = FuelGenerator(
            args.file_dir,
            args.file_list,
            args.dtype,
            args.is_seq,
            delimiter=delimiter,
            quotechar=args.quotechar,
        )
        encode = "" if args.encode is not None and args.encode.lower() == "none" else args.encode
        written = fg.generate(
            args.dst_path,
            args.height,
            args.width,
            args.channel,
            encode,
            args.shards,
            args.keep_exif,
            quality=Quality[args.quality] if args.quality else None,
            max_pixels=args.max_pixels,
            overwrite=args.overwrite,
            nworker=args.nworker,
            verbose=not args.quiet,
        )
        for path in written:
            print(path)
        return 0
    except (ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
