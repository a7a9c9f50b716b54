"""TimeMachine's resumable checkpoints: state={name: obj}, RNG states, background writes, preemption."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from torch import nn

from nebulae.cockpit import TimeMachine
from nebulae.cockpit import _timemachine as impl

SCENARIOS = os.path.join(os.path.dirname(__file__), "resume_scenarios.py")


class Counter:
    """The smallest stateful object: what TimeMachine needs is the state_dict pair, nothing else."""

    def __init__(self, value: int = 0) -> None:
        self.value = value

    def state_dict(self) -> dict:
        return {"value": self.value, "history": [self.value, torch.tensor([self.value])]}

    def load_state_dict(self, state: dict) -> None:
        self.value = state["value"]


def _net() -> nn.Linear:
    net = nn.Linear(4, 2)
    net.scope = "lin"
    return net


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_state_and_rng_round_trip_and_load_with_weights_only(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    _draws()
    path = tm.drop(_net(), state={"a": Counter(5), "b": Counter(6)}, meta={"mile": 9})
    expected = _draws()
    stored = torch.load(path, weights_only=True)
    assert stored["state"]["a"]["value"] == 5 and len(stored["rng"]) == 1
    a, b = Counter(), Counter()
    _draws(), _draws()
    assert tm.to(_net(), state={"a": a, "b": b}) == {"mile": 9}
    assert (a.value, b.value) == (5, 6) and tm.path == path
    assert _draws() == expected


def test_rng_false_stores_and_restores_no_generator_state(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    path = tm.drop(_net(), state={"a": Counter(1)}, rng=False)
    assert "rng" not in torch.load(path, weights_only=True)
    net = _net()
    torch.manual_seed(11)
    before = torch.get_rng_state()
    tm.to(net, state={"a": Counter()}, rng=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_brochure_forms_are_unchanged_without_state(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    flat = torch.load(tm.drop(_net()), weights_only=True)
    assert set(flat) == {"weight", "bias"}
    assert tm.to(_net()).endswith("lin-1.pth")


@pytest.mark.parametrize(
    ("asked", "named"),
    [
        ({"a": Counter()}, "not asked for ['b']"),
        ({"a": Counter(), "b": Counter(), "c": Counter()}, "missing ['c']"),
    ],
)
def test_state_names_that_differ_from_the_checkpoint_are_refused_by_name(tmp_path, asked, named):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    tm.drop(_net(), state={"a": Counter(1), "b": Counter(2)})
    with pytest.raises(KeyError, match=named.replace("[", r"\[").replace("]", r"\]")):
        tm.to(_net(), state=asked)
    assert asked["a"].value == 0  # nothing was restored


def test_state_that_weights_only_loading_refuses_is_a_type_error_naming_it(tmp_path):
    class Odd(Counter):
        def state_dict(self) -> dict:
            return {"when": object()}

    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    with pytest.raises(TypeError, match=r"state\['odd'\]\['when'\] is a object"):
        tm.drop(_net(), state={"odd": Odd()})
    with pytest.raises(TypeError, match="'state' entry 'x' has no state_dict"):
        tm.drop(_net(), state={"x": 3})


def test_non_blocking_drop_writes_the_state_as_it_was_when_called(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    net, counter = _net(), Counter(1)
    with torch.no_grad():
        net.weight.fill_(1.0)
    path = tm.drop(net, state={"c": counter}, blocking=False)
    with torch.no_grad():
        net.weight.fill_(2.0)  # training goes on while the write runs
    counter.value = 2
    tm.wait()
    stored = torch.load(path, weights_only=True)
    assert torch.equal(stored["net"]["weight"], torch.ones(2, 4)) and stored["state"]["c"]["value"] == 1


def test_reused_host_buffers_never_change_a_checkpoint_already_queued(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    net = _net()
    paths = []
    for value in (1.0, 2.0, 3.0):
        with torch.no_grad():
            net.weight.fill_(value)
        paths.append(tm.drop(net, blocking=False, meta={}))
    tm.wait()
    for value, path in zip((1.0, 2.0, 3.0), paths, strict=True):
        assert torch.equal(torch.load(path, weights_only=True)["net"]["weight"], torch.full((2, 4), value))


def test_a_second_drop_waits_for_the_first_and_rotation_still_applies(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, max_anchors=2, verbose=False)
    for _ in range(4):
        tm.drop(_net(), blocking=False, meta={})
    tm.wait()
    assert sorted(os.listdir(tmp_path)) == ["lin-3.pth", "lin-4.pth"]


def test_an_error_in_the_background_write_is_raised_at_the_next_drop_or_wait(tmp_path, monkeypatch):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)

    def full_disk(obj, path, fsync=True):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(impl, "atomic_save", full_disk)
    tm.drop(_net(), blocking=False)
    with pytest.raises(OSError, match="No space left"):
        tm.drop(_net())
    tm.drop(_net(), blocking=False)
    with pytest.raises(OSError, match="No space left"):
        tm.wait()
    tm.wait()  # raised once


def test_preemptible_restores_the_previous_handlers_and_only_flags(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    before = signal.getsignal(signal.SIGUSR1)
    with tm.preemptible(signals=(signal.SIGUSR1,), exit_code=5):
        assert not tm.preempted
        os.kill(os.getpid(), signal.SIGUSR1)
        assert tm.preempted
        with pytest.raises(SystemExit) as stopped:
            tm.exit_if_preempted(_net(), state={"c": Counter(4)})
    assert stopped.value.code == 5 and signal.getsignal(signal.SIGUSR1) is before
    assert torch.load(tmp_path / "lin-1.pth", weights_only=True)["state"]["c"]["value"] == 4


def test_preemptible_outside_the_main_thread_is_refused(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    errors = []

    def enter() -> None:
        try:
            with tm.preemptible():
                pass
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert errors and "main thread" in errors[0]


def _scenario(tmp_path, name: str, event: str = "none", at: int = 0) -> subprocess.CompletedProcess:
    ckpt = tmp_path / f"ckpt-{name}"
    ckpt.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, SCENARIOS, str(ckpt), str(tmp_path / f"{name}.pt"), event, str(at)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _result(tmp_path, name: str) -> dict:
    return torch.load(tmp_path / f"{name}.pt", weights_only=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    done = _scenario(tmp_path, "full")
    assert done.returncode == 0, done.stderr
    return _result(tmp_path, "full")


def _assert_same_ending(resumed: dict, full: dict) -> None:
    for key, value in full["net"].items():
        assert torch.equal(resumed["net"][key], value), key
    for index, value in full["optim"]["state"].items():
        assert torch.equal(resumed["optim"]["state"][index]["momentum_buffer"], value["momentum_buffer"])
    assert resumed["seen"] == full["seen"][len(full["seen"]) - len(resumed["seen"]) :]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("event", "at", "resumed_after"), [("kill", 7, 6), ("kill", 13, 12), ("kill_in_write", 9, 6)]
)
def test_a_killed_run_resumes_bit_identically(tmp_path, uninterrupted, event, at, resumed_after):
    killed = _scenario(tmp_path, "run", event, at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not [n for n in os.listdir(tmp_path / "ckpt-run") if ".tmp-" in n] or event == "kill_in_write"
    resumed = _scenario(tmp_path, "run")
    assert resumed.returncode == 0, resumed.stderr
    result = _result(tmp_path, "run")
    assert len(result["seen"]) == len(uninterrupted["seen"]) - resumed_after  # from the last finished drop
    _assert_same_ending(result, uninterrupted)


@pytest.mark.slow
def test_sigterm_checkpoints_the_exact_mile_exits_with_the_status_asked_and_resumes_exactly(
    tmp_path, uninterrupted
):
    stopped = _scenario(tmp_path, "run", "term", 8)
    assert stopped.returncode == 3, stopped.stderr
    newest = max((tmp_path / "ckpt-run").glob("net-*.pth"), key=lambda p: int(p.stem.split("-")[1]))
    stored = torch.load(newest, weights_only=True)
    assert stored["meta"] == {"epoch": 0, "mile": 8} and stored["ranked"]["train"][0]["mile"] == 8
    resumed = _scenario(tmp_path, "run")
    assert resumed.returncode == 0, resumed.stderr
    result = _result(tmp_path, "run")
    assert len(result["seen"]) == len(uninterrupted["seen"]) - 8
    _assert_same_ending(result, uninterrupted)


@pytest.mark.slow
def test_multiverse_forwards_the_signal_and_exits_with_the_ranks_preemption_status(tmp_path):
    done = _scenario(tmp_path, "mv", "multiverse")
    assert done.returncode == 7, done.stderr[-3000:]
    (path,) = (tmp_path / "ckpt-mv").glob("net-*.pth")
    stored = torch.load(path, weights_only=True)
    step = stored["meta"]["step"]
    assert step >= 3 and [s["mile"] for s in stored["ranked"]["train"]] == [step, 2 * step]
    assert [s["rank"] for s in stored["ranked"]["train"]] == [0, 1] and len(stored["rng"]) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_model_and_the_cuda_rng_round_trip_through_a_non_blocking_drop(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    net = _net().cuda()
    torch.cuda.manual_seed_all(4)
    path = tm.drop(net, state={"c": Counter(1)}, blocking=False)
    expected = torch.rand(3, device="cuda")
    with torch.no_grad():
        net.weight.add_(1.0)  # after the host copy: the file keeps the old weights
    tm.wait()
    stored = torch.load(path, weights_only=True)
    assert stored["net"]["weight"].device.type == "cpu" and len(stored["rng"][0]["cuda"]) >= 1
    torch.rand(5, device="cuda")
    tm.to(net, state={"c": Counter()})
    assert torch.equal(torch.rand(3, device="cuda"), expected)
    assert torch.equal(net.weight.detach().cpu(), stored["net"]["weight"])


def test_a_large_host_copy_is_exact_split_over_two_threads_and_independent_of_later_changes():
    from nebulae.cockpit._writer import HostCopy

    host = HostCopy()
    big = {f"w{i}": torch.randn(1 << 20) for i in range(5)}  # 20 MB: above the two-thread split
    state = {"model": big, "step": 3, "small": torch.arange(4)}
    snap = host.copy(state)
    assert snap["step"] == 3 and torch.equal(snap["small"], state["small"])
    assert all(torch.equal(snap["model"][k], v) for k, v in big.items())
    for v in big.values():
        v.add_(1.0)  # training goes on: the snapshot keeps the values it copied
    assert not any(torch.equal(snap["model"][k], v) for k, v in big.items())
    again = host.copy(state)  # the next copy reuses the buffers and holds the new values
    assert again["model"]["w0"].data_ptr() == snap["model"]["w0"].data_ptr()
    assert all(torch.equal(again["model"][k], v) for k, v in big.items())
