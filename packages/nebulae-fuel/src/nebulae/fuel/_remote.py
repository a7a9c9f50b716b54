"""Data sets behind an fsspec URL (s3://, gs://, az://, http(s)://): their manifest, shard URLs and downloads.

fsspec and the user's backend (s3fs, gcsfs, adlfs, aiohttp) are optional and imported only when a URL is read.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._files import MANIFEST_FORMAT, MANIFEST_SUFFIX, data_set_name, kind_of

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
EXTRA = "nebulae-fuel[remote]"
CHUNK = 8 << 20  # bytes per read while downloading: one ranged GET each on object stores
ATTEMPTS = 4  # tries per shard download before its error is raised
BACKOFF_S = 0.25  # first wait between tries, doubled each time


def is_url(path: Any) -> bool:
    """True for a `scheme://...` string other than `file://` (which is read as the local path it names)."""
    return isinstance(path, str) and bool(_URL.match(path)) and not path.startswith("file://")


def local_of(path: Any) -> Any:
    """`file:///data/x.hdf5` -> `/data/x.hdf5`; anything else unchanged."""
    if isinstance(path, str) and path.startswith("file://"):
        return path[len("file://") :]
    return path


def filesystem(url: str, storage_options: dict[str, Any] | None) -> Any:
    """The fsspec filesystem of `url`; an ImportError naming the extra (or the backend) when it is missing."""
    try:
        import fsspec
    except ImportError:
        raise ImportError(
            f"reading {url!r} needs fsspec: pip install '{EXTRA}' (plus your storage's backend, e.g. s3fs, "
            "gcsfs or adlfs)"
        ) from None
    protocol = url.split("://", 1)[0]
    options = dict(storage_options or {})
    if protocol in ("s3", "s3a"):
        # botocore's own retries for throttling and dropped connections, unless the user configured them
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("retries", {"max_attempts": 5, "mode": "standard"})
        options["config_kwargs"] = config
    try:
        return fsspec.filesystem(protocol, **options)
    except ImportError as exc:
        raise ImportError(f"reading {url!r} needs the fsspec backend for {protocol}://: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"cannot read {url!r}: {exc}") from None


@dataclass
class Entry:
    """One shard of a remote data set."""

    file: str
    url: str
    bytes: int
    sha256: str | None
    rows: int | None


def _parent(url: str) -> str:
    return url.rsplit("/", 1)[0]


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

    Raises:
        ImportError: fsspec or the backend is missing. FileNotFoundError: neither the file nor a manifest exists.
        PermissionError: access denied. ValueError: not an .hdf5/.h5/.npz data set, or a broken manifest.
    """
    kind = kind_of(data_set_name(url))
    if kind is None:
        raise ValueError(
            f"'data_path' must be an .hdf5, .h5 or .npz file, or a family's .manifest.json (got {url!r})"
        )
    fs = filesystem(url, storage_options)
    if not url.endswith(MANIFEST_SUFFIX):
        size = _size(fs, url)
        if size is not None:
            name = url.rsplit("/", 1)[-1]
            return RemoteSet(url, kind, None, [Entry(name, url, size, None, None)], fs)
        manifest = url + MANIFEST_SUFFIX
        if _size(fs, manifest) is None:
            raise FileNotFoundError(
                f"'data_path' {url!r} does not exist (nor does its manifest {manifest!r})"
            )
    else:
        manifest = url
    body = _read_manifest(fs, manifest)
    base = _parent(manifest)
    entries = [
        Entry(e["file"], f"{base}/{e['file']}", int(e["bytes"]), e.get("sha256"), int(e["rows"]))
        for e in body["shards"]
    ]
    return RemoteSet(manifest, kind, str(body["run"]), entries, fs)


def copy_object(fs: Any, url: str, write: Callable[[bytes], None] | None) -> tuple[int, str]:
    """Stream the object at `url` through `write` (None: only hash it); returns its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    # http(s): one streamed GET; object stores: ranged GETs of CHUNK bytes, nothing cached by fsspec
    streaming = url.split("://", 1)[0] in ("http", "https")
    opts: dict[str, Any] = {"block_size": 0} if streaming else {"block_size": CHUNK, "cache_type": "none"}
    with fs.open(url, "rb", **opts) as src:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            if write is not None:
                write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


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
            size, digest = _with_retries(lambda e=entry: copy_object(rset.fs, e.url, None), entry.url)
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
        body = json.loads(_with_retries(lambda: fs.cat_file(url), url))
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


def _with_retries(call: Any, url: str) -> Any:
    """`call()`, retried with backoff on transient errors; missing objects and denied access fail at once."""
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except (FileNotFoundError, PermissionError):
            raise
        except Exception as exc:
            if not transient(exc) or attempt == ATTEMPTS - 1:
                raise OSError(f"cannot read {url!r} after {attempt + 1} attempt(s): {exc}") from None
            time.sleep(BACKOFF_S * 2**attempt)
    raise AssertionError("unreachable")


def transient(exc: BaseException) -> bool:
    """Network and server errors worth another try (a 5xx or 429, a reset connection, a timeout)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status >= 500 or status == 429
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return True
    name = type(exc).__name__
    return any(word in name for word in ("Timeout", "Connection", "ServerError", "Payload", "Disconnect"))
