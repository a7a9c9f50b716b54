"""Tank: batches from packed HDF5/NPZ files with thread or process workers, no torch."""

from __future__ import annotations

import atexit
import collections
import os
import random
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._build import BatchBuilder
from ._cache import ShardCache
from ._constants import FRAME_KEY
from ._mount import (
    check_callables,
    check_castable,
    check_columns,
    check_specf,
    choose_worker_type,
    mount_remote,
    open_data_path,
)
from ._order import epoch_order, miles_per_epoch, rank_batch, windowed_order
from ._rank import get_rank, get_world_size
from ._source import Source
from ._state import Remainder
from ._tank_state import TankState
from ._validate import int_in
from ._workers import InlineExecutor, ProcessExecutor, ThreadExecutor

_OPEN_TANKS: weakref.WeakSet[Tank] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for tank in list(_OPEN_TANKS):
        tank.close()


def _check_int(name: str, value: Any, minimum: int) -> int:
    return int_in(name, value, minimum)


class Tank(TankState):
    """Serve shuffled, prepared, collated batches from HDF5/NPZ files made by FuelGenerator.

    Args:
        data_path: an .hdf5/.h5/.npz file, its shard family (`{stem}_0{suffix}`, ...), or a list of files.
        data_specf: `{column: dtype}`; the first key defines `len(tank)`.
        batch_size: samples per batch and rank.
        shuffle: a new order every epoch, from (seed, epoch).
        in_same_size: every batch full (drop the remainder) instead of a smaller last batch.
        fetch_fn: `fetch_fn(data, idx) -> item`; default `{k: data[k][idx] cast to its dtype}`.
        prep_fn: `prep_fn(item) -> item`; default identity.
        collate_fn: `collate_fn(items) -> batch`; default NumPy stacking per key.
        seed: int >= 0 fixing order and augmentation; None draws one from `random`.
        nworker: workers; None -> min(8, cpu_count // world size); 0 builds in the calling thread.
        worker_type: 'thread' or 'process' (callables must then be picklable); None -> 'process' when
            batches need decoding or callables run per item and those callables are importable from a
            module other than `__main__`; else 'thread'.
        decode: decode image columns to uint8 HWC (False returns the encoded bytes).
        verbose: print a one-line notice on rank <= 0.
        storage_options: for a URL `data_path` (s3://, gs://, az://, http(s)://; needs `nebulae-fuel[remote]`),
            passed to fsspec as is (endpoint, credentials, ...).
        cache_dir: where a URL's shards are cached; None -> $NEBULAE_FUEL_CACHE, else ~/.cache/nebulae/fuel
            (under $XDG_CACHE_HOME when set). Shared by every process of the node.
        cache_bytes: the cache's budget in bytes; None -> 80 % of the free space there. A data set larger than
            the budget is read in the windowed order: shards permuted per epoch, samples shuffled within
            `shuffle_window` shards, each rank reading its own contiguous share of the shards.
        shuffle_window: shards whose samples are shuffled together in the windowed order.

    Raises:
        TypeError: an argument of the wrong type (a data_specf that is not a dict, a batch_size that is not
            an int); ValueError: a wrong value (batch_size < 1, an unknown dtype or worker_type, columns the
            default fetcher cannot cast); KeyError: a data_specf column missing from the files;
            FileNotFoundError: a missing file. Each names the argument, file or key.

    Example:
        >>> tank = Tank('fuel.hdf5', {'image': 'vuint8', 'label': 'int64'}, 32)  # doctest: +SKIP
        >>> batch = tank.next()  # doctest: +SKIP
    """

    def __init__(
        self,
        data_path: Any,
        data_specf: dict[str, str],
        batch_size: int,
        shuffle: bool = True,
        in_same_size: bool = True,
        fetch_fn: Callable[..., Any] | None = None,
        prep_fn: Callable[..., Any] | None = None,
        collate_fn: Callable[..., Any] | None = None,
        *,
        seed: int | None = None,
        nworker: int | None = None,
        worker_type: str | None = None,
        decode: bool = True,
        verbose: bool = True,
        storage_options: dict[str, Any] | None = None,
        cache_dir: Any = None,
        cache_bytes: int | None = None,
        shuffle_window: int = 4,
    ) -> None:
        self._executor: Any = None
        self._closed = False
        self._pid = os.getpid()
        self._cache: ShardCache | None = None
        self._lazy: tuple[list[int], int] | None = None
        self._held: dict[tuple[int, int], list[int]] = {}
        self._spans: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.shuffle_window = _check_int("shuffle_window", shuffle_window, 1)
        if storage_options is not None and not isinstance(storage_options, dict):
            raise TypeError(
                f"'storage_options' must be a dict or None (got {type(storage_options).__name__})"
            )
        if cache_bytes is not None:
            cache_bytes = _check_int("cache_bytes", cache_bytes, 1)
        remote, paths, kind = open_data_path(data_path, storage_options)
        check_specf(data_specf)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        if seed is None:
            seed = random.randrange(2**31)
        seed = _check_int("seed", seed, 0)
        check_callables(fetch_fn, prep_fn, collate_fn, worker_type)
        self.shuffle = bool(shuffle)
        self.in_same_size = bool(in_same_size)
        self.specf = dict(data_specf)
        rank, nworld = get_rank(), get_world_size()
        self.rank, self.nworld = max(rank, 0), max(nworld, 1)
        shard_rows = None  # how the Source opens a remote data set's shards (see mount_remote)
        if remote is not None:
            self._cache, paths, self._lazy, shard_rows = mount_remote(
                remote,
                cache_dir,
                cache_bytes,
                seed,
                self.shuffle,
                self.shuffle_window,
                self.nworld,
                self.rank,
                every_shard=FRAME_KEY in data_specf,
            )
        self.paths = paths
        if nworker is None:
            nworker = min(8, max(1, (os.cpu_count() or 1) // self.nworld))
        self.nworker = _check_int("nworker", nworker, 0)
        try:
            source = Source(paths, kind, decode, *(shard_rows or ()))
        except BaseException:
            self._close_cache()
            raise
        try:
            keys, self._len, self._file_rows = check_columns(source, data_specf)
            if fetch_fn is None:
                check_castable(source, {k: data_specf[k] for k in keys})
            if worker_type is None:
                worker_type = choose_worker_type(source, keys, fetch_fn, prep_fn, collate_fn)
            specf = {k: v for k, v in data_specf.items() if k != FRAME_KEY}
            # the builder keeps this Source for reads in this process; worker processes open their own
            self._builder = BatchBuilder(
                paths,
                kind,
                decode,
                specf,
                fetch_fn,
                prep_fn,
                collate_fn,
                seed,
                source=source,
                lazy=shard_rows,
            )
            self.worker_type = worker_type
            self._recompute()
            if self._cache is not None and self._cache.waiting:
                # the shards still downloading (a data set that fits the cache): the workers start meanwhile and
                # open each shard as it lands
                ex = self._ensure_executor()
                ex.warm(0)
                self._cache.wait(ready=ex.warm)
        except BaseException:
            if self._executor is not None:
                self._executor.close()
                self._executor = None
            source.close()
            self._close_cache()
            raise
        self.epoch = 0
        self.mile = 0
        self._resuming = False  # set by seek() to a mile > 0: the next pass resumes there
        self._remainder: Remainder | None = None  # an epoch resumed on another number of ranks
        self._identity: dict[str, Any] | None = None
        self._queue: collections.deque[tuple[int, int]] = collections.deque()
        self._order_cache: tuple[int, np.ndarray] | None = None
        _OPEN_TANKS.add(self)
        if verbose and rank <= 0:
            more = f" (+{len(paths) - 1} shards)" if len(paths) > 1 else ""
            where = ""
            if self._cache is not None:
                mode = "windowed order" if self._lazy is not None else "all cached"
                where = f" from {remote.url if remote else ''} via cache {self._cache.dir} ({mode})"
            print(
                f"tank mounted: {os.path.basename(paths[0])}{more}, {self._len} samples, MPE {self.MPE}{where}"
            )

    def _close_cache(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    @property
    def cache(self) -> ShardCache | None:
        """The local shard cache of a Tank reading a URL (None for local files): `downloads`, `peak_bytes`, `dir`."""
        return self._cache

    @property
    def seed(self) -> int:
        """The seed of order and augmentation (the batch builder holds it: it seeds every batch)."""
        return self._builder.seed

    def _recompute(self) -> None:
        mpe = miles_per_epoch(self._len, self.batch_size, self.nworld, self.in_same_size)
        if mpe == 0:
            raise ValueError(
                f"{self._len} samples are fewer than batch_size ({self.batch_size}) x world size ({self.nworld}): "
                "no full batch; lower batch_size or pass in_same_size=False"
            )
        self._mpe = mpe

    @property
    def MPE(self) -> int:
        """Batches per epoch and rank (of the current epoch: one resumed on another number of ranks may differ)."""
        return self._miles(self.epoch)

    def _miles(self, epoch: int) -> int:
        remainder = self._remainder
        return remainder.miles if remainder is not None and remainder.epoch == epoch else self._mpe

    def __len__(self) -> int:
        return self._len

    # -- order ----------------------------------------------------------------------------------------

    def _order(self, epoch: int) -> np.ndarray:
        if self._order_cache is None or self._order_cache[0] != epoch:
            if self._lazy is not None:
                order = windowed_order(
                    self._lazy[0],
                    self.seed,
                    epoch,
                    self.shuffle,
                    self.shuffle_window,
                    self.nworld,
                    self.rank,
                    self.in_same_size,
                )
            else:
                order = epoch_order(self._len, self.seed, epoch, self.shuffle)
            self._order_cache = (epoch, order)
        return self._order_cache[1]

    def _shard_spans(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(shards in order of first use, and the position of their last use) along this rank's windowed epoch."""
        key = (epoch, self.rank, self.nworld)
        if key not in self._spans:
            assert self._lazy is not None
            starts = np.concatenate([[0], np.cumsum(self._lazy[0])])
            which = np.searchsorted(starts, self._order(epoch), side="right") - 1
            shards, first = np.unique(which, return_index=True)
            last = len(which) - 1 - np.unique(which[::-1], return_index=True)[1]
            by_first = np.argsort(first, kind="stable")
            if len(self._spans) > 4:
                self._spans.clear()
            self._spans[key] = (shards[by_first], last[by_first])
        return self._spans[key]

    def _batch_shards(self, indices: np.ndarray) -> list[int]:
        assert self._lazy is not None
        starts = np.concatenate([[0], np.cumsum(self._lazy[0])])
        return np.unique(np.searchsorted(starts, indices, side="right") - 1).tolist()

    def _plan(self) -> None:
        """Tell the cache which shards this rank reads from its current batch on: the rest of this epoch, then
        the next one (whose first shards may still be on disk from this one)."""
        if self._cache is None or self._lazy is None:
            return
        shards, last = self._shard_spans(self.epoch)
        here = self.mile * self.batch_size
        plan = [int(s) for s, end in zip(shards, last, strict=True) if end >= here]
        later = [int(s) for s in self._shard_spans(self.epoch + 1)[0]]
        self._cache.plan(plan + later, [self.epoch] * len(plan) + [self.epoch + 1] * len(later))

    def indices(self, epoch: int, mile: int) -> np.ndarray:
        """Sample indices of batch `mile` of `epoch` on this rank."""
        if self._lazy is not None:
            order = self._order(epoch)
            return order[mile * self.batch_size : (mile + 1) * self.batch_size]
        remainder = self._remainder
        if remainder is not None and remainder.epoch == epoch:
            return self._order(epoch)[remainder.batch(self.rank, mile)]
        return rank_batch(
            self._order(epoch), mile, self.batch_size, self.nworld, self.rank, self.in_same_size
        )

    # -- workers --------------------------------------------------------------------------------------

    def _ensure_executor(self) -> Any:
        if self._executor is None:
            if self.nworker == 0:
                self._executor = InlineExecutor(self._builder)
            elif self.worker_type == "thread":
                self._executor = ThreadExecutor(self._builder, self.nworker)
            else:
                self._executor = ProcessExecutor(self._builder, self.nworker)
                # atexit runs last-registered first: re-register so that Tanks close (stop, then terminate or
                # kill, their workers) before multiprocessing's own exit handler joins those workers without a
                # timeout; a Ctrl-C'd test script once hung there with a worker that had not stopped
                atexit.unregister(_close_all)
                atexit.register(_close_all)
        return self._executor

    def _fill(self) -> None:
        ex = self._ensure_executor()
        if self._queue:
            e, m = self._queue[-1]
            m += 1
            if m == self._miles(e):
                e, m = e + 1, 0
        else:
            e, m = self.epoch, self.mile
        self._plan()
        while len(self._queue) < ex.capacity:
            idx = self.indices(e, m)
            if self._lazy is not None and self._cache is not None:
                # the batch's shards stay on disk (pinned) until it is returned
                held = self._held[(e, m)] = []
                for s in self._batch_shards(idx):
                    self._cache.acquire(s, tag=e)
                    held.append(s)
            ex.submit((e, m), idx)
            self._queue.append((e, m))
            m += 1
            if m == self._miles(e):
                e, m = e + 1, 0

    def _discard(self) -> None:
        if self._executor is not None:
            self._executor.discard()
        self._queue.clear()
        for key in list(self._held):
            self._unpin(key)

    def _unpin(self, key: tuple[int, int]) -> None:
        for s in self._held.pop(key, []):
            if self._cache is not None:
                self._cache.release(s)

    def next(self) -> Any:
        """Return the next batch; after MPE batches the next epoch (a new order) begins.

        Example:
            >>> batch = tank.next()  # doctest: +SKIP
        """
        if self._closed:
            raise RuntimeError("this Tank is closed; create a new one to read again")
        if os.getpid() != self._pid:
            # its worker threads do not exist here and its worker processes answer the parent only: waiting on
            # them would hang
            raise RuntimeError(
                f"this Tank was created by process {self._pid} and cannot be read in a forked copy "
                f"(process {os.getpid()}); create the Tank in the process that reads it"
            )
        self._fill()
        key = self._queue.popleft()
        assert key == (self.epoch, self.mile)
        try:
            batch = self._executor.result(key)
        except BaseException:
            self._discard()
            raise
        self._unpin(key)
        self._resuming = False
        self.mile += 1
        if self.mile == self.MPE:
            self.epoch, self.mile = self.epoch + 1, 0
            self._remainder = None
        return batch

    def __iter__(self) -> Iterator[Any]:
        """One whole epoch: exactly MPE batches, as a DataLoader pass yields.

        The pass covers the current epoch when none of its batches has been taken yet, else the next epoch:
        batches already returned by `next()` (or by a pass left early) are never repeated, and the rest of
        that epoch is skipped, so that each pass starts with a fresh order. After `seek(epoch, mile)` the pass
        resumes there instead and yields that epoch's remaining MPE - mile batches.
        """
        if self.mile and not self._resuming:
            self.seek(self.epoch + 1)
        epoch = self.epoch
        while self.epoch == epoch:
            yield self.next()

    def seek(self, epoch: int, mile: int = 0) -> None:
        """Continue from batch `mile` of `epoch` (e.g. when resuming a run)."""
        epoch = _check_int("epoch", epoch, 0)
        mile = _check_int("mile", mile, 0)
        if mile >= self._mpe:
            raise ValueError(f"'mile' must be < MPE ({self._mpe}) (got {mile})")
        self._go(epoch, mile, None)

    def _go(self, epoch: int, mile: int, remainder: Remainder | None) -> None:
        self._discard()
        self.epoch, self.mile = epoch, mile
        self._remainder = remainder
        self._resuming = mile > 0

    def set_distributed(self, rank: int, nworld: int, *, seed: int | None = None) -> None:
        """Re-shard for `rank` of `nworld` (Multiverse.sync calls this) and restart the current epoch.

        Args:
            rank: this process's rank, 0 <= rank < nworld.
            nworld: the number of ranks.
            seed: the shared seed (rank 0's), so that every rank uses the same order.
        """
        nworld = _check_int("nworld", nworld, 1)
        rank = _check_int("rank", rank, 0)
        if rank >= nworld:
            raise ValueError(f"'rank' must be < nworld ({nworld}) (got {rank})")
        if seed is not None:
            self._reseed(_check_int("seed", seed, 0))
        self._discard()
        self.rank, self.nworld = rank, nworld
        self._order_cache = None
        self._spans.clear()
        self._remainder = None
        self._recompute()
        self.mile = 0

    def _reseed(self, seed: int) -> None:
        if seed == self._builder.seed:
            return
        self._builder.seed = seed
        self._order_cache = None
        self._spans.clear()
        if self._executor is not None:
            # worker processes hold a copy of the builder, and with it the old seed
            self._discard()
            self._executor.close()
            self._executor = None

    @property
    def data(self) -> Any:
        """The `data` mapping of this process (column accessors), as fetch_fn receives it."""
        return self._builder.data()

    def close(self) -> None:
        """Stop the workers and release file handles and shared memory (also done by `with` and at exit)."""
        self._closed = True
        self._queue.clear()
        if self._executor is not None and os.getpid() == self._pid:
            self._executor.close()
        # a forked copy (a DataLoader worker, os.fork) only drops its references: the workers, their pipes and
        # shared memory belong to the process that started them
        self._executor = None
        self._builder.close()
        self._held.clear()
        if os.getpid() == self._pid:
            self._close_cache()
        _OPEN_TANKS.discard(self)

    def __enter__(self) -> Tank:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if self._executor is not None and os.getpid() == self._pid:
                self._executor.close()
        except Exception:
            pass

    def as_torch(self) -> Any:
        """A torch IterableDataset yielding this Tank's batches of one epoch as CPU tensors (imports torch)."""
        from ._torch import TankDataset

        return TankDataset(self)

    def __repr__(self) -> str:
        return (
            f"Tank({os.path.basename(self.paths[0])!r}, {len(self)} samples, batch_size={self.batch_size}, "
            f"MPE={self.MPE}, rank {self.rank}/{self.nworld}, seed={self.seed})"
        )
