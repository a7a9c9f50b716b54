"""Epoch passes over a Tank: `iter(tank)` and `tank.as_torch()`, alone and after `next()` or `seek()`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from nebulae.fuel import Tank

N, BS = 22, 4  # MPE 5; two samples dropped per epoch
WORKERS = [(0, None), (1, "thread"), (2, "thread"), (1, "process"), (2, "process")]


@pytest.fixture
def numbered(tmp_path):
    """An HDF5 file whose column 'idx' holds each row's own index."""
    path = tmp_path / "numbered.hdf5"
    with h5py.File(path, "w") as f:
        f["idx"] = np.arange(N, dtype=np.int64)
    return str(path)


def open_tank(path, nworker, worker_type):
    return Tank(path, {"idx": "int64"}, BS, seed=3, nworker=nworker, worker_type=worker_type, verbose=False)


def epoch_batches(tank, epoch):
    return [tank.indices(epoch, m).tolist() for m in range(tank.MPE)]


@pytest.mark.parametrize(("nworker", "worker_type"), WORKERS)
def test_iter_after_next_is_the_whole_next_epoch(numbered, nworker, worker_type):
    with open_tank(numbered, nworker, worker_type) as tank:
        first = tank.next()["idx"].tolist()
        passes = [[b["idx"].tolist() for b in tank] for _ in range(2)]
        assert first == epoch_batches(tank, 0)[0]
        assert passes[0] == epoch_batches(tank, 1) and passes[1] == epoch_batches(tank, 2)
        assert (tank.epoch, tank.mile) == (3, 0)


@pytest.mark.parametrize(("nworker", "worker_type"), WORKERS)
def test_each_pass_yields_mpe_batches_of_a_fresh_epoch(numbered, nworker, worker_type):
    with open_tank(numbered, nworker, worker_type) as tank:
        for epoch in range(2):
            assert [b["idx"].tolist() for b in tank] == epoch_batches(tank, epoch)
        for _batch in tank:
            break  # a pass left early: the next one starts the following epoch, whole
        assert [b["idx"].tolist() for b in tank] == epoch_batches(tank, 3)


def test_iter_after_seek_resumes_that_epoch(numbered):
    with open_tank(numbered, 1, "thread") as tank:
        tank.seek(4, 2)
        assert [b["idx"].tolist() for b in tank] == epoch_batches(tank, 4)[2:]
        tank.seek(1, 3)
        tank.next()  # a batch taken after the seek: the resumed epoch is left, as after any next()
        assert [b["idx"].tolist() for b in tank] == epoch_batches(tank, 2)


@pytest.mark.parametrize(("nworker", "worker_type"), [(0, None), (2, "thread"), (2, "process")])
def test_as_torch_passes_after_next_yield_mpe_batches(numbered, nworker, worker_type):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    with open_tank(numbered, nworker, worker_type) as tank:
        tank.next()
        dataset = tank.as_torch()
        loader = DataLoader(dataset, batch_size=None, num_workers=0)
        passes = [[b["idx"].tolist() for b in dataset], [b["idx"].tolist() for b in loader]]
        assert passes == [epoch_batches(tank, 1), epoch_batches(tank, 2)]
        assert len(dataset) == len(loader) == tank.MPE == 5
        assert isinstance(next(iter(loader))["idx"], torch.Tensor)


# DataLoader workers: run in a child process of its own session, so that a hang (as a forked copy of a Tank
# that already ran once used to) ends at the timeout with every process of the run killed
_LOADER = textwrap.dedent(
    """
    import json, sys
    from torch.utils.data import DataLoader
    from nebulae.fuel import Tank
    path, worker_type = sys.argv[1], sys.argv[2]
    tank = Tank(path, {"idx": "int64"}, 4, seed=3, nworker=2, worker_type=worker_type, verbose=False)
    out = {}
    for case, pin in (("fresh", False), ("pinned", True), ("used", False)):
        if case == "used":
            tank.next()
        loader = DataLoader(tank.as_torch(), batch_size=None, num_workers=2, pin_memory=pin)
        try:
            out[case] = sum(len(b["idx"]) for b in loader)
        except Exception as exc:
            out[case] = [type(exc).__name__, str(exc)]
    # refused loaders leave the Tank as it was: a num_workers=0 pass is the next epoch, whole
    loader = DataLoader(tank.as_torch(), batch_size=None, num_workers=0, pin_memory=True)
    out["after"] = [b["idx"].tolist() for b in loader]
    out["expected"] = [tank.indices(1, m).tolist() for m in range(tank.MPE)]
    tank.close()
    print(json.dumps(out), flush=True)
    """
)


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_dataloader_workers_are_refused_with_the_fix_and_nothing_hangs(numbered, worker_type, lingering):
    pytest.importorskip("torch")
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOADER, numbered, worker_type],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # workers die with it: their slabs are this test's to remove
        proc.communicate()
        for name in os.listdir("/dev/shm"):
            if name.startswith(f"nebfuel_{proc.pid}_"):
                os.unlink(os.path.join("/dev/shm", name))
        pytest.fail("a DataLoader with workers over tank.as_torch() hung")
    finally:
        leftover = lingering(proc.pid)
    assert proc.returncode == 0, err
    assert not leftover
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"nebfuel_{proc.pid}_")]
    result = json.loads(out.strip().splitlines()[-1])
    for case in ("fresh", "pinned", "used"):
        kind, message = result[case]
        assert kind == "ValueError", result[case]
        assert "num_workers=2" in message and "num_workers=0" in message and "nworker" in message
    assert result["after"] == result["expected"]
