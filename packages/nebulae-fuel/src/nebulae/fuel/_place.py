"""Packing as one of many processes, and resuming a pack: a process's place, the settings a shard records, the run
id that every process derives alike, which shards are still to pack, the part records committed next to finished
shards, and the manifest written from them."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ._constants import SKIPPED_KEY, Quality
from ._files import (
    RUN_KEY,
    commit,
    discard,
    exists_message,
    family_files,
    fsync_dir,
    kind_of,
    manifest_path,
    part_path,
    read_meta,
    same_path,
    shard_name,
    shard_names,
    skipped_path,
    temp_name,
    write_json,
    write_skipped,
)
from ._image import EncodeSpec
from ._manifest import read_manifest, sha256_file, write_manifest
from ._validate import int_in

PACK_KEY = "nebulae_pack"  # a shard's settings and the digest of its rows, for resuming
PART_FORMAT = "nebulae-fuel-part"
# where launchers say which process this is: torchrun's first, then srun's
_LAUNCHERS = (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"))


def _env_int(name: str) -> int:
    text = os.environ[name].strip()
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer (got {text!r})") from None


def resolve_place(rank: Any, nworld: Any) -> tuple[int, int]:
    """This process's place (rank, number of processes) among those packing one destination.

    Explicit `rank`/`nworld` win; else torchrun's RANK/WORLD_SIZE, else srun's SLURM_PROCID/SLURM_NTASKS; else
    (0, 1), one process packing everything.
    """
    if (rank is None) != (nworld is None):
        given, missing = ("rank", "nworld") if nworld is None else ("nworld", "rank")
        raise TypeError(
            f"'{given}' was given without '{missing}': pass both (or neither, to use the launcher's)"
        )
    if rank is None:
        for rank_var, world_var in _LAUNCHERS:
            has_rank, has_world = (bool(os.environ.get(v, "").strip()) for v in (rank_var, world_var))
            if has_rank and has_world:
                rank, nworld = _env_int(rank_var), _env_int(world_var)
                source = f"environment variables {rank_var}={rank}, {world_var}={nworld}"
                break
            if has_rank != has_world:
                given, missing = (rank_var, world_var) if has_rank else (world_var, rank_var)
                raise ValueError(
                    f"environment variable {given} is set but {missing} is not: set both, or neither"
                )
        else:
            return 0, 1
        if nworld < 1 or not 0 <= rank < nworld:
            raise ValueError(f"{source}: the rank must be in 0..{max(nworld, 1)}-1 and the world size >= 1")
        return rank, nworld
    nworld = int_in("nworld", nworld, 1, expected="an int >= 1 (the number of packing processes)")
    rank = int_in("rank", rank, 0, nworld - 1, expected=f"an int in 0..{nworld - 1} (this process's place)")
    return rank, nworld


def shards_of(rank: int, nworld: int, nshard: int) -> list[int]:
    """The shards one place packs: every `nworld`-th, starting at its rank (so that ranks that start late or run
    slow still share the work evenly)."""
    return list(range(rank, nshard, nworld))


# -- what a shard is made of ------------------------------------------------------------------------------


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else repr(part).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def rows_digest(columns: list[Any], start: int, stop: int) -> str:
    """A digest of the CSV values of rows [start, stop): what a shard of them holds besides its images."""
    return _digest([(c.name, c.dtype, c.values[start:stop]) for c in columns])


def files_digest(refs: list[Any], start: int, stop: int) -> str:
    """A digest of the size and modification time of the files of rows [start, stop), so that a resumed pack
    packs again a shard whose files changed since it was committed."""
    stats: list[tuple[int, int]] = []
    for ref in refs[start:stop]:
        for path in ref if isinstance(ref, list) else [ref]:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                stats.append((-1, -1))  # a file on_error='skip' leaves out: its appearing changes the shard
                continue
            stats.append((st.st_size, st.st_mtime_ns))
    return _digest(stats)


def run_id(name: str, settings: dict[str, Any], digests: list[str]) -> str:
    """The run id of a pack: a digest of the output's name, its settings and every shard's rows. Every process of
    one pack derives it alike, so each shard carries the same id whoever packed it, and a rerun can tell its own
    committed shards from another pack's."""
    return _digest(os.path.basename(name), json.dumps(settings, sort_keys=True), digests)[:32]


