"""FuelGenerator: pack a CSV file list and its images into HDF5 or NPZ files."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any

import numpy as np

from ._constants import Quality
from ._csv import Table, check_dtypes, parse_table, safe_path
from ._files import (
    commit,
    discard,
    family_files,
    fsync_dir,
    kind_of,
    new_run_id,
    remove_stale_temps,
    same_path,
    shard_names,
    shard_record,
    temp_name,
    write_manifest,
)
from ._image import EncodeSpec
from ._pack import RowEncoder, start_forkserver
from ._progress import Progress
from ._rank import get_rank
from ._validate import instance_of, int_in
from ._writer import ImageLayout, _meta, make_writer, part_columns

_SOURCE_KEYS = ("file_dir", "file_list", "dtype", "is_seq", "delimiter", "quotechar")
_GEN_KEYS = ("dst_path", "height", "width", "channel", "encode", "shards", "keep_exif", "max_pixels")
_DEFAULTS: dict[str, Any] = {
    "file_dir": None,
    "file_list": None,
    "dtype": None,
    "is_seq": False,
    "delimiter": None,
    "quotechar": '"',
    "dst_path": None,
    "height": 0,
    "width": 0,
    "channel": 3,
    "encode": "JPEG",
    "shards": 1,
    "keep_exif": True,
    "max_pixels": None,
}
_ENCODES = {"JPEG": "JPEG", "JPG": "JPEG", "PNG": "PNG", "RAW": "RAW"}


class _Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler installed during generate()."""


_TERM_SEEN = threading.Event()
_INT_SEEN = threading.Event()
_DEFER_SIGNALS = threading.Event()


def _check_terminated() -> None:
    """Re-raise a signal whose exception was swallowed (e.g. it landed inside a __del__)."""
    if _TERM_SEEN.is_set():
        raise _Terminated()
    if _INT_SEEN.is_set():
        raise KeyboardInterrupt


def _check_setting(key: str, value: Any) -> Any:
    """Validate one stored setting; return its normalised value."""
    if key == "dtype":
        return check_dtypes(value) if value is not None else None
    if key in ("file_dir", "file_list", "dst_path"):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{key!r} must be a path str (got {type(value).__name__})")
        if key == "file_dir" and value is not None and not os.path.isdir(value):
            raise FileNotFoundError(f"'file_dir' {os.fspath(value)!r} is not an existing directory")
        return os.fspath(value) if value is not None else None
    if key in ("is_seq", "keep_exif"):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{key!r} must be a bool (got {value!r})")
        return bool(value)
    if key in ("delimiter", "quotechar"):
        if key == "delimiter" and value is None:
            return None
        instance_of(key, value, str, "a one-character str")
        if len(value) != 1:
            raise ValueError(f"{key!r} must be a one-character str (got {value!r})")
        return value
    if key in ("height", "width", "shards", "channel"):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{key!r} must be an int (got {value!r})")
        value = int(value)
        if key in ("height", "width") and value < 0:
            raise ValueError(f"{key!r} must be >= 0 (got {value}); 0 keeps each image's own size")
        if key == "shards" and value < 1:
            raise ValueError(f"'shards' must be >= 1 (got {value})")
        if key == "channel" and value not in (1, 3):
            raise ValueError(f"'channel' must be 1 or 3 (got {value}); RGBA is not supported")
        return value
    if key == "max_pixels":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"'max_pixels' must be an int or None (got {value!r})")
        if value < 1:
            raise ValueError(
                f"'max_pixels' must be >= 1 (got {value}); None uses Pillow's limit PIL.Image.MAX_IMAGE_PIXELS"
            )
        return int(value)
    if key == "encode":
        if value is None or value == "":
            return None
        if not isinstance(value, str) or value.upper() not in _ENCODES:
            raise ValueError(f"'encode' must be one of 'JPEG', 'PNG', 'RAW' or None (got {value!r})")
        return _ENCODES[value.upper()]
    raise KeyError(f"unknown FuelGenerator setting {key!r}; valid keys: {', '.join(_DEFAULTS)}")


