"""Tank's resumable state: the JSON-able dict and its checks, and the order of an epoch resumed on other ranks.

Positions below are places in an epoch's sample order (`epoch_order`), not row numbers: a state records which
positions of its epoch a rank has still to deliver, never the rows themselves, so it stays small.
"""

from __future__ import annotations

import bisect
import itertools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._order import miles_per_epoch
from ._validate import instance_of, int_in, is_int

STATE_FORMAT = 1
_INT_MINIMUM = {
    "seed": 0,
    "epoch": 0,
    "mile": 0,
    "rank": 0,
    "nworld": 1,
    "MPE": 1,
    "batch_size": 1,
    "rows": 1,
}
_BOOLS = ("shuffle", "in_same_size")
KEYS = ("format", *_INT_MINIMUM, *_BOOLS, "dataset", "pending")
# the settings two ranks of one run share, and that a Tank must share with the state it loads
SHARED = ("seed", "nworld", "batch_size", "shuffle", "in_same_size", "rows", "dataset")


# -- the data set's identity ----------------------------------------------------------------------------------


def identity(paths: Sequence[str], rows: Sequence[int], runs: Sequence[str | None]) -> dict[str, Any]:
    """Which data set a Tank reads: its files' run ids (one for a packed family), names and rows; no hashing."""
    shared = runs[0] if runs and runs[0] is not None and all(r == runs[0] for r in runs) else None
    files = [[os.path.basename(p), int(n), r] for p, n, r in zip(paths, rows, runs, strict=True)]
    return {"run": shared, "files": files}