def pack_record(settings: dict[str, Any], digest: str, rows: int) -> str:
    """The metadata value a resumable shard carries: its settings, the digest of its rows and their number (not
    its files' times: a shard's bytes depend only on the CSV, the settings and the files' contents)."""
    return json.dumps({"settings": settings, "rows": digest, "nrows": rows}, sort_keys=True)


def mismatch(path: str, meta: dict[str, Any], settings: dict[str, Any], digest: str) -> str:
    """Why the existing shard `path` is not one this pack would write: the setting that differs, or its rows."""
    name = os.path.basename(path)
    fix = "rerun with the same settings to resume that pack, or pass overwrite=True to replace the data set"
    try:
        stored = json.loads(str(meta.get(PACK_KEY)))
    except ValueError:
        stored = None
    if not isinstance(stored, dict) or not isinstance(stored.get("settings"), dict):
        return f"{name!r} already exists and holds no packing record to resume from; {fix}"
    old = stored["settings"]
    for key in sorted(set(old) | set(settings)):
        if old.get(key) != settings.get(key):
            return f"{name!r} was packed with {key}={old.get(key)!r}, this pack has {key}={settings.get(key)!r}; {fix}"
    if stored.get("rows") != digest:
        return (
            f"{name!r} was packed from other rows (the CSV's lines for it, or the size or modification time of "
            f"their files, changed since); {fix}"
        )
    return (
        f"{name!r} belongs to a pack of other rows (another shard's CSV lines or files changed since); {fix}"
    )


# -- part records and the manifest -------------------------------------------------------------------------


def write_part(
    shard: str,
    run: str,
    columns: list[str],
    dtypes: list[str],
    record: dict[str, Any],
    files: str | None,
    skipped: list[Any] | None = None,
) -> None:
    """Commit the part record of the committed shard `shard`: what its family's manifest lists for it, the digest
    of its files' sizes and times when it was packed, and the skip report's lines of its rows (row order)."""
    body = {
        "format": PART_FORMAT,
        "run": run,
        "columns": columns,
        "dtypes": dtypes,
        "shard": record,
        "files": files,
        "skipped": [list(line) for line in skipped or []],
    }
    write_json(part_path(shard), body)


def read_part(shard: str) -> dict[str, Any] | None:
    """The part record of `shard` if it is there, readable, and matches the shard's size; else None."""
    try:
        with open(part_path(shard), encoding="utf-8") as fh:
            body = json.load(fh)
        ok = body["format"] == PART_FORMAT and body["shard"]["bytes"] == os.path.getsize(shard)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return body if ok else None


def shard_part(shard: str, kind: str, run: str, files: str | None = None) -> dict[str, Any] | None:
    """The part record of the committed shard `shard` of the run `run`, rebuilt from the shard itself (reading all
    of it for its checksum; `files` the digest of its files now) when a crash came between the shard's commit and
    its record's."""
    part = read_part(shard)
    if part is not None and part.get("run") == run:
        return part
    meta = read_meta(shard, kind)
    if str(meta.get(RUN_KEY)) != run:
        return None
    try:
        rows = int(json.loads(str(meta.get(PACK_KEY)))["nrows"])
    except (ValueError, KeyError, TypeError):
        return None  # not written by a resumable pack: only a rerun can vouch for it
    if int(meta.get(SKIPPED_KEY, 0)):
        return None  # its skip report's lines went with the lost record: only packing it again restores them
    record = {
        "file": os.path.basename(shard),
        "rows": rows,
        "bytes": os.path.getsize(shard),
        "sha256": sha256_file(shard),
        "skipped": 0,
    }
    columns, dtypes = _listed(meta.get("nebulae_columns")), _listed(meta.get("nebulae_dtypes"))
    write_part(shard, run, columns, dtypes, record, files)
    return read_part(shard)


