"""state_dict()/load_state_dict(): a run stopped anywhere and resumed writes what an unstopped run writes."""

from __future__ import annotations

import copy
import io
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nebulae.aerolog import DashBoard

SETTINGS = dict(window=3, format={"acc": (".2f", "percent"), "note": (str, "tailor")}, epochs=3)
STAGES = (("TRAIN", 7), ("DEV", 3))


def script() -> list[tuple[dict, int, int, int, str]]:
    """The gauge calls of a 3-epoch run with two stages, a percent, a tailor metric and diverged values."""
    calls = []
    for epoch in range(3):
        for stage, mpe in STAGES:
            for mile in range(mpe):
                loss = 1.0 / (1 + epoch * mpe + mile) + (0.1 if stage == "DEV" else 0.0)
                if (epoch, stage, mile) == (1, "TRAIN", 4):
                    loss = math.inf
                entry = {"loss": loss, "acc": 0.1 * mile, "note": f"e{epoch}m{mile}"}
                if stage == "TRAIN" and epoch == 2:
                    entry["lr"] = 0.5**mile  # a metric first seen late in the run
                calls.append((entry, mile, epoch, mpe, stage))
    return calls


CALLS = script()


def play(board: DashBoard, calls: list) -> None:
    for entry, mile, epoch, mpe, stage in calls:
        board.gauge(entry, mile, epoch, mpe, stage)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix == ".csv"}


def readings(board: DashBoard) -> dict[tuple[str, int], float]:
    out = {}
    for key, rec in board._series.items():
        for epoch in range(1, len(rec.epoch_curve()[1]) + 1):
            out[key, epoch] = board.read(key, epoch=epoch)
    return out


def curves(board: DashBoard) -> dict[str, tuple]:
    """What the PNGs are drawn from."""
    return {key: (rec.mile_curve(), rec.epoch_curve()) for key, rec in board._series.items()}


def same(a: object, b: object) -> bool:
    """Equal, nan equal to nan (repr compares floats exactly and writes nan as nan)."""
    return repr(a) == repr(b)


def uninterrupted(folder: Path, record: Path | None = None) -> DashBoard:
    board = DashBoard(folder, **SETTINGS)
    if record is not None:
        board.log(record=record)
    play(board, CALLS)
    board.log(record=record or "")
    return board


def resumed(folder: Path, k: int, through, record: Path | None = None) -> DashBoard:
    first = DashBoard(folder / "first", **SETTINGS)
    if record is not None:
        first.log(record=record)
    play(first, CALLS[:k])
    state = through(first.state_dict())
    play(first, CALLS[k : k + 3])  # the killed run went on a little after its last checkpoint
    board = DashBoard(folder / "second", **SETTINGS)
    board.load_state_dict(state)
    play(board, CALLS[k:])
    board.log(record=record or "")
    return board


def through_json(state: dict) -> dict:
    return json.loads(json.dumps(state))


# stops mid-epoch of TRAIN, right after an epoch end, mid-DEV, after the first call, before the last one
@pytest.mark.parametrize("k", [3, 7, 8, 12, 1, len(CALLS) - 1])
def test_resumed_run_writes_the_csvs_and_averages_of_an_unstopped_run(tmp_path, capsys, k) -> None:
    whole = uninterrupted(tmp_path / "whole")
    board = resumed(tmp_path, k, through_json)
    assert files_of(tmp_path / "second") == files_of(tmp_path / "whole")
    assert list(files_of(tmp_path / "whole"))  # the comparison compared something
    assert same(readings(board), readings(whole))
    assert same(curves(board), curves(whole))
    assert list(board._plans) == list(whole._plans)
    assert {s: list(p) for s, p in board._plans.items()} == {s: list(p) for s, p in whole._plans.items()}


