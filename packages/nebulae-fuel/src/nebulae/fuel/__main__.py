"""Command line: `nebulae-fuel pack ...`, `nebulae-fuel info FILE`, `nebulae-fuel verify FAMILY` and
`nebulae-fuel index FAMILY` (or `python -m nebulae.fuel ...`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._cli import in_flags, prog_name
from ._constants import Quality
from ._generator import FuelGenerator
from ._info import format_info, info
from ._manifest import verify
from ._place import index_family
from ._remote import is_url, local_path, parse_storage_options, verify_remote
from ._settings import DEFAULTS

# per command, the library's names for what the user gives under another name (a keyword alias, the
# info function's argument for the FILE positional)
_ALIASES = {
    "pack": {"nshard": "--shards"},
    "info": {"data_path": "FILE"},
    "verify": {"path": "FAMILY"},
    "index": {"path": "FAMILY"},
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog_name("nebulae.fuel", "nebulae-fuel"), description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    pack = sub.add_parser("pack", help="pack a CSV file list and its images into HDF5/NPZ")
    pack.add_argument("--file-dir", required=True, help="directory of the raw data")
    pack.add_argument("--file-list", required=True, help="CSV file list (relative to --file-dir)")
    pack.add_argument(
        "--dtype", required=True, nargs="+", help="dtype per column (or per column but the first)"
    )
    pack.add_argument(
        "--dst",
        "--dst-path",
        dest="dst_path",
        required=True,
        help=".hdf5/.h5/.npz output, a path or a URL (s3://...)",
    )
    pack.add_argument("--is-seq", action="store_true", help="column 0 lists sequence frames (default: off)")
    pack.add_argument("--delimiter", default=None, help="',' or 'tab' (default: sniffed)")
    pack.add_argument("--quotechar", default='"', help="CSV quote character (default: %(default)s)")
    pack.add_argument(
        "--height",
        type=int,
        default=None,
        help=f"output height; 0 with --width 0 keeps sizes (default: {DEFAULTS['height']})",
    )
    pack.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse source images with more pixels (default: Pillow's limit)",
    )
    pack.add_argument(
        "--width",
        type=int,
        default=None,
        help=f"output width; 0 with --height 0 keeps sizes (default: {DEFAULTS['width']})",
    )
    pack.add_argument(
        "--channel",
        type=int,
        default=None,
        choices=(1, 3),
        help=f"3 RGB, 1 gray (default: {DEFAULTS['channel']})",
    )
    pack.add_argument(
        "--encode", default=None, help=f"JPEG, PNG, RAW, or 'none' (default: {DEFAULTS['encode']})"
    )
    pack.add_argument(
        "--shards", type=int, default=None, help=f"number of output files (default: {DEFAULTS['shards']})"
    )
    exif = pack.add_mutually_exclusive_group()
    keeps = "keep" if DEFAULTS["keep_exif"] else "drop"
    exif.add_argument(
        "--keep-exif",
        dest="keep_exif",
        action="store_true",
        default=None,
        help=f"keep the source EXIF block in encoded images (default: {keeps})",
    )
    exif.add_argument(
        "--no-exif",
        dest="keep_exif",
        action="store_false",
        help="drop the source EXIF block in encoded images",
    )
    pack.add_argument(
        "--quality",
        default=None,
        choices=[q.name for q in Quality],
        help="preset overriding --encode (default: none, --encode decides)",
    )
    pack.add_argument(
        "--on-error",
        default=None,
        choices=("raise", "skip"),
        help="skip: leave unusable image files out and list them in DST.skipped.csv (default: raise)",
    )
    pack.add_argument("--overwrite", action="store_true", help="replace an existing output (default: refuse)")
    pack.add_argument("--nworker", type=int, default=None, help="encoding processes (default: all cores)")
    pack.add_argument(
        "--quiet", action="store_true", help="no progress bar or summary on stderr (default: show them)"
    )
    pack.add_argument(
        "--rank",
        type=int,
        default=None,
        help="this process's place among --nworld packing processes (default: RANK, else SLURM_PROCID, else 0)",
    )
    pack.add_argument(
        "--nworld",
        type=int,
        default=None,
        help="number of packing processes (default: WORLD_SIZE, else SLURM_NTASKS, else 1)",
    )
    pack.add_argument(
        "--storage-option",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="for a URL --dst, an fsspec storage option (repeatable; a dotted key nests, e.g. "
        "client_kwargs.endpoint_url=http://...; JSON values are parsed; applied over --storage-options) "
        "(default: none)",
    )
    pack.add_argument(
        "--work-dir",
        default=None,
        help="for a URL --dst, where to pack before uploading (default: system temp)",
    )
    show = sub.add_parser("info", help="describe a packed file")
    show.add_argument(
        "file", help=".hdf5/.h5/.npz file (or the shard family's name), a path or an fsspec URL"
    )
    check = sub.add_parser("verify", help="check a shard family's files against its manifest's sha256")
    check.add_argument("family", help="the family's name (e.g. train.hdf5) or its .manifest.json, or a URL")
    for command in (pack, show, check):
        command.add_argument(
            "--storage-options",
            type=_json_object,
            default=None,
            metavar="JSON",
            help="for a URL: fsspec storage options as a JSON object (default: fsspec's own configuration)",
        )
    index = sub.add_parser("index", help="write a shard family's manifest from its committed shards")
    index.add_argument("family", help="the family's name (e.g. train.hdf5)")
    # each command knows its parser, so that a library error can be told in that command's flags
    pack.set_defaults(command_parser=pack)
    show.set_defaults(command_parser=show)
    check.set_defaults(command_parser=check)
    index.set_defaults(command_parser=index)
    return parser


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"anon\": true}'")
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "info":
            print(format_info(info(args.file, storage_options=args.storage_options)))
            return 0
        if args.command == "verify":
            family = local_path(args.family)  # file:// names a local path
            checked = verify_remote(family, args.storage_options) if is_url(family) else verify(family)
            print(f"ok: {len(checked)} shard(s) match their manifest")
            return 0
        if args.command == "index":
            print(index_family(args.family))
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
            on_error=args.on_error,
            overwrite=args.overwrite,
            nworker=args.nworker,
            verbose=not args.quiet,
            rank=args.rank,
            nworld=args.nworld,
            storage_options=parse_storage_options(args.storage_option, args.storage_options) or None,
            work_dir=args.work_dir,
        )
        for path in written:
            print(path)
        return 0
    except (ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError, OSError, ImportError) as exc:
        # what the user typed is wrong (a value, a missing input, an existing output): a usage error, 2;
        # any other OS failure (permissions, a full disk): 1. Either way one line, no traceback.
        message = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        command = args.command_parser
        print(f"{command.prog}: error: {in_flags(message, command, _ALIASES[args.command])}", file=sys.stderr)
        usage = (ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError)
        return 2 if isinstance(exc, usage) else 1


if __name__ == "__main__":
    sys.exit(main())
