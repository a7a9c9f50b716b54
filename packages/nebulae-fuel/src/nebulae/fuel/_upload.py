"""Packing to a URL (s3://, gs://, az://, ...): pack into a local work folder, then upload the skip report and the
shards, and the manifest last, the commit point (object stores have no rename). While it runs the pack keeps the
record `{dst}.upload.json` (its run id and the objects already in place), from which a rerun after a crash
continues."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from ._files import family_pattern, manifest_path, new_run_id, part_path, pid_alive, shard_names, skipped_path
from ._manifest import read_manifest, sha256_file
from ._place import is_part, write_family
from ._progress import Progress
from ._remote import open_fs, retried, scheme_of

UPLOAD_SUFFIX = ".upload.json"  # an unfinished upload's record: its run id and the objects already in place
UPLOAD_FORMAT = "nebulae-fuel-upload"
WORK_PREFIX = "nebulae-fuel-pack-"
_READ_ONLY = ("http", "https")


def make_work_dir(work_dir: str | os.PathLike[str] | None) -> str:
    """A fresh local folder to pack into before uploading (under `work_dir`, else the system's temp folder); the
    folders of packs that died (their pid is gone) are removed first."""
    parent = os.path.abspath(work_dir) if work_dir is not None else tempfile.gettempdir()
    os.makedirs(parent, exist_ok=True)
    with contextlib.suppress(OSError):
        for name in os.listdir(parent):
            m = re.match(rf"^{WORK_PREFIX}(\d+)-", name)
            if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-", dir=parent)


class Upload:
    """One pack's objects at the URL `url`: what is there already, the record of an unfinished upload, and the
    commit (data objects first, the manifest last, then what is left of the old output)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None) -> None:
        if scheme_of(url) in _READ_ONLY:
            raise ValueError(
                f"cannot pack to {url!r}: {scheme_of(url)}:// is read-only; pack to s3://, gs://, ..."
            )
        self.url = url
        self.fs, self.path = open_fs(url, storage_options)
        self.base = self.path.rstrip("/").rsplit("/", 1)[-1]
        self.parent = self.path[: -len(self.base)].rstrip("/")
        self.found: dict[str, tuple[int, str]] = {}  # name -> (size, tag) of this output's objects
        self.record: dict[str, Any] = {"format": UPLOAD_FORMAT, "run": None, "done": {}}

    def key(self, name: str) -> str:
        return f"{self.parent}/{name}" if self.parent else name

    def url_of(self, name: str) -> str:
        prefix = self.url[: len(self.url) - len(self.base)]
        return prefix + name

    def _list(self) -> dict[str, tuple[int, str]]:
        pattern = family_pattern(self.path)
        with contextlib.suppress(Exception):
            self.fs.invalidate_cache(self.parent)
        try:
            entries = retried(lambda: self.fs.ls(self.parent, detail=True), self.url_of(""), "listing")
        except FileNotFoundError:
            return {}  # an empty prefix (or a missing bucket, which the first write names)
        found = {}
        for entry in entries:
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            m = pattern.match(name)
            if (m and not m.group("pid")) or name == self.base + UPLOAD_SUFFIX:
                found[name] = (int(entry.get("size") or 0), _tag(entry))
        return found

    def begin(self, overwrite: bool) -> str | None:
        """Check what is at the URL; the run id of an unfinished upload to continue (None: start afresh).

        An unfinished upload (its record there, no manifest) is continued without `overwrite`: no reader sees its
        objects as a data set. Anything else there needs `overwrite`.
        """
        self.found = self._list()
        marker = self.base + UPLOAD_SUFFIX
        data = sorted(n for n in self.found if n != marker)
        resumable = marker in self.found and manifest_path(self.base) not in self.found
        if data and not overwrite and not resumable:
            raise FileExistsError(
                f"{self.url_of(data[0])} already exists ({len(data)} object(s) of this output); pass overwrite=True "
                "to replace them or choose another dst_path"
            )
        if marker in self.found:
            with contextlib.suppress(Exception):
                body = json.loads(self.fs.cat_file(self.key(marker)))
                if (
                    isinstance(body, dict)
                    and body.get("format") == UPLOAD_FORMAT
                    and isinstance(body.get("done"), dict)
                ):
                    self.record = {"format": UPLOAD_FORMAT, "run": body.get("run"), "done": body["done"]}
        run = self.record["run"] if isinstance(self.record["run"], str) else None
        return run

    def start(self, run: str) -> None:
        """Record the run before any data object is written; this also tells a missing bucket or a denied write
        before the packing, not after it."""
        self.record["run"] = run
        self._save_record()

    def _save_record(self) -> None:
        self._pipe(self.base + UPLOAD_SUFFIX, json.dumps(self.record, indent=1).encode())

    def _read_json(self, name: str) -> Any:
        """The JSON body of the object `name`; None where it is gone or unreadable."""
        with contextlib.suppress(Exception):
            return json.loads(self.fs.cat_file(self.key(name)))
        return None

    def _pipe(self, name: str, body: bytes) -> None:
        retried(lambda: self.fs.pipe_file(self.key(name), body), self.url_of(name), "writing")

    def _put(self, local: str, name: str) -> str:
        """Upload the file `local` as the object `name`; the object's entity tag ('' where the store has none)."""
        key, url = self.key(name), self.url_of(name)
        retried(lambda: self.fs.put_file(local, key), url, "uploading to")
        return _tag(retried(lambda: self.fs.info(key), url, "checking"))

    def _remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            retried(lambda: self.fs.rm_file(self.key(name)), self.url_of(name), "removing")

    def _in_place(self, name: str, size: int, sha: str) -> bool:
        """Whether the object `name` is what an earlier try uploaded from a file of this size and sha256, unchanged
        since (same size, and the same entity tag where the store keeps one)."""
        done = self.record["done"].get(name)
        return (
            isinstance(done, dict)
            and done.get("sha256") == sha
            and self.found.get(name) == (size, done.get("tag", ""))
            and size == done.get("bytes")
        )

    def commit(self, files: list[str], manifest: str | None, report: str | None, show: bool) -> None:
        """Upload the skip report and the data files (those an earlier try put in place already are kept), then the
        manifest, the commit point of a family (a single file commits by its own upload, which an object store
        makes atomic); then remove the old output's surplus objects and the upload's record."""
        shas: dict[str, str] = {}
        if manifest is not None:
            shas = {e["file"]: e["sha256"] for e in read_manifest(manifest)["shards"] if "sha256" in e}
        data = [*([report] if report else []), *files]
        total = sum(os.path.getsize(p) for p in [*data, *([manifest] if manifest else [])])
        progress = Progress(total, f"uploading {self.base}", enabled=show)
        for local in data:
            name = os.path.basename(local)
            size = os.path.getsize(local)
            sha = shas.get(name) or sha256_file(local)
            if not self._in_place(name, size, sha):
                tag = self._put(local, name)
                self.record["done"][name] = {"bytes": size, "sha256": sha, "tag": tag}
                self._save_record()
            progress.update(size)
        keep = {os.path.basename(p) for p in data}
        if manifest is not None:
            name = os.path.basename(manifest)
            self._put(manifest, name)
            keep.add(name)
            progress.update(os.path.getsize(manifest))
        self._sweep(keep)
        progress.close(
            f"uploaded {len(data) + (manifest is not None)} object(s) to {self.url_of('')}" if show else None
        )

    def _sweep(self, keep: set[str]) -> None:
        """Remove what the committed output supersedes: the objects of this output's name not in `keep` (an old
        single file of the family's name first, which would shadow the new family), the upload's record last."""
        leftovers = [n for n in self.found if n not in keep and n != self.base + UPLOAD_SUFFIX]
        leftovers.sort(key=lambda n: n != self.base)
        for name in [*leftovers, self.base + UPLOAD_SUFFIX]:
            self._remove(name)

    # -- one share of a family packed by several processes ----------------------------------------------------

    def begin_share(self, run: str, names: list[str], overwrite: bool) -> bool:
        """Check what is at the URL for the share of a pack of the run `run` whose shards are the objects `names`;
        True when that very pack is committed there already (nothing left to do).

        Objects of an unfinished pack of this run (its record there, no manifest) are continued without `overwrite`,
        whichever process left them; anything else needs `overwrite`. The record is then written: every process of
        the pack writes the same one.
        """
        self.found = self._list()
        manifest = manifest_path(self.base)
        if manifest in self.found:
            body = self._read_json(manifest)
            body = body if isinstance(body, dict) else {}
            entries = [e for e in body.get("shards") or [] if isinstance(e, dict)]
            sizes = [(e.get("file"), e.get("bytes")) for e in entries]
            if body.get("run") == run and sizes == [(n, self.found.get(n, (0,))[0]) for n in names]:
                return True
        marker = self.base + UPLOAD_SUFFIX
        mine = marker in self.found and manifest not in self.found
        if mine:
            body = self._read_json(marker)
            mine = isinstance(body, dict) and body.get("run") == run
        data = sorted(n for n in self.found if n != marker)
        if data and not overwrite and not mine:
            raise FileExistsError(
                f"{self.url_of(data[0])} already exists ({len(data)} object(s) of this output, not an unfinished "
                "part of this pack); pass overwrite=True to replace them or choose another dst_path"
            )
        if manifest in self.found:
            # the old data set stops being one before its shards are replaced one by one
            self._remove(manifest)
            del self.found[manifest]
        self.record = {"format": UPLOAD_FORMAT, "run": run, "done": {}}
        self._save_record()
        return False

    def shared_in_place(self, name: str, run: str, files: str | None) -> bool:
        """Whether the shard object `name` was uploaded by an earlier try of the pack of run `run` and is unchanged
        since (its part record object there, of this run and of the same files, its size and entity tag alike)."""
        part = part_path(name)
        if part not in self.found or name not in self.found:
            return False
        body = self._read_json(part)
        return (
            is_part(body, run)
            and body.get("files") == files
            and self.found[name] == (body["shard"]["bytes"], body.get("tag", ""))
        )

    def put_shared(self, local: str, name: str) -> None:
        """Upload the local shard `local` as the object `name`, then its part record (with the object's entity tag),
        which vouches for the object to the process that finishes the family and to a rerun."""
        tag = self._put(local, name)
        with open(part_path(local), encoding="utf-8") as fh:
            body = json.load(fh)
        body["tag"] = tag
        self._pipe(part_path(name), json.dumps(body, indent=1).encode())

    def finish_share(self, run: str, names: list[str], folder: str) -> bool:
        """Commit the family if all its shards are in place with part records of the run `run`: write its skip report
        and manifest (built in the local `folder`; two processes that both find the family complete upload the same
        bytes), then remove the part records, the record and what is left of the old output. False while shards are
        missing."""
        self.found = self._list()
        parts: list[dict[str, Any]] = []
        for name in names:
            body: Any = self._read_json(part_path(name)) if part_path(name) in self.found else None
            if not is_part(body, run) or self.found.get(name, (None,))[0] != body["shard"]["bytes"]:
                return False
            body.pop("tag", None)
            parts.append(body)
        local = os.path.join(folder, self.base)
        manifest = write_family(local, parts)
        keep = {*names, os.path.basename(manifest)}
        report = skipped_path(local)
        if os.path.isfile(report):
            self._put(report, os.path.basename(report))
            keep.add(os.path.basename(report))
        self._put(manifest, os.path.basename(manifest))
        self._sweep(keep)
        return True


