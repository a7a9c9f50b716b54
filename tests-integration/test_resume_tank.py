"""Preemption-proof training over a real Tank: killed, preempted or resharded runs end bit-identical.

A small model trains 2 epochs on a packed Tank with Comburant augmentation and process workers, dropping
a non-blocking checkpoint every 2 steps (brochure/resume_universe.py). Runs killed by SIGKILL (after a
drop finished, or inside a background write), or stopped by SIGTERM with preemption handling on, then
resumed, end with the weights, optimizer and EMA state and the samples after the resume point of the
uninterrupted run. Under Multiverse (2 gloo ranks) the same holds; resuming on 1 rank sees every sample
the interrupted epoch had left exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from brochure.images import pack_indexed
from brochure.ranks import HERE, cpu_env

from nebulae.cockpit import TimeMachine
from nebulae.fuel import Tank

ROWS = 32  # batch 4: 8 miles an epoch alone, 4 per rank with two


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("resume-data")
    return pack_indexed(work / "raw", ROWS, work / "fuel.hdf5")


def _run(data: Path, work: Path, event: str = "none", at: int = 0, nworld: int = 1) -> int:
    (work / "ckpt").mkdir(parents=True, exist_ok=True)
    (work / "out").mkdir(exist_ok=True)
    env = cpu_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    args = [str(data), str(work / "ckpt"), str(work / "out"), event, str(at), str(nworld)]
    done = subprocess.run(
        [sys.executable, "-m", "brochure.resume_universe", *args],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if event == "none":
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode


def _results(work: Path, nworld: int) -> list[dict]:
    return [torch.load(work / "out" / f"rank{r}.pt", weights_only=True) for r in range(nworld)]


def _assert_same_ending(resumed: dict, full: dict, steps_after: int, ema: bool = True) -> None:
    assert len(resumed["seen"]) == steps_after
    assert resumed["seen"] == full["seen"][-steps_after:]
    for key, value in full["net"].items():
        assert torch.equal(resumed["net"][key], value), key
    for key, value in full["ema"].items() if ema else ():
        assert torch.equal(resumed["ema"][key], value), key
    assert resumed["optim"]["step"] == full["optim"]["step"]
    for index, moments in full["optim"]["optimizer"]["state"].items():
        for name, value in moments.items():
            assert torch.equal(resumed["optim"]["optimizer"]["state"][index][name], value), name


@pytest.fixture(scope="module")
def alone(data, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("alone")
    _run(data, work)
    return _results(work, 1)[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("event", "at", "resumed_at"), [("kill", 5, 4), ("kill", 11, 10), ("kill_in_write", 8, 6)]
)
def test_a_killed_run_resumes_mid_epoch_bit_identically(data, tmp_path, alone, event, at, resumed_at):
    assert _run(data, tmp_path, event, at) == -signal.SIGKILL
    _run(data, tmp_path)
    _assert_same_ending(_results(tmp_path, 1)[0], alone, 2 * ROWS // 4 - resumed_at)


@pytest.mark.slow
def test_sigterm_checkpoints_the_current_mile_and_exits_with_the_status_asked(data, tmp_path, alone):
    assert _run(data, tmp_path, "term", 7) == 3
    newest = max((tmp_path / "ckpt").glob("PROBE-*.pth"), key=lambda p: int(p.stem.split("-")[1]))
    stored = torch.load(newest, weights_only=True)
    assert stored["ranked"]["train"][0]["epoch"] == 0 and stored["ranked"]["train"][0]["mile"] == 7
    _run(data, tmp_path)
    _assert_same_ending(_results(tmp_path, 1)[0], alone, 2 * ROWS // 4 - 7)


@pytest.mark.slow
def test_two_ranks_killed_resume_on_two_ranks_bit_identically_and_on_one_with_each_sample_once(
    data, tmp_path
):
    full = tmp_path / "full"
    _run(data, full, nworld=2)
    expected = _results(full, 2)
    killed = tmp_path / "killed"
    assert _run(data, killed, "kill", 3, nworld=2) != 0  # rank 0 dies after its drop of step 2
    one = tmp_path / "one"
    (one / "ckpt").mkdir(parents=True)
    for path in (killed / "ckpt").iterdir():
        (one / "ckpt" / path.name).write_bytes(path.read_bytes())

    _run(data, killed, nworld=2)
    for rank, result in enumerate(_results(killed, 2)):
        # EMA.update() averages on rank 0 only; the other ranks' shadows are not used
        _assert_same_ending(result, expected[rank], 2 * ROWS // 8 - 2, ema=rank == 0)

    _run(data, one, nworld=1)
    seen = _results(one, 1)[0]["seen"]
    done_before = [row for result in expected for epoch, rows in result["seen"][:2] for row in rows]
    rest_of_epoch = Counter(row for epoch, rows in seen if epoch == 0 for row in rows)
    assert set(rest_of_epoch.values()) == {1}
    assert sorted(rest_of_epoch) == sorted(set(range(ROWS)) - set(done_before))
    assert sorted(row for epoch, rows in seen if epoch == 1 for row in rows) == list(range(ROWS))


def test_a_checkpoint_of_another_data_set_is_refused_naming_both(data, tmp_path):
    other = pack_indexed(tmp_path / "raw", 16, tmp_path / "other.hdf5")
    spec = {"image": "vuint8", "label": "int64"}
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    net = torch.nn.Linear(2, 2)
    net.scope = "lin"
    with Tank(str(data), spec, 4, nworker=0, verbose=False) as tank:
        tank.next()
        tm.drop(net, state={"train": tank})
    with Tank(str(other), spec, 4, nworker=0, verbose=False) as tank, pytest.raises(ValueError) as refused:
        tm.to(net, state={"train": tank})
    assert "fuel.hdf5" in str(refused.value) and "other.hdf5" in str(refused.value)
