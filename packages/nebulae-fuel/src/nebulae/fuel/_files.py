"""fuel's on-disk layout: shard names, family discovery, temp files, atomic commits and the family manifest."""

from __future__ import annotations

import contextlib
import hashlib
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
MANIFEST_FORMAT = "nebulae-fuel-manifest"
MANIFEST_VERSION = 1
_RERUN = "rerun generate(..., overwrite=True) to write the data set again"


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


def place_output(
    target: str,
    temps: list[str],
    finals: list[str],
    existing: list[str],
    placed: list[str],
    records: list[dict[str, Any]],
    run: str,
    columns: list[str],
    dtypes: list[str],
) -> None:
    """Rename a pack's finished temp files into place, commit, then remove what is left of the old output.

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
        keep.append(write_manifest(target, run, columns, dtypes, records))
    leftovers = [old for old in existing if not any(same_path(old, k) for k in keep)]
    # an old single file of the family's name shadows the new family: removing it is the commit
    leftovers.sort(key=lambda old: not same_path(old, target))
    if not (leftovers and same_path(leftovers[0], target)):
        placed.clear()
    for old in leftovers:
        discard(old)
        placed.clear()
    fsync_dir(directory)


def discard(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


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


# -- run ids and the manifest -------------------------------------------------------------------------------


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


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def shard_record(tmp: str, final: str, rows: int, skipped: int = 0) -> dict[str, Any]:
    """A manifest entry for the finished temp file `tmp` that will be placed at `final`; `skipped` counts the rows of
    its share that on_error='skip' left out."""
    return {
        "file": os.path.basename(final),
        "rows": rows,
        "bytes": os.path.getsize(tmp),
        "sha256": sha256_file(tmp),
        "skipped": skipped,
    }


def write_manifest(
    path: str, run: str, columns: list[str], dtypes: list[str], shards: list[dict[str, Any]]
) -> str:
    """Atomically write the manifest of the family `path`: the family's commit point."""
    body = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "run": run,
        "columns": columns,
        "dtypes": dtypes,
        "rows": sum(int(s["rows"]) for s in shards),
        "skipped": sum(int(s.get("skipped", 0)) for s in shards),
        "shards": shards,
    }
    return write_json(manifest_path(path), body)


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


def _valid_entry(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    file = entry.get("file")
    # names only: a manifest never points outside its own directory
    named = isinstance(file, str) and os.path.basename(file) == file and file not in ("", ".", "..")
    return named and isinstance(entry.get("bytes"), int) and isinstance(entry.get("rows"), int)


def read_manifest(manifest: str) -> dict[str, Any]:
    """The parsed manifest, checked for shape; a ValueError naming it otherwise."""
    name = os.path.basename(manifest)
    try:
        with open(manifest, encoding="utf-8") as fh:
            body = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ValueError(f"manifest {name} cannot be read ({exc}); {_RERUN}") from None
    ok = (
        isinstance(body, dict)
        and body.get("format") == MANIFEST_FORMAT
        and isinstance(body.get("run"), str)
        and isinstance(body.get("shards"), list)
        and body["shards"]
    )
    ok = ok and all(_valid_entry(entry) for entry in body["shards"])
    if not ok:
        raise ValueError(
            f"manifest {name} is not a nebulae fuel manifest (format {MANIFEST_FORMAT!r}); {_RERUN}"
        )
    if body.get("version") != MANIFEST_VERSION:
        raise ValueError(
            f"manifest {name} has version {body.get('version')!r}; this nebulae-fuel reads version "
            f"{MANIFEST_VERSION} (upgrade nebulae-fuel, or {_RERUN})"
        )
    return body


# -- opening a data set -------------------------------------------------------------------------------------


def _manifest_shards(manifest: str, kind: str) -> list[str]:
    """The shards the manifest lists, after the cheap checks: present, of the listed size, of the listed run."""
    body = read_manifest(manifest)
    directory = os.path.dirname(manifest)
    run = body["run"]
    paths: list[str] = []
    bad: list[str] = []
    for entry in body["shards"]:
        path = os.path.join(directory, entry["file"])
        paths.append(path)
        if not os.path.isfile(path):
            bad.append(f"{entry['file']} (missing)")
        elif os.path.getsize(path) != entry["bytes"]:
            bad.append(f"{entry['file']} ({os.path.getsize(path)} bytes, listed {entry['bytes']})")
        elif read_run_id(path, kind) != run:
            bad.append(f"{entry['file']} (written by another run)")
    if bad:
        raise ValueError(
            f"shard family {os.path.basename(manifest)} is incomplete or mixed, e.g. a pack was interrupted: "
            f"{'; '.join(bad)}; {_RERUN}"
        )
    return paths


def _discover_shards(path: str, kind: str) -> list[str]:
    """A family without a manifest: `{stem}_0`, `{stem}_1`, ... while they exist, all from one run."""
    shards: list[str] = []
    while os.path.exists(shard_name(path, len(shards))):
        shards.append(shard_name(path, len(shards)))
    if not shards:
        raise FileNotFoundError(
            f"'data_path' {path!r} does not exist (nor does its first shard {shard_name(path, 0)})"
        )
    metas = {s: read_meta(s, kind) for s in shards}
    runs = {s: (str(m[RUN_KEY]) if m.get(RUN_KEY) is not None else None) for s, m in metas.items()}
    if len(set(runs.values())) > 1:
        # files of the original Nebulae carry no run id and keep loading; a mix of runs (or of run ids and none)
        # is what an interrupted replacement leaves behind
        groups: dict[str | None, list[str]] = {}
        for s, run in runs.items():
            groups.setdefault(run, []).append(os.path.basename(s))
        shown = " vs ".join(", ".join(names) for names in groups.values())
        raise ValueError(
            f"shards of {os.path.basename(path)} come from different packing runs ({shown}) and no manifest "
            f"{os.path.basename(manifest_path(path))} says which belong together; {_RERUN}"
        )
    # a resumable pack commits shard by shard and writes the manifest last: shards of one run, fewer than
    # that run packs, without a manifest, are a pack still running or interrupted (older files load as before)
    want = metas[shards[0]].get("nebulae_num_shards")
    if runs[shards[0]] is not None and isinstance(want, (int, np.integer)) and 1 < want != len(shards):
        raise ValueError(
            f"shard family {os.path.basename(path)} is incomplete: {len(shards)} of its {int(want)} shards exist "
            f"and there is no manifest {os.path.basename(manifest_path(path))} (a pack is still running or was "
            "interrupted); rerun the same pack command to finish it, or run `python -m nebulae.fuel index` on it "
            "once all its shards exist"
        )
    return shards


def open_family(path: str, kind: str) -> list[str]:
    """The files of the data set named `path` (a file, a family's name, or its manifest), checked as one run.

    An existing file of that name is the data set; else its family's manifest, when there is one, lists exactly the
    shards to read; else the shards are found by name.
    """
    if path.endswith(MANIFEST_SUFFIX):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"'data_path' manifest {path!r} does not exist")
        return _manifest_shards(path, kind)
    if os.path.exists(path):
        return [path]
    manifest = manifest_path(path)
    if os.path.isfile(manifest):
        return _manifest_shards(manifest, kind)
    return _discover_shards(path, kind)