def _tag(entry: dict[str, Any]) -> str:
    """An object's entity tag (S3, Azure) or MD5 (GCS) from a listing or info entry; '' where the store has none."""
    for key in ("ETag", "etag", "md5Hash"):
        if entry.get(key):
            return str(entry[key]).strip('"')
    return ""


def pack_to_url(
    url: str,
    nshard: int,
    overwrite: bool,
    storage_options: dict[str, Any] | None,
    work_dir: str | os.PathLike[str] | None,
    show: bool,
    pack: Callable[[str, str], None],
) -> None:
    """Pack into a local work folder with `pack(local_dst, run)`, then upload.

    A rerun after a crash continues the unfinished upload: it packs again with the same run id (packing is
    deterministic, so unchanged shards come out byte for byte the same) and skips the objects already uploaded
    whose size and sha256 match.
    """
    if work_dir is not None and not isinstance(work_dir, str | os.PathLike):
        raise TypeError(f"'work_dir' must be a path or None (got {type(work_dir).__name__})")
    upload = Upload(url, storage_options)
    run = upload.begin(overwrite)
    folder = make_work_dir(work_dir)
    try:
        local = os.path.join(folder, upload.base)
        run = run or new_run_id()
        upload.start(run)
        pack(local, run)
        files = shard_names(local, nshard)
        manifest = manifest_path(local) if nshard > 1 else None
        report = skipped_path(local) if os.path.isfile(skipped_path(local)) else None
        upload.commit(files, manifest, report, show)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pack_share_to_url(
    url: str,
    names: list[str],
    run: str,
    files: dict[int, str],
    overwrite: bool,
    storage_options: dict[str, Any] | None,
    work_dir: str | os.PathLike[str] | None,
    pack: Callable[[str, list[int]], None],
) -> None:
    """Pack this process's shards (the keys of `files`, their files' digests) of the family whose shard objects are
    `names` into a local work folder with `pack(local_dst, todo)`, upload each with its part record, and write the
    manifest if the destination then holds every shard of the run `run`.

    A rerun after a crash packs and uploads only the shards whose objects and part records are not in place.
    """
    if work_dir is not None and not isinstance(work_dir, str | os.PathLike):
        raise TypeError(f"'work_dir' must be a path or None (got {type(work_dir).__name__})")
    upload = Upload(url, storage_options)
    if upload.begin_share(run, names, overwrite):
        return
    todo = [i for i, now in files.items() if overwrite or not upload.shared_in_place(names[i], run, now)]
    folder = make_work_dir(work_dir)
    try:
        local = os.path.join(folder, upload.base)
        if todo:
            pack(local, todo)
        for i in todo:
            upload.put_shared(os.path.join(folder, names[i]), names[i])
        upload.finish_share(run, names, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
