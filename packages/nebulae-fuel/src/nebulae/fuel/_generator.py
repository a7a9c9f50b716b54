"""FuelGenerator: pack a CSV file list and its images into HDF5 or NPZ files."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from ._compact import drop_rows
from ._constants import KEY_COLUMN
from ._csv import Column, Table, parse_table, resolve_refs
from ._files import (
    abandon,
    commit,
    discard,
    kind_of,
    part_path,
    prepare_output,
    remove_stale_temps,
    shard_names,
    skipped_path,
    temp_name,
    write_skipped,
)
from ._image import EncodeSpec
from ._manifest import place_output, shard_record
from ._pack import RowEncoder, RowError, check_shapes, stand_in
from ._place import (
    PACK_KEY,
    files_digest,
    finish_family,
    pack_record,
    pack_settings,
    resolve_place,
    rows_digest,
    run_id,
    shards_of,
    shards_to_pack,
    write_part,
)
from ._procs import start_forkserver
from ._progress import Progress
from ._rank import get_rank
from ._remote import is_url, local_path
from ._settings import DEFAULTS, check_nworker, check_setting, encode_spec
from ._signals import Terminated, check_terminated, install_handlers, restore_handlers, signals_deferred
from ._upload import pack_share_to_url, pack_to_url
from ._writer import ImageLayout, file_meta, make_writer, part_columns


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
            encode, shards, keep_exif, max_pixels, on_error`); mutually exclusive with the other arguments.

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
        self._settings: dict[str, Any] = dict(DEFAULTS)
        if config is not None:
            given = [k for k, v in explicit.items() if v != DEFAULTS[k]]
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
        unknown = [k for k in changes if k not in DEFAULTS]
        if unknown:
            raise KeyError(f"unknown setting(s) {unknown}; valid keys: {', '.join(DEFAULTS)}")
        checked = {k: check_setting(k, v) for k, v in changes.items()}
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
                width, channel, encode, shards, keep_exif, max_pixels, on_error`.

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
        on_error: str | None = None,
        overwrite: bool = False,
        nworker: int | None = None,
        verbose: bool = True,
        rank: int | None = None,
        nworld: int | None = None,
        storage_options: dict[str, Any] | None = None,
        work_dir: str | None = None,
        **aliases: Any,
    ) -> list[str]:
        """Pack the listed data into `dst_path` (HDF5 `.hdf5`/`.h5`, or `.npz`).

        Args:
            dst_path: output file; with `shards > 1` the files are `{stem}_{i}{suffix}`. A URL (`s3://`, `gs://`,
                `az://`, ... with `nebulae-fuel[remote]` and the backend installed) packs into `work_dir`, then
                uploads the files and, last, the manifest: readers never see a half-uploaded data set, and a rerun
                after a crash skips the objects already uploaded.
            height: output image height; 0 with `width=0` keeps each image's size.
            width: output image width.
            channel: 3 (RGB) or 1 (gray).
            encode: 'JPEG', 'PNG', 'RAW' (decoded pixels), or '' for no image processing.
            shards: number of files, each holding a contiguous run of rows. A family of shards is resumable: each
                shard is committed as soon as it is packed and the manifest once all are; a rerun of the same pack
                (same CSV, files and settings, no `overwrite`) packs only the shards still missing.
            keep_exif: keep the source EXIF block in the encoded image.
            quality: a preset (`NA, FAST, GOOD, OPTIM, LOSSLESS`) overriding `encode`.
            max_pixels: the most pixels (width x height) a source image may have; a larger one (e.g. a
                decompression bomb: a small file that decodes to gigabytes) is a ValueError naming its CSV row.
                None: the stored setting, else Pillow's limit `PIL.Image.MAX_IMAGE_PIXELS`.
            on_error: 'raise' (default) stops at the first unusable image file; 'skip' leaves such rows out (missing,
                empty, truncated or foreign files, decompression bombs) and lists them, in row order, in the report
                `{dst_path}.skipped.csv` (row, file, reason, message). Shards keep the rows they were given before
                skipping, less the skipped ones. None: the stored setting. Several packing processes each put
                their shards' lines in the shards' part records; the one that writes the manifest writes the report.
            overwrite: replace an existing output (a file, or a shard family and its manifest); in one process
                the old data stays readable until the new files are complete (several processes replace shard by
                shard, and readers call the family incomplete until the new manifest is written).
            nworker: encoding processes; None uses every core, 1 the calling process.
            verbose: progress bar and summary on rank <= 0 (of kit's NEB_RANK/RANK) and packing place 0.
            rank: this process's place among `nworld` processes packing one destination together (each started
                by a launcher, or by hand); it packs shards rank, rank + nworld, ... with its own `nworker`
                processes. None: the launcher's RANK/WORLD_SIZE (torchrun), else SLURM_PROCID/SLURM_NTASKS
                (srun), else one process packs everything. Give both or neither; `shards` must be >= nworld.
                The shards are the same bytes however many processes packed them, and whichever process commits
                the last shard writes the manifest (to a URL: uploads its shards and their part records, then
                writes the manifest if it finds every part record at the URL).
            nworld: the number of packing processes (see `rank`).
            storage_options: for a URL `dst_path`: passed to its fsspec file system (credentials, endpoint, ...).
            work_dir: for a URL `dst_path`: the local folder to pack in before uploading (it needs room for the data
                set); None: the system's temp folder.
            **aliases: `nshard` for `shards`.

        Each data set also gets a `__key__` string column: each row's CSV first cell, to trace a sample to its file.
        A JPEG source that already is what would be stored (target size and channels, no EXIF to drop, `quality`
        not FAST) is stored byte for byte instead of being decoded and encoded again.

        Returns:
            The paths (or URLs) of this process's files (all of them when one process packs; a family's manifest
            `{dst_path}.manifest.json` and the skip report are not listed).

        Raises:
            ValueError: invalid settings, a bad CSV row, an unreadable image.
            FileNotFoundError: the CSV or listed files are missing.
            FileExistsError: the output exists and `overwrite` is False: a single file, a complete family of
                another pack, or committed shards of another pack (the message names the setting that differs).
                A complete family of this very pack is no error: there is nothing left to do.
            PermissionError: a URL `dst_path` denies writing (naming the object).
            ImportError: a URL `dst_path` without fsspec or its backend installed.

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
            "on_error": on_error,
        }
        s = dict(self._settings)
        for key, value in given.items():
            if value is not None:
                s[key] = check_setting(key, value)
        if encode == "":
            s["encode"] = None
        spec, enc = encode_spec(s, quality)
        if not isinstance(overwrite, bool):
            raise TypeError(f"'overwrite' must be a bool (got {overwrite!r})")
        nworker = check_nworker(nworker)
        dst = s["dst_path"]
        if dst is None:
            raise ValueError("'dst_path' is required (an .hdf5, .h5 or .npz file)")
        dst = local_path(os.fspath(dst))
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
        table.columns.append(Column(KEY_COLUMN, "str", "str", False, values=table.keys))
        nshard = s["shards"]
        if nshard > n:
            raise ValueError(
                f"'shards' must be <= the number of rows ({n}) so that no shard is empty (got {nshard})"
            )
        rank, nworld = resolve_place(rank, nworld)
        if nshard < nworld:
            raise ValueError(
                f"'shards' must be >= nworld ({nworld} packing processes) so that each has a shard to pack "
                f"(got {nshard}); pass shards={nworld} or more, or pack in one process (rank=0, nworld=1)"
            )
        skip = s["on_error"] == "skip"
        refs = resolve_refs(table, s["file_dir"], s["is_seq"], skip) if enc is not None else []
        # shard boundaries are fixed before any row is skipped, so every process cuts the same shards
        bounds = [int(x) for x in np.cumsum([0] + [len(p) for p in np.array_split(np.arange(n), nshard)])]
        settings = pack_settings(s, spec, quality, kind)
        # the digests cover every column, the `__key__` column included
        digests = [rows_digest(table.columns, bounds[i], bounds[i + 1]) for i in range(nshard)]
        packs = [pack_record(settings, d, bounds[i + 1] - bounds[i]) for i, d in enumerate(digests)]

        def pack_each(
            target: str, finals: list[str], run: str, todo: list[int], files: dict[int, str]
        ) -> None:
            # each shard committed with its part record as soon as it is packed: a resumable or shared pack
            show = verbose and get_rank() <= 0 and rank == 0  # one progress line per pack, not per process
            self._run(
                table, refs, spec, kind, target, finals, [], nworker, show, s, run, packs, bounds, todo, files
            )

        if is_url(dst) and nworld > 1:
            # each process packs and uploads its own shards with their part records; the one that then finds every
            # part record at the URL writes the manifest. The run id is derived as on a disk, so the shards are
            # byte for byte those of any other pack of the same rows and settings
            run = run_id(dst, settings, digests)
            mine = shards_of(rank, nworld, nshard)
            files = {i: files_digest(refs, bounds[i], bounds[i + 1]) for i in mine}

            def pack_share(local: str, todo: list[int]) -> None:
                target, finals, _ = prepare_output(local, nshard, True)
                pack_each(target, finals, run, todo, files)

            urls = shard_names(dst, nshard)
            names = [u.rsplit("/", 1)[-1] for u in urls]
            pack_share_to_url(dst, names, run, files, overwrite, storage_options, work_dir, pack_share)
            return [urls[i] for i in mine]
        if is_url(dst):
            show = verbose and get_rank() <= 0

            def pack_local(local: str, run: str) -> None:
                target, finals, family = prepare_output(local, nshard, True)
                existing = [*family.finals, *family.parts]
                self._run(
                    table, refs, spec, kind, target, finals, existing, nworker, show, s, run, packs, bounds
                )

            pack_to_url(dst, nshard, overwrite, storage_options, work_dir, show, pack_local)
            return shard_names(dst, nshard)
        # overwriting in one process keeps the old data readable until the new family is complete; anything else
        # of several shards commits shard by shard, so that a rerun resumes
        at_once = nshard == 1 or (overwrite and nworld == 1)
        # every file operation below uses the resolved name, so that relative, `./` and symlinked spellings of one
        # file compare equal; a symlink at dst_path is followed (its target is replaced, the link kept)
        target, finals, family = prepare_output(dst, nshard, overwrite, sweep=nworld == 1, refuse=at_once)
        mine = shards_of(rank, nworld, nshard)
        if nworld > 1:
            # processes on other machines share this directory: their pids mean nothing here
            remove_stale_temps(target, only=[finals[i] for i in mine])
        run = run_id(target, settings, digests)
        show = verbose and get_rank() <= 0 and rank == 0  # one progress line per pack, not per process
        if at_once:
            existing = [*family.finals, *family.parts]
            self._run(table, refs, spec, kind, target, finals, existing, nworker, show, s, run, packs, bounds)
        else:
            files = {i: files_digest(refs, bounds[i], bounds[i + 1]) for i in mine}
            todo = shards_to_pack(target, kind, family, finals, files, overwrite, run, settings, digests)
            if todo:
                pack_each(target, finals, run, todo, files)
            if todo is not None:
                finish_family(target, nshard, run, [finals[i] for i in mine])
        spelled = finals if os.path.islink(dst) else shard_names(dst, nshard)
        # the paths as the caller spelled them, unless dst_path is a link (then where the data went)
        return [spelled[i] for i in mine]

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
        run: str,
        packs: list[str],
        bounds: list[int],
        todo: list[int] | None = None,
        files: dict[int, str] | None = None,
    ) -> None:
        """Pack the shards `todo` (None: all, placed together at the end; else each committed with its part record
        as soon as it is written, for a resumable or shared pack)."""
        start = time.perf_counter()
        nshard = len(finals)
        each = todo is not None
        indices = todo if todo is not None else list(range(nshard))
        n = sum(bounds[i + 1] - bounds[i] for i in indices)
        temps = [temp_name(f) for f in finals]
        report = skipped_path(dst)
        skipped: list[tuple[int, str, str, str]] = []
        records: list[dict[str, Any]] = []
        placed: list[str] = []
        writers: list[Any] = []
        names, dtypes = [c.name for c in table.columns], [c.dtype for c in table.columns]
        handlers = install_handlers()
        progress = Progress(n, f"packing {os.path.basename(dst)}", enabled=show)
        try:
            is_seq = s["is_seq"]
            with RowEncoder(min(nworker, max(1, n // 8)) if spec else 1, spec) as encoder:
                for i in indices:
                    a, b = bounds[i], bounds[i + 1]
                    first_skip = len(skipped)
                    cols = part_columns(table.columns, a, b)
                    layout = None
                    if spec is not None:
                        nframes = [len(v) for v in cols[0].values] if is_seq else []
                        layout = ImageLayout(
                            spec.encode, spec.channel, spec.height, spec.width, is_seq, nframes
                        )
                    meta = file_meta(cols, is_seq, i if nshard > 1 else -1, nshard, len(table), run)
                    meta[PACK_KEY] = packs[i]
                    writer = make_writer(temps[i], kind, cols, layout, meta)
                    writers.append(writer)
                    keep = np.ones(b - a, dtype=bool)
                    if spec is not None:
                        pos = 0
                        for results in encoder.run(refs[a:b]):
                            for k, item in enumerate(results):
                                if isinstance(item, RowError):
                                    results[k] = stand_in(item, table, a + pos + k, spec, s["on_error"])
                                    keep[pos + k] = False
                                    skipped.append((table.lines[a + pos + k], table.keys[a + pos + k], *item))
                                    progress.skipped += 1
                            check_shapes(results, spec, table.lines, a + pos, table.path)
                            writer.write_images(pos, results)
                            pos += len(results)
                            progress.update(len(results))
                            check_terminated()
                    else:
                        progress.update(b - a)
                    writer.finish()
                    if not keep.all():
                        drop_rows(temps[i], kind, keep)
                    if nshard > 1:
                        records.append(shard_record(temps[i], finals[i], int(keep.sum()), int((~keep).sum())))
                    if each:
                        # the shard, then its record: a crash between leaves a shard whose own metadata vouches for
                        # it; the record carries the shard's report lines to whoever writes the manifest
                        commit(temps[i], finals[i])
                        lines = skipped[first_skip:]
                        write_part(finals[i], run, names, dtypes, records[-1], (files or {}).get(i), lines)
            if len(skipped) == n and len(indices) == nshard:
                for i in indices if each else []:  # committed one by one: no family of empty shards stays
                    discard(part_path(finals[i]))
                    discard(finals[i])
                raise ValueError(
                    f"every row of {os.path.basename(table.path)} was skipped (on_error='skip'), e.g. row "
                    f"{skipped[0][0]}: {skipped[0][3]}; nothing to pack"
                )
            if skipped and not each:
                # committed with the data set it describes (before a family's manifest, before a single file)
                write_skipped(temp_name(report), skipped)
                temps, outputs = [temp_name(report), *temps], [report, *finals]
            else:
                outputs = finals
            check_terminated()
            if not each:
                # a signal now would leave a half-placed output: it is acted on after the commit
                with signals_deferred():
                    place_output(dst, temps, outputs, existing, placed, records, run, names, dtypes)
                check_terminated()
        except Terminated:
            abandon(writers, temps, placed)
            restore_handlers(handlers)
            handlers = None
            raise SystemExit(143) from None
        except BaseException:
            abandon(writers, temps, placed)
            raise
        finally:
            if handlers is not None:
                restore_handlers(handlers)
        left_out = f"; skipped {len(skipped)} row(s), listed in {os.path.basename(report)}" if skipped else ""
        progress.close(
            f"wrote {', '.join(os.path.basename(finals[i]) for i in indices)} in {time.perf_counter() - start:.1f} s"
            f"{left_out}"
            if show
            else None
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._settings.items())
        return f"FuelGenerator({shown})"


Generator = FuelGenerator
