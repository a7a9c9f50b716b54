"""A shard family's manifest: writing it (the family's commit point), reading and checking it, opening a family
through it (or by its shard names when it has none), verifying checksums, and refreshing it after an edit."""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

import numpy as np

from ._files import (
    MANIFEST_SUFFIX,
    RUN_KEY,
    commit,
    data_set_name,
    discard,
    fsync_dir,
    kind_of,
    manifest_path,
    read_meta,
    read_run_id,
    same_path,
    shard_name,
    write_json,
)

MANIFEST_FORMAT = "nebulae-fuel-manifest"
MANIFEST_VERSION = 1
_RERUN = "rerun generate(..., overwrite=True) to write the data set again"


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