def _listed(value: Any) -> list[Any]:
    # HDF5 attributes hold lists as JSON text, the NPZ metadata as JSON lists
    if isinstance(value, str):
        value = json.loads(value)
    return list(value) if isinstance(value, list) else []


def finish_family(
    target: str, nshard: int, run: str | None = None, own: list[str] | None = None
) -> str | None:
    """Write the manifest of the family `target` if all its `nshard` shards are committed with part records of one
    run (`run`, when given), then remove what the manifest supersedes: part records, an old single file of the
    family's name, shards beyond `nshard`. Returns the manifest path, or None while shards are missing.

    Any process may call it, any number of times: the one that finds the family complete writes the manifest, and
    two that both do write the same one. Only the destination itself is consulted. `own` names the calling
    process's shards, whose part records it removes again if the family turns out finished meanwhile by another
    process (which removed the records while this one rebuilt them).
    """
    finals = shard_names(target, nshard)
    parts = [read_part(f) for f in finals]
    runs = {p["run"] for p in parts if p is not None}
    if any(p is None for p in parts) or len(runs) != 1 or (run is not None and runs != {run}):
        if own and run is not None and _manifest_run(target) == run:
            for shard in own:
                discard(part_path(shard))
        return None
    manifest = write_family(target, [p for p in parts if p is not None])
    family = family_files(target)
    for old in [*family.parts, *family.files]:
        if not any(same_path(old, f) for f in finals):
            discard(old)
    fsync_dir(os.path.dirname(target))
    return manifest


def write_family(target: str, parts: list[dict[str, Any]]) -> str:
    """Write the skip report and then the manifest of the family `target` from the part records `parts` of all its
    shards (one run, shard order); the manifest's path."""
    _write_report(target, [line for p in parts for line in p.get("skipped") or []])
    first = parts[0]
    return write_manifest(
        target, first["run"], first["columns"], first["dtypes"], [p["shard"] for p in parts]
    )


def is_part(body: Any, run: str) -> bool:
    """Whether `body` (a part record as read back) is a well-formed one of the run `run`."""
    return (
        isinstance(body, dict)
        and body.get("format") == PART_FORMAT
        and body.get("run") == run
        and isinstance(body.get("shard"), dict)
        and isinstance(body["shard"].get("bytes"), int)
    )


def _write_report(target: str, lines: list[Any]) -> None:
    """The family's one skip report (the shards' lines, in row order), committed before the manifest that makes the
    family readable; an older pack's report goes when this pack skipped nothing."""
    report = skipped_path(target)
    if not lines:
        discard(report)
        return
    tmp = temp_name(report)
    try:
        write_skipped(tmp, [tuple(line) for line in lines])
        commit(tmp, report)  # durable before the manifest that vouches for the family
    except BaseException:
        discard(tmp)
        raise


def _manifest_run(target: str) -> str | None:
    try:
        with open(manifest_path(target), encoding="utf-8") as fh:
            run = json.load(fh).get("run")
    except (OSError, ValueError, AttributeError):
        return None
    return run if isinstance(run, str) else None


def index_family(path: str) -> str:
    """Build the manifest of the shard family named `path` from its committed shards (`python -m nebulae.fuel
    index`): for a family whose last packing process ended before writing it.

    Raises:
        ValueError: `path` is no .hdf5/.h5/.npz name, shards are missing, or the shards come from different runs.
        FileNotFoundError: not even its first shard exists.
    """
    kind = kind_of(path)
    if kind is None:
        raise ValueError(f"'path' must name an .hdf5, .h5 or .npz shard family (got {path!r})")
    target = os.path.realpath(path)
    first = shard_name(target, 0)
    if not os.path.isfile(first):
        raise FileNotFoundError(f"{os.path.basename(first)!r}, the first shard of {path!r}, does not exist")
    meta = read_meta(first, kind)
    try:
        nshard, run = int(meta["nebulae_num_shards"]), meta[RUN_KEY]
    except (KeyError, TypeError, ValueError):
        nshard, run = 0, None
    if run is None or nshard < 2:
        raise ValueError(
            f"{os.path.basename(first)!r} carries no run id and shard count: not a shard of a pack"
        )
    run = str(run)
    missing, other = [], []
    for f in shard_names(target, int(nshard)):
        if not os.path.isfile(f):
            missing.append(os.path.basename(f))
        elif shard_part(f, kind, run) is None:
            other.append(os.path.basename(f))
    if missing or other:
        told = [f"missing: {', '.join(missing)}"] if missing else []
        told += [f"of another run: {', '.join(other)}"] if other else []
        raise ValueError(
            f"cannot index {os.path.basename(target)}: {len(missing) + len(other)} of its {nshard} shards are not "
            f"there ({'; '.join(told)}); rerun the pack command to pack them"
        )
    manifest = finish_family(target, int(nshard), run)
    if manifest is None and os.path.isfile(manifest_path(target)):
        return manifest_path(target)  # another process finished the family meanwhile
    if manifest is None:
        raise ValueError(
            f"{os.path.basename(target)} changed while it was indexed (another pack running?); retry"
        )
    return manifest


