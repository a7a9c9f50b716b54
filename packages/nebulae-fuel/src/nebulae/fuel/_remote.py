"""URLs (s3://, gs://, az://, http(s)://): telling them from paths, opening them through fsspec (the one module
that imports it), retrying transient faults, and reading a remote data set: its manifest, shard URLs, downloads.

fsspec and the user's backend (s3fs, gcsfs, adlfs, aiohttp) are optional and imported only when a URL is used.
Packing to a URL is `_upload.py`; the node-local shard cache is `_cache.py`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ._files import MANIFEST_SUFFIX, data_set_name, kind_of
from ._manifest import MANIFEST_FORMAT

EXTRA = "nebulae-fuel[remote]"
CHUNK = 8 << 20  # bytes per read while downloading: one ranged GET each on object stores
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
_TRANSIENT_WORDS = ("Timeout", "Connection", "ServerError", "Payload", "Disconnect")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+)://")

T = TypeVar("T")


def is_url(path: Any) -> bool:
    """Whether `path` is a URL (`scheme://...`) rather than a local path; one-letter schemes are Windows drives.

    A `file://` URL is a URL too: callers turn it into the local path it names first (`local_path`).
    """
    return isinstance(path, str) and _URL.match(path) is not None


def local_path(path: Any) -> Any:
    """The local path a `file://` URL names (so that it is written and read like any path); anything else as given."""
    if not isinstance(path, str) or scheme_of(path) != "file":
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
        config.setdefault("retries", {"max_attempts": ATTEMPTS, "mode": "standard"})
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
        raise ValueError(f"cannot open {url!r}: {exc}") from None
    return fs, path


def transient(exc: BaseException) -> bool:
    """Network and server errors worth another try (a 5xx or 429, a reset connection, a timeout); a missing object
    or denied access is not."""
    if isinstance(exc, FileNotFoundError | PermissionError | FileExistsError | IsADirectoryError):
        return False
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status >= 500 or status == 429
    if isinstance(exc, OSError | TimeoutError):
        return True
    names = [cls.__name__ for cls in type(exc).__mro__]
    return any(n in _TRANSIENT_NAMES or any(w in n for w in _TRANSIENT_WORDS) for n in names)


def named_error(exc: BaseException, url: str, action: str, tries: int = 1) -> BaseException:
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
    return OSError(f"{action} {url} failed after {tries} attempt(s) ({type(exc).__name__}: {exc})")


def retried(call: Callable[[], T], url: str, action: str, *, attempts: int = ATTEMPTS) -> T:
    """`call()`, tried again after transient faults (waiting 0.5 s, 1 s, 2 s, ...); a fault that persists, or one
    that another try cannot fix (access denied, a missing bucket or object), is raised naming `url`."""
    tries = 0
    while True:
        try:
            return call()
        except Exception as exc:
            tries += 1
            if not (transient(exc) and tries < attempts):
                raise named_error(exc, url, action, tries) from exc
            time.sleep(BACKOFF * 2 ** (tries - 1))


def parse_storage_options(items: list[str] | None, base: dict[str, Any] | None) -> dict[str, Any]:
    """The command line's storage options: `base` (from --storage-options JSON), then `key=value` items (a dotted
    key nests, `client_kwargs.endpoint_url=...`; a value that parses as JSON is taken as such, else as a string)."""
    options: dict[str, Any] = json.loads(json.dumps(base or {}))  # a deep copy: the items may nest into it
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


# -- reading a data set at a URL ------------------------------------------------------------------------------


@dataclass
class Entry:
    """One shard of a remote data set."""

    file: str
    url: str
    bytes: int
    sha256: str | None
    rows: int | None


@dataclass
class RemoteSet:
    """A remote data set: its manifest URL (or its single file's), run id, kind and shards."""

    url: str
    kind: str
    run: str | None
    entries: list[Entry]
    fs: Any

    @property
    def total_bytes(self) -> int:
        return sum(e.bytes for e in self.entries)


def open_remote(url: str, storage_options: dict[str, Any] | None = None) -> RemoteSet:
    """Resolve `url` (a single file, a family's name or its manifest) into its shards, reading only the manifest.

    A family without its manifest is no data set (an upload that has not committed yet, see `_upload.py`): its
    shards and `{name}.upload.json` are never listed or read.

    Raises:
        ImportError: fsspec or the backend is missing. FileNotFoundError: neither the file nor a manifest exists.
        PermissionError: access denied. ValueError: not an .hdf5/.h5/.npz data set, or a broken manifest.
    """
    kind = kind_of(data_set_name(url))
    if kind is None:
        raise ValueError(
            f"'data_path' must be an .hdf5, .h5 or .npz file, or a family's .manifest.json (got {url!r})"
        )
    fs, _ = open_fs(url, storage_options)
    if not url.endswith(MANIFEST_SUFFIX):
        size = _size(fs, url)
        if size is not None:
            name = url.rsplit("/", 1)[-1]
            return RemoteSet(url, kind, None, [Entry(name, url, size, None, None)], fs)
        manifest = url + MANIFEST_SUFFIX
        if _size(fs, manifest) is None:
            raise FileNotFoundError(
                f"'data_path' {url!r} does not exist (nor does its manifest {manifest!r}; an upload still "
                "running or interrupted has none yet)"
            )
    else:
        manifest = url
    body = _read_manifest(fs, manifest)
    base = manifest.rsplit("/", 1)[0]
    entries = [
        Entry(e["file"], f"{base}/{e['file']}", int(e["bytes"]), e.get("sha256"), int(e["rows"]))
        for e in body["shards"]
    ]
    return RemoteSet(manifest, kind, str(body["run"]), entries, fs)


def copy_object(
    fs: Any, url: str, write: Callable[[bytes], None] | None, size: int | None = None
) -> tuple[int, str]:
    """Stream the object at `url` through `write` (None: only hash it); returns its size and sha256.

    With the `size` the manifest lists, an object store is read in ranged GETs of CHUNK bytes without asking for the
    object's size first (the last range reaches one byte past `size`, so that a longer object is noticed too).
    """
    digest = hashlib.sha256()
    got = 0

    def take(chunk: bytes) -> None:
        nonlocal got
        if write is not None:
            write(chunk)
        digest.update(chunk)
        got += len(chunk)

    streaming = scheme_of(url) in ("http", "https")
    if size and not streaming:
        start = 0
        while start < size + 1:
            end = start + CHUNK if start + CHUNK < size else size + 1
            chunk = fs.cat_file(url, start=start, end=end)
            take(chunk)
            if len(chunk) < end - start:
                break  # the object ends here
            start = end
        return got, digest.hexdigest()
    # http(s): one streamed GET; object stores: ranged GETs of CHUNK bytes, nothing cached by fsspec
    opts: dict[str, Any] = {"block_size": 0} if streaming else {"block_size": CHUNK, "cache_type": "none"}
    with fs.open(url, "rb", **opts) as src:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            take(chunk)
    return got, digest.hexdigest()


def verify_remote(url: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Check every shard of the remote family `url` against its manifest's size and sha256 (reads every byte).

    Returns:
        The checked shard URLs.

    Raises:
        ValueError: a shard that differs, or a data set without a manifest; FileNotFoundError: a missing shard.
    """
    rset = open_remote(url, storage_options)
    if rset.run is None:
        raise ValueError(f"{url!r} has no manifest {url + MANIFEST_SUFFIX!r} to verify against")
    bad = []
    for entry in rset.entries:
        try:
            size, digest = retried(
                functools.partial(copy_object, rset.fs, entry.url, None, entry.bytes), entry.url, "reading"
            )
        except FileNotFoundError:
            raise FileNotFoundError(
                f"shard {entry.file} ({entry.url}) of {rset.url} does not exist"
            ) from None
        if size != entry.bytes or digest != entry.sha256:
            bad.append(entry.file)
    if bad:
        raise ValueError(
            f"shard(s) {', '.join(bad)} of {rset.url} do not match their size and sha256 in the manifest "
            "(changed or corrupted objects); re-upload the data set"
        )
    return [e.url for e in rset.entries]


def _size(fs: Any, url: str) -> int | None:
    """The object's size, None when it does not exist (other errors name the URL)."""
    try:
        info = fs.info(url)
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise PermissionError(
            f"access to {url!r} was denied ({exc}); check the credentials fsspec uses"
        ) from None
    except OSError as exc:
        raise OSError(f"cannot read {url!r}: {exc}") from None
    if info.get("type") == "directory":
        return None
    size = info.get("size")
    return int(size) if size is not None else None


def _read_manifest(fs: Any, url: str) -> dict[str, Any]:
    try:
        body = json.loads(retried(lambda: fs.cat_file(url), url, "reading"))
    except FileNotFoundError:
        raise FileNotFoundError(f"'data_path' manifest {url!r} does not exist") from None
    except ValueError as exc:
        raise ValueError(f"manifest {url!r} is not JSON ({exc})") from None
    entries = body.get("shards") if isinstance(body, dict) else None
    ok = (
        isinstance(body, dict)
        and body.get("format") == MANIFEST_FORMAT
        and isinstance(entries, list)
        and entries
    )
    ok = ok and all(
        isinstance(e, dict)
        and isinstance(e.get("file"), str)
        and "/" not in e["file"]
        and e["file"] not in ("", ".", "..")
        and isinstance(e.get("bytes"), int)
        and isinstance(e.get("rows"), int)
        for e in entries or []
    )
    if not ok:
        raise ValueError(f"manifest {url!r} is not a nebulae fuel manifest (format {MANIFEST_FORMAT!r})")
    return body