class FuelGenerator:
    """Pack raw images and their labels, listed in a CSV file, into HDF5 or NPZ files.

    Args:
        file_dir: directory holding the raw data; CSV references are relative to it.
        file_list: the CSV file list (joined to `file_dir`; an absolute path wins).
        dtype: one dtype per CSV column, or one per column but the first (e.g. `['int64']`).
        is_seq: column 0 lists the frames of a sequence (quoted, comma separated).
        delimiter: ',' or '\\t'; None sniffs it from the header.
        quotechar: CSV quote character.
        config: a dict of any of the above plus generation settings (`dst_path, height, width, channel,
            encode, shards, keep_exif, max_pixels`); mutually exclusive with the other arguments.

    Raises:
        TypeError: `config` together with explicit arguments, or wrong argument types.
        KeyError: an unknown `config` key.
        ValueError: a missing `file_dir`/`file_list`/`dtype`, or an invalid dtype.
        FileNotFoundError: `file_dir` is not a directory.

    Example:
        >>> fg = FuelGenerator('data/', 'labels.csv', ['int64'])  # doctest: +SKIP
        >>> fg.generate('fuel.hdf5', 224, 224)  # doctest: +SKIP
    """

    def __init__(
        self,
        file_dir: Any = None,
        file_list: str | None = None,
        dtype: list[str] | None = None,
        is_seq: bool = False,
        *,
        delimiter: str | None = None,
        quotechar: str = '"',
        config: dict[str, Any] | None = None,
    ) -> None:
        explicit = {
            "file_list": file_list,
            "dtype": dtype,
            "is_seq": is_seq,
            "delimiter": delimiter,
            "quotechar": quotechar,
        }
        if isinstance(file_dir, dict):
            if config is not None:
                raise TypeError("config given twice (positionally and as 'config=')")
            config, file_dir = file_dir, None
        self._settings: dict[str, Any] = dict(_DEFAULTS)
        if config is not None:
            given = [k for k, v in explicit.items() if v != _DEFAULTS[k]]
            if file_dir is not None or given:
                names = ", ".join(["file_dir"] * (file_dir is not None) + given)
                raise TypeError(
                    f"pass either config= or explicit arguments, not both (got config and {names})"
                )
            if not isinstance(config, dict):
                raise TypeError(f"'config' must be a dict (got {type(config).__name__})")
            self._update(config)
        else:
            self._update({"file_dir": file_dir, **explicit})
        for key in ("file_dir", "file_list", "dtype"):
            if self._settings[key] is None:
                raise ValueError(f"{key!r} is required (give it as an argument or in config)")

    def _update(self, changes: dict[str, Any]) -> None:
        unknown = [k for k in changes if k not in _DEFAULTS]
        if unknown:
            raise KeyError(f"unknown setting(s) {unknown}; valid keys: {', '.join(_DEFAULTS)}")
        checked = {k: _check_setting(k, v) for k, v in changes.items()}
        self._settings.update(checked)

    def __getattr__(self, name: str) -> Any:
        settings = self.__dict__.get("_settings")
        if settings is not None and name in settings:
            return settings[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    @property
    def config(self) -> dict[str, Any]:
        """A copy of every stored setting."""
        return dict(self._settings)

    def modify(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Change stored settings, validated as at construction.

        Args:
            config: a dict of settings; the same as keyword arguments (giving both raises TypeError).
            **kwargs: any of `file_dir, file_list, dtype, is_seq, delimiter, quotechar, dst_path, height,
                width, channel, encode, shards, keep_exif, max_pixels`.

        Raises:
            KeyError: an unknown key.

        Example:
            >>> fg.modify(height=200, width=200)  # doctest: +SKIP
        """
        if config is not None and kwargs:
            raise TypeError("pass either config= or keyword arguments to modify(), not both")
        changes = dict(config) if config is not None else kwargs
        if config is not None and not isinstance(config, dict):
            raise TypeError(f"'config' must be a dict (got {type(config).__name__})")
        self._update(changes)

    # -- generation -------------------------------------------------------------------------------------

    def generate(
        self,
        dst_path: str | None = None,
        height: int | None = None,
        width: int | None = None,
        channel: int | None = None,
        encode: str | None = None,
        shards: int | None = None,
        keep_exif: bool | None = None,
        *,
        quality: int | None = None,
        max_pixels: int | None = None,
        overwrite: bool = False,
        nworker: int | None = None,
        verbose: bool = True,
        **aliases: Any,
    ) -> list[str]:
        """Pack the listed data into `dst_path` (HDF5 `.hdf5`/`.h5`, or `.npz`).

        Args:
            dst_path: output file; with `shards > 1` the files are `{stem}_{i}{suffix}`.
            height: output image height; 0 with `width=0` keeps each image's size.
            width: output image width.
            channel: 3 (RGB) or 1 (gray).
            encode: 'JPEG', 'PNG', 'RAW' (decoded pixels), or '' for no image processing.
            shards: number of files, each holding a contiguous run of rows.
            keep_exif: keep the source EXIF block in the encoded image.
            quality: a preset (`NA, FAST, GOOD, OPTIM, LOSSLESS`) overriding `encode`.
            max_pixels: the most pixels (width x height) a source image may have; a larger one (e.g. a
                decompression bomb: a small file that decodes to gigabytes) is a ValueError naming its CSV row.
                None: the stored setting, else Pillow's limit `PIL.Image.MAX_IMAGE_PIXELS`.
            overwrite: replace an existing output (a file, or a shard family and its manifest); the old data
                stays readable until the new files are complete.
            nworker: encoding processes; None uses every core, 1 the calling process.
            verbose: progress bar and summary on rank <= 0.
            **aliases: `nshard` for `shards`.

        Returns:
            The written file paths (a family's manifest `{dst_path}.manifest.json` is not listed).

        Raises:
            ValueError: invalid settings, a bad CSV row, an unreadable image.
            FileNotFoundError: the CSV or listed files are missing.
            FileExistsError: the output exists and `overwrite` is False.

        Example:
            >>> fg.generate('out/fuel.hdf5', 224, 224, shards=2)  # doctest: +SKIP
        """
        if "nshard" in aliases:
            if shards is not None:
                raise TypeError("pass either 'shards' or its alias 'nshard', not both")
            shards = aliases.pop("nshard")
        if aliases:
            raise TypeError(f"generate() got unexpected keyword argument(s) {sorted(aliases)}")
        given = {
            "dst_path": dst_path,
            "height": height,
            "width": width,
            "channel": channel,
            "encode": encode,
            "shards": shards,
            "keep_exif": keep_exif,
            "max_pixels": max_pixels,
        }
        s = dict(self._settings)
        for key, value in given.items():
            if value is not None:
                s[key] = _check_setting(key, value)
        if encode == "":
            s["encode"] = None
        spec, enc = self._encode_spec(s, quality)
        if not isinstance(overwrite, bool):
            raise TypeError(f"'overwrite' must be a bool (got {overwrite!r})")
        nworker = self._check_nworker(nworker)
        dst = s["dst_path"]
        if dst is None:
            raise ValueError("'dst_path' is required (an .hdf5, .h5 or .npz file)")
        dst = os.fspath(dst)
        kind = kind_of(dst)
        if kind is None:
            raise ValueError(f"'dst_path' must end in .hdf5, .h5 or .npz (got {dst!r})")
        csv_path = os.path.join(s["file_dir"], s["file_list"])
        if not csv_path.lower().endswith(".csv"):
            raise ValueError(f"'file_list' must be a .csv file (got {s['file_list']!r})")
        if enc is not None and nworker > 1 and os.path.isfile(csv_path):
            start_forkserver()
        table = parse_table(
            csv_path,
            s["dtype"],
            encoded=enc is not None,
            is_seq=s["is_seq"],
            delimiter=s["delimiter"],
            quotechar=s["quotechar"],
        )
        n = len(table)
        if n == 0:
            raise ValueError(f"{os.path.basename(csv_path)} lists no rows: nothing to pack")
        nshard = s["shards"]
        if nshard > n:
            raise ValueError(
                f"'shards' must be <= the number of rows ({n}) so that no shard is empty (got {nshard})"
            )
        refs = self._resolve_refs(table, s["file_dir"], s["is_seq"]) if enc is not None else []
        # every file operation below uses the resolved name, so that relative, `./` and symlinked spellings of one
        # file compare equal; a symlink at dst_path is followed (its target is replaced, the link kept)
        target = os.path.realpath(dst)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        remove_stale_temps(target)
        finals = shard_names(target, nshard)
        family = family_files(target)
        existing = family.finals
        if existing and not overwrite:
            raise FileExistsError(
                f"{(family.files or existing)[0]!r} already exists ({len(existing)} file(s) of this output); pass overwrite=True "
                "to replace them or choose another dst_path"
            )
        show = verbose and get_rank() <= 0
        self._run(table, refs, spec, kind, target, finals, existing, nworker, show, s)
        # the paths as the caller spelled them, unless dst_path is a link (then where the data went)
        return finals if os.path.islink(dst) else shard_names(dst, nshard)

    def _encode_spec(self, s: dict[str, Any], quality: Any) -> tuple[EncodeSpec | None, str | None]:
        enc = s["encode"]
        jpeg_q, png_level, bilinear = 95, 1, False
        if quality is not None:
            try:
                q = Quality(quality)
            except ValueError:
                raise ValueError(
                    f"'quality' must be one of NA=0, FAST=1, GOOD=2, OPTIM=3, LOSSLESS=4 (got {quality!r})"
                ) from None
            enc = {Quality.NA: None, Quality.FAST: "JPEG", Quality.GOOD: "JPEG"}.get(q, "PNG")
            jpeg_q, bilinear = (75, True) if q == Quality.FAST else (95, False)
            png_level = 0 if q == Quality.LOSSLESS else 1
        h, w = s["height"], s["width"]
        if (h == 0) != (w == 0):
            raise ValueError(f"'height' and 'width' must both be > 0, or both 0 to keep sizes (got {h}, {w})")
        if enc == "RAW" and not (h and w):
            raise ValueError("encode='RAW' needs height > 0 and width > 0 (all rows share one array shape)")
        if enc is None:
            return None, None
        max_pixels = s["max_pixels"]
        if max_pixels is None:
            from PIL import Image

            max_pixels = Image.MAX_IMAGE_PIXELS  # read, never set: it is process-wide
        spec = EncodeSpec(enc, h, w, s["channel"], s["keep_exif"], jpeg_q, png_level, bilinear, max_pixels)
        return spec, enc

    @staticmethod
    def _check_nworker(nworker: Any) -> int:
        if nworker is None:
            return os.cpu_count() or 1
        return int_in("nworker", nworker, 1, expected="None or an int >= 1")

    @staticmethod
    def _resolve_refs(table: Table, file_dir: str, is_seq: bool) -> list[Any]:
        source = os.path.basename(table.path)
        refs: list[Any] = []
        missing: list[str] = []
        root = os.path.realpath(file_dir)
        for line, ref in zip(table.lines, table.columns[0].values, strict=True):
            items = ref if is_seq else [ref]
            full = []
            for item in items:
                try:
                    path = safe_path(file_dir, item, root)
                except ValueError as exc:
                    raise ValueError(
                        f"row {line} of {source}: {exc}; entries must stay inside file_dir"
                    ) from None
                if not os.path.isfile(path):
                    missing.append(f"row {line}: {item}")
                full.append(path)
            refs.append(full if is_seq else full[0])
        if missing:
            shown = "; ".join(missing[:10])
            raise FileNotFoundError(
                f"{len(missing)} file(s) listed in {source} do not exist under file_dir: {shown}"
            )
        return refs

    def _run(
        self,
        table: Table,
        refs: list[Any],
        spec: EncodeSpec | None,
        kind: str,
        dst: str,
        finals: list[str],
        existing: list[str],
        nworker: int,
        show: bool,
        s: dict[str, Any],
    ) -> list[str]:
        start = time.perf_counter()
        n = len(table)
        nshard = len(finals)
        bounds = np.cumsum([0] + [len(p) for p in np.array_split(np.arange(n), nshard)])
        temps = [temp_name(f) for f in finals]
        run = new_run_id()
        records: list[dict[str, Any]] = []
        placed: list[str] = []
        writers: list[Any] = []
        handlers = self._install_handlers()
        progress = Progress(n, f"packing {os.path.basename(dst)}", enabled=show)
        try:
            is_seq = s["is_seq"]
            with RowEncoder(min(nworker, max(1, n // 8)) if spec else 1, spec) as encoder:  # type: ignore[arg-type]
                for i in range(nshard):
                    a, b = int(bounds[i]), int(bounds[i + 1])
                    cols = part_columns(table.columns, a, b)
                    layout = None
                    if spec is not None:
                        nframes = [len(v) for v in cols[0].values] if is_seq else []
                        layout = ImageLayout(
                            spec.encode, spec.channel, spec.height, spec.width, is_seq, nframes
                        )
                    meta = _meta(cols, is_seq, i if nshard > 1 else -1, nshard, n, run)
                    writer = make_writer(temps[i], kind, cols, layout, meta)
                    writers.append(writer)
                    if spec is not None:
                        pos = 0
                        for results in encoder.run(refs[a:b]):
                            if results and isinstance(results[0], tuple) and results[0][0] == "error":
                                _, rel, message = results[0]
                                line = table.lines[a + rel]
                                raise ValueError(f"row {line} of {os.path.basename(table.path)}: {message}")
                            self._check_shapes(results, spec, table.lines, a + pos, table.path)
                            writer.write_images(pos, results)
                            pos += len(results)
                            progress.update(len(results))
                            _check_terminated()
                    else:
                        progress.update(b - a)
                    writer.finish()
                    if nshard > 1:
                        records.append(shard_record(temps[i], finals[i], b - a))
            _check_terminated()
            _DEFER_SIGNALS.set()  # a signal now would leave a half-placed output: it is acted on after the commit
            try:
                self._place(dst, temps, finals, existing, placed, records, run, table)
            finally:
                _DEFER_SIGNALS.clear()
            _check_terminated()
        except _Terminated:
            self._cleanup(writers, temps, placed)
            self._restore_handlers(handlers)
            handlers = None
            raise SystemExit(143) from None
        except BaseException:
            self._cleanup(writers, temps, placed)
            raise
        finally:
            if handlers is not None:
                self._restore_handlers(handlers)
        progress.close(
            f"wrote {', '.join(os.path.basename(f) for f in finals)} in {time.perf_counter() - start:.1f} s"
            if show
            else None
        )
        return finals

    @staticmethod
    def _place(
        target: str,
        temps: list[str],
        finals: list[str],
        existing: list[str],
        placed: list[str],
        records: list[dict[str, Any]],
        run: str,
        table: Table,
    ) -> None:
        """Rename the finished temp files into place, commit, then remove what is left of the old output.

        Readers take an existing file of the given name first, else the family its manifest lists. So a single file
        commits by its rename; a family by its manifest, written last, and by removing an old single file of its
        name. Before a family's commit a reader finds the old data, or shards of two runs (the old manifest's, or
        none) and an error naming them, never a silent mix. Until the commit, `placed` lists the new files that a
        failure deletes again.
        """
        directory = os.path.dirname(finals[0])
        for tmp, final in zip(temps, finals, strict=True):
            commit(tmp, final, sync_dir=False)
            placed.append(final)
        keep = list(finals)
        if records:
            fsync_dir(directory)  # the shards' renames are durable before the manifest that vouches for them
            columns = table.columns
            keep.append(
                write_manifest(target, run, [c.name for c in columns], [c.dtype for c in columns], records)
            )
        leftovers = [old for old in existing if not any(same_path(old, k) for k in keep)]
        # an old single file of the family's name shadows the new family: removing it is the commit
        leftovers.sort(key=lambda old: not same_path(old, target))
        if not (leftovers and same_path(leftovers[0], target)):
            placed.clear()
        for old in leftovers:
            discard(old)
            placed.clear()
        fsync_dir(directory)

    @staticmethod
    def _check_shapes(results: list[Any], spec: EncodeSpec, lines: list[int], first: int, path: str) -> None:
        if spec.encode != "RAW":
            return
        want = (spec.height, spec.width, spec.channel)
        for k, item in enumerate(results):
            for frame in item if isinstance(item, list) else [item]:
                if frame.shape != want:
                    raise ValueError(
                        f"row {lines[first + k]} of {os.path.basename(path)}: image shape {frame.shape} != {want}"
                    )

    @staticmethod
    def _cleanup(writers: list[Any], temps: list[str], placed: list[str]) -> None:
        for writer in writers:
            writer.abort()
        for path in [*temps, *(f"{t}.blob" for t in temps), *placed]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    @staticmethod
    def _install_handlers() -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def on_term(signum: int, frame: Any) -> None:
            _TERM_SEEN.set()  # in case the exception lands somewhere that swallows it (a __del__)
            if not _DEFER_SIGNALS.is_set():
                raise _Terminated()

        def on_int(signum: int, frame: Any) -> None:
            _INT_SEEN.set()
            if not _DEFER_SIGNALS.is_set():
                raise KeyboardInterrupt

        _TERM_SEEN.clear()
        _INT_SEEN.clear()

        old = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        signal.signal(signal.SIGINT, on_int)
        signal.signal(signal.SIGTERM, on_term)
        return old

    @staticmethod
    def _restore_handlers(old: Any) -> None:
        if old is None:
            return
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._settings.items())
        return f"FuelGenerator({shown})"


Generator = FuelGenerator