def same_data(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when both identities name the same files: by run id where a file has one (a renamed or moved
    family stays itself), else by name; and by rows."""

    def key(ident: dict[str, Any]) -> list[tuple[Any, int]]:
        return [(run if run is not None else name, n) for name, n, run in ident["files"]]

    return key(a) == key(b)


def describe(ident: dict[str, Any]) -> str:
    files = ident["files"]
    names = ", ".join(f"{name} ({n} rows)" for name, n, _ in files[:3])
    if len(files) > 3:
        names += f" and {len(files) - 3} more"
    run = f"run {ident['run']!r}, " if ident["run"] is not None else ""
    return f"{run}files {names}"


# -- checks -----------------------------------------------------------------------------------------------


def check_state(state: Any, where: str) -> dict[str, Any]:
    """`state` checked for shape and values, as a new dict.

    Raises:
        TypeError: not a dict, or a field of the wrong type; ValueError: a missing field or a wrong value.
    """
    if not isinstance(state, dict):
        raise TypeError(f"{where} must be a dict made by Tank.state_dict() (got {type(state).__name__})")
    missing = [k for k in KEYS if k not in state]
    if missing:
        raise ValueError(f"{where} lacks {missing}: pass a dict made by Tank.state_dict()")
    if not is_int(state["format"]) or state["format"] != STATE_FORMAT:
        raise ValueError(
            f"{where}: 'format' is {state['format']!r}; this nebulae-fuel reads Tank states of format {STATE_FORMAT}"
        )
    out: dict[str, Any] = {"format": STATE_FORMAT}
    for key, minimum in _INT_MINIMUM.items():
        out[key] = int_in(key, state[key], minimum, owner=where)
    for key in _BOOLS:
        instance_of(key, state[key], bool, "a bool", owner=where)
        out[key] = state[key]
    if out["rank"] >= out["nworld"]:
        raise ValueError(f"{where}: 'rank' must be < 'nworld' ({out['nworld']}) (got {out['rank']})")
    if out["mile"] >= out["MPE"]:
        raise ValueError(f"{where}: 'mile' must be < 'MPE' ({out['MPE']}) (got {out['mile']})")
    out["dataset"] = _check_identity(state["dataset"], where)
    out["pending"] = _check_ranges(state["pending"], out["rows"], where)
    return out


def _check_identity(ident: Any, where: str) -> dict[str, Any]:
    expected = "a dict {'run': str or None, 'files': [[name, rows, run or None], ...]}"
    instance_of("dataset", ident, dict, expected, owner=where)
    files = ident.get("files")
    run = ident.get("run")
    ok = isinstance(files, list) and bool(files) and (run is None or isinstance(run, str))
    ok = ok and all(
        isinstance(f, list)
        and len(f) == 3
        and isinstance(f[0], str)
        and is_int(f[1])
        and (f[2] is None or isinstance(f[2], str))
        for f in files
    )
    if not ok:
        raise TypeError(f"{where}: 'dataset' must be {expected} (got {ident!r:.200})")
    return {"run": run, "files": [[f[0], int(f[1]), f[2]] for f in files]}


def _check_ranges(pending: Any, rows: int, where: str) -> list[list[int]] | None:
    if pending is None:
        return None
    expected = f"None or a list of increasing, disjoint [start, stop) position pairs within [0, {rows}]"
    instance_of("pending", pending, list, expected, owner=where)
    if not all(isinstance(p, list) and len(p) == 2 and is_int(p[0]) and is_int(p[1]) for p in pending):
        raise TypeError(f"{where}: 'pending' must be {expected} (got {pending!r:.200})")
    flat = [int(v) for p in pending for v in p]
    if not pending or flat[0] < 0 or flat[-1] > rows or any(a >= b for a, b in itertools.pairwise(flat)):
        raise ValueError(f"{where}: 'pending' must be {expected} (got {pending!r:.200})")
    return [[int(a), int(b)] for a, b in pending]


def check_miles(state: dict[str, Any], where: str) -> Remainder | None:
    """`state`'s resumed pass, if it was in one; its 'MPE' checked against what its settings give."""
    pending = state["pending"]
    remainder = Remainder(state["epoch"], pending, state["batch_size"], state["nworld"]) if pending else None
    if remainder is not None:
        miles = remainder.miles
    else:
        miles = miles_per_epoch(state["rows"], state["batch_size"], state["nworld"], state["in_same_size"])
    if state["MPE"] != miles:
        raise ValueError(
            f"{where} has MPE {state['MPE']} but its settings give {miles} batches for that epoch on each rank: "
            "the state was edited or made by another version; save it again with Tank.state_dict()"
        )
    return remainder


def check_world(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The states of every rank of one run, ordered by rank: one per rank, all sharing the run's settings."""
    first = states[0]
    for i, state in enumerate(states[1:], 1):
        for key in SHARED:
            if state[key] != first[key]:
                raise ValueError(
                    f"state[{i}] has {key} {state[key]!r} but state[0] has {first[key]!r}: the states of all "
                    "ranks of one run are needed, each saved by its own rank at the same checkpoint"
                )
    ranks = sorted(s["rank"] for s in states)
    if ranks != list(range(first["nworld"])):
        raise ValueError(
            f"the states come from ranks {ranks} but were saved by {first['nworld']} ranks: pass the states of all "
            f"{first['nworld']} ranks, one each"
        )
    return sorted(states, key=lambda s: s["rank"])


# -- schedules ----------------------------------------------------------------------------------------------


def standard_slices(
    n: int, batch_size: int, nworld: int, rank: int, in_same_size: bool, miles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions [start, stop) of `rank`'s batches `miles` of a whole epoch, as `rank_batch` takes them.

    The padding of a short last batch (positions wrapped past n) is left out: those samples belong to batches
    at the start of the epoch.
    """
    g = batch_size * nworld
    begin = miles * g
    rem = n - begin
    per = np.where(in_same_size | (rem >= g), batch_size, -(-rem // nworld))
    start = begin + rank * per
    return np.minimum(start, n), np.minimum(start + per, n)


def remainder_plan(total: int, batch_size: int, nworld: int) -> tuple[int, int]:
    """`(miles, tail)` of a pass over `total` positions on `nworld` ranks: batches per rank, and how many final
    global batches share their positions evenly (1, or 2 when the last alone has fewer than one per rank).

    Every batch is full except those of the tail, which differ by at most one sample across its batches.

    Raises:
        ValueError: no split gives every rank the same number of batches without repeating or dropping samples.
    """
    g = batch_size * nworld
    miles = -(-total // g)
    last = total - (miles - 1) * g
    tail = 1 if last >= nworld or miles == 1 else 2
    if total - (miles - tail) * g < tail * nworld:
        raise ValueError(
            f"the {total} samples left of the interrupted epoch cannot be split over {nworld} ranks with batch_size "
            f"{batch_size} so that every rank takes the same number of batches and every sample is seen once; "
            "resume with the number of ranks that saved the states, or with one that divides the samples left"
        )
    return miles, tail


def remainder_slices(
    total: int, batch_size: int, nworld: int, rank: int, miles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions [start, stop) in the remainder pass of `rank`'s batches `miles` (see `remainder_plan`)."""
    count, tail = remainder_plan(total, batch_size, nworld)
    g = batch_size * nworld
    start = miles * g + rank * batch_size
    stop = start + batch_size
    body = count - tail
    in_tail = miles >= body
    if in_tail.any():
        first = body * g
        base, extra = divmod(total - first, tail * nworld)
        piece = (miles[in_tail] - body) * nworld + rank
        start[in_tail] = first + piece * base + np.minimum(piece, extra)
        stop[in_tail] = start[in_tail] + base + (piece < extra)
    return start, stop


def merge_ranges(starts: np.ndarray, stops: np.ndarray) -> list[list[int]]:
    """The union of [start, stop) ranges as sorted, disjoint, non-adjacent ranges."""
    keep = stops > starts
    starts, stops = starts[keep], stops[keep]
    if not starts.size:
        return []
    order = np.argsort(starts, kind="stable")
    starts, stops = starts[order], stops[order]
    reach = np.maximum.accumulate(stops)
    new = np.ones(len(starts), dtype=bool)
    new[1:] = starts[1:] > reach[:-1]
    heads = np.nonzero(new)[0]
    ends = np.append(heads[1:] - 1, len(starts) - 1)
    return [[int(a), int(b)] for a, b in zip(starts[heads], reach[ends], strict=True)]


def _through(ranges: list[list[int]], pending: list[list[int]]) -> list[list[int]]:
    """Ranges of a remainder pass's positions as ranges of the epoch's positions."""
    offsets = np.cumsum([0] + [b - a for a, b in pending]).tolist()
    starts: list[int] = []
    stops: list[int] = []
    for a, b in ranges:
        j = bisect.bisect_right(offsets, a) - 1
        while a < b:
            end = min(b, offsets[j + 1])
            starts.append(pending[j][0] + a - offsets[j])
            stops.append(pending[j][0] + end - offsets[j])
            a, j = end, j + 1
    return merge_ranges(np.array(starts, dtype=np.int64), np.array(stops, dtype=np.int64))


def total_of(ranges: list[list[int]]) -> int:
    return sum(b - a for a, b in ranges)


class Remainder:
    """The rest of an interrupted epoch, on a new number of ranks: the positions left and their schedule."""

    def __init__(self, epoch: int, ranges: list[list[int]], batch_size: int, nworld: int) -> None:
        self.epoch = epoch
        self.ranges = ranges
        self.total = total_of(ranges)
        self.batch_size, self.nworld = batch_size, nworld
        self.miles, _ = remainder_plan(self.total, batch_size, nworld)
        self._positions: np.ndarray | None = None

    def positions(self) -> np.ndarray:
        if self._positions is None:
            self._positions = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in self.ranges])
        return self._positions

    def batch(self, rank: int, mile: int) -> np.ndarray:
        """The epoch positions of `rank`'s batch `mile` of this pass."""
        start, stop = remainder_slices(
            self.total, self.batch_size, self.nworld, rank, np.array([mile], dtype=np.int64)
        )
        return self.positions()[int(start[0]) : int(stop[0])]


def undelivered(states: list[dict[str, Any]]) -> list[list[int]]:
    """Epoch positions that the ranks of `states` (one epoch, one pass) have still to deliver, as ranges."""
    first = states[0]
    n, bs, world = first["rows"], first["batch_size"], first["nworld"]
    pending = first["pending"]
    starts, stops = [], []
    for state in states:
        miles = np.arange(state["mile"], state["MPE"], dtype=np.int64)
        if pending is None:
            s, e = standard_slices(n, bs, world, state["rank"], first["in_same_size"], miles)
        else:
            s, e = remainder_slices(total_of(pending), bs, world, state["rank"], miles)
        starts.append(s)
        stops.append(e)
    ranges = merge_ranges(np.concatenate(starts), np.concatenate(stops))
    return ranges if pending is None else _through(ranges, pending)


def _padding_of(states: list[dict[str, Any]], epoch_states: dict[str, Any]) -> list[int]:
    """Positions whose samples ranks that finished a whole epoch delivered a second time, as the padding of its
    short last batch (`rank_batch` wraps around to the epoch's first positions)."""
    n, bs, world = epoch_states["rows"], epoch_states["batch_size"], epoch_states["nworld"]
    if epoch_states["in_same_size"] or epoch_states["pending"] is not None:
        return []
    begin = (-(-n // (bs * world)) - 1) * bs * world
    per = -(-(n - begin) // world)
    return sorted(
        {
            p % n
            for s in states
            for p in range(begin + s["rank"] * per, begin + (s["rank"] + 1) * per)
            if p >= n
        }
    )


def _without(ranges: list[list[int]], points: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in ranges:
        for p in points[bisect.bisect_left(points, a) : bisect.bisect_left(points, b)]:
            if p > a:
                out.append([a, p])
            a = p + 1
        if a < b:
            out.append([a, b])
    return out


def reshard(states: list[dict[str, Any]], nworld: int) -> tuple[int, list[list[int]] | None]:
    """Where ranks of another world size go on from the states of every rank of an interrupted run.

    What is left of the interrupted epoch: every sample that the old ranks' remaining batches hold and that no
    old rank has returned yet in that epoch, each once.

    Returns:
        `(epoch, ranges)`: the epoch to continue, and the positions of it left to deliver (None: the whole
        epoch, as a fresh start on the new ranks).

    Raises:
        ValueError: the states are too far apart (more than one epoch boundary), or the positions left cannot
            be split over `nworld` ranks (see `remainder_plan`).
    """
    epoch = min(s["epoch"] for s in states)
    current = [s for s in states if s["epoch"] == epoch]
    finished = [s for s in states if s["epoch"] != epoch]
    for s in finished:
        if s["epoch"] > epoch + 1 or s["mile"] or s["pending"] is not None:
            raise ValueError(
                f"rank {s['rank']} was at epoch {s['epoch']}, mile {s['mile']} but another rank at epoch {epoch}: "
                "the states must be saved at the same step on every rank"
            )
    if not finished and all(s["mile"] == 0 and s["pending"] is None for s in states):
        return epoch, None
    if any(s["pending"] != current[0]["pending"] for s in current):
        raise ValueError(
            f"the ranks at epoch {epoch} were in different resumed passes: the states must come from one run"
        )
    ranges = _without(undelivered(current), _padding_of(finished, current[0]))
    if not ranges:
        return epoch + 1, None
    remainder_plan(total_of(ranges), states[0]["batch_size"], nworld)
    return epoch, ranges


# -- what a Tank does with a state ---------------------------------------------------------------------------


def check_same_run(state: dict[str, Any], where: str, settings: dict[str, Any], ours: dict[str, Any]) -> None:
    """A state from another data set, or with other settings, cannot continue a Tank's run."""
    if not same_data(state["dataset"], ours):
        raise ValueError(
            f"{where} was saved from another data set ({describe(state['dataset'])}) than this Tank reads "
            f"({describe(ours)}): load it into a Tank over the data set it was saved from"
        )
    for key, value in settings.items():
        if state[key] != value:
            raise ValueError(
                f"{where} was saved with {key}={state[key]!r} but this Tank has {key}={value!r}: create "
                f"the Tank with {key}={state[key]!r} to resume"
            )


def resume_point(
    state: Any, rank: int, nworld: int, settings: dict[str, Any], ours: dict[str, Any]
) -> tuple[int, int, int, Remainder | None]:
    """`(seed, epoch, mile, remainder)` where the Tank `rank` of `nworld` goes on from `state` (see
    `Tank.load_state_dict`): one rank's state, or the list of every saved rank's.

    Raises:
        TypeError: not a dict or a list of dicts, or a field of the wrong type.
        ValueError: a wrong value, another data set or setting, another rank, or an impossible split.
    """
    if isinstance(state, dict):
        states = [check_state(state, "state")]
        wheres = ["state"]
        single = states[0]
        if single["nworld"] == nworld and single["rank"] != rank:
            raise ValueError(
                f"state was saved by rank {single['rank']} but this Tank is rank {rank} of {nworld}: load each "
                "rank's own state, or pass the list of every rank's state"
            )
        if single["nworld"] not in (nworld, 1):
            raise ValueError(
                f"state is rank {single['rank']}'s of {single['nworld']} ranks but this Tank is rank {rank} of "
                f"{nworld}: to resume on another number of ranks, pass the list of the states of all "
                f"{single['nworld']} saved ranks"
            )
    elif isinstance(state, (list, tuple)):
        if not state:
            raise ValueError(
                "'state' is an empty list: pass Tank.state_dict() or the list of every rank's state"
            )
        wheres = [f"state[{i}]" for i in range(len(state))]
        states = [check_state(s, where) for s, where in zip(state, wheres, strict=True)]
    else:
        raise TypeError(
            "'state' must be a dict made by Tank.state_dict() or a list of such dicts, one per saved rank "
            f"(got {type(state).__name__})"
        )
    remainders = []
    for s, where in zip(states, wheres, strict=True):
        check_same_run(s, where, settings, ours)
        remainders.append(check_miles(s, where))
    if isinstance(state, dict) and states[0]["nworld"] == nworld:
        single = states[0]
        return single["seed"], single["epoch"], single["mile"], remainders[0]
    states = check_world(states)
    seed = states[0]["seed"]
    if states[0]["nworld"] == nworld:
        own = states[rank]
        return seed, own["epoch"], own["mile"], check_miles(own, f"state of rank {rank}")
    epoch, ranges = reshard(states, nworld)
    remainder = Remainder(epoch, ranges, states[0]["batch_size"], nworld) if ranges is not None else None
    return seed, epoch, 0, remainder