def pack_settings(s: dict[str, Any], spec: EncodeSpec | None, quality: Any, kind: str) -> dict[str, Any]:
    """The settings a shard's bytes depend on, as recorded in it (beside its rows' digest) for resuming."""
    settings = {
        "format": kind,
        "dtype": s["dtype"],
        "is_seq": s["is_seq"],
        "shards": s["shards"],
        "encode": spec.encode if spec else None,
        "height": s["height"],
        "width": s["width"],
        "channel": s["channel"],
        "keep_exif": s["keep_exif"],
        "quality": Quality(quality).name if quality is not None else None,
        "max_pixels": spec.max_pixels if spec else None,
        "on_error": s["on_error"],
        "passthrough": spec.passthrough if spec else None,
    }
    return json.loads(json.dumps(settings))  # as it reads back: lists, not tuples


def shards_to_pack(
    target: str,
    kind: str,
    family: Any,
    finals: list[str],
    files: dict[int, str],
    overwrite: bool,
    run: str,
    settings: dict[str, Any],
    digests: list[str],
) -> list[int] | None:
    """The shards of this process (the keys of `files`, its shards' files digests) still to pack; None when the
    family is complete from this very pack."""
    if not overwrite:
        if family.manifest:
            if family_is_complete(family.manifest, run, finals):
                return None
            told = exists_message(family)
            if os.path.isfile(finals[0]):  # say what differs from this pack
                told += f" ({mismatch(finals[0], read_meta(finals[0], kind), settings, digests[0])})"
            raise FileExistsError(told)
        others = [f for f in family.files if not any(same_path(f, g) for g in finals)]
        if others:
            raise FileExistsError(
                f"{others[0]!r} already exists and is no shard of this {len(finals)}-shard pack; pass "
                "overwrite=True to replace the data set or choose another dst_path"
            )
    todo = []
    for i, now in files.items():
        final = finals[i]
        if overwrite or not os.path.isfile(final):
            todo.append(i)
            continue
        meta = read_meta(final, kind)
        ours = str(meta.get(RUN_KEY)) == run
        part = shard_part(final, kind, run, now) if ours else None
        if part is None and ours:
            # this pack's, but its record (with its skip report's lines) was lost: pack it again
            todo.append(i)
            continue
        if part is None:
            raise FileExistsError(mismatch(final, meta, settings, digests[i]))
        if part.get("files") != now:
            todo.append(i)  # committed by an earlier try of this pack, but its files changed since
        # else committed by an earlier try of this pack: kept
    return todo


def family_is_complete(manifest: str, run: str, finals: list[str]) -> bool:
    """Whether `manifest` vouches for `finals` as packed by the run `run` (sizes only: a cheap check)."""
    try:
        body = read_manifest(manifest)
    except ValueError:
        return False
    entries = body["shards"]
    if body["run"] != run or len(entries) != len(finals):
        return False
    return all(
        os.path.basename(f) == e["file"] and os.path.isfile(f) and os.path.getsize(f) == e["bytes"]
        for f, e in zip(finals, entries, strict=True)
    )
