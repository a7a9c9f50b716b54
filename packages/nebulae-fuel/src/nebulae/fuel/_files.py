"""fuel's on-disk layout: shard names, family discovery, temp files, atomic commits and run ids (the manifest is
`_manifest.py`)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._constants import HDF5_SUFFIXES, META_KEY, NPZ_SUFFIXES

RUN_KEY = "nebulae_run"
MANIFEST_SUFFIX = ".manifest.json"
SKIPPED_SUFFIX = ".skipped.csv"
SKIPPED_HEADER = ("row", "file", "reason", "message")
PART_SUFFIX = ".part.json"


# -- names --------------------------------------------------------------------------------------------------


def kind_of(path: str) -> str | None:
    """'hdf5', 'npz', or None for a path with another suffix."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix in NPZ_SUFFIXES:
        return "npz"
    return None


def require_kind(path: str, arg: str, *, manifest: bool = False) -> str:
    """The kind of `path` for the argument named `arg`; a ValueError naming both otherwise.

    With `manifest`, a family's manifest path names the kind of its family.
    """
    kind = kind_of(data_set_name(path) if manifest else path)
    if kind is None:
        also = ", or a family's .manifest.json" if manifest else ""
        raise ValueError(f"{arg} must be an .hdf5, .h5 or .npz file{also} (got {path!r})")
    return kind


def shard_name(path: str, index: int) -> str:
    """Shard `index` of the family named `path`: `{stem}_{index}{suffix}`."""
    stem, suffix = os.path.splitext(path)
    return f"{stem}_{index}{suffix}"


def shard_names(path: str, nshard: int) -> list[str]:
    """The files of a data set at `path`: itself, or its shards."""
    return [path] if nshard == 1 else [shard_name(path, i) for i in range(nshard)]


def manifest_path(path: str) -> str:
    """The manifest of the shard family named `path` (`train.hdf5` -> `train.hdf5.manifest.json`)."""
    return path + MANIFEST_SUFFIX


def skipped_path(path: str) -> str:
    """The report of the rows that `on_error='skip'` left out of the data set named `path`."""
    return path + SKIPPED_SUFFIX


def write_skipped(tmp: str, entries: list[tuple[int, str, str, str]]) -> None:
    """The skip report's CSV (row, file, reason, message per left-out row, in row order) into the temp file `tmp`;
    it is committed with the data set it describes."""
    import csv

    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(SKIPPED_HEADER)
        out.writerows(entries)


def temp_name(final: str) -> str:
    """This process's temp file for `final`: same directory (so the rename is atomic), pid in the name (so a later
    run knows whether its writer is still alive)."""
    return f"{final}.tmp-{os.getpid()}"


def spill_name(tmp: str) -> str:
    """The side file an NPZ writer spills encoded images to while it writes the temp file `tmp`."""
    return f"{tmp}.blob"


def same_path(a: str, b: str) -> bool:
    """Whether two spellings name one file (relative/absolute, `./`, symlinked directories)."""
    return os.path.realpath(a) == os.path.realpath(b)


def part_path(shard: str) -> str:
    """The record a resumable pack commits next to a finished shard (`t_3.hdf5` -> `t_3.hdf5.part.json`)."""
    return shard + PART_SUFFIX


def family_pattern(path: str) -> re.Pattern[str]:
    """Names of `path`, its shards, its manifest, its skip report, the shards' part records, and their temp files
    (a `.blob` is an NPZ writer's spill, or a file rewritten without its skipped rows)."""
    base = os.path.basename(path)
    stem, suffix = os.path.splitext(base)
    return re.compile(
        rf"^(?P<final>{re.escape(base)}(?:(?P<manifest>{re.escape(MANIFEST_SUFFIX)})"
        rf"|(?P<report>{re.escape(SKIPPED_SUFFIX)}))?"
        rf"|{re.escape(stem)}_\d+{re.escape(suffix)}(?P<part>{re.escape(PART_SUFFIX)})?)"
        rf"(?:\.tmp-(?P<pid>\d+)(?:\.blob)?)?$"
    )


@dataclass
class Family:
    """What of a data set's family exists on disk (absolute paths)."""

    files: list[str] = field(default_factory=list)  # the single file and shards, sorted by name
    manifest: str | None = None
    temps: list[tuple[str, int]] = field(default_factory=list)  # (temp file, writer pid)
    report: str | None = None  # the skip report
    parts: list[str] = field(default_factory=list)  # part records of a resumable pack's committed shards

    @property
    def finals(self) -> list[str]:
        return [
            *([self.manifest] if self.manifest else []),
            *self.files,
            *([self.report] if self.report else []),
        ]


