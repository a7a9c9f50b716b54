"""Tank's `state_dict()` / `load_state_dict()` (a base class of Tank): where a Tank is, and continuing from there.
The state's checks, and resuming on another number of ranks, are `_state.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._build import BatchBuilder
from ._cache import ShardCache
from ._files import read_run_id
from ._state import STATE_FORMAT, Remainder, identity, resume_point


class TankState:
    """The state methods of Tank; Tank defines what they read."""

    if TYPE_CHECKING:
        epoch: int
        mile: int
        rank: int
        nworld: int
        batch_size: int
        shuffle: bool
        in_same_size: bool
        paths: list[str]
        _len: int
        _file_rows: list[int]
        _builder: BatchBuilder
        _cache: ShardCache | None
        _lazy: tuple[list[int], int] | None
        _remainder: Remainder | None
        _identity: dict[str, Any] | None

        @property
        def seed(self) -> int: ...

        @property
        def MPE(self) -> int: ...

        def _reseed(self, seed: int) -> None: ...

        def _go(self, epoch: int, mile: int, remainder: Remainder | None) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """Where this Tank is, as a small JSON-able dict: `load_state_dict` on a new Tank continues from here.

        Holds the seed, `epoch` and `mile` (batches already returned in that epoch), `rank` and `nworld`, the
        current epoch's `MPE`, the settings a resume must share (`batch_size`, `shuffle`, `in_same_size`, `rows`),
        the data set's identity (`dataset`: its files' run ids, names and rows; nothing is hashed) and `pending`
        (None, or the positions left of an epoch resumed on another number of ranks). Batches built ahead by the
        workers do not count: only those returned.

        Example:
            >>> json.dumps(tank.state_dict())  # doctest: +SKIP
        """
        remainder = (
            self._remainder if self._remainder is not None and self._remainder.epoch == self.epoch else None
        )
        return {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "epoch": self.epoch,
            "mile": self.mile,
            "rank": self.rank,
            "nworld": self.nworld,
            "MPE": self.MPE,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "in_same_size": self.in_same_size,
            "rows": self._len,
            "dataset": self.dataset_identity(),
            "pending": [list(r) for r in remainder.ranges] if remainder is not None else None,
        }

    def dataset_identity(self) -> dict[str, Any]:
        """`{'run': the run id all files share or None, 'files': [[name, rows, run id or None], ...]}`.

        Read once from the files' metadata (a family's shards all carry its manifest's run id).
        """
        if self._identity is None:
            kind = self._builder.kind
            if self._cache is not None:
                # the manifest vouches for the shards' run (a shard need not be on disk to be named)
                runs = [self._cache.rset.run] * len(self.paths)
            else:
                runs = [read_run_id(p, kind) for p in self.paths]
            self._identity = identity(self.paths, self._file_rows, runs)
        ident = self._identity
        return {
            "run": ident["run"],
            "files": [list(f) for f in ident["files"]],
        }  # a copy: callers may edit it

    def load_state_dict(self, state: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Continue exactly where `state` was saved: the next batch is the one an uninterrupted Tank would return.

        Same samples, same augmentation draws (they depend only on seed, epoch and batch), with any worker
        count or type. An `iter()` pass then resumes that epoch at that mile, as after `seek(epoch, mile)`.
        Call `set_distributed` first when ranks change (Multiverse.sync does).

        Args:
            state: one rank's `state_dict()`, saved with this Tank's rank and world size; or the list of the
                states of every rank of the saved run. With as many ranks as saved, each rank takes its own
                state (exact). With another number of ranks, the epoch the run was in is finished first, every
                sample its ranks had still to deliver seen exactly once across the new ranks (the last one or two
                batches of that pass may be smaller, even with in_same_size); later epochs are the usual ones.
                A state saved by a single rank is complete alone.

        Raises:
            TypeError: not a dict or a list of dicts, or a field of the wrong type.
            ValueError: a state of another data set (naming both), of another batch_size, shuffle, in_same_size
                or number of rows (naming the setting), of another rank, an incomplete list of ranks' states, or
                samples left that cannot be split over this world size with equal batch counts per rank.

        Example:
            >>> tank.load_state_dict(json.load(open('tank_state.json')))  # doctest: +SKIP
        """
        settings = {"batch_size": self.batch_size, "shuffle": self.shuffle, "in_same_size": self.in_same_size}
        settings["rows"] = self._len
        seed, epoch, mile, remainder = resume_point(
            state, self.rank, self.nworld, settings, self.dataset_identity()
        )
        if remainder is not None and self._lazy is not None:
            raise ValueError(
                f"this state was saved by {len(state) if isinstance(state, list) else 'another number of'} rank(s); "
                "a Tank reading in the windowed order (the data set does not fit cache_bytes) resumes only on the "
                "world size it was saved with; resume with that many ranks, or raise cache_bytes to the data set's "
                "size for the global order"
            )
        self._reseed(seed)
        self._go(epoch, mile, remainder)
