"""Multiverse on CPU with gloo: training, reduce, sync, failures, timeouts, torchrun, GPU assignment."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from nebulae.cockpit import Multiverse, _lease
from nebulae.kit.testing import FakeGPU, fake_nvml

SCENARIOS = os.path.join(os.path.dirname(__file__), "multiverse_scenarios.py")
TIMEOUT_S = 180  # guards against hangs; a healthy run takes a few seconds


def _run(command: list[str], tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    outdir = tmp_path / "out"
    outdir.mkdir(exist_ok=True)
    dropped = (
        "RANK",
        "NEB_RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
        "CUDA_VISIBLE_DEVICES",
        "NEB_GPUS",
        "MASTER_PORT",
    )
    child_env = {k: v for k, v in os.environ.items() if k not in dropped}
    child_env.update(TMPDIR=str(tmp_path), **env)
    return subprocess.run(
        [*command, str(outdir)], capture_output=True, text=True, timeout=TIMEOUT_S, env=child_env
    )


def _scenario(name: str, tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, SCENARIOS, name], tmp_path, **env)


def _reports(tmp_path) -> list[dict]:
    return [torch.load(tmp_path / "out" / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


def _check_training(reports: list[dict]) -> None:
    first, second = reports
    for a, b in zip(first["params"], second["params"], strict=True):
        assert torch.equal(a, b)
    assert first["losses"] == second["losses"]
    assert first["losses"][-1] < first["losses"][0] / 4
    for report in reports:
        assert report["nworld"] == 2
        assert torch.equal(report["mean"], torch.full((2,), 1.5))
        assert torch.equal(report["sum"], torch.full((2,), 3.0))
        assert torch.equal(report["pair"][1], torch.full((2,), 6.0))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("train")
    done = _scenario("train", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return _reports(tmp_path)


def test_two_ranks_end_with_identical_parameters_and_a_falling_loss(trained):
    _check_training(trained)


def test_each_rank_gets_its_rank_and_a_cpu_run_has_no_gpus(trained):
    assert [r["env"]["NEB_RANK"] for r in trained] == ["0", "1"]
    assert [r["env"]["LOCAL_RANK"] for r in trained] == ["0", "1"]
    assert all(r["env"]["WORLD_SIZE"] == "2" and r["env"]["NEB_GPUS"] == "" for r in trained)


def test_sync_reshards_tanks_with_rank_zeros_seed(trained):
    # rank r's stand-in Tank was built with seed 100 + r; both must shard with rank 0's seed.
    assert [r["tank"] for r in trained] == [(0, 2, 100), (1, 2, 100)]


@pytest.mark.slow
def test_a_rank_that_raises_ends_the_run_with_its_traceback(tmp_path):
    done = _scenario("fail", tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "rank 1 failed (exit code 1)" in done.stdout
    assert "ValueError: boom from rank 1" in done.stdout


def _error_head(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 3, done.stdout + done.stderr
    return done.stdout.split("ERROR: ", 1)[1].splitlines()[0]


@pytest.mark.slow
def test_a_rank_that_exits_with_code_zero_halfway_is_the_one_reported(tmp_path):
    done = _scenario("leave", tmp_path)
    head = _error_head(done)
    assert head.startswith("Multiverse rank 1 exited (exit code 0) before its universe function returned")
    assert "rank 0 failed" in done.stdout  # the rank that lost its peer is listed after it, not blamed
    assert "traceback of rank 0, which failed after rank 1" in done.stdout


@pytest.mark.slow
def test_a_stalled_collective_times_out_naming_the_rank_that_never_reached_it(tmp_path):
    done = _scenario("stall", tmp_path)
    head = _error_head(done)
    assert head.startswith("Multiverse rank 1 did not reach the collective that rank 0 waited in")
    assert "Multiverse(timeout=5)" in head
    assert "traceback of rank 0, which waited for it" in done.stdout
    assert "timed out" in done.stdout.lower()


@pytest.mark.slow
def test_torchrun_launch_joins_the_launched_group(tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    done = _run([*launcher, SCENARIOS, "torchrun"], tmp_path, OMP_NUM_THREADS="1")
    assert done.returncode == 0, done.stdout + done.stderr
    reports = _reports(tmp_path)
    _check_training(reports)
    assert all(r["env"]["NEB_RANK"] is None and r["env"]["NEB_GPUS"] is None for r in reports)


@pytest.mark.slow
def test_under_torchrun_local_rank_zero_chooses_and_leases_the_nodes_gpus(tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    done = _run([*launcher, SCENARIOS, "node_choice"], tmp_path, OMP_NUM_THREADS="1")
    assert done.returncode == 0, done.stdout + done.stderr
    first, second = _reports(tmp_path)
    assert first["gpus"] == second["gpus"] == [1, 2]  # the two with the most free memory
    assert first["holders"] == second["holders"] == [first["pid"], first["pid"]]
    assert (first["local_rank"], second["local_rank"]) == (0, 1)
    assert first["visible"] == second["visible"] == "1,2"


@pytest.mark.slow
def test_parent_assigns_and_leases_gpus_that_children_inherit(tmp_path):
    done = _scenario("environment", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for report in _reports(tmp_path):
        # GPUs 1 and 2 have the most free memory; the parent (not the child) holds their leases.
        assert report["env"] == {
            "NEB_GPUS": "1,2",
            "CUDA_VISIBLE_DEVICES": "1,2",
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        }
        assert report["holders"] == [report["parent"], report["parent"]]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_ranks_exit_when_the_parent_is_killed(tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "NEB_RANK", "LOCAL_RANK", "WORLD_SIZE")}
    parent = subprocess.Popen([sys.executable, SCENARIOS, "linger", str(outdir)], env=env)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(pids) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = [int(p.read_text()) for p in outdir.glob("pid*") if p.read_text()]
        assert len(pids) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 60  # the ranks would otherwise sleep for 600 s
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in pids)
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_ranks_use_nccl_leased_gpus_and_sync_batchnorm(tmp_path):
    nworld = min(2, torch.cuda.device_count())
    done = _scenario("gpu", tmp_path, NWORLD=str(nworld))
    assert done.returncode == 0, done.stdout + done.stderr
    reports = [torch.load(tmp_path / "out" / f"rank{r}.pt", weights_only=False) for r in range(nworld)]
    for rank, report in enumerate(reports):
        assert report["backend"] == "nccl" and report["sync_bn"]
        assert report["device"] == f"cuda:{rank}"
        assert report["losses"][-1] < report["losses"][0]
        for a, b in zip(report["params"], reports[0]["params"], strict=True):
            assert torch.equal(a, b)


# ---------------------------------------------------------------- in-process checks


def _noop(mv: Multiverse) -> None:
    return None


def test_too_few_free_gpus_fail_before_any_rank_starts_naming_the_holder(hold_lease, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    holder = hold_lease("GPU-00000000-0000-4000-8000-000000000001")
    gpus = [FakeGPU(free_mib=8000), FakeGPU(free_mib=9000)]
    expected = rf"need 2, found 1.*GPU 1 \(pid {holder.pid}\)"
    with fake_nvml(gpus), pytest.raises(RuntimeError, match=expected):
        Multiverse(_noop, 2)()
    assert _lease._held == {}  # the GPU it did get was given back


def test_empty_cuda_visible_devices_means_a_cpu_run(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with fake_nvml([FakeGPU()]):
        assert Multiverse(_noop, 1)._assign_gpus() == []


def test_a_universe_that_cannot_be_pickled_is_a_clear_type_error(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(TypeError, match="module level"):
        Multiverse(lambda mv: None, 1)()


def test_only_collective_errors_count_as_caused_by_another_rank():
    from nebulae.cockpit._multiverse import _failure_kind

    assert _failure_kind(RuntimeError("[gloo] Timed out waiting 5000ms for recv")) == "timeout"
    assert _failure_kind(RuntimeError("[gloo] Connection closed by peer [127.0.0.1]:1")) == "peer"
    assert _failure_kind(RuntimeError("boom")) == "error"
    assert _failure_kind(ValueError("timeout must be positive")) == "error"  # the user's own error


def test_reduce_outside_a_distributed_run_returns_the_input():
    mv = Multiverse(_noop, 2)
    t = torch.ones(3)
    assert mv.reduce(t) is t
    assert mv.reduce([t, t], aggregate=True) == (t, t)


def test_init_outside_a_rank_and_sync_before_init_are_errors(monkeypatch):
    for name in ("NEB_RANK", "RANK"):
        monkeypatch.delenv(name, raising=False)
    mv = Multiverse(_noop, 2)
    with pytest.raises(RuntimeError, match="inside the universe"):
        mv.init()
    with pytest.raises(RuntimeError, match=r"mv\.init\(\)"):
        mv.sync(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("kwargs", [{"nworld": 0}, {"nworld": 1.5}, {"nworld": 2, "timeout": 0}])
def test_bad_arguments_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        Multiverse(_noop, **kwargs)


def test_construction_captures_a_free_port_and_world_size(monkeypatch):
    monkeypatch.delenv("MASTER_PORT", raising=False)
    mv = Multiverse(_noop, 3)
    assert (mv.nworld, mv.rank) == (3, -1)
    assert mv._env["MASTER_ADDR"] == "127.0.0.1" and int(mv._env["MASTER_PORT"]) > 0
    assert mv._env["WORLD_SIZE"] == "3"
    monkeypatch.setenv("MASTER_PORT", "29611")
    assert Multiverse(_noop, 2)._env["MASTER_PORT"] == "29611"


def test_scope_is_a_no_op_context_and_executor_keeps_metadata():
    mv = Multiverse(_noop, 1)
    with mv.scope():
        pass

    @mv.Executor
    def main(x: int) -> int:
        """Docs."""
        return x + 1

    class Trainer:
        @Multiverse.Executor
        def run(self, x: int) -> int:
            return x * 2

    assert (main(1), main.__name__, main.__doc__) == (2, "main", "Docs.")
    assert Trainer().run(4) == 8
    assert isinstance(Multiverse.Executor(functools.partial(int, "7"))(), int)