def test_resumed_run_continues_a_merged_record_without_merging_it_twice(tmp_path, capsys) -> None:
    earlier = DashBoard(tmp_path / "earlier", **SETTINGS)
    play(earlier, CALLS[:10])
    earlier.log()
    whole = uninterrupted(tmp_path / "whole", record=tmp_path / "earlier")
    board = resumed(tmp_path, 9, through_json, record=tmp_path / "earlier")
    assert files_of(tmp_path / "second") == files_of(tmp_path / "whole")
    assert same(readings(board), readings(whole))
    assert board._series["TRAIN:loss"].prior_mile[0]  # the record is in the state


def test_state_round_trips_through_torch_save_and_weights_only_load(tmp_path, capsys) -> None:
    torch = pytest.importorskip("torch")

    def through_torch(state: dict) -> dict:
        buf = io.BytesIO()
        torch.save({"board": state}, buf)
        buf.seek(0)
        return torch.load(buf, weights_only=True)["board"]

    whole = uninterrupted(tmp_path / "whole")
    board = resumed(tmp_path, 12, through_torch)
    assert files_of(tmp_path / "second") == files_of(tmp_path / "whole")
    assert same(readings(board), readings(whole))


def test_state_holds_only_plain_types_and_json_dumps_with_defaults(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, **SETTINGS)
    play(board, CALLS[:16])
    state = board.state_dict()

    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(type(k) is str and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or type(value) in (str, int, float, bool)

    assert plain(state)
    assert "Infinity" in json.dumps(state)  # the diverged value travels
    loss = next(s for s in state["series"] if s["stage"] == "TRAIN" and s["name"] == "loss")
    assert loss["vals"] == board._series["TRAIN:loss"].vals
    assert all(type(v) is float for v in loss["vals"])  # a list of floats, not a dict per value
    assert [s["name"] for s in state["series"]].count("note") == 0  # tailor values are not recorded


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=5),
    st.data(),
)
def test_any_stop_point_resumes_to_the_same_curves_and_state(
    tmp_path_factory, values, mpe, window, data
) -> None:
    folder = tmp_path_factory.mktemp("run")
    calls = [({"loss": v}, i % mpe, i // mpe, mpe, "TRAIN") for i, v in enumerate(values)]
    k = data.draw(st.integers(min_value=0, max_value=len(calls)))
    whole = DashBoard(folder / "whole", window=window)
    play(whole, calls)
    first = DashBoard(folder / "first", window=window)
    play(first, calls[:k])
    state = through_json(first.state_dict())
    board = DashBoard(folder / "second", window=window)
    board.load_state_dict(state)
    assert same(board.state_dict(), state)  # loading then saving gives the state back
    play(board, calls[k:])
    assert same(curves(board), curves(whole))
    assert same(readings(board), readings(whole))
    untimed = [{**b.state_dict(), "spans": None} for b in (board, whole)]  # epoch durations are timings
    assert same(*untimed)


def test_state_dict_is_a_copy_that_later_gauges_leave_alone(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, **SETTINGS)
    play(board, CALLS[:5])
    state = board.state_dict()
    before = copy.deepcopy(state)
    play(board, CALLS[5:9])
    assert same(state, before)
    other = DashBoard(tmp_path / "other", **SETTINGS)
    other.load_state_dict(state)
    play(other, CALLS[5:9])
    assert same(state, before)


def test_state_keeps_each_stages_epoch_duration_for_the_run_eta(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, **SETTINGS)
    play(board, CALLS[:10])
    state = through_json(board.state_dict())
    assert set(state["spans"]) == {"TRAIN", "DEV"}
    other = DashBoard(tmp_path / "other", **SETTINGS)
    other.load_state_dict(state)
    assert other._clock.spans == board._clock.spans


def test_track_of_unknown_length_continues_the_global_miles_after_a_resume(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    for _ in board.track(iter(range(4)), stage="TRAIN", epoch=0):
        board.gauge({"loss": 1.0})
    other = DashBoard(tmp_path / "other")
    other.load_state_dict(board.state_dict())
    for _ in other.track(iter(range(3)), stage="TRAIN", epoch=1):
        other.gauge({"loss": 2.0})
    assert other._series["TRAIN:loss"].xs == [1, 2, 3, 4, 5, 6, 7]
    assert other._series["TRAIN:data_wait"].mode == "percent"  # keeps the format gauge() gives it
    assert other.read("loss", "TRAIN", 1) == 1.0
    assert other.read("loss", "TRAIN", 2) == 2.0


def saved(tmp_path: Path) -> dict:
    board = DashBoard(tmp_path / "saved", **SETTINGS)
    play(board, CALLS[:9])
    return board.state_dict()


def spoil(state: dict, path: tuple, value: object) -> dict:
    out = copy.deepcopy(state)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "error", "named"),
    [
        (("version",), 2, ValueError, "state['version'] is 2"),
        (("version",), "1", TypeError, "state['version']"),
        (("format",), "timm", ValueError, "state['format']"),
        (("series",), KeyError, ValueError, "lacks the key 'series'"),
        (("series",), {"a": 1}, TypeError, "state['series']"),
        (("series", 0, "vals", 0), "x", TypeError, "state['series'][0]['vals'][0]"),
        (("series", 0, "vals", 0), True, TypeError, "state['series'][0]['vals'][0]"),
        (("series", 0, "xs", 1), 1.5, TypeError, "state['series'][0]['xs'][1]"),
        (("series", 0, "xs"), [1], ValueError, "state['series'][0]['vals']"),
        (("series", 0, "start"), 99, ValueError, "state['series'][0]['start']"),
        (("series", 0, "epoch"), None, TypeError, "state['series'][0]['epoch']"),
        (("series", 0, "stage"), 3, TypeError, "state['series'][0]['stage']"),
        (("series", 0, "prior_mile"), [[1]], ValueError, "state['series'][0]['prior_mile']"),
        (("plans", "TRAIN"), "loss", TypeError, "state['plans']['TRAIN']"),
        (("merged",), [["hour", "TRAIN:loss"]], ValueError, "state['merged'][0]"),
        (("spans", "TRAIN"), "fast", TypeError, "state['spans']['TRAIN']"),
    ],
)
def test_load_state_dict_refuses_another_version_or_wrong_types_naming_the_key(
    tmp_path, capsys, path, value, error, named
) -> None:
    board = DashBoard(tmp_path / "board", **SETTINGS)
    play(board, CALLS[:3])
    before = curves(board)
    with pytest.raises(error) as info:
        board.load_state_dict(spoil(saved(tmp_path), path, value))
    assert named in str(info.value)
    assert same(curves(board), before)  # checked whole before anything changed


def test_load_state_dict_refuses_what_is_not_a_dict(tmp_path) -> None:
    with pytest.raises(TypeError, match="state must be a dict"):
        DashBoard(tmp_path).load_state_dict([1, 2])  # type: ignore[arg-type]


def test_load_state_dict_refuses_a_series_saved_twice(tmp_path, capsys) -> None:
    state = saved(tmp_path)
    state["series"].append(copy.deepcopy(state["series"][0]))
    with pytest.raises(ValueError, match=r"state\['series'\]\[\d+\] holds .* a second time"):
        DashBoard(tmp_path / "b").load_state_dict(state)


def test_rank_above_zero_gives_an_empty_state_and_checks_what_it_loads(tmp_path, monkeypatch, capsys) -> None:
    state = saved(tmp_path)
    monkeypatch.setenv("NEB_RANK", "1")
    board = DashBoard(tmp_path / "rank1", **SETTINGS)
    play(board, CALLS[:4])
    mine = board.state_dict()
    assert mine["series"] == [] and mine["version"] == state["version"]
    json.dumps(mine)
    board.load_state_dict(state)
    assert board.state_dict()["series"] == []
    assert board.log() == []
    with pytest.raises(ValueError, match="version"):
        board.load_state_dict({**state, "version": 9})