def data_set_name(path: str) -> str:
    """The name a data set path refers to (a manifest path stands for its family's name)."""
    return path[: -len(MANIFEST_SUFFIX)] if path.endswith(MANIFEST_SUFFIX) else path


def verify(path: str) -> list[str]:
    """Check every shard of the family `path` against its manifest's sha256 (reads every byte).

    Returns:
        The checked shard paths.

    Raises:
        ValueError: a shard is missing, changed, or from another run; or there is no manifest.
    """
    name = data_set_name(path)
    manifest = manifest_path(name)
    if not os.path.isfile(manifest):
        raise ValueError(
            f"{os.path.basename(name)} has no manifest {os.path.basename(manifest)} to verify against"
        )
    kind = kind_of(name) or "hdf5"
    paths = _manifest_shards(manifest, kind)
    body = read_manifest(manifest)
    bad = [
        entry["file"]
        for p, entry in zip(paths, body["shards"], strict=True)
        if sha256_file(p) != entry.get("sha256")
    ]
    if bad:
        raise ValueError(
            f"shard(s) {', '.join(bad)} of {os.path.basename(manifest)} do not match their sha256 (changed on disk); "
            f"{_RERUN}"
        )
    return paths


def refresh_manifest_entry(path: str, added: str | None = None, removed: str | None = None) -> None:
    """After fill()/deduct() rewrote the shard `path` in place, update its size and checksum (and the column
    added or removed) in its family's manifest, if it belongs to one (a shard keeps its run id through an edit)."""
    m = re.match(r"^(?P<stem>.*)_\d+(?P<suffix>\.[^.]+)$", os.path.basename(path))
    if not m:
        return
    manifest = os.path.join(os.path.dirname(os.path.abspath(path)), m["stem"] + m["suffix"] + MANIFEST_SUFFIX)
    if not os.path.isfile(manifest):
        return
    body = read_manifest(manifest)
    name = os.path.basename(path)
    entries = [e for e in body["shards"] if e["file"] == name]
    if not entries:
        return
    for entry in entries:
        entry.update(bytes=os.path.getsize(path), sha256=sha256_file(path))
    columns, dtypes = list(body.get("columns", [])), list(body.get("dtypes", []))
    if removed in columns and len(dtypes) == len(columns):
        del dtypes[columns.index(removed)]
        columns.remove(removed)
    if added is not None and added not in columns and len(dtypes) == len(columns):
        columns.append(added)
        dtypes.append("")  # fill() stores whatever array it is given: no CSV dtype
    write_manifest(data_set_name(manifest), body["run"], columns, dtypes, body["shards"])
