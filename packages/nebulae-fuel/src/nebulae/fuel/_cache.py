"""The node-local shard cache of remote data sets: bounded by bytes, shared by every process of a node.

Layout: `{root}/{data set key}/{shard file}` (complete shards only: a download goes to `{file}.part-{pid}-{tid}`, is
checked against the manifest's size and sha256, then renamed) and `{file}.lock`. The lock file is the node-wide
coordination: a download holds it exclusively (so a shard is fetched once however many processes want it), a
reader that pins a shard holds it shared (so no process evicts a shard another one reads), and eviction takes it
exclusively without waiting (a pinned shard is skipped).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from ._remote import RemoteSet, copy_object, retried

ENV = "NEBULAE_FUEL_CACHE"
_LOCK = ".lock"
_PART = ".part-"


def cache_root(cache_dir: Any = None) -> str:
    """`cache_dir`, else $NEBULAE_FUEL_CACHE, else `$XDG_CACHE_HOME` (or ~/.cache) + /nebulae/fuel."""
    if cache_dir is not None:
        return os.path.abspath(os.fspath(cache_dir))
    if os.environ.get(ENV, "").strip():
        return os.path.abspath(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nebulae", "fuel")


class Abandoned(Exception):
    """A download stopped because its cache was closed (or its batch of downloads failed elsewhere)."""


def _write_chunk(fh: Any, data: bytes) -> None:
    """One chunk of a download onto disk (a seam for the fault tests, which kill the process here)."""
    fh.write(data)


class ShardCache:
    """Local copies of a remote data set's shards, fetched on demand or ahead of need, evicted to stay in budget.

    `acquire(i)` returns once shard i is complete on disk and pins it (until `release(i)`); `plan(order)` tells
    the background prefetcher which shards come next, nearest first. Eviction removes unpinned shards that are not
    in the plan first, then those needed furthest ahead; never one needed before the shard that makes room.
    """

    def __init__(self, rset: RemoteSet, cache_dir: Any = None, cache_bytes: int | None = None) -> None:
        self.rset = rset
        key = hashlib.sha256(rset.url.encode("utf-8")).hexdigest()[:16]
        self.dir = os.path.join(cache_root(cache_dir), key + (f"-{rset.run[:12]}" if rset.run else ""))
        os.makedirs(self.dir, exist_ok=True)
        if cache_bytes is None:
            # most of the free space, counting what this data set already holds there
            cache_bytes = int(shutil.disk_usage(self.dir).free * 0.8) + self.used_bytes()
        self.budget = int(cache_bytes)
        self.paths = [os.path.join(self.dir, e.file) for e in rset.entries]
        self.downloads: Counter[int] = Counter()
        # downloads per (shard, tag): the Tank tags a fetch with the epoch that needs it
        self.fetched: Counter[tuple[int, Any]] = Counter()
        self._tags: dict[int, Any] = {}
        self.peak_bytes = 0
        self.peak_unpinned_excess = 0  # max bytes over budget not explained by pinned or in-flight shards
        self._pins: dict[int, list[int]] = {}
        self._inflight: set[int] = set()
        self._plan: list[int] = []
        self._space = threading.Lock()  # making room and reserving it is one step per process
        self._cond = threading.Condition()
        self._changed = False
        self._stop = False
        self._abandon = threading.Event()  # set: downloads still running stop at their next chunk
        self._thread: threading.Thread | None = None
        self._pending: tuple[Any, dict[Any, int]] | None = (
            None  # acquire_later()'s pool, its futures -> shard
        )
        self.error: BaseException | None = (
            None  # the prefetcher's last error (the demand fetch raises its own)
        )

    # -- state on disk -------------------------------------------------------------------------------------

    def complete(self, i: int) -> bool:
        try:
            return os.stat(self.paths[i]).st_size == self.rset.entries[i].bytes
        except FileNotFoundError:
            return False

    def used_bytes(self) -> int:
        total = 0
        with os.scandir(self.dir) as it:
            for item in it:
                if not item.name.endswith(_LOCK):
                    # another process or thread may rename or remove a file between listing and stat
                    with contextlib.suppress(FileNotFoundError):
                        if item.is_file(follow_symlinks=False):
                            total += item.stat(follow_symlinks=False).st_size
        return total

    def _lock_fd(self, i: int) -> int:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        return os.open(self.paths[i] + _LOCK, flags, 0o644)

    # -- pins ------------------------------------------------------------------------------------------------

    def acquire(self, i: int, tag: Any = None) -> str:
        """Shard i's local path once it is complete (downloading it if needed), pinned until `release(i)`."""
        fd = self._lock_fd(i)
        try:
            while True:
                fcntl.flock(fd, fcntl.LOCK_SH)
                if self.complete(i):
                    break
                fcntl.flock(fd, fcntl.LOCK_UN)
                fcntl.flock(fd, fcntl.LOCK_EX)
                if not self.complete(i):
                    self._fetch(i, demand=True, tag=tag)
                # flock converts exclusive to shared by releasing first: re-check that no one evicted it meanwhile
                fcntl.flock(fd, fcntl.LOCK_SH)
                if self.complete(i):
                    break
        except BaseException:
            os.close(fd)
            raise
        with self._cond:
            self._pins.setdefault(i, []).append(fd)
        return self.paths[i]

    def acquire_all(self, indices: list[int], parallel: int = 8, tag: Any = None) -> list[str]:
        """`acquire` each shard, `parallel` downloads at a time (one stream rarely fills a link)."""
        self.acquire_later(indices, parallel, tag)
        self.wait()
        return [self.paths[i] for i in indices]

    def acquire_later(self, indices: list[int], parallel: int = 8, tag: Any = None) -> None:
        """Start `acquire` of each shard in background threads, `parallel` downloads at a time, and return at once:
        the caller starts its workers meanwhile and calls `wait()` before it reads any of these shards."""
        from concurrent.futures import ThreadPoolExecutor

        if self._pending is not None:
            raise RuntimeError("acquire_later() is already running; wait() for it first")
        if not indices:
            return
        pool = ThreadPoolExecutor(
            max_workers=max(1, min(parallel, len(indices))), thread_name_prefix="nebulae-fuel-fetch"
        )
        self._pending = (pool, {pool.submit(self.acquire, i, tag): i for i in indices})

    @property
    def waiting(self) -> bool:
        """Whether `acquire_later` started downloads that nobody has `wait()`ed for yet."""
        return self._pending is not None

    def wait(self, ready: Callable[[int], None] | None = None) -> None:
        """Return once every shard of `acquire_later` is complete and pinned, calling `ready(i)` (in this thread) as
        each one lands; raise the first download error (after the downloads still running have stopped, so nothing
        writes into the cache once this returns)."""
        if self._pending is None:
            return
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_any

        pool, index = self._pending
        try:
            left = set(index)
            while left:
                done, left = wait_any(left, return_when=FIRST_COMPLETED)
                for f in sorted(done, key=index.__getitem__):
                    f.result()
                    if ready is not None:
                        ready(index[f])
        except BaseException:
            # nobody reads these shards now: the downloads not started are dropped, the running ones stop early
            self._abandon.set()
            for f in index:
                f.cancel()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._pending = None
            if not self._stop:
                self._abandon.clear()  # the cache itself stays usable (close() stops downloads for good)

    def release(self, i: int) -> None:
        with self._cond:
            fds = self._pins.get(i)
            if not fds:
                return
            fd = fds.pop()
            if not fds:
                del self._pins[i]
            self._changed = True
            self._cond.notify_all()
        os.close(fd)

    def release_all(self) -> None:
        for i in list(self._pins):
            while i in self._pins:
                self.release(i)

    # -- downloads -------------------------------------------------------------------------------------------

    def _fetch(self, i: int, demand: bool, tag: Any = None) -> bool:
        """Download shard i (its lock held exclusively); False when a prefetch finds no room for it."""
        with self._space:
            if not self._make_room(i) and not demand:
                return False
            self._inflight.add(i)
        try:
            self._download(i)
            self.fetched[(i, tag)] += 1
        finally:
            with self._space:
                self._note_usage()
                self._inflight.discard(i)
        return True

    def _make_room(self, i: int) -> bool:
        need = self.rset.entries[i].bytes
        used = self.used_bytes() + sum(self.rset.entries[j].bytes for j in self._inflight)
        if used + need <= self.budget:
            return True
        with self._cond:
            plan = list(self._plan)
            pinned = set(self._pins)
        first: dict[int, int] = {}
        for k, s in enumerate(plan):
            first.setdefault(s, k)
        here = first.get(i, 0)
        far = len(plan) + 1
        # consumed or unplanned shards first, then the ones needed furthest ahead; never one needed before i
        candidates = [
            j
            for j in range(len(self.paths))
            if j != i and j not in pinned and j not in self._inflight and first.get(j, far) > here
        ]
        candidates.sort(key=lambda j: -first.get(j, far))
        for j in candidates:
            if used + need <= self.budget:
                break
            if self.complete(j) and self._evict(j):
                used -= self.rset.entries[j].bytes
        return used + need <= self.budget

    def _evict(self, j: int) -> bool:
        """Remove shard j unless some process (this one included) holds it."""
        fd = self._lock_fd(j)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.paths[j])
            return True
        finally:
            os.close(fd)

    def _note_usage(self) -> None:
        used = self.used_bytes()
        held = set(self._pins) | self._inflight
        self.peak_bytes = max(self.peak_bytes, used)
        excess = used - self.budget - sum(self.rset.entries[j].bytes for j in held)
        self.peak_unpinned_excess = max(self.peak_unpinned_excess, excess)

    def _download(self, i: int) -> None:
        entry = self.rset.entries[i]
        final = self.paths[i]
        # a crashed download of this shard left its part file: nobody else holds the lock, so it is dead
        prefix = entry.file + _PART
        for name in os.listdir(self.dir):
            if name.startswith(prefix):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.dir, name))
        tmp = f"{final}{_PART}{os.getpid()}-{threading.get_ident()}"
        where = f"shard {entry.file} ({entry.url}) of {self.rset.url}"
        try:
            size, digest = retried(lambda: self._stream(entry.url, tmp, entry.bytes), where, "downloading")
        except FileNotFoundError:
            raise FileNotFoundError(f"{where} does not exist; the data set is incomplete") from None
        except PermissionError as exc:
            raise PermissionError(f"access to {where} was denied ({exc.__cause__ or exc})") from None
        try:
            if size != entry.bytes:
                # a read stops one byte past the listed size: a longer object is told as such
                told = f"more than {entry.bytes}" if size > entry.bytes else str(size)
                raise ValueError(
                    f"{where} has {told} bytes, the manifest lists {entry.bytes}; re-upload the data set"
                )
            if entry.sha256 is not None and digest != entry.sha256:
                raise ValueError(
                    f"{where} does not match its sha256 in the manifest (corrupted or replaced object); "
                    "re-upload the data set"
                )
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self.downloads[i] += 1

    def _stream(self, url: str, tmp: str, size: int) -> tuple[int, str]:
        """Copy the object to `tmp`, hashing as it streams; returns its size and sha256."""
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        )
        try:
            with os.fdopen(os.open(tmp, flags, 0o644), "wb") as dst:

                def write(chunk: bytes) -> None:
                    if self._abandon.is_set():
                        raise Abandoned(f"the download of {url} was abandoned: its cache was closed")
                    _write_chunk(dst, chunk)

                return copy_object(self.rset.fs, url, write, size)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    # -- prefetching -----------------------------------------------------------------------------------------

    def plan(self, order: list[int], tags: list[Any] | None = None) -> None:
        """The shards needed from now on, nearest first: the prefetcher fetches along it while there is room.
        `tags` (one per shard of `order`) label the downloads it makes in `fetched`."""
        with self._cond:
            if order == self._plan:
                return
            self._plan = list(order)
            self._tags = {}
            for i, tag in zip(order, tags or [None] * len(order), strict=True):
                self._tags.setdefault(i, tag)
            self._changed = True
            self._cond.notify_all()
            if self._thread is None and not self._stop:
                self._thread = threading.Thread(
                    target=self._prefetch, name="nebulae-fuel-prefetch", daemon=True
                )
                self._thread.start()

    def _prefetch(self) -> None:
        while True:
            with self._cond:
                while not self._changed and not self._stop:
                    self._cond.wait(0.5)
                if self._stop:
                    return
                self._changed = False
                plan = list(dict.fromkeys(self._plan))
            for i in plan:
                if self._stop or self._changed:
                    break
                if self.complete(i):
                    continue
                try:
                    if not self._prefetch_one(i):
                        break  # no room yet: wait until a shard is released or the plan moves on
                except Exception as exc:
                    self.error = exc  # the reader's own fetch of this shard raises it with full context
                    break

    def _prefetch_one(self, i: int) -> bool:
        fd = self._lock_fd(i)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True  # another process or thread is fetching it
            return self.complete(i) or self._fetch(i, demand=False, tag=self._tags.get(i))
        finally:
            os.close(fd)

    def close(self) -> None:
        self._abandon.set()
        if self._pending is not None:
            # closed before wait(): downloads not yet started are dropped, running ones stop at their next chunk
            pool, _ = self._pending
            pool.shutdown(wait=True, cancel_futures=True)
            self._pending = None
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)
        self.release_all()
