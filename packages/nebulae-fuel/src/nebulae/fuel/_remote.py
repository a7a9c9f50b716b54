"""URLs: telling them from paths, opening them through fsspec (the one module that imports it), retrying
transient faults, and uploading a locally packed data set to object storage with its manifest last."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ._files import (
    family_pattern,
    manifest_path,
    new_run_id,
    pid_alive,
    read_manifest,
    sha256_file,
    shard_names,
    skipped_path,
)
from ._progress import Progress

EXTRA = "nebulae-fuel[remote]"
UPLOAD_SUFFIX = ".upload.json"  # an unfinished upload's record: its run id and the objects already in place
UPLOAD_FORMAT = "nebulae-fuel-upload"
WORK_PREFIX = "nebulae-fuel-pack-"
ATTEMPTS = 4  # tries of one transfer before its error is raised
BACKOFF = 0.5  # seconds before the first retry; doubled before each next one
# backend package per scheme, named when fsspec has no implementation loaded for it
_BACKENDS = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "adl": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
}
_READ_ONLY = ("http", "https")
# client errors of the backends that are worth another try (they are not all OSErrors)
_TRANSIENT_NAMES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "IncompleteRead",
        "ResponseParserError",
    }
)
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+)://")

T = TypeVar("T")


def is_url(path: Any) -> bool:
    """Whether `path` is a URL (`scheme://...`) rather than a local path; one-letter schemes are Windows drives."""
    return isinstance(path, str) and _URL.match(path) is not None


def local_path(path: str) -> str:
    """The local path a `file://` URL names (so that it is written and read like any path); anything else as given."""
    if scheme_of(path) != "file":
        return path
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(path)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"{path!r}: a file:// URL names a local file (file:///path), not one on host {parts.netloc!r}"
        )
    return unquote(parts.path)


def scheme_of(url: str) -> str:
    m = _URL.match(url)
    return m.group("scheme").lower() if m else ""


def open_fs(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec file system for `url` and the path inside it.

    `storage_options` go to the backend unchanged (credentials, endpoint, ...), so fsspec's own configuration
    applies; for S3, botocore retries transient errors in its 'standard' mode unless the caller set `retries`.

    Raises:
        ImportError: fsspec, or the backend for the URL's scheme, is not installed (naming what to install).
        TypeError: `storage_options` is not a dict.
    """
    if storage_options is None:
        storage_options = {}
    if not isinstance(storage_options, dict):
        raise TypeError(f"'storage_options' must be a dict (got {type(storage_options).__name__})")
    try:
        import fsspec
    except ImportError:
        raise ImportError(
            f"{url!r} is a URL, and URLs need fsspec: pip install '{EXTRA}' (plus the backend for the URL, e.g. "
            "s3fs, gcsfs or adlfs)"
        ) from None
    scheme = scheme_of(url)
    options = dict(storage_options)
    if scheme in ("s3", "s3a"):
        config = dict(options.get("config_kwargs") or {})
        config.setdefault(
            "retries", {"max_attempts": ATTEMPTS, "mode": "standard"}
        )  # retries after the first try
        options["config_kwargs"] = config
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        backend = _BACKENDS.get(scheme, f"the fsspec backend for {scheme}://")
        raise ImportError(
            f"{url!r} needs {backend}, which is not installed: pip install {backend} (with '{EXTRA}'); {exc}"
        ) from None
    except ValueError as exc:
        if "protocol" in str(exc).lower():
            raise ValueError(f"{url!r}: fsspec knows no file system for {scheme}:// ({exc})") from None
        raise
    return fs, path


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, FileNotFoundError | PermissionError | FileExistsError | IsADirectoryError):
        return False
    if isinstance(exc, OSError | TimeoutError):
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


def named_error(exc: BaseException, url: str, action: str) -> BaseException:
    """`exc` told as the user's problem with `url`: access denied and missing buckets/objects keep their types."""
    if isinstance(exc, PermissionError):
        return PermissionError(
            f"access denied {action} {url} ({exc}); check the credentials (fsspec's configuration or "
            "storage_options=) and the bucket's permissions"
        )
    if isinstance(exc, FileNotFoundError):
        return FileNotFoundError(
            f"{url} not found while {action} ({exc}); check that the bucket exists and the URL is spelled right"
        )
    return OSError(f"{action} {url} failed ({type(exc).__name__}: {exc})")


def retried(call: Callable[[], T], url: str, action: str, *, attempts: int = ATTEMPTS) -> T:
    """`call()`, tried again after transient faults (waiting 0.5 s, 1 s, 2 s, ...); a fault that persists, or one
    that another try cannot fix (access denied, a missing bucket), is raised naming `url`."""
    tries = 0
    while True:
        try:
            return call()
        except Exception as exc:
            tries += 1
            if not (_transient(exc) and tries < attempts):
                raise named_error(exc, url, action) from exc
            time.sleep(BACKOFF * 2 ** (tries - 1))


def parse_storage_options(items: list[str] | None, text: str | None) -> dict[str, Any]:
    """The command line's storage options: a JSON object, then `key=value` items (a dotted key nests,
    `client_kwargs.endpoint_url=...`; a value that parses as JSON is taken as such, else as a string)."""
    options: dict[str, Any] = {}
    if text:
        try:
            options = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"--storage-options must be a JSON object (got {text!r}: {exc})") from None
        if not isinstance(options, dict):
            raise ValueError(f"--storage-options must be a JSON object (got {text!r})")
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--storage-option must be KEY=VALUE (got {item!r})")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        *outer, last = key.split(".")
        node = options
        for part in outer:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(
                    f"--storage-option {item!r}: {part!r} is already set to a value, not a mapping"
                )
        node[last] = value
    return options


# -- packing to a URL -----------------------------------------------------------------------------------------


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
            entries = retried(
                lambda: self.fs.ls(self.parent, detail=True), self.url_of(""), "listing", attempts=ATTEMPTS
            )
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
        body = json.dumps(self.record, indent=1).encode()
        name = self.base + UPLOAD_SUFFIX
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
        leftovers = [n for n in self.found if n not in keep and n != self.base + UPLOAD_SUFFIX]
        # an old single file of the family's name would shadow the new family: it goes first
        leftovers.sort(key=lambda n: n != self.base)
        for name in [*leftovers, self.base + UPLOAD_SUFFIX]:
            self._remove(name)
        progress.close(
            f"uploaded {len(data) + (manifest is not None)} object(s) to {self.url_of('')}" if show else None
        )


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
