"""Tank.state_dict() / load_state_dict(): exact resume on a real packed family, and resume on other ranks."""

from __future__ import annotations

import importlib
import json
import textwrap

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nebulae.fuel import FuelGenerator, Tank
from nebulae.fuel._build import BatchBuilder

SPEC = {"image": "vuint8", "label": "int64", "key": "int64"}
BS = 3  # 20 rows: MPE 6 on one rank, 3 on two (two rows dropped per epoch)
WORKERS = [(0, None), (2, "thread"), (2, "process")]


@pytest.fixture
def family(photo_dir, tmp_path, csvfile):
    """The 20 photos packed as a JPEG HDF5 family of two shards, with a 'key' column holding each row's index."""
    csvfile(
        photo_dir / "keyed.csv",
        ["image", "label", "key"],
        [[f"img_{i}.png", str(i % 5), str(i)] for i in range(20)],
    )
    fg = FuelGenerator(str(photo_dir), "keyed.csv", ["int64", "int64"])
    fg.generate(str(tmp_path / "fam.hdf5"), 16, 16, shards=2, nworker=1, verbose=False)
    return str(tmp_path / "fam.hdf5")


@pytest.fixture
def aug(tmp_path, monkeypatch):
    """A Comburant prep_fn in an importable module (process workers need one)."""
    (tmp_path / "fuel_state_aug.py").write_text(
        textwrap.dedent(
            """
            from nebulae.fuel import Brighten, Comburant, Crop, Flip, Random, VERTICAL
            CBR = Comburant(Crop((8, 8)), Random(0.5, Flip(VERTICAL)), Brighten(0.3), end=False)
            def aug(item):
                item["image"] = CBR(item["image"])
                return item
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module("fuel_state_aug").aug


def open_tank(path, prep_fn=None, nworker=0, worker_type=None, seed=7, rank=None, **kw):
    tank = Tank(
        path,
        SPEC,
        BS,
        prep_fn=prep_fn,
        seed=seed,
        nworker=nworker,
        worker_type=worker_type,
        verbose=False,
        **kw,
    )
    if rank is not None:
        tank.set_distributed(*rank)
    return tank


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def trip(state):
    return json.loads(json.dumps(state))


# -- one rank ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("nworker", "worker_type"), WORKERS)
def test_resume_at_any_mile_gives_the_uninterrupted_batches(family, aug, nworker, worker_type):
    with open_tank(family, aug, nworker, worker_type) as tank:
        mpe = tank.MPE
        states, batches = [], []
        for _ in range(2 * mpe + 1):
            states.append(trip(tank.state_dict()))
            batches.append(tank.next())
    for k in (0, 1, mpe - 1, mpe, mpe + 1, 2 * mpe - 1):
        # another seed and worker setup: the state brings the seed, and batches never depend on the workers
        with open_tank(family, aug, 1, "thread", seed=99) as resumed:
            resumed.load_state_dict(states[k])
            assert (resumed.epoch, resumed.mile, resumed.seed) == (k // mpe, k % mpe, 7)
            for want in batches[k:]:
                assert_same(resumed.next(), want)


def test_iter_after_load_resumes_that_epoch_then_runs_whole_epochs(family, aug):
    with open_tank(family, aug) as tank:
        mpe = tank.MPE
        want = [tank.next() for _ in range(2 * mpe)]
    with open_tank(family, aug) as tank:
        for _ in range(2):
            tank.next()
        state = tank.state_dict()
    with open_tank(family, aug, 2, "thread") as resumed:
        resumed.load_state_dict(state)
        rest = [b for b in resumed]
        whole = [b for b in resumed]
    assert len(rest) == mpe - 2 and len(whole) == mpe
    for got, ref in zip(rest + whole, want[2:], strict=True):
        assert_same(got, ref)


def test_load_computes_the_order_without_building_earlier_batches(family, monkeypatch):
    built = []
    real = BatchBuilder.build

    def counting(self, epoch, batch, *args, **kwargs):
        built.append((epoch, batch))
        return real(self, epoch, batch, *args, **kwargs)

    monkeypatch.setattr(BatchBuilder, "build", counting)
    with open_tank(family) as tank:
        tank.load_state_dict({**tank.state_dict(), "epoch": 3, "mile": 4})
        tank.next()
    assert built == [(3, 4)]


def test_state_is_a_small_json_dict_naming_the_family_run(family):
    with open_tank(family) as tank:
        tank.next()
        state = tank.state_dict()
        tank.state_dict()["dataset"]["files"].clear()  # the caller's copy, not the Tank's
        assert tank.state_dict() == state
    with open(family + ".manifest.json", encoding="utf-8") as fh:
        run = json.load(fh)["run"]
    text = json.dumps(state)
    assert json.loads(text) == state and len(text) < 1000
    assert state["dataset"] == {"run": run, "files": [["fam_0.hdf5", 10, run], ["fam_1.hdf5", 10, run]]}
    assert {k: state[k] for k in ("format", "seed", "epoch", "mile", "rank", "nworld", "MPE")} == {
        "format": 1,
        "seed": 7,
        "epoch": 0,
        "mile": 1,
        "rank": 0,
        "nworld": 1,
        "MPE": 6,
    }
    assert (state["batch_size"], state["shuffle"], state["rows"], state["pending"]) == (3, True, 20, None)


def test_state_of_another_data_set_is_refused_naming_both(family, photo_dir, tmp_path):
    FuelGenerator(str(photo_dir), "keyed.csv", ["int64", "int64"]).generate(
        str(tmp_path / "other.hdf5"), 16, 16, nworker=1, verbose=False
    )
    with open_tank(family) as tank:
        state = tank.state_dict()
    with open_tank(str(tmp_path / "other.hdf5")) as other:
        with pytest.raises(ValueError, match="another data set") as info:
            other.load_state_dict(state)
        assert other.state_dict()["dataset"]["run"] in str(info.value)
    message = str(info.value)
    assert state["dataset"]["run"] in message and "fam_0.hdf5" in message and "other.hdf5" in message


def test_files_without_run_ids_are_told_apart_by_name_and_rows(tmp_path):
    for name, n in (("a.hdf5", 12), ("b.hdf5", 12), ("c.hdf5", 15)):
        with h5py.File(tmp_path / name, "w") as f:
            f["key"] = np.arange(n, dtype=np.int64)

    def tank(name):
        return Tank(str(tmp_path / name), {"key": "int64"}, 2, seed=1, nworker=0, verbose=False)

    with tank("a.hdf5") as a:
        state = a.state_dict()
        assert state["dataset"] == {"run": None, "files": [["a.hdf5", 12, None]]}
    with tank("a.hdf5") as again:
        again.load_state_dict(state)
    for name in ("b.hdf5", "c.hdf5"):
        with tank(name) as other, pytest.raises(ValueError, match=rf"a\.hdf5 \(12 rows\).*{name}"):
            other.load_state_dict(state)


@pytest.mark.parametrize(
    ("setting", "value"), [("batch_size", 4), ("shuffle", False), ("in_same_size", False)]
)
def test_state_with_other_settings_is_refused_naming_the_setting(family, setting, value):
    with open_tank(family) as tank:
        state = tank.state_dict()
    kwargs = {"shuffle": True, "in_same_size": True, setting: value}
    size = kwargs.pop("batch_size", BS)
    pattern = rf"{setting}={state[setting]!r}.*{setting}={value!r}"
    with (
        Tank(family, SPEC, size, seed=7, nworker=0, verbose=False, **kwargs) as other,
        pytest.raises(ValueError, match=pattern),
    ):
        other.load_state_dict(state)
    with open_tank(family) as same, pytest.raises(ValueError, match="rows"):
        same.load_state_dict({**state, "rows": 21})


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"mile": "1"}, TypeError, r"state: 'mile' must be an int >= 0 \(got '1'\)"),
        ({"shuffle": 1}, TypeError, "'shuffle' must be a bool"),
        ({"dataset": "fam"}, TypeError, "'dataset' must be a dict"),
        ({"pending": [[0, "3"]]}, TypeError, "'pending' must be None or a list"),
        ({"epoch": -1}, ValueError, r"'epoch' must be an int >= 0 \(got -1\)"),
        ({"mile": 6}, ValueError, r"'mile' must be < 'MPE' \(6\)"),
        ({"rank": 1}, ValueError, r"'rank' must be < 'nworld' \(1\)"),
        ({"format": 2}, ValueError, "reads Tank states of format 1"),
        ({"pending": [[5, 3]]}, ValueError, "increasing, disjoint"),
        ({"MPE": 5}, ValueError, "state has MPE 5"),
    ],
)
def test_malformed_states_name_the_field(family, change, error, message):
    with open_tank(family) as tank:
        state = {**tank.state_dict(), **change}
        with pytest.raises(error, match=message):
            tank.load_state_dict(state)


def test_wrong_containers_and_missing_fields_are_refused(family):
    with open_tank(family) as tank:
        state = tank.state_dict()
        with pytest.raises(TypeError, match=r"'state' must be a dict made by Tank\.state_dict"):
            tank.load_state_dict("state.json")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"state\[1\] must be a dict"):
            tank.load_state_dict([state, 3])  # type: ignore[list-item]
        with pytest.raises(ValueError, match=r"lacks \['seed'\]"):
            tank.load_state_dict({k: v for k, v in state.items() if k != "seed"})
        with pytest.raises(ValueError, match="empty list"):
            tank.load_state_dict([])


# -- several ranks ---------------------------------------------------------------------------------------------


def run_ranks(path, world, miles, prep_fn=None, **kw):
    """Each rank's states before each of its batches, and the batches, over `miles` batches per rank."""
    out = []
    for rank in range(world):
        with open_tank(path, prep_fn, rank=(rank, world), **kw) as tank:
            states, batches = [], []
            for _ in range(miles):
                states.append(trip(tank.state_dict()))
                batches.append(tank.next())
            out.append((states, batches))
    return out


def keys_of(batches):
    return [k for b in batches for k in b["key"].tolist()]


@pytest.mark.parametrize(("nworker", "worker_type"), [(0, None), (2, "process")])
def test_two_ranks_resume_exactly_on_two_ranks(family, aug, nworker, worker_type):
    ranks = run_ranks(family, 2, 7, aug, nworker=nworker, worker_type=worker_type)
    for k in (0, 2, 3, 4):
        saved = [ranks[r][0][k] for r in range(2)]
        for rank in range(2):
            for state in (saved, saved[rank]):  # every rank's states, or its own
                with open_tank(family, aug, 1, "thread", seed=1, rank=(rank, 2)) as tank:
                    tank.load_state_dict(state)
                    for want in ranks[rank][1][k:]:
                        assert_same(tank.next(), want)


def test_a_state_of_another_rank_or_world_alone_is_refused(family):
    ranks = run_ranks(family, 2, 1)
    with open_tank(family, rank=(1, 2)) as tank, pytest.raises(ValueError, match="saved by rank 0"):
        tank.load_state_dict(ranks[0][0][0])
    with open_tank(family) as tank, pytest.raises(ValueError, match="list of the states of all 2"):
        tank.load_state_dict(ranks[0][0][0])
    with open_tank(family) as tank, pytest.raises(ValueError, match=r"from ranks \[0, 0\]"):
        tank.load_state_dict([ranks[0][0][0], ranks[0][0][0]])


def resume_on(path, saved, world, **kw):
    """Load every saved rank's state into `world` new ranks; their batches of the resumed epoch, and the tanks'
    epoch and MPE."""
    batches, shape = [], set()
    for rank in range(world):
        with open_tank(path, rank=(rank, world), **kw) as tank:
            tank.load_state_dict(saved)
            epoch, mpe = tank.epoch, tank.MPE
            batches.append([b for b in tank])
            shape.add((epoch, mpe, tank.epoch, len(batches[-1])))
            follow = tank.next()["key"].tolist()  # the next epoch is the usual one of the new world
            assert follow == tank.indices(epoch + 1, 0).tolist()
    assert len(shape) == 1  # every rank: the same epoch, the same number of batches
    return batches, shape.pop()


@pytest.mark.parametrize("in_same_size", [True, False])
@pytest.mark.parametrize(("old", "new"), [(2, 1), (1, 2), (2, 3)])
def test_another_world_size_sees_every_remaining_sample_once(family, old, new, in_same_size):
    ranks = run_ranks(family, old, 8, in_same_size=in_same_size)
    mpe = ranks[0][0][0]["MPE"]
    # the same mile on every rank; ranks one mile apart; the last mile; one rank past the epoch's end
    for miles in ([1] * old, [1, 2][:old], [mpe - 1] * old, [mpe - 1, mpe][:old]):
        saved = [ranks[r][0][m] for r, m in enumerate(miles)]
        delivered = [k for r, m in enumerate(miles) for k in keys_of(ranks[r][1][:m])]
        scheduled = {k for r in range(old) for k in keys_of(ranks[r][1][:mpe])}
        left = scheduled - set(delivered)
        if len(left) < new:  # some new rank would get no sample: refused
            with pytest.raises(ValueError, match=rf"the {len(left)} samples left .* over {new} ranks"):
                resume_on(family, saved, new, in_same_size=in_same_size)
            continue
        batches, (epoch, _, after, count) = resume_on(family, saved, new, in_same_size=in_same_size)
        seen = [k for rank in batches for k in keys_of(rank)]
        assert sorted(seen) == sorted(left) and len(set(seen)) == len(seen)
        assert (epoch, after) == (0, 1) and all(len(b) == count for b in batches)
        assert all(len(b["key"]) <= BS for rank in batches for b in rank)


def test_epoch_boundary_states_start_the_next_epoch_on_the_new_world(family):
    ranks = run_ranks(family, 2, 4)
    saved = [ranks[r][0][3] for r in range(2)]  # both at epoch 1, mile 0
    with open_tank(family) as tank:
        tank.load_state_dict(saved)
        assert (tank.epoch, tank.mile, tank.MPE) == (1, 0, 6)
        assert [b["key"].tolist() for b in tank] == [tank.indices(1, m).tolist() for m in range(6)]


def test_an_interrupted_resumed_epoch_resumes_again(family):
    ranks = run_ranks(family, 2, 2)
    saved = [ranks[r][0][1] for r in range(2)]  # 12 samples of epoch 0 left
    with open_tank(family) as one:
        one.load_state_dict(saved)
        assert one.MPE == 4
        first = [one.next() for _ in range(2)]
        state = trip(one.state_dict())
        rest = [one.next() for _ in range(2)]
    assert state["pending"] is not None and (state["epoch"], state["mile"], state["MPE"]) == (0, 2, 4)
    with open_tank(family) as again:
        again.load_state_dict(state)  # the same world: exact
        for want in rest:
            assert_same(again.next(), want)
    batches, _ = resume_on(family, state, 2)  # and on two ranks: the six samples left, once each
    seen = [k for rank in batches for k in keys_of(rank)]
    assert sorted(seen) == sorted(keys_of(rest)) and not set(seen) & set(keys_of(first))


def numbered(path, n):
    """An HDF5 file whose column 'key' holds each row's own index, and a maker of inline Tanks over it."""
    with h5py.File(path, "w") as f:
        f["key"] = np.arange(n, dtype=np.int64)

    def tank(rank, world, bs=1, in_same_size=False):
        t = Tank(str(path), {"key": "int64"}, bs, in_same_size=in_same_size, seed=2, nworker=0, verbose=False)
        t.set_distributed(rank, world)
        return t

    return tank


def test_a_remainder_that_cannot_be_split_evenly_is_refused(tmp_path):
    tank = numbered(tmp_path / "n.hdf5", 5)
    with tank(0, 1) as one:
        for _ in range(4):
            one.next()
        state = one.state_dict()  # one sample left
    with (
        tank(0, 2) as two,
        pytest.raises(ValueError, match=r"1 samples left .* over 2 ranks with batch_size 1"),
    ):
        two.load_state_dict(state)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    bs=st.integers(1, 5),
    old=st.integers(1, 4),
    new=st.integers(1, 4),
    in_same_size=st.booleans(),
    data=st.data(),
)
def test_property_resharding_delivers_the_rest_once_or_refuses(
    tmp_path_factory, n, bs, old, new, in_same_size, data
):
    if old == new or (in_same_size and n < bs * max(old, new)):
        return  # the same world resumes each rank's own state (tested above); such a Tank cannot be created
    made = numbered(tmp_path_factory.mktemp("prop") / "n.hdf5", n)

    def tank(rank, world):
        return made(rank, world, bs, in_same_size)

    saved, delivered, scheduled = [], set(), set()
    mpe = tank(0, old).MPE
    mile = data.draw(st.integers(0, mpe - 1))
    for r in range(old):
        with tank(r, old) as t:
            m = min(mpe, mile + data.draw(st.integers(0, 1)))
            scheduled |= {k for j in range(mpe) for k in t.indices(0, j).tolist()}
            delivered |= {k for j in range(m) for k in t.indices(0, j).tolist()}
            if m == mpe:
                t.seek(1)
            else:
                t.seek(0, m) if m else t.seek(0)
            saved.append(t.state_dict())
    seen, counts = [], set()
    for r in range(new):
        with tank(r, new) as t:
            try:
                t.load_state_dict(saved)
            except ValueError as exc:
                assert "cannot be split" in str(exc)
                return
            fresh = all(s["mile"] == 0 for s in saved) and len({s["epoch"] for s in saved}) == 1
            epoch = t.epoch
            batches = [b["key"].tolist() for b in t]
            counts.add(len(batches))
            assert all(1 <= len(b) <= bs for b in batches)
            seen += [k for b in batches for k in b] if epoch == 0 and not fresh else []
    assert len(counts) == 1
    if not (all(s["mile"] == 0 for s in saved) and len({s["epoch"] for s in saved}) == 1):
        left = scheduled - delivered
        assert sorted(seen) == sorted(left)


def test_an_epoch_resumed_on_other_ranks_does_not_depend_on_the_workers(family, aug):
    ranks = run_ranks(family, 2, 3, aug)
    saved = [ranks[0][0][1], ranks[1][0][2]]  # rank 0 at mile 1, rank 1 at mile 2
    runs = []
    for nworker, worker_type in WORKERS:
        with open_tank(family, aug, nworker, worker_type) as tank:
            tank.load_state_dict(saved)
            runs.append([b for b in tank] + [tank.next()])
    assert len(runs[0]) == 3 + 1  # 9 samples left: 3 batches, then epoch 1
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            assert_same(a, b)