def family_files(path: str) -> Family:
    """Scan the directory of `path` for its family."""
    directory = os.path.dirname(os.path.abspath(path))
    pattern = family_pattern(path)
    found = Family()
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return found
    for name in names:
        m = pattern.match(name)
        if not m:
            continue
        full = os.path.join(directory, name)
        if m.group("pid"):
            found.temps.append((full, int(m.group("pid"))))
        elif m.group("manifest"):
            found.manifest = full
        elif m.group("report"):
            found.report = full
        elif m.group("part"):
            found.parts.append(full)
        else:
            found.files.append(full)
    return found


# -- committing ---------------------------------------------------------------------------------------------


def fsync_dir(directory: str) -> None:
    """Make renames in `directory` durable (best effort: some file systems refuse a directory fsync)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(tmp: str, final: str, sync_dir: bool = True) -> None:
    """Put the finished temp file `tmp` in place of `final`: flushed to disk first, then one atomic rename."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    if sync_dir:
        fsync_dir(os.path.dirname(os.path.abspath(final)))


def discard(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def abandon(writers: list[Any], temps: list[str], placed: list[str]) -> None:
    """Undo a write that failed: abort its open writers, remove its temp files (with any NPZ spill file) and the
    files it had already placed."""
    for writer in writers:
        writer.abort()
    for path in [*temps, *(spill_name(t) for t in temps), *placed]:
        discard(path)


def target_of(path: str, sweep: bool = True) -> str:
    """The file a writer replaces for `path`: resolved, so that a symlink's target is rewritten (the link stays)
    and the temp file sits next to it, on the same file system; dead writers' temp files of it are removed
    first (unless `sweep` is False)."""
    target = os.path.realpath(path)
    if sweep:
        remove_stale_temps(target)
    return target


def prepare_output(
    dst: str, nshard: int, overwrite: bool, sweep: bool = True, refuse: bool = True
) -> tuple[str, list[str], Family]:
    """For a pack into `dst` of `nshard` files: the resolved target (its directory created), its final file names,
    and the files of an existing output of that name. With `refuse`, an existing output is a FileExistsError unless
    `overwrite`; a resumable pack passes False and decides shard by shard. `sweep` as in `target_of`."""
    target = target_of(dst, sweep)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    family = family_files(target)
    if refuse and family.finals and not overwrite:
        raise FileExistsError(exists_message(family))
    return target, shard_names(target, nshard), family


def exists_message(family: Family) -> str:
    """What a pack says when it will not replace the existing output `family`."""
    existing = family.finals
    return (
        f"{(family.files or existing)[0]!r} already exists ({len(existing)} file(s) of this output); pass "
        "overwrite=True to replace them or choose another dst_path"
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: str, only: list[str] | None = None) -> list[str]:
    """Delete temp files of this family left by dead writers (e.g. a SIGKILLed pack); with `only`, just those of
    the named files (a process that shares the destination with others on other machines, whose pids it cannot
    check, touches only its own shards' temp files)."""
    removed = []
    for tmp, pid in family_files(path).temps:
        if only is not None and not any(tmp.startswith(f"{name}.") for name in only):  # its temp or part's
            continue
        if pid != os.getpid() and not pid_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
                removed.append(tmp)
    return removed


# -- run ids -------------------------------------------------------------------------------------------


def new_run_id() -> str:
    return uuid.uuid4().hex


def read_meta(path: str, kind: str) -> dict[str, Any]:
    """A packed file's metadata (empty for files without any).

    Reads only the HDF5 root attributes, or the NPZ's small metadata entry; HDF5 string values come back as str.
    """
    name = os.path.basename(path)
    try:
        if kind == "hdf5":
            import h5py

            with h5py.File(path, "r") as f:
                attrs = dict(f.attrs.items())
            return {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in attrs.items()}
        with zipfile.ZipFile(path) as zf:
            if f"{META_KEY}.npy" not in zf.namelist():
                return {}
            with zf.open(f"{META_KEY}.npy") as fh:
                meta = json.loads(str(np.lib.format.read_array(fh, allow_pickle=False).reshape(-1)[0]))
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(
            f"{name} is not a readable {kind.upper()} file (truncated or foreign?): {exc}"
        ) from None


def read_run_id(path: str, kind: str) -> str | None:
    """The run id stored in a packed file, None for files without one (packed before run ids existed)."""
    run = read_meta(path, kind).get(RUN_KEY)
    return str(run) if run is not None else None


def write_json(final: str, body: dict[str, Any]) -> str:
    """Atomically write `body` as JSON to `final` (a manifest or a shard's part record)."""
    tmp = temp_name(final)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(body, fh, indent=1)
            fh.write("\n")
        commit(tmp, final)
    except BaseException:
        discard(tmp)
        raise
    return final


def data_set_name(path: str) -> str:
    """The name a data set path refers to (a manifest path stands for its family's name)."""
    return path[: -len(MANIFEST_SUFFIX)] if path.endswith(MANIFEST_SUFFIX) else path
